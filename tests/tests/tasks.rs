//! Tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663) over streamable HTTP, MCP
//! 2026-07-28: a task-supporting tool's call is answered with a task handle; `tasks/get`
//! follows it to its result, `tasks/update` answers its questions, `tasks/cancel` stops it;
//! a client without the extension gets an ordinary call or `-32021`; a task outlives no TTL.
//! And a `#[header(..)]` parameter (SEP-2243): listed as `x-mcp-header`, checked against
//! the `Mcp-Param-*` header.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use mcp_expose::{Context, Running, Server, ToolError, tool};
use mcp_expose_tests::{request, response_messages};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";
const TASKS: &str = "io.modelcontextprotocol/tasks";

/// Runs of `stoppable` that finished (none does when cancelled).
static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// Sleeps `millis`, then says so.
#[tool(task = "optional")]
async fn slow_task(millis: u64) -> String {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    format!("slept {millis} ms")
}

/// Sleeps 1.5 s, then counts itself finished.
#[tool(task = "optional")]
async fn stoppable() -> String {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    FINISHED.fetch_add(1, Ordering::SeqCst);
    "finished".to_owned()
}

/// Always a task: fails as a tool.
#[tool(task = "required")]
async fn must_be_task() -> Result<String, ToolError> {
    Err("no luck".into())
}

/// Panics inside its task.
#[tool(task = "optional")]
async fn panicky() -> String {
    panic!("broken on purpose")
}

/// Asks two questions at once inside its task.
#[tool(task = "optional")]
async fn two_questions(ctx: Context) -> Result<String, ToolError> {
    let form = json!({ "type": "object", "properties": { "x": { "type": "string" } } });
    let (a, b) = tokio::join!(ctx.elicit("A?", form.clone()), ctx.elicit("B?", form));
    let text = |r: mcp_expose::model::ElicitResult| r.content.unwrap_or_default()["x"].clone();
    Ok(format!("a={} b={}", text(a?), text(b?)))
}

/// Echoes `region`, mirrored in the `Mcp-Param-Region` header.
#[tool]
fn regional(#[header("Region")] region: String) -> String {
    format!("region {region}")
}

async fn start(ttl: Option<Duration>) -> Running {
    let mut server = Server::new("tasks-tests", "0.0.1").http(0);
    if let Some(ttl) = ttl {
        server = server.task_ttl(ttl);
    }
    server.start().await.expect("start")
}

/// The `_meta` of a 2026-07-28 request, declaring `capabilities`.
fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

fn with_tasks() -> Value {
    json!({ "elicitation": {}, "extensions": { TASKS: {} } })
}

/// POSTs one 2026-07-28 request (`name` for `Mcp-Name`, `headers` on top); the HTTP status
/// and the one JSON-RPC answer, within 10 s.
async fn post(
    running: &Running,
    method: &str,
    name: Option<&str>,
    mut params: Value,
    capabilities: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    params["_meta"] = meta(capabilities);
    let url = format!("http://{}/mcp", running.http_addr().expect("http address"));
    let mut builder = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method)
        .timeout(Duration::from_secs(10));
    if let Some(name) = name {
        builder = builder.header("mcp-name", name);
    }
    for (header, value) in headers {
        builder = builder.header(*header, *value);
    }
    let response = builder
        .body(request(7, method, params))
        .send()
        .await
        .expect("an answer within 10 s");
    let status = response.status().as_u16();
    let messages = response_messages(response).await;
    assert_eq!(messages.len(), 1, "only the answer: {messages:?}");
    (status, messages[0].clone())
}

async fn call(running: &Running, tool: &str, arguments: Value, capabilities: Value) -> Value {
    let params = json!({ "name": tool, "arguments": arguments });
    post(running, "tools/call", Some(tool), params, capabilities, &[])
        .await
        .1
}

async fn task_request(running: &Running, method: &str, task: &str, extra: Value) -> Value {
    let mut params = json!({ "taskId": task });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        params[key] = value;
    }
    post(running, method, Some(task), params, with_tasks(), &[])
        .await
        .1
}

