//! Input-required results (MCP 2026-07-28, multi-round-trip requests) over streamable HTTP:
//! a tool that asks the client is answered with the requests listed and a signed
//! `requestState`; the retry with the answers runs it again to its result; an altered or
//! expired state is refused. The same tool on a 2025 session sends a real request instead.

use std::time::Duration;

use mcp_expose::{Context, Running, Server, ToolError, prompt, tool};
use mcp_expose_tests::{initialize, initialized, next_json, request, response_messages, send};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

/// Asks the user's name, then their favourite colour, and greets them.
#[tool]
async fn greet(ctx: Context) -> Result<String, ToolError> {
    let form =
        |field: &str| json!({ "type": "object", "properties": { field: { "type": "string" } } });
    let name = ctx.elicit("Your name?", form("name")).await?;
    let color = ctx.elicit("Your favourite colour?", form("color")).await?;
    let field = |answer: &mcp_expose::model::ElicitResult, key: &str| {
        let content = answer.content.clone().unwrap_or_default();
        content[key].as_str().unwrap_or("?").to_owned()
    };
    Ok(format!(
        "hello {}, who likes {}",
        field(&name, "name"),
        field(&color, "color")
    ))
}

/// Asks the user for a topic, then renders a prompt about it.
#[prompt]
async fn essay(ctx: Context) -> String {
    let schema = json!({ "type": "object", "properties": { "topic": { "type": "string" } } });
    match ctx.elicit("Which topic?", schema).await {
        Ok(answer) => format!(
            "Write about {}",
            answer.content.unwrap_or_default()["topic"]
        ),
        Err(error) => error.to_string(),
    }
}

async fn start(ttl: Option<Duration>, key_file: Option<&std::path::Path>) -> Running {
    let mut server = Server::new("input-required-tests", "0.0.1").http(0).ws(0);
    if let Some(ttl) = ttl {
        server = server.input_state_ttl(ttl);
    }
    if let Some(path) = key_file {
        server = server.state_key_file(path);
    }
    server.start().await.expect("start")
}

const V2026: &str = "2026-07-28";

/// POSTs a 2026-07-28 `tools/call` of `greet` with these extra params; the one JSON-RPC
/// answer, within 10 s.
async fn call(running: &Running, id: u64, extra: Value) -> Value {
    post(running, id, "tools/call", "greet", extra).await
}

/// POSTs a 2026-07-28 request for `name` with these extra params; the one JSON-RPC answer,
/// within 10 s.
async fn post(running: &Running, id: u64, method: &str, name: &str, extra: Value) -> Value {
    let mut params = json!({
        "name": name,
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": V2026,
            "io.modelcontextprotocol/clientCapabilities": { "elicitation": {} },
        },
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        params[key] = value;
    }
    let url = format!("http://{}/mcp", running.http_addr().expect("http address"));
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method)
        .header("mcp-name", name)
        .timeout(Duration::from_secs(10))
        .body(request(id, method, params))
        .send()
        .await
        .expect("an answer within 10 s");
    let messages = response_messages(response).await;
    assert_eq!(messages.len(), 1, "only the answer: {messages:?}");
    messages[0].clone()
}

fn accept(field: &str, value: &str) -> Value {
    json!({ "action": "accept", "content": { field: value } })
}

