//! Hostile peers of `mcp-expose bridge --child shared` (issue 15, items 1-3 and 7): one
//! session must not reach into another's calls, notifications or requests, nor stall the rest;
//! a child that spells ids another legal way must still answer its callers.

use std::time::{Duration, Instant};

use mcp_expose_tests::{
    ServerProcess, Socket, initialize, initialized, next_json as next, python_server, request,
    response_messages, send, session_id, tool_call as call,
};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

async fn shared_bridge(child: &str) -> ServerProcess {
    let child = python_server(child);
    let args = [
        "bridge", "--child", "shared", "--http", "0", "--ws", "0", "--", "python3", &child,
    ];
    ServerProcess::start("mcp-expose", &args).await
}

/// A WebSocket session, initialized with `capabilities`.
async fn ws(server: &ServerProcess, capabilities: Value) -> Socket {
    let (mut socket, _) = connect_async(server.ws()).await.expect("handshake");
    send(&mut socket, initialize(0, capabilities)).await;
    let init = next(&mut socket).await;
    assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");
    send(&mut socket, initialized()).await;
    socket
}

/// The text of a tool call's answer, or its error, for messages.
fn text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .map_or_else(|| answer.to_string(), str::to_owned)
}

/// A streamable HTTP POST of `body` to the bridge, in `session` when there is one.
fn post(
    server: &ServerProcess,
    body: String,
    session: Option<&str>,
) -> impl Future<Output = reqwest::Response> + use<> {
    let mut request = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .timeout(Duration::from_secs(20));
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let sent = request.body(body).send();
    async move { sent.await.expect("a response") }
}

/// An initialized streamable HTTP session.
async fn http_session(server: &ServerProcess) -> String {
    let response = post(server, initialize(0, json!({})), None).await;
    let session = session_id(&response);
    let init = response_messages(response).await;
    assert!(init[0]["result"]["serverInfo"].is_object(), "{init:?}");
    post(server, initialized(), Some(&session)).await;
    session
}

/// A tool call over HTTP: its answer (the last message of the response).
async fn http_call(server: &ServerProcess, session: &str, body: String) -> Value {
    let messages = response_messages(post(server, body, Some(session)).await).await;
    messages.last().cloned().expect("an answer")
}

/// The next response (a notification before it is skipped).
async fn answer_of(socket: &mut Socket) -> Value {
    loop {
        let frame = next(socket).await;
        if frame.get("method").is_none() {
            return frame;
        }
    }
}

/// The next frame within `limit`, or `None` when none came.
async fn frame_within(socket: &mut Socket, limit: Duration) -> Option<Value> {
    tokio::time::timeout(limit, next(socket)).await.ok()
}

