//! stdio: rmcp's own client against the built `bioseq` binary, and raw lines for bad input.

use std::{process::Stdio, time::Duration};

use mcp_expose_tests::{assert_gc_ggccat, bin, initialize, initialized, request};
use rmcp::{
    ServiceExt as _,
    model::CallToolRequestParams,
    transport::{ConfigureCommandExt as _, TokioChildProcess},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    process::Command,
};

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools_over_stdio() {
    let transport = TokioChildProcess::new(Command::new(bin("bioseq")).configure(|cmd| {
        cmd.stderr(Stdio::null());
    }))
    .expect("spawn bioseq");
    let client = ().serve(transport).await.expect("initialize over stdio");
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("bioseq")
    );

    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "assembly_stats",
            "find_orfs",
            "gc_content",
            "reverse_complement",
            "translate"
        ]
    );
    for tool in &tools {
        assert!(
            tool.description.as_deref().is_some_and(|d| !d.is_empty()),
            "{} has no description",
            tool.name
        );
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            tool.name
        );
        let output = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no output schema", tool.name));
        assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
    }
    let gc = tools
        .iter()
        .find(|t| t.name == "gc_content")
        .expect("gc_content");
    assert_eq!(gc.input_schema["required"], json!(["seq"]));
    assert!(
        gc.input_schema["properties"]["seq"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("GGCCAT"))
    );

    let result = client
        .call_tool(
            CallToolRequestParams::new("gc_content")
                .with_arguments(args(json!({ "seq": "GGCCAT" }))),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.expect("structured content");
    assert_gc_ggccat(structured["result"].as_f64().expect("number"));

    let result = client
        .call_tool(
            CallToolRequestParams::new("gc_content")
                .with_arguments(args(json!({ "seq": "GGXCAT" }))),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(true));
    let text = result.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(text.contains("'X' at position 3"), "{text}");
    client.cancel().await.expect("close");
}

/// Runs `bioseq` with `extra_args`, writes `lines` to its stdin, and reads stdout until a
/// response for every id in `ids` arrived. Every stdout line must be a JSON-RPC message.
async fn exchange(extra_args: &[&str], lines: &[String], ids: &[u64]) -> Vec<Value> {
    let mut child = Command::new(bin("bioseq"))
        .args(extra_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn bioseq");
    let mut stdin = child.stdin.take().expect("stdin");
    for line in lines {
        stdin.write_all(line.as_bytes()).await.expect("write");
        stdin.write_all(b"\n").await.expect("write");
    }
    stdin.flush().await.expect("flush");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut messages = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = out.next_line().await {
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC: {line}");
            assert!(
                message.get("result").is_some()
                    || message.get("error").is_some()
                    || message.get("method").is_some(),
                "not a JSON-RPC message: {line}"
            );
            messages.push(message);
            if ids
                .iter()
                .all(|id| messages.iter().any(|m| m["id"] == json!(id)))
            {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "timed out; got {messages:?}");
    drop(stdin);
    messages
}

fn by_id(messages: &[Value], id: u64) -> &Value {
    messages
        .iter()
        .find(|m| m["id"] == json!(id))
        .unwrap_or_else(|| panic!("no response {id}: {messages:?}"))
}

#[tokio::test]
async fn bad_lines_get_json_rpc_errors_and_the_next_line_is_served() {
    let call = |id, seq: &str| {
        request(
            id,
            "tools/call",
            json!({ "name": "gc_content", "arguments": { "seq": seq } }),
        )
    };
    let lines = [
        initialize(1, json!({})),
        initialized(),
        "{this is not json".to_owned(),
        call(2, "GGCCAT"),
        "[1, 2, 3]".to_owned(),
        r#"{"jsonrpc":"2.0","id":3,"method":"no/such/method"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":1}}"#.to_owned(),
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"gc_content","arguments":{{"seq":"{}"}}}}}}"#,
            "A".repeat(3000)
        ),
        call(6, "GGCCAT"),
        request(7, "tools/call", json!({ "name": "no_such_tool" })),
        request(
            8,
            "tools/call",
            json!({ "name": "gc_content", "arguments": { "sequence": "x" } }),
        ),
    ];
    let messages = exchange(
        &["--max-message-size", "2048"],
        &lines,
        &[1, 2, 3, 4, 6, 7, 8],
    )
    .await;
    let errors: Vec<_> = messages
        .iter()
        .filter(|m| m["id"].is_null())
        .map(|m| m["error"]["code"].clone())
        .collect();
    // The malformed line, the batch and the oversized line are answered without an id.
    assert_eq!(
        errors,
        [json!(-32700), json!(-32600), json!(-32600)],
        "{messages:?}"
    );
    assert_gc_ggccat(
        by_id(&messages, 2)["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    assert_eq!(by_id(&messages, 3)["error"]["code"], -32601);
    assert_eq!(by_id(&messages, 4)["error"]["code"], -32602);
    assert!(
        messages.iter().all(|m| m["id"] != json!(5)),
        "the oversized request must not be served"
    );
    assert_gc_ggccat(
        by_id(&messages, 6)["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    assert_eq!(by_id(&messages, 7)["error"]["code"], -32602);
    let bad_args = &by_id(&messages, 8)["result"];
    assert_eq!(bad_args["isError"], true);
    assert!(
        bad_args["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("missing field `seq`")),
        "{bad_args}"
    );
}
