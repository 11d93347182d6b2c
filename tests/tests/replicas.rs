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

/// `scripts/replicas.sh`: nginx (from `--print-nginx-config`) in front of three replicas of
/// `conformance-server` sharing a Redis, all on free loopback ports; stopped (SIGTERM, which
/// stops what it started) when dropped.
struct Rig {
    front: String,
    replicas: Vec<String>,
    _stop: Stop,
}

impl Rig {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/replicas.sh");
        let server = mcp_expose_tests::bin("conformance-server");
        let mut rig = tokio::process::Command::new("bash")
            .arg(script)
            .arg(server)
            .arg(port.to_string())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("scripts/replicas.sh runs");
        // SIGTERM (also on a failed assertion), so that it stops what it started.
        let stop = Stop(rig.id().expect("a pid"));
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
        Self {
            front: format!("http://127.0.0.1:{port}/mcp"),
            replicas,
            _stop: stop,
        }
    }

    /// POSTs `body` through nginx, in `session` (2025-11-25) when given (20 s).
    fn post(
        &self,
        client: &reqwest::Client,
        body: String,
        session: Option<&str>,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        let mut request = client
            .post(&self.front)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .timeout(Duration::from_secs(20))
            .body(body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        request.send()
    }

    /// How many `method` requests over HTTP each replica served.
    async fn served(&self, method: &str) -> Vec<f64> {
        let mut counts = Vec::new();
        for replica in &self.replicas {
            let metrics = reqwest::get(format!("http://{replica}/metrics"))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            counts.push(mcp_expose_tests::sample(
                &metrics,
                "mcp_requests_total",
                &["transport=\"http\"", &format!("method=\"{method}\"")],
            ));
        }
        counts
    }
}

/// Through nginx: 2026-07-28 requests are spread round-robin, and a task created through
/// nginx is followed through nginx wherever each request lands.
#[tokio::test]
async fn nginx_spreads_2026_requests_over_the_replicas_and_tasks_follow() {
    let rig = Rig::start().await;
    let front = rig.front.as_str();
    for _ in 0..6 {
        let listed = post(front, "tools/list", "", json!({})).await;
        assert!(listed["result"]["tools"].is_array(), "{listed}");
    }
    assert_eq!(rig.served("tools/list").await, [2.0, 2.0, 2.0]);
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

/// The events of an SSE text: each one's `id` and its JSON `data` (priming events, which
/// carry none, left out).
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|event| {
            let mut id = String::new();
            let mut data = None;
            for line in event.lines() {
                if let Some(rest) = line.strip_prefix("id:") {
                    id = rest.trim().to_owned();
                } else if let Some(rest) = line.strip_prefix("data:") {
                    data = serde_json::from_str(rest.trim()).ok();
                }
            }
            data.map(|data| (id, data))
        })
        .collect()
}

/// Reads `response`'s body into `text` until `done(text)`, for `limit` at most.
async fn read_until(
    response: &mut reqwest::Response,
    text: &mut String,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(text) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        match chunk {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => return,
            Ok(Err(e)) => panic!("the stream failed: {e}"),
            Err(_) => return,
        }
    }
}