#[tokio::test]
async fn a_2026_call_is_answered_round_by_round_until_the_result() {
    let running = start(None, None).await;
    let first = call(&running, 1, json!({})).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let asked = &result["inputRequests"]["elicitation-1"];
    assert_eq!(asked["method"], "elicitation/create", "{first}");
    assert_eq!(asked["params"]["message"], "Your name?", "{first}");
    let state = result["requestState"].as_str().expect("a requestState");

    // Round 2: the name; the tool runs again and asks the colour, the name kept in the state.
    let retry = json!({
        "inputResponses": { "elicitation-1": accept("name", "Ada") },
        "requestState": state,
    });
    let second = call(&running, 2, retry).await;
    let result = &second["result"];
    assert_eq!(result["resultType"], "input_required", "{second}");
    let requests = result["inputRequests"].as_object().expect("requests");
    assert_eq!(
        requests.keys().collect::<Vec<_>>(),
        ["elicitation-2"],
        "{second}"
    );
    let state2 = result["requestState"].as_str().expect("a requestState");
    assert_ne!(state2, state);

    // Round 3: the colour only; the name comes from the state.
    let retry = json!({
        "inputResponses": { "elicitation-2": accept("color", "green") },
        "requestState": state2,
    });
    let third = call(&running, 3, retry).await;
    assert_eq!(
        third["result"]["content"][0]["text"], "hello Ada, who likes green",
        "{third}"
    );
    assert_ne!(third["result"]["resultType"], "input_required", "{third}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_tampered_or_foreign_state_is_refused_with_32602() {
    let running = start(None, None).await;
    let first = call(&running, 1, json!({})).await;
    let state = first["result"]["requestState"].as_str().expect("state");
    let answers = json!({ "elicitation-1": accept("name", "Ada") });
    let other = start(None, None).await; // another process: another random key
    for (server, bad) in [
        (&running, format!("{state}-TAMPERED")),
        (&running, format!("x{state}")),
        (&running, "not a state".to_owned()),
        (&other, state.to_owned()),
    ] {
        let retry = json!({ "inputResponses": answers, "requestState": bad });
        let answer = call(server, 2, retry).await;
        assert_eq!(answer["id"], 2, "{answer}");
        assert_eq!(answer["error"]["code"], -32602, "{bad}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("integrity"), "{message}");
    }
    running.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn an_expired_state_is_refused_with_32602() {
    let running = start(Some(Duration::ZERO), None).await;
    let first = call(&running, 1, json!({})).await;
    let state = first["result"]["requestState"].as_str().expect("state");
    let retry = json!({
        "inputResponses": { "elicitation-1": accept("name", "Ada") },
        "requestState": state,
    });
    let answer = call(&running, 2, retry).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("expired"), "{message}");
    running.shutdown().await;
}

#[tokio::test]
async fn replicas_sharing_a_key_file_continue_each_others_calls() {
    let dir = std::env::temp_dir().join(format!("mcp-expose-state-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("state.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef-replica-key\n").expect("key");
    let one = start(None, Some(&key)).await;
    let two = start(None, Some(&key)).await;
    let first = call(&one, 1, json!({})).await;
    let state = first["result"]["requestState"].as_str().expect("state");
    let retry = json!({
        "inputResponses": { "elicitation-1": accept("name", "Ada") },
        "requestState": state,
    });
    let second = call(&two, 2, retry).await;
    assert_eq!(second["result"]["resultType"], "input_required", "{second}");
    assert!(second["result"]["inputRequests"]["elicitation-2"].is_object());
    one.shutdown().await;
    two.shutdown().await;

    std::fs::write(&key, "short").expect("key");
    let refused = Server::new("input-required-tests", "0.0.1")
        .http(0)
        .state_key_file(&key)
        .start()
        .await;
    let Err(error) = refused else {
        panic!("a short key is refused");
    };
    assert!(format!("{error:#}").contains("at least 32"), "{error:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_2025_session_gets_real_requests_from_the_same_tool() {
    let running = start(None, None).await;
    let url = format!("ws://{}/ws", running.ws_addr().expect("ws address"));
    let mut socket = connect_async(url).await.expect("handshake").0;
    send(&mut socket, initialize(0, json!({ "elicitation": {} }))).await;
    let init = next_json(&mut socket).await;
    assert!(
        init["result"]["protocolVersion"].as_str() < Some(V2026),
        "{init}"
    );
    send(&mut socket, initialized()).await;
    send(
        &mut socket,
        request(1, "tools/call", json!({ "name": "greet", "arguments": {} })),
    )
    .await;
    for (field, value) in [("name", "Ada"), ("color", "green")] {
        let asked = next_json(&mut socket).await;
        assert_eq!(asked["method"], "elicitation/create", "{asked}");
        let reply = json!({ "jsonrpc": "2.0", "id": asked["id"], "result": accept(field, value) });
        send(&mut socket, reply.to_string()).await;
    }
    let result = next_json(&mut socket).await;
    assert_eq!(result["id"], 1, "{result}");
    assert_eq!(
        result["result"]["content"][0]["text"], "hello Ada, who likes green",
        "{result}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_2026_prompt_can_ask_too_and_its_state_is_not_a_tools() {
    let running = start(None, None).await;
    let first = post(&running, 1, "prompts/get", "essay", json!({})).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["elicitation-1"]["params"]["message"], "Which topic?",
        "{first}"
    );
    let state = result["requestState"].as_str().expect("state");
    let retry = json!({
        "inputResponses": { "elicitation-1": accept("topic", "rivers") },
        "requestState": state,
    });
    let done = post(&running, 2, "prompts/get", "essay", retry.clone()).await;
    assert_eq!(
        done["result"]["messages"][0]["content"]["text"], "Write about \"rivers\"",
        "{done}"
    );
    // The state is bound to prompts/get essay: a tool call cannot use it.
    let misused = call(&running, 3, retry).await;
    assert_eq!(misused["error"]["code"], -32602, "{misused}");
    running.shutdown().await;
}
