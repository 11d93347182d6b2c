//! MCP 2026-07-28 clients of `mcp-expose bridge` in front of a 2025 Python child that asks the
//! client things during a call (elicitation, sampling, roots): the bridge answers the POST with
//! an input-required result listing the child's requests, and the client's retry (its
//! `inputResponses` and the `requestState`) gets the tool's result reflecting its answers.

use std::time::Duration;

use mcp_expose_tests::{ServerProcess, python_server, response_messages};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";

async fn bridge(extra: &[&str]) -> ServerProcess {
    let child = python_server("asking_child.py");
    let mut args = vec!["bridge", "--http", "0"];
    args.extend_from_slice(extra);
    args.extend(["--", "python3", child.as_str()]);
    ServerProcess::start("mcp-expose", &args).await
}

/// POSTs a sessionless 2026-07-28 `tools/call` of `name` with `arguments`, declaring
/// `capabilities`, with `extra` params (`inputResponses`, `requestState`); its HTTP status and
/// its one message, bounded to 20 s.
async fn call(
    server: &ServerProcess,
    id: u64,
    name: &str,
    arguments: Value,
    capabilities: Value,
    extra: Value,
) -> (u16, Value) {
    let request = (id, "tools/call", name);
    post(server, request, arguments, capabilities, extra).await
}

/// POSTs a sessionless 2026-07-28 request (id, method, and the name it targets) as [`call`].
async fn post(
    server: &ServerProcess,
    (id, method, name): (u64, &str, &str),
    arguments: Value,
    capabilities: Value,
    extra: Value,
) -> (u16, Value) {
    let mut params = json!({
        "name": name,
        "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": V2026,
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        },
    });
    if let Value::Object(extra) = extra {
        params.as_object_mut().expect("params").extend(extra);
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    let response = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method)
        .header("mcp-name", name)
        .timeout(Duration::from_secs(20))
        .body(body.to_string())
        .send()
        .await
        .expect("an answer within 20 s");
    let status = response.status().as_u16();
    let mut messages = response_messages(response).await;
    assert_eq!(messages.len(), 1, "{name}: {messages:?}");
    (status, messages.remove(0))
}

/// The text of a tool result.
fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
}

