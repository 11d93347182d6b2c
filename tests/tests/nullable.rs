//! `Option` parameters in `tools/list`: the portable form by default (not required, no `"null"`
//! union anywhere, nested fields included), the `null` union with `#[tool]`, and
//! `null` accepted at call time either way. Served in memory with `Server::serve_stream`.

use mcp_expose::{Server, tool, tools};
use mcp_expose_tests::{initialize, initialized, request};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// A stretch of the sequence.
#[derive(Deserialize, Serialize, JsonSchema)]
struct Window {
    start: u32,
    /// Where it ends; the sequence's end when absent.
    end: Option<u32>,
}

fn describe(seq: &str, min_len: Option<u32>, window: Option<Window>) -> String {
    let window = window.map(|w| (w.start, w.end));
    format!("{} {min_len:?} {window:?}", seq.len())
}

/// Describes its arguments.
#[tool]
fn portable(seq: String, min_len: Option<u32>, window: Option<Window>) -> String {
    describe(&seq, min_len, window)
}

/// Describes its arguments.
#[tool(nullable_union)]
fn union(seq: String, min_len: Option<u32>, window: Option<Window>) -> String {
    describe(&seq, min_len, window)
}

/// Returns a window (its output schema keeps `null`: `end` is serialized as `null`).
#[tool]
fn window(start: u32) -> Window {
    Window { start, end: None }
}

/// The responses to `requests` (ids 2..), after the initialize handshake.
async fn exchange(requests: &[String]) -> Vec<Value> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server);
    let server = Server::new("nullable", "0")
        .without_collected()
        .tools(tools![portable, union, window]);
    let serving = tokio::spawn(server.serve_stream(server_read, server_write));
    let (client_read, mut client_write) = tokio::io::split(client);
    let mut lines = BufReader::new(client_read).lines();
    let mut responses = Vec::new();
    let mut send = async |line: String| {
        client_write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write");
    };
    send(initialize(1, json!({}))).await;
    send(initialized()).await;
    for line in requests {
        send(line.clone()).await;
    }
    while responses.len() < requests.len() + 1 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .expect("a response within 10 s")
            .expect("read")
            .expect("a line");
        let message: Value = serde_json::from_str(&line).expect("JSON-RPC");
        if message.get("id").is_some() {
            responses.push(message);
        }
    }
    drop(lines);
    serving.abort();
    responses.sort_by_key(|r| r["id"].as_u64());
    responses.remove(0);
    responses
}

async fn input_schemas() -> (Value, Value) {
    let listed = exchange(&[request(2, "tools/list", json!({}))]).await;
    let tools = listed[0]["result"]["tools"].as_array().expect("tools");
    let schema = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))
            .clone()
    };
    (schema("portable"), schema("union"))
}

/// Whether `null` appears anywhere in `value` (as a type name or a value).
fn mentions_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s == "null",
        Value::Array(items) => items.iter().any(mentions_null),
        Value::Object(map) => map.values().any(mentions_null),
        _ => false,
    }
}

#[tokio::test]
async fn option_parameters_are_listed_without_null_and_not_required() {
    let (portable, _) = input_schemas().await;
    let schema = &portable["inputSchema"];
    assert!(!mentions_null(schema), "a null in {schema:#}");
    assert_eq!(schema["required"], json!(["seq"]), "{schema:#}");
    assert_eq!(
        schema["properties"]["min_len"]["type"], "integer",
        "{schema:#}"
    );
    // `Option<Window>` is Window's schema itself (no `anyOf` with a null branch), and Window's
    // own optional field is plain and not required either.
    let window = &schema["properties"]["window"];
    assert!(window.get("anyOf").is_none(), "{schema:#}");
    assert_eq!(window["$ref"], "#/$defs/Window", "{schema:#}");
    let def = &schema["$defs"]["Window"];
    assert_eq!(def["required"], json!(["start"]), "{schema:#}");
    assert_eq!(def["properties"]["end"]["type"], "integer", "{schema:#}");
}

#[tokio::test]
async fn nullable_union_keeps_the_null_union() {
    let (_, union) = input_schemas().await;
    let schema = &union["inputSchema"];
    assert_eq!(schema["required"], json!(["seq"]), "{schema:#}");
    assert_eq!(
        schema["properties"]["min_len"]["type"],
        json!(["integer", "null"]),
        "{schema:#}"
    );
    assert_eq!(
        schema["properties"]["window"]["anyOf"],
        json!([{ "$ref": "#/$defs/Window" }, { "type": "null" }]),
        "{schema:#}"
    );
    assert_eq!(
        schema["$defs"]["Window"]["properties"]["end"]["type"],
        json!(["integer", "null"]),
        "{schema:#}"
    );
}

#[tokio::test]
async fn output_schemas_keep_the_null_union() {
    let listed = exchange(&[request(2, "tools/list", json!({}))]).await;
    let tools = listed[0]["result"]["tools"].as_array().expect("tools");
    let window = tools
        .iter()
        .find(|t| t["name"] == "window")
        .expect("window listed");
    assert_eq!(
        window["outputSchema"]["properties"]["end"]["type"],
        json!(["integer", "null"]),
        "{window:#}"
    );
}

#[tokio::test]
async fn null_and_absent_option_arguments_are_accepted() {
    let args = [
        json!({ "seq": "ACGT" }),
        json!({ "seq": "ACGT", "min_len": null, "window": null }),
        json!({ "seq": "ACGT", "min_len": 2, "window": { "start": 1, "end": null } }),
        json!({ "seq": "ACGT", "window": { "start": 1 } }),
    ];
    let mut requests = Vec::new();
    for (i, arguments) in args.iter().enumerate() {
        for (j, name) in ["portable", "union"].into_iter().enumerate() {
            let id = 2 + 2 * i as u64 + j as u64;
            let params = json!({ "name": name, "arguments": arguments });
            requests.push(request(id, "tools/call", params));
        }
    }
    let responses = exchange(&requests).await;
    let texts: Vec<&str> = responses
        .iter()
        .map(|r| {
            assert_ne!(r["result"]["isError"], json!(true), "{r:#}");
            r["result"]["content"][0]["text"].as_str().expect("text")
        })
        .collect();
    let expected = [
        "4 None None",
        "4 None None",
        "4 Some(2) Some((1, None))",
        "4 None Some((1, None))",
    ];
    for (i, expected) in expected.into_iter().enumerate() {
        assert_eq!(texts[2 * i], expected, "portable, arguments {}", args[i]);
        assert_eq!(texts[2 * i + 1], expected, "union, arguments {}", args[i]);
    }
}
