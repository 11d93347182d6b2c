//! The library API in-process: `Server::start()` on port 0, tools that use `Context`
//! (sampling, progress, logging, headers), panics, and graceful shutdown — over real sockets.
#![allow(deprecated)] // sampling is deprecated by the 2026-07-28 revision; 2025 clients still use it

use std::time::Duration;

use mcp_expose::{Context, LogLevel, Running, Server, ToolError, model, tool};
use mcp_expose_tests::{Socket, initialize, initialized, next_json, request, send};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::client::IntoClientRequest as _};

/// Asks the client's model a question (sampling) and returns its answer.
#[tool]
async fn ask_model(question: String, ctx: Context) -> Result<String, ToolError> {
    let message = model::SamplingMessage::user_text(question);
    #[allow(deprecated)]
    let params = model::CreateMessageRequestParams::new(vec![message], 50);
    let reply = ctx.sample(params).await?;
    let text = reply
        .message
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone());
    Ok(format!("model said: {}", text.unwrap_or_default()))
}

/// Counts to `n`, reporting progress and logging.
#[tool]
async fn count(n: u32, ctx: &Context) -> u32 {
    ctx.info("counting").await;
    for i in 1..=n {
        ctx.progress(f64::from(i), Some(f64::from(n)), Some("step"))
            .await;
    }
    ctx.log(
        LogLevel::Debug,
        json!({ "hidden": "below the default level" }),
    )
    .await;
    n
}

