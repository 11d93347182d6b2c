//! MCP revision 2026-07-28 over streamable HTTP (sessionless, per-request `_meta`, input-required
//! results in place of requests from server to client), and requests to the client that cannot
//! be answered on the older revisions: removed methods, undeclared capabilities, `--stateless`,
//! per-request log levels.
#![allow(deprecated)] // sampling is deprecated by the 2026-07-28 revision; 2025 clients still use it

use std::time::Duration;

use mcp_expose::{Context, Running, Server, ToolError, model, tool};
use mcp_expose_tests::{
    Socket, initialize, initialized, next_json, request, response_messages, send,
};
use serde_json::{Value, json};

/// Asks the client's model (sampling) and returns its answer.
#[tool]
async fn ask_model(question: String, ctx: Context) -> Result<String, ToolError> {
    let message = model::SamplingMessage::user_text(question);
    let params = model::CreateMessageRequestParams::new(vec![message], 50);
    let reply = ctx.sample(params).await?;
    Ok(format!(
        "model answered {} block(s)",
        reply.message.content.len()
    ))
}

/// Asks the user (elicitation) for a name.
#[tool]
async fn ask_user(ctx: Context) -> Result<String, ToolError> {
    let schema = json!({ "type": "object", "properties": { "name": { "type": "string" } } });
    let answer = ctx.elicit("Your name?", schema).await?;
    Ok(format!("{answer:?}"))
}

/// Logs at info and at debug.
#[tool]
async fn chatty(ctx: Context) -> &'static str {
    ctx.info("an info line").await;
    ctx.debug("a debug line").await;
    "done"
}

/// A resource clients can watch.
#[mcp_expose::resource(uri = "watch://it", mime_type = "text/plain")]
fn watched() -> &'static str {
    "it"
}

/// Tells whoever watches `watch://it` that it changed.
#[tool]
async fn touch(ctx: Context) -> &'static str {
    ctx.notify_resource_updated("watch://it").await;
    "touched"
}

async fn start(stateless: bool) -> Running {
    Server::new("revision-tests", "0.0.1")
        .http(0)
        .ws(0)
        .stateless(stateless)
        .start()
        .await
        .expect("start")
}

fn url(running: &Running) -> String {
    format!("http://{}/mcp", running.http_addr().expect("http address"))
}

const V2026: &str = "2026-07-28";

/// The `_meta` every 2026-07-28 request carries, with these client capabilities.
fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// POSTs one 2026-07-28 request (with the headers the revision wants: version, method and
/// a tool's name or a resource's URI), bounded to 10 s.
async fn post26(running: &Running, id: u64, method: &str, params: Value) -> reqwest::Response {
    let mut post = reqwest::Client::new().post(url(running));
    if let Some(name) = params["name"].as_str().or(params["uri"].as_str()) {
        post = post.header("mcp-name", name);
    }
    post.header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method)
        .timeout(Duration::from_secs(10))
        .body(request(id, method, params))
        .send()
        .await
        .expect("an answer within 10 s")
}

fn call_params(name: &str, meta: Value) -> Value {
    json!({ "name": name, "arguments": { "question": "?" }, "_meta": meta })
}

#[tokio::test]
async fn removed_methods_are_404_method_not_found_with_the_id() {
    let running = start(false).await;
    let cases = [
        ("initialize", json!({ "_meta": meta(json!({})) })),
        ("ping", json!({ "_meta": meta(json!({})) })),
        ("logging/setLevel", json!({ "_meta": meta(json!({})) })),
        (
            "logging/setLevel",
            json!({ "level": "debug", "_meta": meta(json!({})) }),
        ),
        ("resources/subscribe", json!({ "_meta": meta(json!({})) })),
        ("resources/unsubscribe", json!({ "_meta": meta(json!({})) })),
        (
            "resources/subscribe",
            json!({ "uri": "x://y", "_meta": meta(json!({})) }),
        ),
    ];
    for (id, (method, params)) in (40..).zip(cases) {
        let response = post26(&running, id, method, params.clone()).await;
        let status = response.status();
        let messages = response_messages(response).await;
        assert_eq!(status, 404, "{method} {params}: {messages:?}");
        assert_eq!(messages[0]["id"], id, "{method}: {messages:?}");
        assert_eq!(
            messages[0]["error"]["code"], -32601,
            "{method}: {messages:?}"
        );
    }
    running.shutdown().await;
}

