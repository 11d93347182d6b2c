//! Tasks on replicas (issue 18, the task store): two `conformance-server` processes sharing a
//! real Redis (`--state redis://..`). A task created on one is seen, answered and cancelled
//! through the other, and its tool, which runs where it started, hears of it. With Redis
//! gone, task requests fail at once with an error that says so, and work again when it is
//! back.

use std::time::{Duration, Instant};

use mcp_expose_tests::{RedisServer, ServerProcess, request, response_messages};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";

async fn replica(redis: &RedisServer) -> ServerProcess {
    let env = [("MCP_EXPOSE_STATE", redis.url())];
    ServerProcess::start_with_env("conformance-server", &["--http", "0"], &env).await
}

/// POSTs one 2026-07-28 request with the tasks extension declared; its one answer (10 s).
async fn post(server: &ServerProcess, method: &str, name: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {
            "elicitation": {},
            "extensions": { "io.modelcontextprotocol/tasks": {} },
        },
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

async fn task_get(server: &ServerProcess, task: &str) -> Value {
    post(server, "tasks/get", task, json!({ "taskId": task })).await
}

/// `tasks/get` on `server` until the status is `status` (10 s at most).
async fn until(server: &ServerProcess, task: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = task_get(server, task).await;
        if got["result"]["status"] == status {
            return got["result"].clone();
        }
        assert!(Instant::now() < deadline, "not {status}: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn task_of(created: &Value) -> String {
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    created["result"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned()
}

#[tokio::test]
async fn a_task_is_followed_answered_and_cancelled_through_another_replica() {
    let redis = RedisServer::start().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);

    // Answered through B, while its tool runs on A.
    let args = json!({ "name": "confirm_delete", "arguments": { "filename": "x.txt" } });
    let task = task_of(&post(&a, "tools/call", "confirm_delete", args).await);
    let asked = until(&b, &task, "input_required").await;
    let key = asked["inputRequests"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .expect("a request");
    let answer = json!({ "action": "accept", "content": { "confirm": true } });
    let update = json!({ "taskId": task, "inputResponses": { key: answer } });
    let ack = post(&b, "tasks/update", &task, update).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let done = until(&a, &task, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"], "deleted x.txt",
        "{done}"
    );

    // Cancelled through B: A's tool stops, and both say so.
    let args = json!({ "name": "slow_compute", "arguments": { "seconds": 60 } });
    let task = task_of(&post(&a, "tools/call", "slow_compute", args).await);
    assert_eq!(task_get(&b, &task).await["result"]["status"], "working");
    let ack = post(&b, "tasks/cancel", &task, json!({ "taskId": task })).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    until(&a, &task, "cancelled").await;
}

#[tokio::test]
async fn without_redis_task_requests_fail_at_once_and_recover_when_it_is_back() {
    let mut redis = RedisServer::start().await;
    let a = replica(&redis).await;
    redis.stop();
    let started = Instant::now();
    let args = json!({ "name": "slow_compute", "arguments": { "seconds": 1 } });
    let refused = post(&a, "tools/call", "slow_compute", args.clone()).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let text = refused.to_string();
    assert!(
        text.contains("Redis"),
        "the error says what failed: {refused}"
    );
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let created = post(&a, "tools/call", "slow_compute", args.clone()).await;
        if created["result"]["resultType"] == "task" {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {created}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