/// Item 1: a frame with raw newlines between its tokens, carrying requests with ids in the
/// form the bridge used for its own (`"mx1"`, ...), must reach the child as one message, so the
/// child never answers them as if they were other sessions' calls.
#[tokio::test]
async fn smuggled_lines_never_answer_another_sessions_call() {
    let server = shared_bridge("shared_child.py").await;
    let mut victim = ws(&server, json!({})).await;
    let http_victim = http_session(&server).await;
    let mut attacker = ws(&server, json!({})).await;
    let attacker_http = http_session(&server).await;
    send(&mut victim, call(1, "slow", json!({ "seconds": 3 }))).await;
    let victim_http = {
        let body = call(5, "slow", json!({ "seconds": 3 }));
        let request = post(&server, body, Some(&http_victim));
        tokio::spawn(async move { response_messages(request.await).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let smuggled: Vec<String> = (1..40)
        .flat_map(|n| [format!("mx{n}"), format!("mxinit{n}")])
        .map(|id| {
            let call = call(0, "echo", json!({ "text": "PWNED" }));
            call.replace(r#""id":0"#, &format!(r#""id":"{id}""#))
        })
        .collect();
    let frame = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":{{\"a\":[\n{}\n]}}}}",
        smuggled.join("\n,\n")
    );
    serde_json::from_str::<Value>(&frame).expect("the smuggling frame is valid JSON");
    send(&mut attacker, frame.clone()).await;
    let accepted = post(&server, frame, Some(&attacker_http)).await;
    assert_eq!(accepted.status(), 202);
    let answer = answer_of(&mut victim).await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(
        text(&answer),
        "slept 3.0",
        "the WebSocket victim's call was answered by another"
    );
    let answers = tokio::time::timeout(Duration::from_secs(20), victim_http)
        .await
        .expect("the HTTP victim's answer within 20 s")
        .expect("the HTTP victim's task");
    let answer = answers.last().expect("an answer");
    assert_eq!(
        text(answer),
        "slept 3.0",
        "the HTTP victim's call was answered by another"
    );
    // Nothing came back to the attacker either: no request of its was forwarded.
    if let Some(frame) = frame_within(&mut attacker, Duration::from_millis(500)).await {
        assert!(!frame.to_string().contains("PWNED"), "{frame}");
    }
    // A raw newline inside a string is no JSON: refused, not mended and forwarded.
    let broken = call(3, "echo", json!({ "text": "a\nb" })).replace("\\n", "\n");
    send(&mut attacker, broken).await;
    let refused = answer_of(&mut attacker).await;
    assert_eq!(refused["error"]["code"], -32700, "{refused}");
}

/// Item 2: a child's log line during A's call goes to A, not to B (WebSocket) nor to C (an
/// HTTP session listening on its GET stream).
#[tokio::test]
async fn a_log_during_one_sessions_call_reaches_no_other_session() {
    let server = shared_bridge("shared_child.py").await;
    let mut a = ws(&server, json!({})).await;
    let mut b = ws(&server, json!({})).await;
    let c = http_session(&server).await;
    let mut stream = reqwest::Client::new()
        .get(server.http())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &c)
        .send()
        .await
        .expect("a GET stream");
    let args = json!({ "text": "A-SECRET-123", "seconds": 1 });
    send(&mut a, call(1, "whisper", args)).await;
    let log = next(&mut a).await;
    assert_eq!(log["method"], "notifications/message", "{log}");
    assert_eq!(text(&next(&mut a).await), "whispered");
    send(&mut b, call(1, "echo", json!({ "text": "mine" }))).await;
    let own = next(&mut b).await;
    assert_eq!(
        text(&own),
        "mine",
        "B's next frame is not its own answer: {own}"
    );
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, stream.chunk()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains("A-SECRET"),
        "C's stream carried A's log: {seen}"
    );
}

/// Item 2: `resources/updated` goes to the sessions subscribed to that resource, not to
/// whoever happens to be connected (nor to the session whose call caused it).
#[tokio::test]
async fn a_resource_update_reaches_only_its_subscribers() {
    let server = shared_bridge("shared_child.py").await;
    let mut subscriber = ws(&server, json!({})).await;
    let mut other = ws(&server, json!({})).await;
    let subscribe = request(1, "resources/subscribe", json!({ "uri": "py://a" }));
    send(&mut subscriber, subscribe).await;
    let agreed = next(&mut subscriber).await;
    assert!(agreed["result"].is_object(), "{agreed}");
    send(&mut other, call(1, "touch", json!({ "uri": "py://a" }))).await;
    let own = next(&mut other).await;
    assert_eq!(text(&own), "touched", "the other session got {own}");
    let update = frame_within(&mut subscriber, Duration::from_secs(5))
        .await
        .expect("the subscriber's update");
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(
        frame_within(&mut other, Duration::from_millis(500)).await,
        None
    );
}

fn sampling_answer(request: &Value, text: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": request["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": text }, "model": "test" } })
    .to_string()
}

/// Item 2: a sampling request made while A's and B's calls are both in flight cannot be
/// attributed: it is refused (A's tool fails at once), never shown to B.
#[tokio::test]
async fn a_sampling_request_that_cannot_be_attributed_is_refused() {
    let server = shared_bridge("shared_child.py").await;
    let mut a = ws(&server, json!({ "sampling": {} })).await;
    let mut b = ws(&server, json!({ "sampling": {} })).await;
    let args = json!({ "question": "A-QUESTION", "delay": 1 });
    send(&mut a, call(1, "ask_later", args)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut b, call(1, "slow", json!({ "seconds": 3 }))).await;
    let started = Instant::now();
    let first = next(&mut b).await;
    assert!(
        !first.to_string().contains("A-QUESTION"),
        "B saw A's sampling request: {first}"
    );
    assert_eq!(text(&first), "slept 3.0");
    let answer = next(&mut a).await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert!(
        answer["result"]["isError"] == true || answer["error"].is_object(),
        "A's tool should fail, its sampling refused: {answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Item 2: B cannot answer the sampling request sent to A, even knowing its id.
#[tokio::test]
async fn only_the_session_asked_may_answer_a_sampling_request() {
    let server = shared_bridge("shared_child.py").await;
    let mut a = ws(&server, json!({ "sampling": {} })).await;
    let mut b = ws(&server, json!({ "sampling": {} })).await;
    send(
        &mut a,
        call(1, "ask_later", json!({ "question": "q", "delay": 0 })),
    )
    .await;
    let sampling = next(&mut a).await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");
    send(&mut b, sampling_answer(&sampling, "B-ANSWER")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut a, sampling_answer(&sampling, "A-ANSWER")).await;
    let answer = next(&mut a).await;
    assert_eq!(text(&answer), "model said: A-ANSWER", "{answer}");
}

/// Item 2: the child is initialized with sampling whoever came first, so a later
/// sampling-capable session can use it; a session that did not declare sampling never gets
/// a sampling request (it is refused for it).
#[tokio::test]
async fn sampling_follows_each_sessions_own_capabilities() {
    let server = shared_bridge("shared_child.py").await;
    let mut plain = ws(&server, json!({})).await;
    let mut sampler = ws(&server, json!({ "sampling": {} })).await;
    send(
        &mut sampler,
        call(1, "ask_if_able", json!({ "question": "q" })),
    )
    .await;
    let sampling = next(&mut sampler).await;
    assert_eq!(
        sampling["method"], "sampling/createMessage",
        "the child was not told it may sample: {sampling}"
    );
    send(&mut sampler, sampling_answer(&sampling, "yes")).await;
    assert_eq!(text(&next(&mut sampler).await), "model said: yes");
    let args = json!({ "question": "q", "delay": 0 });
    send(&mut plain, call(2, "ask_later", args)).await;
    let answer = next(&mut plain).await;
    assert_ne!(
        answer["method"], "sampling/createMessage",
        "a session without sampling was asked to sample: {answer}"
    );
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["result"]["isError"], true, "{answer}");
}

/// Item 7 (shared child): answers whose id the child spelled another legal way (every
/// character `\uXXXX`-escaped) still reach their callers, `initialize` included.
#[tokio::test]
async fn answers_with_respelled_ids_reach_their_callers() {
    let server = shared_bridge("respelling_child.py").await;
    let (mut socket, _) = connect_async(server.ws()).await.expect("handshake");
    send(&mut socket, initialize(7, json!({}))).await;
    let init = frame_within(&mut socket, Duration::from_secs(5))
        .await
        .expect("the answer to initialize, its id respelled by the child");
    assert_eq!(init["id"], 7, "{init}");
    send(&mut socket, initialized()).await;
    send(&mut socket, call(8, "echo", json!({ "text": "hi" }))).await;
    let answer = frame_within(&mut socket, Duration::from_secs(5))
        .await
        .expect("the answer to a call, its id respelled by the child");
    assert_eq!(answer["id"], 8);
    assert_eq!(text(&answer), "hi");
    let http = http_session(&server).await;
    let body = request(
        9,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "h" } }),
    )
    .replace(r#""id":9"#, r#""id":"\u00e9/9""#);
    let answer = http_call(&server, &http, body).await;
    assert_eq!(answer["id"], "é/9");
    assert_eq!(text(&answer), "h");
}