/// A 2025-11-25 session through nginx round-robin, with no affinity: every request may land
/// on another replica. The session is served by all of them, the sampling request of a tool
/// is answered through another replica, the session's GET stream carries the log messages
/// of tools that ran on every replica (each once), and `Last-Event-ID` resumes a call's
/// stream wherever the GET lands.
#[tokio::test]
async fn a_2025_session_is_served_by_every_replica_behind_round_robin() {
    let rig = Rig::start().await;
    let client = reqwest::Client::new();
    let post = |body: String, session: Option<&str>| rig.post(&client, body, session);
    let init = post(
        mcp_expose_tests::initialize(1, json!({ "sampling": {} })),
        None,
    )
    .await
    .expect("initialize");
    assert!(init.status().is_success(), "{}", init.status());
    let session = mcp_expose_tests::session_id(&init);
    let session = session.as_str();
    response_messages(init).await;
    // The first requests, at once and with the `initialized` notification: each replica
    // restores the session once, and every request waits for it (before, a request that came
    // during the restore got 500).
    let (ack, a, b, c) = tokio::join!(
        post(mcp_expose_tests::initialized(), Some(session)),
        post(
            mcp_expose_tests::request(20, "tools/list", json!({})),
            Some(session)
        ),
        post(
            mcp_expose_tests::request(21, "tools/list", json!({})),
            Some(session)
        ),
        post(
            mcp_expose_tests::request(22, "tools/list", json!({})),
            Some(session)
        ),
    );
    for response in [ack, a, b, c] {
        let status = response.expect("an answer").status();
        assert!(status.is_success(), "{status}");
    }

    // The session's GET stream, open on whichever replica it landed.
    let mut stream = client
        .get(&rig.front)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("GET");
    assert!(stream.status().is_success(), "{}", stream.status());

    // Three calls that log, one per replica (round-robin).
    for id in 2..5 {
        let call = mcp_expose_tests::tool_call(id, "test_tool_with_logging", json!({}));
        let answer = response_messages(post(call, Some(session)).await.expect("call")).await;
        assert!(
            answer
                .last()
                .is_some_and(|m| m["result"]["isError"] == false),
            "{answer:?}"
        );
    }
    let calls = rig.served("tools/call").await;
    assert_eq!(calls.iter().filter(|c| **c > 0.0).count(), 3, "{calls:?}");
    let mut logs = String::new();
    let count = |text: &str| {
        sse_events(text)
            .iter()
            .filter(|(_, m)| m["method"] == "notifications/message")
            .count()
    };
    read_until(&mut stream, &mut logs, Duration::from_secs(10), |t| {
        count(t) >= 9
    })
    .await;
    // A duplicate would come with the others; give it a moment to show.
    read_until(&mut stream, &mut logs, Duration::from_millis(500), |_| {
        false
    })
    .await;
    assert_eq!(count(&logs), 9, "each log message once: {logs}");

    // A tool that samples: the client's answer lands on the next replica.
    let call = mcp_expose_tests::tool_call(5, "test_sampling", json!({ "prompt": "hi" }));
    let mut running = post(call, Some(session)).await.expect("call");
    let mut text = String::new();
    let asked = |t: &str| {
        sse_events(t)
            .iter()
            .any(|(_, m)| m["method"] == "sampling/createMessage")
    };
    read_until(&mut running, &mut text, Duration::from_secs(10), asked).await;
    let events = sse_events(&text);
    let (asked_at, request) = events
        .iter()
        .find(|(_, m)| m["method"] == "sampling/createMessage")
        .expect("a sampling request on the call's stream");
    let answer = json!({
        "jsonrpc": "2.0",
        "id": request["id"],
        "result": {
            "role": "assistant",
            "content": { "type": "text", "text": "hello back" },
            "model": "test",
        },
    });
    let handed = post(answer.to_string(), Some(session))
        .await
        .expect("answer");
    assert_eq!(handed.status(), reqwest::StatusCode::ACCEPTED);
    let result = |t: &str| sse_events(t).iter().any(|(_, m)| m["id"] == 5);
    read_until(&mut running, &mut text, Duration::from_secs(10), result).await;
    let events = sse_events(&text);
    let done = events
        .iter()
        .find(|(_, m)| m["id"] == 5)
        .expect("the result");
    assert_eq!(
        done.1["result"]["content"][0]["text"], "LLM response: hello back",
        "{text}"
    );

    // The call's stream again, after the sampling request, from any replica: the result,
    // once, and nothing before it.
    for _ in 0..3 {
        let resumed = client
            .get(&rig.front)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .header("last-event-id", asked_at)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("resume");
        assert!(resumed.status().is_success(), "{}", resumed.status());
        let replayed = sse_events(&resumed.text().await.expect("replay"));
        let ids: Vec<&Value> = replayed.iter().map(|(_, m)| &m["id"]).collect();
        assert_eq!(ids, [&json!(5)], "{replayed:?}");
    }

    // Ended through one replica, gone on all of them.
    let ended = client
        .delete(&rig.front)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("DELETE");
    assert!(ended.status().is_success(), "{}", ended.status());
    // The others hear of it over pub/sub: three requests in a row (one per replica) all 404
    // within 2 s.
    let deadline = Instant::now() + Duration::from_secs(2);
    'gone: loop {
        for id in 6..9 {
            let listed = post(
                mcp_expose_tests::request(id, "tools/list", json!({})),
                Some(session),
            )
            .await
            .expect("tools/list");
            if listed.status() != reqwest::StatusCode::NOT_FOUND {
                assert!(Instant::now() < deadline, "still {}", listed.status());
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue 'gone;
            }
        }
        break;
    }
}