/// Returns the value of the X-Test request header.
#[tool]
fn echo_header(ctx: Context) -> String {
    ctx.headers()
        .and_then(|h| h.get("x-test"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned()
}

/// Says where the call comes from.
#[tool]
fn where_from(ctx: Context) -> String {
    ctx.client_addr()
        .map_or_else(|| "<none>".to_owned(), |addr| addr.to_string())
}

/// Always panics.
#[tool]
fn explode() -> String {
    panic!("boom")
}

/// Sleeps, then answers.
#[tool]
async fn slow(millis: u64) -> String {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    format!("slept {millis} ms")
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A counter that `bump` increments.
#[mcp_expose::resource(uri = "counter://value", mime_type = "text/plain")]
fn counter() -> String {
    COUNTER
        .load(std::sync::atomic::Ordering::Relaxed)
        .to_string()
}

/// Increments the counter and tells subscribers.
#[tool]
async fn bump(ctx: Context) -> u64 {
    let value = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    ctx.notify_resource_updated("counter://value").await;
    value
}

async fn start() -> Running {
    Server::new("context-tests", "1.2.3")
        .http(0)
        .ws(0)
        .start()
        .await
        .expect("start")
}

async fn connect(running: &Running, header: Option<&str>) -> Socket {
    let addr = running.ws_addr().expect("ws address");
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    if let Some(value) = header {
        request
            .headers_mut()
            .insert("x-test", value.parse().expect("header"));
    }
    connect_async(request).await.expect("handshake").0
}

async fn open(running: &Running, capabilities: Value) -> Socket {
    let mut socket = connect(running, Some("hello")).await;
    send(&mut socket, initialize(0, capabilities)).await;
    let init = next_json(&mut socket).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "context-tests");
    assert_eq!(init["result"]["serverInfo"]["version"], "1.2.3");
    send(&mut socket, initialized()).await;
    socket
}

fn call(id: u64, name: &str, arguments: Value) -> String {
    request(
        id,
        "tools/call",
        json!({ "name": name, "arguments": arguments, "_meta": { "progressToken": id } }),
    )
}

#[tokio::test]
async fn sampling_round_trip_over_websocket() {
    let running = start().await;
    let mut socket = open(&running, json!({ "sampling": {} })).await;
    send(
        &mut socket,
        call(1, "ask_model", json!({ "question": "2+2?" })),
    )
    .await;
    let sampling = next_json(&mut socket).await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");
    assert_eq!(sampling["params"]["messages"][0]["content"]["text"], "2+2?");
    let reply = json!({
        "jsonrpc": "2.0",
        "id": sampling["id"],
        "result": { "role": "assistant", "content": { "type": "text", "text": "4" }, "model": "test-model" },
    });
    send(&mut socket, reply.to_string()).await;
    let result = next_json(&mut socket).await;
    assert_eq!(result["id"], 1);
    assert_eq!(result["result"]["content"][0]["text"], "model said: 4");
    running.shutdown().await;
}

/// `count(3)` called with progress token 7: its progress and its one log entry, then its
/// result, in that order and nothing else.
fn assert_counted(messages: &[Value], over: &str) {
    let mut progress = Vec::new();
    let mut logs = Vec::new();
    let (result, before) = messages.split_last().expect("messages");
    for message in before {
        match message["method"].as_str() {
            Some("notifications/progress") => progress.push(message["params"].clone()),
            Some("notifications/message") => logs.push(message["params"].clone()),
            _ => panic!("{over}: {message} before the result"),
        }
    }
    assert_eq!(
        result["result"]["structuredContent"]["result"], 3,
        "{over}: {result}"
    );
    assert_eq!(
        logs,
        [json!({ "level": "info", "data": "counting" })],
        "{over}"
    );
    let steps: Vec<_> = progress
        .iter()
        .map(|p| {
            (
                p["progressToken"].clone(),
                p["progress"].clone(),
                p["total"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (json!(7), json!(1.0), json!(3.0)),
            (json!(7), json!(2.0), json!(3.0)),
            (json!(7), json!(3.0), json!(3.0))
        ],
        "{over}"
    );
}

#[tokio::test]
async fn progress_and_log_notifications_precede_the_result() {
    let running = start().await;
    let mut socket = open(&running, json!({})).await;
    send(&mut socket, call(7, "count", json!({ "n": 3 }))).await;
    let mut messages = Vec::new();
    loop {
        let message = next_json(&mut socket).await;
        let last = message.get("method").is_none();
        messages.push(message);
        if last {
            break;
        }
    }
    assert_counted(&messages, "WebSocket");

    // Over streamable HTTP, on the call's own stream: a client that opens no GET stream gets
    // them too, and never after the result.
    let url = format!("http://{}/mcp", running.http_addr().expect("http"));
    let post = |body: String, session: Option<&str>| {
        let request = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        match session {
            Some(session) => request.header("mcp-session-id", session),
            None => request,
        }
    };
    let opened = post(initialize(0, json!({})), None)
        .send()
        .await
        .expect("initialize");
    let session = mcp_expose_tests::session_id(&opened);
    let _ = opened.text().await;
    let sent = post(initialized(), Some(&session)).send().await;
    assert_eq!(sent.expect("initialized").status(), 202);
    let called = post(call(7, "count", json!({ "n": 3 })), Some(&session))
        .send()
        .await
        .expect("tools/call");
    let messages = mcp_expose_tests::response_messages(called).await;
    assert_counted(&messages, "streamable HTTP");
    running.shutdown().await;
}

#[tokio::test]
async fn headers_reach_the_tool_and_a_panic_is_an_error_result() {
    let running = start().await;
    let mut socket = open(&running, json!({})).await;
    send(&mut socket, call(1, "echo_header", json!({}))).await;
    assert_eq!(
        next_json(&mut socket).await["result"]["content"][0]["text"],
        "hello"
    );
    send(&mut socket, call(2, "explode", json!({}))).await;
    let result = next_json(&mut socket).await;
    assert_eq!(result["result"]["isError"], true);
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("boom")),
        "{result}"
    );
    send(&mut socket, call(3, "echo_header", json!({}))).await;
    assert_eq!(
        next_json(&mut socket).await["result"]["content"][0]["text"],
        "hello"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls_and_refuses_new_ones() {
    let running = start().await;
    let ready = format!(
        "http://{}/ready",
        running.http_addr().expect("http address")
    );
    assert_eq!(reqwest::get(&ready).await.expect("ready").status(), 200);
    let mut socket = open(&running, json!({})).await;
    send(&mut socket, call(1, "slow", json!({ "millis": 600 }))).await;
    // Give the call time to start, then shut down while it runs.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutdown = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut socket, call(2, "slow", json!({ "millis": 1 }))).await;
    let refused = next_json(&mut socket).await;
    assert_eq!(refused["id"], 2, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("shutting down")),
        "{refused}"
    );
    // Over HTTP, new requests and readiness get 503 with a JSON body while the call drains.
    let mcp = ready.replace("/ready", "/mcp");
    let response = reqwest::Client::new()
        .post(&mcp)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize(9, json!({})))
        .send()
        .await
        .expect("post while draining");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("a JSON body");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(reqwest::get(&ready).await.expect("ready").status(), 503);
    let result = next_json(&mut socket).await;
    assert_eq!(
        result["result"]["content"][0]["text"], "slept 600 ms",
        "the in-flight call finished"
    );
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes")
        .expect("join");
}

/// `resources/subscribe` to `counter://value`, answered.
async fn subscribe_to_the_counter(socket: &mut Socket) {
    send(
        socket,
        request(
            1,
            "resources/subscribe",
            json!({ "uri": "counter://value" }),
        ),
    )
    .await;
    assert_eq!(next_json(socket).await["result"], json!({}));
}

#[tokio::test]
async fn subscribers_and_only_subscribers_hear_of_resource_updates() {
    let running = start().await;
    let mut subscriber = open(&running, json!({})).await;
    let mut other = open(&running, json!({})).await;
    subscribe_to_the_counter(&mut subscriber).await;
    send(&mut other, call(1, "bump", json!({}))).await;
    let bumped = next_json(&mut other).await;
    assert_eq!(
        bumped["id"], 1,
        "the caller is not subscribed and gets only its answer: {bumped}"
    );
    let update = next_json(&mut subscriber).await;
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], "counter://value");
    send(
        &mut subscriber,
        request(
            2,
            "resources/unsubscribe",
            json!({ "uri": "counter://value" }),
        ),
    )
    .await;
    assert_eq!(next_json(&mut subscriber).await["id"], 2);
    running.notify_resource_updated("counter://value").await;
    send(&mut subscriber, request(3, "ping", json!({}))).await;
    assert_eq!(
        next_json(&mut subscriber).await["id"],
        3,
        "no update after unsubscribing"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn limits_refuse_excess_calls_and_time_out_slow_ones() {
    let running = Server::new("context-tests", "1.2.3")
        .ws(0)
        .max_inflight(2, 100)
        .tool_timeout(Duration::from_secs(1))
        .start()
        .await
        .expect("start");
    let mut socket = open(&running, json!({})).await;
    for id in 1..=3 {
        send(&mut socket, call(id, "slow", json!({ "millis": 5000 }))).await;
    }
    // The third call is over the per-session limit: refused at once, not queued.
    let refused = next_json(&mut socket).await;
    assert_eq!(refused["id"], 3, "{refused}");
    assert_eq!(refused["error"]["code"], -32000);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit 2")),
        "{refused}"
    );
    // The two admitted calls are cancelled by the 1 s tool timeout.
    for _ in 0..2 {
        let timed_out = next_json(&mut socket).await;
        assert_eq!(timed_out["result"]["isError"], true, "{timed_out}");
        assert!(
            timed_out["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("timed out"))
        );
    }
    send(&mut socket, call(4, "slow", json!({ "millis": 1 }))).await;
    assert_eq!(
        next_json(&mut socket).await["result"]["content"][0]["text"],
        "slept 1 ms"
    );
    running.shutdown().await;
}

static GUARDS_DROPPED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        GUARDS_DROPPED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits a long time holding a guard whose drop is counted.
#[tool]
async fn long_wait() -> String {
    let _guard = Guard;
    tokio::time::sleep(Duration::from_secs(60)).await;
    "finished".to_owned()
}

async fn dropped_reaches(count: u32) -> bool {
    for _ in 0..100 {
        if GUARDS_DROPPED.load(std::sync::atomic::Ordering::SeqCst) >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn cancellation_and_disconnect_stop_the_tool() {
    let running = start().await;
    let before = GUARDS_DROPPED.load(std::sync::atomic::Ordering::SeqCst);
    let mut socket = open(&running, json!({})).await;
    send(&mut socket, call(1, "long_wait", json!({}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 1 } });
    send(&mut socket, cancel.to_string()).await;
    assert!(
        dropped_reaches(before + 1).await,
        "notifications/cancelled stops the tool"
    );

    send(&mut socket, call(2, "long_wait", json!({}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(socket);
    assert!(
        dropped_reaches(before + 2).await,
        "a client that disconnects mid-call cancels its tool"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn tools_see_the_client_address_a_trusted_proxy_names() {
    let mut options = mcp_expose::serve::Options::default();
    options.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    // A proxy in front counts as exposed (a token required); this test is about addresses.
    options.auth.no_auth = true;
    let running = Server::new("context-tests", "1.2.3")
        .options(options)
        .http(0)
        .ws(0)
        .start()
        .await
        .expect("start");
    let ws = |from: Option<&str>| {
        let mut request = format!("ws://{}/ws", running.ws_addr().expect("ws"))
            .into_client_request()
            .expect("request");
        if let Some(from) = from {
            request
                .headers_mut()
                .insert("cf-connecting-ip", from.parse().expect("header"));
        }
        async move {
            let mut socket = connect_async(request).await.expect("handshake").0;
            send(&mut socket, initialize(0, json!({}))).await;
            next_json(&mut socket).await;
            send(&mut socket, initialized()).await;
            send(&mut socket, call(1, "where_from", json!({}))).await;
            next_json(&mut socket).await["result"]["content"][0]["text"].clone()
        }
    };
    // WebSocket: the upgrade's client, for the whole session.
    assert_eq!(ws(None).await, "127.0.0.1");
    assert_eq!(ws(Some("2001:db8::7")).await, "2001:db8::7");
    // Streamable HTTP: this request's client.
    let http = format!("http://{}/mcp", running.http_addr().expect("http"));
    let post = |body: String, from: &str, session: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(&http)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("x-forwarded-for", format!("192.0.2.1, {from}"))
            .body(body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let init = post(initialize(1, json!({})), "198.51.100.2", None)
        .await
        .expect("initialize");
    let session = mcp_expose_tests::session_id(&init);
    post(initialized(), "198.51.100.2", Some(&session))
        .await
        .expect("initialized");
    let answer = post(
        call(2, "where_from", json!({})),
        "203.0.113.9",
        Some(&session),
    )
    .await
    .expect("tools/call");
    let messages = mcp_expose_tests::response_messages(answer).await;
    assert_eq!(
        messages[0]["result"]["content"][0]["text"], "203.0.113.9",
        "{messages:?}"
    );
    running.shutdown().await;
}

/// With replicas on one Redis: an update announced on one replica reaches a session that
/// subscribed on another (where its subscription lives), and only once.
#[tokio::test]
async fn updates_reach_subscribers_held_by_another_replica() {
    let redis = mcp_expose_tests::RedisServer::start().await;
    let replica = async || {
        Server::new("context-tests", "1.2.3")
            .state(redis.url())
            .http(0)
            .ws(0)
            .start()
            .await
            .expect("start a replica")
    };
    let (a, b) = (replica().await, replica().await);
    let mut subscriber = open(&a, json!({})).await;
    subscribe_to_the_counter(&mut subscriber).await;
    let mut caller = open(&b, json!({})).await;
    // A replica hears the others once its subscription to Redis is up: a few tries at most.
    let mut update = None;
    for id in 1..=5 {
        send(&mut caller, call(id, "bump", json!({}))).await;
        assert_eq!(next_json(&mut caller).await["id"], id);
        let heard = tokio::time::timeout(Duration::from_secs(2), next_json(&mut subscriber));
        if let Ok(message) = heard.await {
            update = Some(message);
            break;
        }
    }
    let update = update.expect("an update from the other replica within 5 tries");
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], "counter://value");
    // Once: nothing else follows it.
    let more = tokio::time::timeout(Duration::from_millis(500), next_json(&mut subscriber)).await;
    assert!(more.is_err(), "a second copy: {more:?}");
    a.shutdown().await;
    b.shutdown().await;
}