/// The `requestState` of an input-required result, after checking its shape.
fn state_of(answer: &Value) -> String {
    assert_eq!(answer["result"]["resultType"], "input_required", "{answer}");
    answer["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("no requestState in {answer}"))
        .to_owned()
}

fn resume(state: &str, responses: Value) -> Value {
    json!({ "requestState": state, "inputResponses": responses })
}

fn accept(name: &str) -> Value {
    json!({ "action": "accept", "content": { "name": name } })
}

#[tokio::test]
async fn an_elicitation_is_an_input_required_result_and_the_retry_gets_the_answer() {
    let server = bridge(&[]).await;
    let caps = json!({ "elicitation": {} });
    let args = json!({ "question": "Who are you?" });
    let (status, round) = call(&server, 1, "confirm", args.clone(), caps.clone(), json!({})).await;
    assert_eq!(status, 200, "{round}");
    assert_eq!(round["id"], 1, "{round}");
    let state = state_of(&round);
    let requests = round["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    assert_eq!(requests.len(), 1, "{round}");
    let request = &requests["elicitation-1"];
    assert_eq!(request["method"], "elicitation/create", "{round}");
    assert_eq!(request["params"]["message"], "Who are you?", "{round}");
    assert!(
        request["params"]["requestedSchema"]["properties"]["name"].is_object(),
        "{round}"
    );
    assert!(request["params"].get("_meta").is_none(), "{round}");

    // A state nobody issued, and one altered by a character: -32602 with the id.
    let (status, forged) = call(
        &server,
        2,
        "confirm",
        args.clone(),
        caps.clone(),
        resume(&"0".repeat(32), json!({})),
    )
    .await;
    assert_eq!((status, forged["id"].clone()), (200, json!(2)), "{forged}");
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
    let mut altered = state.clone();
    altered.replace_range(0..1, if state.starts_with('a') { "b" } else { "a" });
    let (_, tampered) = call(
        &server,
        3,
        "confirm",
        args.clone(),
        caps.clone(),
        resume(&altered, json!({})),
    )
    .await;
    assert_eq!(tampered["error"]["code"], -32602, "{tampered}");
    assert_eq!(tampered["id"], 3, "{tampered}");

    // Other arguments, or an answer that is not an object: refused, the call still parked.
    let other = json!({ "question": "Who else?" });
    let answers = json!({ "elicitation-1": accept("Ada") });
    let (_, mismatch) = call(
        &server,
        4,
        "confirm",
        other,
        caps.clone(),
        resume(&state, answers.clone()),
    )
    .await;
    assert_eq!(mismatch["error"]["code"], -32602, "{mismatch}");
    assert!(
        mismatch["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("another call")),
        "{mismatch}"
    );
    let bad = json!({ "elicitation-1": "Ada" });
    let (_, bad) = call(
        &server,
        5,
        "confirm",
        args.clone(),
        caps.clone(),
        resume(&state, bad),
    )
    .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert_eq!(bad["id"], 5, "{bad}");

    // The retry, under a new id, with unknown keys ignored: the tool's answer reflects it.
    let mut answers = answers;
    answers["nobody-9"] = json!({});
    let (status, done) = call(
        &server,
        6,
        "confirm",
        args.clone(),
        caps.clone(),
        resume(&state, answers.clone()),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["id"], 6, "{done}");
    assert_eq!(text(&done), "hello Ada", "{done}");

    // A state serves once.
    let (_, again) = call(
        &server,
        7,
        "confirm",
        args.clone(),
        caps.clone(),
        resume(&state, answers),
    )
    .await;
    assert_eq!(again["error"]["code"], -32602, "{again}");
    assert_eq!(again["id"], 7, "{again}");

    // Without the capability: -32021 naming it, as before.
    let (status, refused) = call(&server, 8, "confirm", args, json!({}), json!({})).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert!(
        refused["error"]["data"]["requiredCapabilities"]["elicitation"].is_object(),
        "{refused}"
    );
}

#[tokio::test]
async fn concurrent_requests_share_a_round_and_unanswered_ones_are_listed_again() {
    let server = bridge(&[]).await;
    let caps = json!({ "elicitation": {}, "sampling": {} });
    let args = json!({ "question": "Name?" });
    let (_, round) = call(&server, 1, "both", args.clone(), caps.clone(), json!({})).await;
    let first = state_of(&round);
    let requests = round["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    assert_eq!(requests.len(), 2, "{round}");
    let key = |prefix: &str| {
        requests
            .keys()
            .find(|key| key.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} key in {round}"))
            .clone()
    };
    let (elicitation, sampling) = (key("elicitation-"), key("sampling-"));
    assert_eq!(
        requests[&sampling]["method"], "sampling/createMessage",
        "{round}"
    );
    let messages = &requests[&sampling]["params"]["messages"];
    assert_eq!(messages[0]["content"]["text"], "Name?", "{round}");
    assert_eq!(requests[&sampling]["params"]["maxTokens"], 50, "{round}");

    // Only the elicitation answered: the sampling request is listed again, under its key.
    let answers = json!({ elicitation.clone(): accept("Ada") });
    let (_, round) = call(
        &server,
        2,
        "both",
        args.clone(),
        caps.clone(),
        resume(&first, answers),
    )
    .await;
    assert_eq!(round["id"], 2, "{round}");
    let second = state_of(&round);
    assert_ne!(first, second);
    let requests = round["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    assert_eq!(requests.keys().collect::<Vec<_>>(), [&sampling], "{round}");

    let reply = json!({
        "role": "assistant",
        "content": { "type": "text", "text": "forty-two" },
        "model": "test-model",
        "stopReason": "endTurn",
    });
    let answers = json!({ sampling: reply });
    let (_, done) = call(&server, 3, "both", args, caps, resume(&second, answers)).await;
    assert_eq!(done["id"], 3, "{done}");
    assert_eq!(text(&done), "user Ada, model forty-two", "{done}");
}

#[tokio::test]
async fn roots_are_asked_in_a_call_and_refused_outside_one() {
    let server = bridge(&[]).await;
    let caps = json!({ "roots": {} });
    let (_, round) = call(&server, 1, "roots", json!({}), caps.clone(), json!({})).await;
    let state = state_of(&round);
    assert_eq!(
        round["result"]["inputRequests"]["roots-1"]["method"], "roots/list",
        "{round}"
    );
    let roots = json!({ "roots-1": { "roots": [
        { "uri": "file:///tmp/a", "name": "a" },
        { "uri": "file:///tmp/b" },
    ] } });
    let (_, done) = call(&server, 2, "roots", json!({}), caps, resume(&state, roots)).await;
    assert_eq!(text(&done), "file:///tmp/a,file:///tmp/b", "{done}");

    // A roots/list the child sends after its call ended: answered at once with an error.
    let (_, later) = call(&server, 3, "roots_later", json!({}), json!({}), json!({})).await;
    assert_eq!(text(&later), "asked later", "{later}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut seen = String::new();
    for attempt in 0..20 {
        let (_, answer) = call(
            &server,
            10 + attempt,
            "roots_seen",
            json!({}),
            json!({}),
            json!({}),
        )
        .await;
        seen = text(&answer).to_owned();
        if seen != "not yet" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        seen.starts_with("refused") && seen.contains("outside a call"),
        "{seen}"
    );
}

#[tokio::test]
async fn a_call_never_resumed_is_dropped_and_its_tool_fails_instead_of_hanging() {
    let server = bridge(&["--request-timeout", "2s"]).await;
    let caps = json!({ "elicitation": {} });
    let args = json!({ "question": "Anyone?" });
    let (_, round) = call(&server, 1, "confirm", args.clone(), caps.clone(), json!({})).await;
    let state = state_of(&round);

    // After the request timeout the child's request is refused: its tool ends.
    let mut ended = String::new();
    for attempt in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (_, answer) = call(
            &server,
            10 + attempt,
            "confirmations",
            json!({}),
            json!({}),
            json!({}),
        )
        .await;
        ended = text(&answer).to_owned();
        if !ended.is_empty() {
            break;
        }
    }
    assert!(
        ended.starts_with("elicitation failed") && ended.contains("did not answer in time"),
        "{ended}"
    );

    // Its state is gone, and the next call is asked again.
    let answers = json!({ "elicitation-1": accept("Late") });
    let (_, late) = call(
        &server,
        2,
        "confirm",
        args.clone(),
        caps.clone(),
        resume(&state, answers),
    )
    .await;
    assert_eq!(late["error"]["code"], -32602, "{late}");
    assert_eq!(late["id"], 2, "{late}");
    let (_, round) = call(&server, 3, "confirm", args.clone(), caps.clone(), json!({})).await;
    let state = state_of(&round);
    let answers = json!({ "elicitation-1": accept("Bo") });
    let (_, done) = call(&server, 4, "confirm", args, caps, resume(&state, answers)).await;
    assert_eq!(text(&done), "hello Bo", "{done}");
}

#[tokio::test]
async fn a_prompt_that_asks_is_resumed_too() {
    let server = bridge(&[]).await;
    let caps = json!({ "elicitation": {} });
    let args = json!({ "topic": "tides" });
    let request = (1, "prompts/get", "greet");
    let (_, round) = post(&server, request, args.clone(), caps.clone(), json!({})).await;
    let state = state_of(&round);
    let asked = &round["result"]["inputRequests"]["elicitation-1"];
    assert_eq!(asked["params"]["message"], "Your name?", "{round}");
    let answers = json!({ "elicitation-1": accept("Ada") });
    let request = (2, "prompts/get", "greet");
    let (status, done) = post(&server, request, args, caps, resume(&state, answers)).await;
    assert_eq!((status, done["id"].clone()), (200, json!(2)), "{done}");
    let message = &done["result"]["messages"][0]["content"]["text"];
    assert_eq!(message, "Hi Ada, about tides", "{done}");
}
