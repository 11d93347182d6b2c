//! Replicas that fail (issue 18): one of three killed with SIGKILL behind nginx round-robin,
//! between calls and in the middle of streams; Redis stopped for 5 s under load.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mcp_expose_tests::{
    RedisServer, ServerProcess,
    replicas::{Rig, replica_pid, sse_events},
    response_messages,
};
use serde_json::{Value, json};

async fn replica(redis: &RedisServer) -> ServerProcess {
    let env = [("MCP_EXPOSE_STATE", redis.url())];
    ServerProcess::start_with_env("conformance-server", &["--http", "0"], &env).await
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

/// The text of an SSE response, read as it comes by a task of its own, until it ends or for
/// `limit` at most.
struct Collected {
    text: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Collected {
    fn start(mut response: reqwest::Response, limit: Duration) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let into = Arc::clone(&text);
        let reader = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            while let Ok(Ok(Some(chunk))) =
                tokio::time::timeout_at(deadline, response.chunk()).await
            {
                into.lock()
                    .expect("text")
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        });
        Self { text, reader }
    }

    fn events(&self) -> Vec<(String, Value)> {
        sse_events(&self.text.lock().expect("text"))
    }

    /// The events once the stream has ended (or `limit` passed).
    async fn ended(self, limit: Duration) -> Vec<(String, Value)> {
        let _ = tokio::time::timeout(limit, self.reader).await;
        sse_events(&self.text.lock().expect("text"))
    }
}

/// How many log messages `get` has brought.
fn logs(get: &Collected) -> usize {
    get.events()
        .iter()
        .filter(|(_, m)| m["method"] == "notifications/message")
        .count()
}

/// One session's streams while a replica dies: its GET stream, a call waiting for the
/// client's sampling answer and a call reporting progress.
struct Streams {
    session: String,
    get: Collected,
    sampling: Collected,
    progress: Collected,
}

/// Resumes the call `id`'s stream after `events` (through nginx, `Last-Event-ID` of the last
/// event seen), up to three times, until the call's answer comes or a resumption brings
/// nothing: all of the call's events, in order.
async fn resumed(
    rig: &Rig,
    client: &reqwest::Client,
    session: &str,
    id: u64,
    mut events: Vec<(String, Value)>,
) -> Vec<(String, Value)> {
    for _ in 0..3 {
        if events
            .iter()
            .any(|(_, m)| m["id"] == id && m.get("method").is_none())
        {
            break;
        }
        let last = events
            .last()
            .map(|(id, _)| id.clone())
            .expect("an event seen");
        let response = rig.get(client, session, Some(&last)).await;
        let more = Collected::start(response, Duration::from_secs(15))
            .ended(Duration::from_secs(20))
            .await;
        if more.is_empty() {
            break;
        }
        events.extend(more);
    }
    events
}