#[tokio::test]
async fn an_undeclared_capability_is_32021_naming_it() {
    let running = start(false).await;
    for (tool, capability) in [("ask_model", "sampling"), ("ask_user", "elicitation")] {
        let params = call_params(tool, meta(json!({})));
        let response = post26(&running, 5, "tools/call", params).await;
        let status = response.status();
        let messages = response_messages(response).await;
        assert_eq!(status, 400, "{tool}: {messages:?}");
        let error = &messages[0]["error"];
        assert_eq!(messages[0]["id"], 5, "{messages:?}");
        assert_eq!(error["code"], -32021, "{messages:?}");
        assert!(
            error["data"]["requiredCapabilities"][capability].is_object(),
            "{messages:?}"
        );
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_declared_capability_on_2026_is_an_input_required_result() {
    // The revision forbids requests to the client: the call is answered with the request
    // listed in an input-required result, and nothing but the answer is on the stream.
    let running = start(false).await;
    let params = call_params("ask_model", meta(json!({ "sampling": {} })));
    let response = post26(&running, 6, "tools/call", params).await;
    assert_eq!(response.status(), 200);
    let messages = response_messages(response).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let result = &messages[0]["result"];
    assert_eq!(result["resultType"], "input_required", "{messages:?}");
    assert_eq!(
        result["inputRequests"]["sampling-1"]["method"], "sampling/createMessage",
        "{messages:?}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn no_log_messages_without_a_log_level_in_meta() {
    let running = start(false).await;
    let logs = |messages: &[Value]| -> Vec<String> {
        messages
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .map(|m| m["params"]["data"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let response = post26(
        &running,
        1,
        "tools/call",
        call_params("chatty", meta(json!({}))),
    )
    .await;
    let messages = response_messages(response).await;
    assert_eq!(
        messages.last().map(|m| &m["result"]["content"][0]["text"]),
        Some(&json!("done"))
    );
    assert!(logs(&messages).is_empty(), "{messages:?}");

    let mut with_level = meta(json!({}));
    with_level["io.modelcontextprotocol/logLevel"] = json!("debug");
    let response = post26(&running, 2, "tools/call", call_params("chatty", with_level)).await;
    let messages = response_messages(response).await;
    assert_eq!(
        logs(&messages),
        ["an info line", "a debug line"],
        "{messages:?}"
    );

    let mut with_level = meta(json!({}));
    with_level["io.modelcontextprotocol/logLevel"] = json!("info");
    let response = post26(&running, 3, "tools/call", call_params("chatty", with_level)).await;
    assert_eq!(logs(&response_messages(response).await), ["an info line"]);
    running.shutdown().await;
}

/// A 2025-06-18 session over WebSocket that declared these capabilities.
async fn session(running: &Running, capabilities: Value) -> Socket {
    let addr = running.ws_addr().expect("ws address");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("handshake");
    send(&mut socket, initialize(0, capabilities)).await;
    let _ = next_json(&mut socket).await;
    send(&mut socket, initialized()).await;
    socket
}

#[tokio::test]
async fn a_session_that_declared_no_capability_gets_no_request() {
    let running = start(false).await;
    let mut socket = session(&running, json!({})).await;
    for (id, (tool, capability)) in
        (1..).zip([("ask_model", "sampling"), ("ask_user", "elicitation")])
    {
        let call = json!({ "name": tool, "arguments": { "question": "?" } });
        send(&mut socket, request(id, "tools/call", call)).await;
        // The first frame is the answer, not a request to the client.
        let answer = next_json(&mut socket).await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("");
        assert!(text.contains(capability), "{text}");
    }
    running.shutdown().await;
}

#[tokio::test]
async fn stateless_sampling_fails_at_once_instead_of_hanging() {
    // Without a session the client's answer has nowhere to go: before, the tool waited for it
    // forever.
    let running = start(true).await;
    for tool in ["ask_model", "ask_user"] {
        let call = json!({ "name": tool, "arguments": { "question": "?" } });
        let response = reqwest::Client::new()
            .post(url(&running))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .timeout(Duration::from_secs(10))
            .body(request(1, "tools/call", call))
            .send()
            .await
            .expect("an answer within 10 s");
        let messages = response_messages(response).await;
        let answer = messages.last().expect("an answer");
        assert_eq!(answer["result"]["isError"], true, "{messages:?}");
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("");
        assert!(text.contains("stateless"), "{text}");
    }
    running.shutdown().await;
}

/// Reads an event stream until it has carried `count` messages, within 10 s.
async fn read_messages(
    response: &mut reqwest::Response,
    seen: &mut String,
    count: usize,
) -> Vec<Value> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let messages = mcp_expose_tests::http_messages("text/event-stream", seen);
            if messages.len() >= count {
                return messages;
            }
            let chunk = response
                .chunk()
                .await
                .expect("the stream")
                .expect("more of it");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the messages within 10 s")
}

#[tokio::test]
async fn a_listen_stream_is_acknowledged_and_hears_of_updates() {
    let running = start(false).await;
    let params = json!({
        "notifications": { "resourceSubscriptions": ["watch://it", "watch://nothing"] },
        "_meta": meta(json!({})),
    });
    let mut stream = post26(&running, 9, "subscriptions/listen", params).await;
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    let ack = read_messages(&mut stream, &mut seen, 1).await.remove(0);
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 9,
        "{ack}"
    );
    // Only resources that exist are accepted.
    let accepted = ack["params"].to_string();
    assert!(
        accepted.contains("watch://it") && !accepted.contains("watch://nothing"),
        "{ack}"
    );

    let touched = post26(
        &running,
        10,
        "tools/call",
        call_params("touch", meta(json!({}))),
    )
    .await;
    assert_eq!(touched.status(), 200);
    let update = read_messages(&mut stream, &mut seen, 2).await.remove(1);
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], "watch://it", "{update}");
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 9,
        "{update}"
    );
    // An open listen stream does not hold up shutdown.
    tokio::time::timeout(Duration::from_secs(10), running.shutdown())
        .await
        .expect("shutdown within 10 s with a listen stream open");
    drop(stream);
}