/// `tasks/get` until `done` says the task is where it should be, for at most 10 s.
async fn get_until(running: &Running, task: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = task_request(running, "tasks/get", task, json!({})).await;
        if done(&got["result"]) {
            return got["result"].clone();
        }
        assert!(Instant::now() < deadline, "task {task} stuck at {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminal(task: &Value) -> bool {
    matches!(
        task["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

fn created(answer: &Value) -> String {
    let result = &answer["result"];
    assert_eq!(result["resultType"], "task", "{answer}");
    assert_eq!(result["status"], "working", "{answer}");
    assert!(
        result["ttlMs"].as_u64().is_some_and(|ttl| ttl > 0),
        "{answer}"
    );
    assert!(result.get("result").is_none() && result.get("requestState").is_none());
    result["taskId"].as_str().expect("a taskId").to_owned()
}

#[tokio::test]
async fn a_task_is_created_at_once_and_followed_to_its_result() {
    let running = start(None).await;
    let answer = call(
        &running,
        "slow_task",
        json!({ "millis": 300 }),
        with_tasks(),
    )
    .await;
    let task = created(&answer);
    // Kept before the handle was sent: an immediate tasks/get finds it working.
    let now = task_request(&running, "tasks/get", &task, json!({})).await;
    assert_eq!(now["result"]["status"], "working", "{now}");
    assert_eq!(now["result"]["resultType"], "complete", "{now}");
    let done = get_until(&running, &task, terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "slept 300 ms",
        "{done}"
    );

    // A tool error completes the task with isError; a panic fails it with a JSON-RPC error.
    let task = created(&call(&running, "must_be_task", json!({}), with_tasks()).await);
    let done = get_until(&running, &task, terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], true, "{done}");
    let task = created(&call(&running, "panicky", json!({}), with_tasks()).await);
    let done = get_until(&running, &task, terminal).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], -32603, "{done}");
    assert!(done.get("result").is_none(), "{done}");
    running.shutdown().await;
}

#[tokio::test]
async fn without_the_extension_an_optional_tool_answers_and_a_required_one_is_refused() {
    let running = start(None).await;
    let plain = json!({ "elicitation": {} });
    let answer = call(&running, "slow_task", json!({ "millis": 1 }), plain.clone()).await;
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "slept 1 ms");
    let refused = call(&running, "must_be_task", json!({}), plain.clone()).await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    let required = &refused["error"]["data"]["requiredCapabilities"];
    assert!(required["extensions"][TASKS].is_object(), "{refused}");
    // tasks/* without the extension: -32021 too (before looking for the task).
    let params = json!({ "taskId": "nope" });
    let (_, got) = post(&running, "tasks/get", Some("nope"), params, plain, &[]).await;
    assert_eq!(got["error"]["code"], -32021, "{got}");
    // With it, an unknown task is -32602.
    let got = task_request(&running, "tasks/get", "nope", json!({})).await;
    assert_eq!(got["error"]["code"], -32602, "{got}");
    running.shutdown().await;
}

