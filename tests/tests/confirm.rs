//! `examples/confirm`: one tool body that asks the user, on every revision. Over a 2025
//! WebSocket session the question is a real `elicitation/create`; over 2026-07-28 HTTP an
//! input-required result and a retry; as a task (2026-07-28 with the tasks extension) a question
//! on the task answered with `tasks/update`.

use std::time::{Duration, Instant};

use mcp_expose_tests::{
    ServerProcess, initialize, initialized, next_json, request, response_messages, send, tool_call,
};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

const V2026: &str = "2026-07-28";

async fn start() -> ServerProcess {
    ServerProcess::start("confirm", &["--http", "0", "--ws", "0"]).await
}

fn yes() -> Value {
    json!({ "action": "accept", "content": { "confirm": true } })
}

/// POSTs one 2026-07-28 request declaring `capabilities`; its one answer, within 10 s.
async fn post26(
    server: &ServerProcess,
    method: &str,
    name: &str,
    mut params: Value,
    capabilities: Value,
) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let response = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method)
        .header("mcp-name", name)
        .timeout(Duration::from_secs(10))
        .body(request(1, method, params))
        .send()
        .await
        .expect("an answer within 10 s");
    let messages = response_messages(response).await;
    messages.last().cloned().expect("an answer")
}

#[tokio::test]
async fn a_2025_session_is_asked_with_a_real_elicitation_request() {
    let server = start().await;
    let (mut socket, _) = connect_async(server.ws()).await.expect("websocket");
    send(&mut socket, initialize(1, json!({ "elicitation": {} }))).await;
    assert!(next_json(&mut socket).await["result"].is_object());
    send(&mut socket, initialized()).await;
    let args = json!({ "amount": 5, "to": "Ada" });
    send(&mut socket, tool_call(2, "transfer", args)).await;
    let asked = next_json(&mut socket).await;
    assert_eq!(asked["method"], "elicitation/create", "{asked}");
    assert_eq!(asked["params"]["message"], "Send 5 EUR to Ada?", "{asked}");
    let answer = json!({ "jsonrpc": "2.0", "id": asked["id"], "result": yes() });
    send(&mut socket, answer.to_string()).await;
    let done = next_json(&mut socket).await;
    assert_eq!(done["id"], 2, "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "sent 5 EUR to Ada",
        "{done}"
    );
}

#[tokio::test]
async fn a_2026_client_gets_an_input_required_result_and_retries() {
    let server = start().await;
    let caps = json!({ "elicitation": {} });
    let params = json!({ "name": "transfer", "arguments": { "amount": 5, "to": "Ada" } });
    let first = post26(
        &server,
        "tools/call",
        "transfer",
        params.clone(),
        caps.clone(),
    )
    .await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["elicitation-1"]["method"],
        "elicitation/create"
    );
    let mut retry = params;
    retry["inputResponses"] = json!({ "elicitation-1": yes() });
    retry["requestState"] = result["requestState"].clone();
    let done = post26(&server, "tools/call", "transfer", retry, caps).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "sent 5 EUR to Ada",
        "{done}"
    );
}

#[tokio::test]
async fn a_task_asks_on_the_task_and_goes_on_after_tasks_update() {
    let server = start().await;
    let caps = json!({ "elicitation": {}, "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let params = json!({ "name": "archive", "arguments": { "rows": 3000 } });
    let created = post26(&server, "tools/call", "archive", params, caps.clone()).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let task = created["result"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned();
    let get = |caps: Value| {
        let params = json!({ "taskId": task });
        let task = task.clone();
        let server = &server;
        async move { post26(server, "tasks/get", &task, params, caps).await }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let asked = loop {
        let got = get(caps.clone()).await;
        if got["result"]["status"] == "input_required" {
            break got;
        }
        assert!(Instant::now() < deadline, "never asked: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let request = &asked["result"]["inputRequests"]["elicitation-1"];
    assert_eq!(
        request["params"]["message"], "Archive 3000 rows?",
        "{asked}"
    );
    let update = json!({ "taskId": task, "inputResponses": { "elicitation-1": yes() } });
    let ack = post26(&server, "tasks/update", &task, update, caps.clone()).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let done = loop {
        let got = get(caps.clone()).await;
        if got["result"]["status"] == "completed" {
            break got;
        }
        assert!(Instant::now() < deadline, "never done: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "archived 3000 rows",
        "{done}"
    );
}