/// Item 3: a WebSocket client that sends many calls with long answers and never reads (its
/// receive buffer 4 kB) must not make other sessions, WebSocket or HTTP, wait; the bridge drops
/// it once it falls too far behind.
#[tokio::test]
async fn a_client_that_stops_reading_stalls_no_other_session() {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let server = shared_bridge("shared_child.py").await;
    let address = server
        .ws()
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host:port")
        .parse()
        .expect("a socket address");
    let tcp = tokio::net::TcpSocket::new_v4().expect("a socket");
    tcp.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = tcp.connect(address).await.expect("connect");
    let plain = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    let (mut slow, _) = tokio_tungstenite::client_async(server.ws(), plain)
        .await
        .expect("handshake");
    send(&mut slow, initialize(0, json!({}))).await;
    next(&mut slow).await;
    send(&mut slow, initialized()).await;
    // Progress is the slow client's alone (by its token); the child interleaves it with
    // other sessions' answers, so only the bridge can make them wait.
    const FLOOD: u64 = 1300;
    let flood = json!({ "name": "flood", "arguments": { "count": FLOOD, "size": 64 * 1024 },
        "_meta": { "progressToken": "slow" } });
    send(&mut slow, request(1, "tools/call", flood)).await;
    let mut honest = ws(&server, json!({})).await;
    let http = http_session(&server).await;
    // Long enough for the child to have written every notification.
    let until = Instant::now() + Duration::from_secs(12);
    let mut id = 0;
    while Instant::now() < until {
        id += 1;
        let started = Instant::now();
        send(&mut honest, call(id, "echo", json!({ "text": "ws" }))).await;
        let answer = frame_within(&mut honest, Duration::from_secs(5)).await;
        let answer = answer.unwrap_or_else(|| {
            panic!("an honest WebSocket call waited 5 s behind the client that does not read")
        });
        assert_eq!(text(&answer), "ws");
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            http_call(&server, &http, call(id, "echo", json!({ "text": "http" }))),
        )
        .await
        .unwrap_or_else(|_| {
            panic!("an honest HTTP call waited 5 s behind the client that does not read")
        });
        assert_eq!(text(&answer), "http");
        tokio::time::sleep(Duration::from_millis(250).saturating_sub(started.elapsed())).await;
    }
    // The slow client was dropped: reading now, its stream ends (1008) before all its messages.
    let mut received = 0;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(frame)) = slow.next().await {
            match frame {
                Message::Text(_) => received += 1,
                Message::Close(close) => return close.map(|c| u16::from(c.code)),
                _ => {}
            }
        }
        None
    })
    .await;
    assert_eq!(
        ended,
        Ok(Some(1008)),
        "the slow client's stream did not end with 1008"
    );
    assert!(
        received < FLOOD,
        "the slow client got all {received} messages: it was never dropped"
    );
}