/// 32 sessions through nginx round-robin, each with its GET stream open, a call waiting for
/// the client's sampling answer and a call reporting progress, when one replica is killed
/// with SIGKILL. Every call on the other replicas is answered once, its progress complete
/// and in order; every call the dead replica ran ends, resumed on the others, with the
/// events it had sent and no answer (never twice, never a hang); every session goes on.
#[tokio::test]
async fn a_replica_killed_mid_stream_loses_and_repeats_nothing() {
    const SESSIONS: u64 = 32;
    const STEPS: u64 = 80;
    let rig = Rig::start().await;
    let client = reqwest::Client::new();
    let rig = &rig;
    let client = &client;
    // POSTs, sent again once on a 502 (nginx does not resend a POST it had sent to the
    // replica that died).
    let post = |body: String, session: Option<String>| async move {
        let response = rig
            .post(client, body.clone(), session.as_deref())
            .await
            .expect("a POST");
        if response.status() == reqwest::StatusCode::BAD_GATEWAY {
            return rig
                .post(client, body, session.as_deref())
                .await
                .expect("a POST");
        }
        response
    };
    let open = |n: u64| async move {
        let init = post(
            mcp_expose_tests::initialize(1, json!({ "sampling": {} })),
            None,
        )
        .await;
        let session = mcp_expose_tests::session_id(&init);
        response_messages(init).await;
        post(mcp_expose_tests::initialized(), Some(session.clone())).await;
        let get = rig.get(client, &session, None).await;
        let get = Collected::start(get, Duration::from_secs(90));
        let call =
            mcp_expose_tests::tool_call(2, "test_sampling", json!({ "prompt": n.to_string() }));
        let sampling = post(call, Some(session.clone())).await;
        assert!(sampling.status().is_success(), "{}", sampling.status());
        let sampling = Collected::start(sampling, Duration::from_secs(60));
        let call = json!({
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {
                "name": "slow_progress",
                "arguments": { "steps": STEPS, "every_ms": 100 },
                "_meta": { "progressToken": n },
            },
        });
        let progress = post(call.to_string(), Some(session.clone())).await;
        assert!(progress.status().is_success(), "{}", progress.status());
        let progress = Collected::start(progress, Duration::from_secs(60));
        Streams {
            session,
            get,
            sampling,
            progress,
        }
    };
    let sessions = futures::future::join_all((0..SESSIONS).map(open)).await;

    // Every sampling request asked and every progress call under way, none answered yet.
    let deadline = Instant::now() + Duration::from_secs(20);
    let asked = |s: &Streams| {
        s.sampling
            .events()
            .iter()
            .any(|(_, m)| m["method"] == "sampling/createMessage")
    };
    let counting = |s: &Streams| {
        s.progress
            .events()
            .iter()
            .any(|(_, m)| m["method"] == "notifications/progress")
    };
    while !sessions.iter().all(|s| asked(s) && counting(s)) {
        assert!(
            Instant::now() < deadline,
            "every stream under way within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sessions
            .iter()
            .all(|s| !s.progress.events().iter().any(|(_, m)| m["id"] == 3)),
        "a progress call ended before the kill: the test needs them all in flight"
    );
    // The calls the replica to die runs (it counts them as they start).
    let doomed = rig.served("tools/call").await[0];
    assert!(
        doomed > 0.0,
        "round-robin gave the replica to die some calls"
    );
    mcp_expose_tests::kill("-KILL", replica_pid(&rig.replicas[0]));

    // The client answers every sampling request, through whichever replica nginx picks.
    for streams in &sessions {
        let events = streams.sampling.events();
        let (_, request) = events
            .iter()
            .find(|(_, m)| m["method"] == "sampling/createMessage")
            .expect("asked");
        let answer = json!({
            "jsonrpc": "2.0", "id": request["id"],
            "result": { "role": "assistant", "content": { "type": "text", "text": "ok" }, "model": "test" },
        });
        let handed = post(answer.to_string(), Some(streams.session.clone())).await;
        assert_eq!(handed.status(), reqwest::StatusCode::ACCEPTED);
    }

    // Each session checked at once (a call of the dead replica takes a few seconds to end).
    let check = |streams: Streams| async move {
        let Streams {
            session,
            get,
            sampling,
            progress,
        } = streams;
        let mut unanswered = 0.0;
        // The sampling call: answered once with the client's answer, or (its replica dead)
        // ended without an answer.
        let events = sampling.ended(Duration::from_secs(30)).await;
        let events = resumed(rig, client, &session, 2, events).await;
        let answers: Vec<_> = events
            .iter()
            .filter(|(_, m)| m["id"] == 2 && m.get("method").is_none())
            .collect();
        match answers.as_slice() {
            [] => unanswered += 1.0,
            [(_, answer)] => assert_eq!(
                answer["result"]["content"][0]["text"], "LLM response: ok",
                "{answer}"
            ),
            more => panic!("answered {} times: {more:?}", more.len()),
        }
        // The progress call: progress 1, 2, .. with no gap and nothing twice, then its answer
        // once; or (its replica dead) the progress it had sent, resumed, and no answer.
        let events = progress.ended(Duration::from_secs(30)).await;
        let events = resumed(rig, client, &session, 3, events).await;
        let ids: Vec<&String> = events.iter().map(|(id, _)| id).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "an event twice: {ids:?}");
        let steps: Vec<u64> = events
            .iter()
            .filter(|(_, m)| m["method"] == "notifications/progress")
            .filter_map(|(_, m)| m["params"]["progress"].as_f64())
            .map(|p| p as u64)
            .collect();
        assert_eq!(
            steps,
            (1..=steps.len() as u64).collect::<Vec<_>>(),
            "progress in order, no gap, nothing twice"
        );
        let answers: Vec<_> = events.iter().filter(|(_, m)| m["id"] == 3).collect();
        match answers.as_slice() {
            [] => unanswered += 1.0,
            [(_, answer)] => {
                assert_eq!(steps.len() as u64, STEPS, "every step before the answer");
                assert_eq!(
                    answer["result"]["content"][0]["text"],
                    format!("counted to {STEPS}"),
                    "{answer}"
                );
            }
            more => panic!("answered {} times: {more:?}", more.len()),
        }
        // The session goes on: a call that logs is answered, its log messages ahead of the
        // answer on the call's own stream, each once, and none of them on the session's GET
        // stream (opened again if its replica died).
        let get = if get.reader.is_finished() {
            let get = rig.get(client, &session, None).await;
            Collected::start(get, Duration::from_secs(10))
        } else {
            get
        };
        let before = logs(&get);
        let call = mcp_expose_tests::tool_call(4, "test_tool_with_logging", json!({}));
        let answer = response_messages(post(call, Some(session.clone())).await).await;
        let (last, ahead) = answer.split_last().expect("an answer");
        assert!(
            last["id"] == 4 && last["result"]["isError"] == false,
            "{answer:?}"
        );
        let logged = ahead
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count();
        assert_eq!(
            logged, 3,
            "each log message once, before the answer: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            logs(&get),
            before,
            "no log message on the GET stream as well"
        );
        get.reader.abort();
        unanswered
    };
    let unanswered: f64 = futures::future::join_all(sessions.into_iter().map(check))
        .await
        .into_iter()
        .sum();
    // Lost: a call of a live replica unanswered. The dead replica's calls, and only those,
    // end without an answer.
    assert_eq!(
        unanswered, doomed,
        "unanswered calls = the calls the dead replica ran"
    );
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