/// With Redis gone, a session request is refused at once with 503, `Retry-After` and a
/// JSON-RPC error carrying its id, `/ready` says why, and both recover by themselves when
/// Redis is back.
#[tokio::test]
async fn without_redis_sessions_get_503_and_ready_says_why_until_it_is_back() {
    let mut redis = RedisServer::start().await;
    let a = replica(&redis).await;
    let client = reqwest::Client::new();
    let initialize = || {
        client
            .post(a.http())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .timeout(Duration::from_secs(10))
            .body(mcp_expose_tests::initialize(7, json!({})))
            .send()
    };
    let ready_url = a.http().replace("/mcp", "/ready");
    let ready = || {
        client
            .get(&ready_url)
            .timeout(Duration::from_secs(5))
            .send()
    };
    assert!(
        initialize()
            .await
            .expect("initialize")
            .status()
            .is_success()
    );

    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let response = initialize().await.expect("an answer within 10 s");
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        assert!(Instant::now() < deadline, "still {}", response.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "2");
    let body: Value = refused.json().await.expect("a JSON body");
    assert_eq!(body["id"], 7, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Redis"),
        "{body}"
    );
    let not_ready = ready().await.expect("/ready");
    assert_eq!(not_ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let why: Value = not_ready.json().await.expect("JSON");
    assert_eq!(why["components"]["state"]["ready"], false, "{why}");

    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = initialize().await.expect("initialize");
        if response.status().is_success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready().await.expect("/ready").status().is_success());
}

