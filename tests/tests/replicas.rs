//! Replicas sharing a real Redis (issue 18, `--state redis://..`): tasks created on one
//! replica seen, answered and cancelled through another; 2025 sessions and 2026-07-28
//! requests through nginx round-robin in front of three (`mcp_expose_tests::replicas::Rig`);
//! Redis gone (503 at once, back by itself); limits across replicas. Replicas that die:
//! `replica_death.rs`.

use std::time::{Duration, Instant};

use mcp_expose_tests::{
    RedisServer, ServerProcess,
    replicas::{Rig, read_until, sse_events},
    request, response_messages,
};
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
    let mut stream = rig.get(&client, session, None).await;

    // Three calls that log, one per replica (round-robin): each call's log messages come on
    // its own stream ahead of its answer, once, and not on the GET stream as well.
    let count = |messages: &[Value]| {
        messages
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count()
    };
    for id in 2..5 {
        let call = mcp_expose_tests::tool_call(id, "test_tool_with_logging", json!({}));
        let answer = response_messages(post(call, Some(session)).await.expect("call")).await;
        assert!(
            answer
                .last()
                .is_some_and(|m| m["result"]["isError"] == false),
            "{answer:?}"
        );
        assert_eq!(count(&answer), 3, "each log message once: {answer:?}");
    }
    let calls = rig.served("tools/call").await;
    assert_eq!(calls.iter().filter(|c| **c > 0.0).count(), 3, "{calls:?}");
    let mut logs = String::new();
    read_until(&mut stream, &mut logs, Duration::from_millis(500), |_| {
        false
    })
    .await;
    let on_get: Vec<Value> = sse_events(&logs).into_iter().map(|(_, m)| m).collect();
    assert_eq!(count(&on_get), 0, "no copy on the GET stream: {logs}");

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
        let resumed = rig.get(&client, session, Some(asked_at)).await;
        let replayed = sse_events(&resumed.text().await.expect("replay"));
        let ids: Vec<&Value> = replayed.iter().map(|(_, m)| &m["id"]).collect();
        assert_eq!(ids, [&json!(5)], "{replayed:?}");
    }

    // A call whose stream holds nothing but its answer (kept in Redis apart from streams of
    // several events): resumed from the stream's start on each replica, the answer, once.
    let call = mcp_expose_tests::tool_call(10, "test_simple_text", json!({}));
    let answered = post(call, Some(session))
        .await
        .expect("call")
        .text()
        .await
        .expect("text");
    let start = answered
        .lines()
        .find_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().to_owned())
        .expect("the stream's first event id");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut resumed = 0;
    while resumed < 3 {
        let replayed = rig
            .get(&client, session, Some(&start))
            .await
            .text()
            .await
            .expect("replay");
        let ids: Vec<Value> = sse_events(&replayed)
            .into_iter()
            .map(|(_, m)| m["id"].clone())
            .collect();
        // Written behind the answer: there within moments.
        if ids.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(ids, [json!(10)], "{replayed}");
        resumed += 1;
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