#[tokio::test]
async fn questions_in_a_task_wait_for_tasks_update_one_answer_at_a_time() {
    let running = start(None).await;
    let task = created(&call(&running, "two_questions", json!({}), with_tasks()).await);
    let asked = get_until(&running, &task, |t| {
        t["inputRequests"].as_object().is_some_and(|r| r.len() == 2)
    })
    .await;
    assert_eq!(asked["status"], "input_required", "{asked}");
    let keys: Vec<String> = asked["inputRequests"]
        .as_object()
        .expect("requests")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        asked["inputRequests"][&keys[0]]["method"],
        "elicitation/create"
    );

    // One answer (and an unknown key, ignored): the other question stays open.
    let one = json!({ "inputResponses": {
        &keys[0]: { "action": "accept", "content": { "x": "first" } },
        "no-such-key": { "action": "decline" },
    }});
    let ack = task_request(&running, "tasks/update", &task, one).await;
    assert_eq!(ack["result"], json!({ "resultType": "complete" }), "{ack}");
    let now = task_request(&running, "tasks/get", &task, json!({})).await;
    let open: Vec<&String> = now["result"]["inputRequests"]
        .as_object()
        .map(|r| r.keys().collect())
        .unwrap_or_default();
    assert_eq!(open, [&keys[1]], "{now}");
    assert_eq!(now["result"]["status"], "input_required");

    let two = json!({ "inputResponses": {
        &keys[1]: { "action": "accept", "content": { "x": "second" } },
    }});
    task_request(&running, "tasks/update", &task, two).await;
    let done = get_until(&running, &task, terminal).await;
    let text = done["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("\"first\"") && text.contains("\"second\""),
        "{done}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_task_stops_its_tool_and_cancel_is_idempotent() {
    let running = start(None).await;
    let task = created(&call(&running, "stoppable", json!({}), with_tasks()).await);
    let ack = task_request(&running, "tasks/cancel", &task, json!({})).await;
    assert_eq!(ack["result"], json!({ "resultType": "complete" }), "{ack}");
    let now = task_request(&running, "tasks/get", &task, json!({})).await;
    assert_eq!(now["result"]["status"], "cancelled", "{now}");
    let again = task_request(&running, "tasks/cancel", &task, json!({})).await;
    assert_eq!(
        again["result"],
        json!({ "resultType": "complete" }),
        "{again}"
    );
    // The tool was stopped: past its sleep it has not finished, and the task stays cancelled.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after = task_request(&running, "tasks/get", &task, json!({})).await;
    assert_eq!(after["result"]["status"], "cancelled", "{after}");
    assert_eq!(FINISHED.load(Ordering::SeqCst), 0, "the tool ran on");
    running.shutdown().await;
}

#[tokio::test]
async fn a_task_runs_and_is_kept_no_longer_than_its_ttl() {
    let running = start(Some(Duration::from_millis(800))).await;
    let answer = call(
        &running,
        "slow_task",
        json!({ "millis": 5000 }),
        with_tasks(),
    )
    .await;
    assert_eq!(answer["result"]["ttlMs"], 800, "{answer}");
    let task = created(&answer);
    // Its tool is stopped at the TTL, then the task is forgotten.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = task_request(&running, "tasks/get", &task, json!({})).await;
        if got["error"]["code"] == -32602 {
            break;
        }
        assert!(
            got["result"]["status"] == "working" || got["result"]["status"] == "failed",
            "{got}"
        );
        assert!(
            Instant::now() < deadline,
            "task {task} never expired: {got}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_header_parameter_is_listed_and_checked_against_its_header() {
    let running = start(None).await;
    let (_, listed) = post(&running, "tools/list", None, json!({}), json!({}), &[]).await;
    let tools = listed["result"]["tools"].as_array().expect("tools");
    let regional = tools
        .iter()
        .find(|t| t["name"] == "regional")
        .expect("listed");
    let region = &regional["inputSchema"]["properties"]["region"];
    assert_eq!(region["x-mcp-header"], "Region", "{regional}");

    let params = json!({ "name": "regional", "arguments": { "region": "eu-west" } });
    let header = [("mcp-param-region", "eu-west")];
    let (status, ok) = post(
        &running,
        "tools/call",
        Some("regional"),
        params.clone(),
        json!({}),
        &header,
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["result"]["content"][0]["text"], "region eu-west", "{ok}");
    // Base64-wrapped values decode.
    let wrapped = [("mcp-param-region", "=?base64?ZXUtd2VzdA==?=")];
    let (status, ok) = post(
        &running,
        "tools/call",
        Some("regional"),
        params.clone(),
        json!({}),
        &wrapped,
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    for bad in [&[][..], &[("mcp-param-region", "us-east")][..]] {
        let (status, refused) = post(
            &running,
            "tools/call",
            Some("regional"),
            params.clone(),
            json!({}),
            bad,
        )
        .await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["error"]["code"], -32020, "{refused}");
        assert_eq!(refused["id"], 7, "{refused}");
    }
    running.shutdown().await;
}
