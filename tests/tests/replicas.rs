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
async fn post(url: &str, method: &str, name: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {
            "elicitation": {},
            "extensions": { "io.modelcontextprotocol/tasks": {} },
        },
    });
    let response = reqwest::Client::new()
        .post(url)
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

async fn task_get(url: &str, task: &str) -> Value {
    post(url, "tasks/get", task, json!({ "taskId": task })).await
}

/// `tasks/get` on `server` until the status is `status` (10 s at most).
async fn until(url: &str, task: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = task_get(url, task).await;
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
    let task = task_of(&post(a.http(), "tools/call", "confirm_delete", args).await);
    let asked = until(b.http(), &task, "input_required").await;
    let key = asked["inputRequests"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .expect("a request");
    let answer = json!({ "action": "accept", "content": { "confirm": true } });
    let update = json!({ "taskId": task, "inputResponses": { key: answer } });
    let ack = post(b.http(), "tasks/update", &task, update).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let done = until(a.http(), &task, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"], "deleted x.txt",
        "{done}"
    );

    // Cancelled through B: A's tool stops, and both say so.
    let args = json!({ "name": "slow_compute", "arguments": { "seconds": 60 } });
    let task = task_of(&post(a.http(), "tools/call", "slow_compute", args).await);
    assert_eq!(
        task_get(b.http(), &task).await["result"]["status"],
        "working"
    );
    let ack = post(b.http(), "tasks/cancel", &task, json!({ "taskId": task })).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    until(a.http(), &task, "cancelled").await;
}

#[tokio::test]
async fn without_redis_task_requests_fail_at_once_and_recover_when_it_is_back() {
    let mut redis = RedisServer::start().await;
    let a = replica(&redis).await;
    redis.stop();
    let started = Instant::now();
    let args = json!({ "name": "slow_compute", "arguments": { "seconds": 1 } });
    let refused = post(a.http(), "tools/call", "slow_compute", args.clone()).await;
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
        let created = post(a.http(), "tools/call", "slow_compute", args.clone()).await;
        if created["result"]["resultType"] == "task" {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {created}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `scripts/replicas.sh`: nginx (from `--print-nginx-config`) in front of three replicas
/// sharing Redis. 2026-07-28 requests are spread round-robin, and a task created through
/// nginx is followed through nginx wherever each request lands.
#[tokio::test]
async fn nginx_spreads_2026_requests_over_the_replicas_and_tasks_follow() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/replicas.sh");
    let server = mcp_expose_tests::bin("conformance-server");
    let mut rig = tokio::process::Command::new("bash")
        .arg(script)
        .arg(server)
        .arg(port.to_string())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("scripts/replicas.sh runs");
    // SIGTERM (also on a failed assertion), so that it stops what it started.
    let _stop = Stop(rig.id().expect("a pid"));
    // Its line naming the replicas, within 60 s.
    let stderr = rig.stderr.take().expect("stderr");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("in front of") {
                return line;
            }
        }
        panic!("scripts/replicas.sh ended without starting");
    })
    .await
    .expect("the rig within 60 s");
    let replicas: Vec<String> = line
        .split("in front of ")
        .nth(1)
        .and_then(|rest| rest.split(", Redis").next())
        .expect("replicas")
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(replicas.len(), 3, "{line}");
    let front = format!("http://127.0.0.1:{port}/mcp");
    let front = front.as_str();
    for _ in 0..6 {
        let listed = post(front, "tools/list", "", json!({})).await;
        assert!(listed["result"]["tools"].is_array(), "{listed}");
    }
    for replica in &replicas {
        let metrics = reqwest::get(format!("http://{replica}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let count = mcp_expose_tests::sample(
            &metrics,
            "mcp_requests_total",
            &["transport=\"http\"", "method=\"tools/list\""],
        );
        assert_eq!(count, 2.0, "{replica} served {count} of 6");
    }
    // A task through nginx: created on one replica, answered and finished through others.
    let args = json!({ "name": "confirm_delete", "arguments": { "filename": "y.txt" } });
    let task = task_of(&post(front, "tools/call", "confirm_delete", args).await);
    let asked = until(front, &task, "input_required").await;
    let key = asked["inputRequests"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .expect("a request");
    let answer = json!({ "action": "accept", "content": { "confirm": true } });
    let update = json!({ "taskId": task, "inputResponses": { key: answer } });
    post(front, "tasks/update", &task, update).await;
    let done = until(front, &task, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"], "deleted y.txt",
        "{done}"
    );
}

/// Sends SIGTERM to the rig when dropped.
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        mcp_expose_tests::kill("-TERM", self.0);
    }
}