/// `--rate-limit` and `--max-auth-failures` hold across replicas sharing Redis: a client
/// spread over two replicas gets the budget it would get from one.
#[tokio::test]
async fn limits_hold_across_replicas() {
    let redis = RedisServer::start().await;
    let env = [
        ("MCP_EXPOSE_STATE", redis.url()),
        ("MCP_EXPOSE_TOKENS", "right-token".to_owned()),
    ];
    let args = [
        "--http",
        "0",
        "--rate-limit",
        "4",
        "--max-auth-failures",
        "3",
    ];
    let a = ServerProcess::start_with_env("conformance-server", &args, &env).await;
    let b = ServerProcess::start_with_env("conformance-server", &args, &env).await;
    let client = reqwest::Client::new();
    let send = |url: &str, token: &str| {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .body(mcp_expose_tests::initialize(1, json!({})))
            .send()
    };

    // Wrong tokens, alternating: the fourth is refused as over the budget of 3, and so is
    // the right token from that address, on either replica.
    for (n, url) in [a.http(), b.http(), a.http()].into_iter().enumerate() {
        let status = send(url, "wrong").await.expect("an answer").status();
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "guess {n}");
    }
    for url in [b.http(), a.http()] {
        let locked = send(url, "right-token").await.expect("an answer");
        assert_eq!(locked.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
        assert!(locked.headers().contains_key("retry-after"));
    }

    // A budget of 4 a second, 8 requests at once over two replicas without tokens (the
    // budget, by address, has refilled since): about 4 get through, not 8.
    let c = ServerProcess::start_with_env("conformance-server", &args, &env[..1]).await;
    let d = ServerProcess::start_with_env("conformance-server", &args, &env[..1]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sends = (0..8).map(|n| send(if n % 2 == 0 { c.http() } else { d.http() }, "none"));
    let statuses: Vec<_> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.expect("an answer").status())
        .collect();
    let through = statuses
        .iter()
        .filter(|s| **s != reqwest::StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!((4..=5).contains(&through), "{statuses:?}");
}

/// The pid of the `conformance-server` listening at `replica` (`127.0.0.1:PORT`).
fn replica_pid(replica: &str) -> u32 {
    let port = replica.rsplit(':').next().expect("a port");
    let found = std::process::Command::new("pgrep")
        .args(["-f", &format!("conformance-server --http {port}$")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .and_then(|pid| pid.trim().parse().ok())
        .expect("the replica's pid")
}

/// 32 sessions through nginx round-robin; one replica killed with SIGKILL between two rounds
/// of calls: every session goes on on the other two (restored there), every call of the
/// second round is answered once, with its own id and the right result.
#[tokio::test]
async fn a_replica_killed_leaves_every_session_working_on_the_others() {
    const SESSIONS: usize = 32;
    let rig = Rig::start().await;
    let client = reqwest::Client::new();
    let post = |body: String, session: Option<String>| rig.post(&client, body, session.as_deref());
    let opened = futures::future::join_all((0..SESSIONS).map(|_| async {
        let init = post(mcp_expose_tests::initialize(1, json!({})), None)
            .await
            .expect("initialize");
        let session = mcp_expose_tests::session_id(&init);
        response_messages(init).await;
        post(mcp_expose_tests::initialized(), Some(session.clone()))
            .await
            .expect("initialized");
        session
    }))
    .await;
    // One round of calls, one per session at a time; the answers by id.
    let round = |first: u64, calls: u64| {
        let opened = &opened;
        let post = &post;
        async move {
            futures::future::join_all(opened.iter().map(|session| async move {
                let mut answered = Vec::new();
                for id in first..first + calls {
                    let call = || mcp_expose_tests::tool_call(id, "test_simple_text", json!({}));
                    let mut response = post(call(), Some(session.clone())).await.expect("a call");
                    // nginx answers 502 for a request it had sent on a kept-alive connection
                    // to the replica that died (it does not resend a POST): sent again once.
                    if response.status() == reqwest::StatusCode::BAD_GATEWAY {
                        response = post(call(), Some(session.clone())).await.expect("a call");
                    }
                    assert!(response.status().is_success(), "{}", response.status());
                    for message in response_messages(response).await {
                        if message.get("id").is_some() {
                            answered.push(message);
                        }
                    }
                }
                answered
            }))
            .await
        }
    };
    let check = |answers: Vec<Vec<Value>>, first: u64, calls: u64| {
        for answered in answers {
            let ids: Vec<u64> = answered.iter().filter_map(|m| m["id"].as_u64()).collect();
            assert_eq!(
                ids,
                (first..first + calls).collect::<Vec<_>>(),
                "each once, in order"
            );
            for message in &answered {
                assert_eq!(
                    message["result"]["content"][0]["text"],
                    "This is a simple text response for testing.",
                    "{message}"
                );
            }
        }
    };
    check(round(10, 3).await, 10, 3);
    let served = rig.served("tools/call").await;
    assert!(
        served.iter().all(|n| *n > 0.0),
        "all three served: {served:?}"
    );

    mcp_expose_tests::kill("-KILL", replica_pid(&rig.replicas[0]));
    check(round(20, 5).await, 20, 5);
}

/// Redis stopped for 5 s under load (8 sessions calling in a loop): every request is answered,
/// 200 or 503 with `Retry-After`, none hangs; once Redis is back the calls succeed again
/// within 2 s.
#[tokio::test]
async fn redis_stopped_under_load_means_503s_then_recovery() {
    const WORKERS: usize = 8;
    let mut redis = RedisServer::start().await;
    let a = replica(&redis).await;
    let client = reqwest::Client::new();
    let url = a.http().to_owned();
    let mut sessions = Vec::new();
    for _ in 0..WORKERS {
        let init = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(mcp_expose_tests::initialize(1, json!({})))
            .send()
            .await
            .expect("initialize");
        sessions.push(mcp_expose_tests::session_id(&init));
        response_messages(init).await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                // (when, status, has Retry-After), at most 10,000 requests.
                let mut seen = Vec::new();
                for id in 0..10_000u64 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("accept", "application/json, text/event-stream")
                        .header("mcp-session-id", &session)
                        .header("mcp-protocol-version", "2025-11-25")
                        .timeout(Duration::from_secs(10))
                        .body(mcp_expose_tests::request(id, "tools/list", json!({})))
                        .send()
                        .await
                        .expect("an answer within 10 s, never a hang");
                    let retry = response.headers().contains_key("retry-after");
                    seen.push((Instant::now(), response.status(), retry));
                    let _ = response.bytes().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.stop();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.restart().await;
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = 0;
    for worker in workers {
        for (when, status, retry) in worker.await.expect("a worker") {
            match status {
                reqwest::StatusCode::OK => {}
                reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(retry, "503 without Retry-After");
                    assert!(when > stopped, "refused before Redis stopped");
                    assert!(
                        when < back + Duration::from_secs(2),
                        "still refused {:?} after Redis came back",
                        when - back
                    );
                    refused += 1;
                }
                other => panic!("{other} at {:?} after the stop", when - stopped),
            }
        }
    }
    assert!(refused > 0, "the outage was seen");
}
