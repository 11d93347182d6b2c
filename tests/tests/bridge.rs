//! `mcp-expose bridge`: the bioseq binary and a Python server (PyPI `mcp`) behind the bridge,
//! driven by rmcp's client over HTTP and by tokio-tungstenite over WebSocket.

use std::time::{Duration, Instant};

use mcp_expose_tests::{
    ServerProcess, Socket, alive, assert_gc_ggccat, bin, gone_within, http_messages, initialize,
    initialized, kill, next_json as next, python_server, request, sample, send, tool_call as call,
};
use rmcp::{
    ServiceExt as _,
    model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

async fn bridge(child: &[&str]) -> ServerProcess {
    let mut args = vec!["bridge", "--http", "0", "--ws", "0", "--"];
    args.extend_from_slice(child);
    ServerProcess::start("mcp-expose", &args).await
}

async fn ws(server: &ServerProcess) -> Socket {
    let (mut socket, _) = connect_async(server.ws()).await.expect("handshake");
    send(&mut socket, initialize(0, json!({ "sampling": {} }))).await;
    let init = next(&mut socket).await;
    assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");
    send(&mut socket, initialized()).await;
    socket
}

/// A streamable HTTP POST of `body` to the bridge, in `session` when there is one.
fn http_post(
    client: &reqwest::Client,
    server: &ServerProcess,
    body: String,
    session: Option<&str>,
) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    let mut request = client
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.body(body).send()
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn bioseq_behind_the_bridge_over_http_and_websocket() {
    let bioseq = bin("bioseq").display().to_string();
    let server = bridge(&[&bioseq, "--stdio"]).await;

    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(
            server.http().to_owned(),
        ))
        .await
        .expect("initialize");
    let name = client
        .peer_info()
        .and_then(|i| i.server_info.clone())
        .map(|i| i.name);
    assert_eq!(name.as_deref(), Some("bioseq"));
    assert_eq!(client.list_all_tools().await.expect("tools/list").len(), 5);
    let result = client
        .call_tool(
            CallToolRequestParams::new("gc_content")
                .with_arguments(args(json!({ "seq": "GGCCAT" }))),
        )
        .await
        .expect("tools/call");
    assert_gc_ggccat(
        result.structured_content.expect("structured")["result"]
            .as_f64()
            .expect("number"),
    );
    client.cancel().await.expect("close");

    let mut socket = ws(&server).await;
    send(&mut socket, request(1, "tools/list", json!({}))).await;
    assert_eq!(
        next(&mut socket).await["result"]["tools"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    send(
        &mut socket,
        call(2, "gc_content", json!({ "seq": "GGCCAT" })),
    )
    .await;
    assert_gc_ggccat(
        next(&mut socket).await["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
}

#[tokio::test]
async fn a_python_server_behind_the_bridge_serves_every_method() {
    let script = python_server("child_server.py");
    let server = bridge(&["python3", &script]).await;
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(
            server.http().to_owned(),
        ))
        .await
        .expect("initialize");
    let tools: Vec<_> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        tools.contains(&"echo".to_owned()) && tools.contains(&"ask".to_owned()),
        "{tools:?}"
    );
    let echoed = client
        .call_tool(
            CallToolRequestParams::new("echo").with_arguments(args(json!({ "text": "über" }))),
        )
        .await
        .expect("tools/call");
    assert_eq!(
        echoed.content[0].as_text().map(|t| t.text.as_str()),
        Some("über")
    );
    let resources = client.list_all_resources().await.expect("resources/list");
    assert_eq!(resources[0].uri, "py://greeting");
    let read = client
        .read_resource(ReadResourceRequestParams::new("py://greeting"))
        .await
        .expect("resources/read");
    assert!(format!("{read:?}").contains("hello from python"));
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert_eq!(prompts[0].name, "review");
    let mut arguments = serde_json::Map::new();
    arguments.insert("code".into(), json!("x = 1"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("review").with_arguments(arguments))
        .await
        .expect("prompts/get");
    assert!(format!("{prompt:?}").contains("Please review: x = 1"));
    client.cancel().await.expect("close");

    // Sampling: the child's request reaches the WebSocket client that called the tool.
    let mut socket = ws(&server).await;
    send(&mut socket, call(5, "ask", json!({ "question": "2+2?" }))).await;
    let sampling = next(&mut socket).await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");
    let reply = json!({ "jsonrpc": "2.0", "id": sampling["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "4" }, "model": "test" } });
    send(&mut socket, reply.to_string()).await;
    let answer = next(&mut socket).await;
    assert_eq!(answer["id"], 5);
    assert_eq!(answer["result"]["content"][0]["text"], "model said: 4");
}

#[tokio::test]
async fn sessions_get_their_own_children() {
    let script = python_server("child_server.py");
    let server = bridge(&["python3", &script]).await;
    let mut a = ws(&server).await;
    let mut b = ws(&server).await;
    send(&mut a, call(1, "pid", json!({}))).await;
    send(&mut b, call(1, "pid", json!({}))).await;
    let pid_a = next(&mut a).await["result"]["structuredContent"]["result"].clone();
    let pid_b = next(&mut b).await["result"]["structuredContent"]["result"].clone();
    assert!(pid_a.is_u64() && pid_b.is_u64());
    assert_ne!(pid_a, pid_b, "each session has its own child process");
}

#[tokio::test]
async fn a_child_killed_mid_call_answers_at_once_and_the_next_call_succeeds() {
    let script = python_server("child_server.py");
    let server = bridge(&["python3", &script]).await;
    let mut socket = ws(&server).await;
    send(&mut socket, call(1, "pid", json!({}))).await;
    let pid = next(&mut socket).await["result"]["structuredContent"]["result"]
        .as_u64()
        .expect("pid");
    send(&mut socket, call(2, "slow", json!({ "seconds": 30 }))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Instant::now();
    kill("-KILL", pid as u32);
    let error = next(&mut socket).await;
    let latency = killed.elapsed();
    eprintln!("error for the pending call arrived {latency:?} after SIGKILL of the child");
    assert_eq!(error["id"], 2, "{error}");
    assert_eq!(error["error"]["code"], -32000);
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("restarted")),
        "{error}"
    );
    assert!(latency < Duration::from_secs(2), "took {latency:?}");

    send(&mut socket, call(3, "echo", json!({ "text": "again" }))).await;
    let again = next(&mut socket).await;
    assert_eq!(
        again["result"]["content"][0]["text"], "again",
        "the restarted child serves the session: {again}"
    );
    send(&mut socket, call(4, "pid", json!({}))).await;
    assert_ne!(
        next(&mut socket).await["result"]["structuredContent"]["result"].as_u64(),
        Some(pid)
    );
}

#[tokio::test]
async fn a_crash_looping_child_turns_health_to_503() {
    let server = bridge(&["sh", "-c", "exit 3"]).await;
    let health_url = server.http().replace("/mcp", "/health");
    let (mut socket, _) = connect_async(server.ws()).await.expect("handshake");
    send(&mut socket, initialize(1, json!({}))).await;
    let error = next(&mut socket).await;
    assert_eq!(
        error["error"]["code"], -32000,
        "initialize gets an error when the child exits: {error}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    while Instant::now() < deadline {
        status = reqwest::get(&health_url)
            .await
            .expect("health")
            .status()
            .as_u16();
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 503);
    let body: Value = reqwest::get(&health_url)
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON");
    assert!(
        body["child"]["failure"]
            .as_str()
            .is_some_and(|f| f.contains("not restarting"))
            || body["child"]["down"] == 1,
        "{body}"
    );
}

async fn shared_bridge(child: &[&str]) -> ServerProcess {
    let mut args = vec![
        "bridge", "--child", "shared", "--http", "0", "--ws", "0", "--",
    ];
    args.extend_from_slice(child);
    ServerProcess::start("mcp-expose", &args).await
}

/// A sequence whose GC content identifies (session, call): `gc` G/C bases out of 1000.
fn tagged_seq(gc: usize) -> String {
    "G".repeat(gc) + &"A".repeat(1000 - gc)
}

#[tokio::test]
async fn shared_child_thirty_two_sessions_two_hundred_calls_each_without_cross_talk() {
    let bioseq = bin("bioseq").display().to_string();
    let server = shared_bridge(&[&bioseq]).await;
    let mut tasks = Vec::new();
    for session in 0..32usize {
        let url = server.ws().to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut socket, _) = connect_async(url).await.expect("handshake");
            send(&mut socket, initialize(0, json!({}))).await;
            let init = next(&mut socket).await;
            assert_eq!(
                init["result"]["serverInfo"]["name"], "bioseq",
                "cached initialize result: {init}"
            );
            send(&mut socket, initialized()).await;
            let mut errors = 0;
            // Pipelined in windows of 20, ids reused across sessions on purpose.
            for window in 0..10usize {
                for i in 0..20usize {
                    let call_no = window * 20 + i;
                    let gc = (session * 200 + call_no) % 1000;
                    send(
                        &mut socket,
                        call(
                            call_no as u64,
                            "gc_content",
                            json!({ "seq": tagged_seq(gc) }),
                        ),
                    )
                    .await;
                }
                for _ in 0..20 {
                    let response = next(&mut socket).await;
                    let call_no = response["id"].as_u64().expect("numeric id") as usize;
                    let expected = ((session * 200 + call_no) % 1000) as f64 / 1000.0;
                    match response["result"]["structuredContent"]["result"].as_f64() {
                        Some(value) => assert!(
                            (value - expected).abs() < 1e-12,
                            "cross-talk: session {session} call {call_no} got {value}"
                        ),
                        None => errors += 1,
                    }
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.expect("session task");
    }
    assert_eq!(errors, 0);
}

#[tokio::test]
async fn shared_child_sampling_reaches_only_the_calling_session() {
    let script = python_server("child_server.py");
    let server = shared_bridge(&["python3", &script]).await;
    let mut caller = ws(&server).await;
    let mut bystander = ws(&server).await;
    send(&mut caller, call(1, "ask", json!({ "question": "who?" }))).await;
    let sampling = next(&mut caller).await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");
    let reply = json!({ "jsonrpc": "2.0", "id": sampling["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "you" }, "model": "test" } });
    send(&mut caller, reply.to_string()).await;
    let answer = next(&mut caller).await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["content"][0]["text"], "model said: you");
    // The bystander saw nothing of it: its next frame is the answer to its own call.
    send(&mut bystander, call(1, "echo", json!({ "text": "mine" }))).await;
    let own = next(&mut bystander).await;
    assert_eq!(own["id"], 1);
    assert_eq!(own["result"]["content"][0]["text"], "mine", "{own}");
}

#[tokio::test]
async fn shared_child_killed_mid_call_fails_every_pending_call_and_recovers() {
    let script = python_server("child_server.py");
    let server = shared_bridge(&["python3", &script]).await;
    let mut a = ws(&server).await;
    let mut b = ws(&server).await;
    send(&mut a, call(1, "pid", json!({}))).await;
    let pid = next(&mut a).await["result"]["structuredContent"]["result"]
        .as_u64()
        .expect("pid");
    send(&mut b, call(1, "pid", json!({}))).await;
    assert_eq!(
        next(&mut b).await["result"]["structuredContent"]["result"].as_u64(),
        Some(pid),
        "one shared child"
    );
    send(&mut a, call(2, "slow", json!({ "seconds": 30 }))).await;
    send(&mut b, call(7, "slow", json!({ "seconds": 30 }))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill("-KILL", pid as u32);
    assert_eq!(next(&mut a).await["id"], 2);
    assert_eq!(next(&mut b).await["id"], 7);
    send(&mut b, call(8, "echo", json!({ "text": "back" }))).await;
    assert_eq!(next(&mut b).await["result"]["content"][0]["text"], "back");
}

#[tokio::test]
async fn no_child_outlives_a_sigkilled_bridge() {
    let script = python_server("child_server.py");
    let mut server = bridge(&["python3", &script]).await;
    let mut socket = ws(&server).await;
    send(&mut socket, call(1, "pid", json!({}))).await;
    let pid = next(&mut socket).await["result"]["structuredContent"]["result"]
        .as_u64()
        .expect("pid");
    assert!(alive(pid as u32));
    let bridge_pid = server.child.id().expect("bridge pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &bridge_pid])
            .status()
            .expect("kill")
            .success()
    );
    let _ = server.child.wait().await;
    assert!(
        gone_within(pid as u32, Duration::from_secs(2)).await,
        "the child outlived the bridge"
    );
}

/// An answer with nothing before it comes back as one JSON body; progress before the answer
/// turns the POST's response into an event stream that carries both, in order.
#[tokio::test]
async fn http_answers_alone_come_as_json_and_with_progress_as_a_stream() {
    let script = python_server("child_server.py");
    let server = bridge(&["python3", &script]).await;
    let client = reqwest::Client::new();
    let post = |body: String, session: Option<&str>| http_post(&client, &server, body, session);
    let read = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("content type")
            .to_owned();
        let body = response.text().await.expect("body");
        let messages = http_messages(&content_type, &body);
        (content_type, messages)
    };
    let init = post(initialize(1, json!({})), None)
        .await
        .expect("initialize");
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .expect("session id")
        .to_owned();
    let (content_type, messages) = read(init).await;
    assert_eq!(content_type, "application/json");
    assert_eq!(messages[0]["id"], 1);
    assert_eq!(messages[0]["result"]["serverInfo"]["name"], "py-child");
    let accepted = post(initialized(), Some(&session))
        .await
        .expect("initialized");
    assert_eq!(accepted.status(), 202);

    let (content_type, messages) = read(
        post(call(2, "echo", json!({ "text": "plain" })), Some(&session))
            .await
            .expect("echo"),
    )
    .await;
    assert_eq!(content_type, "application/json");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], 2);
    assert_eq!(
        messages[0]["result"]["structuredContent"]["result"],
        "plain"
    );

    // Larger than a pipe holds (64 KiB on Linux): stdin is written in parts while the
    // child's output is read.
    let big = "ACGT".repeat(100_000);
    let (_, messages) = read(
        post(call(4, "echo", json!({ "text": big })), Some(&session))
            .await
            .expect("big echo"),
    )
    .await;
    assert_eq!(messages[0]["id"], 4);
    assert_eq!(messages[0]["result"]["structuredContent"]["result"], big);

    let with_token = request(
        3,
        "tools/call",
        json!({ "name": "steps", "arguments": { "count": 3 }, "_meta": { "progressToken": "p3" } }),
    );
    let (content_type, messages) =
        read(post(with_token, Some(&session)).await.expect("steps")).await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let progress: Vec<f64> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| {
            assert_eq!(m["params"]["progressToken"], "p3", "{m}");
            m["params"]["progress"].as_f64().expect("progress")
        })
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0], "{messages:?}");
    let last = messages.last().expect("the answer");
    assert_eq!(last["id"], 3, "the answer comes last: {messages:?}");
    assert_eq!(last["result"]["structuredContent"]["result"], "3 steps");
}

#[tokio::test]
async fn idle_http_sessions_are_reaped_with_their_children() {
    let script = python_server("child_server.py");
    let args = [
        "bridge",
        "--http",
        "0",
        "--idle-timeout",
        "1",
        "--",
        "python3",
        &script,
    ];
    let server = ServerProcess::start("mcp-expose", &args).await;
    let client = reqwest::Client::new();
    let post = |body: String, session: Option<&str>| http_post(&client, &server, body, session);
    let init = post(initialize(1, json!({})), None)
        .await
        .expect("initialize");
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .expect("session id")
        .to_owned();
    let _ = init.text().await;
    post(initialized(), Some(&session))
        .await
        .expect("initialized");
    let response = post(call(2, "pid", json!({})), Some(&session))
        .await
        .expect("call");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_owned();
    let body = response.text().await.expect("body");
    let pid = http_messages(&content_type, &body)[0]["result"]["structuredContent"]["result"]
        .as_u64()
        .expect("pid");
    assert!(
        gone_within(pid as u32, Duration::from_secs(10)).await,
        "the idle session's child was not reaped"
    );
    let after = post(call(3, "pid", json!({})), Some(&session))
        .await
        .expect("call");
    assert_eq!(
        after.status(),
        404,
        "a reaped session is gone: the client re-initializes"
    );
}

#[tokio::test]
async fn ready_turns_503_while_a_child_is_down_and_back_after_its_restart() {
    let script = python_server("child_server.py");
    let flag = std::env::temp_dir().join(format!("mcp-expose-broken-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let args = [
        "bridge",
        "--http",
        "0",
        "--ws",
        "0",
        "--env",
        &format!("CHILD_BROKEN_FLAG={}", flag.display()),
        "--",
        "python3",
        &script,
    ];
    let server = ServerProcess::start("mcp-expose", &args).await;
    let ready_url = server.http().replace("/mcp", "/ready");
    let ready = || async {
        reqwest::get(&ready_url)
            .await
            .expect("ready")
            .status()
            .as_u16()
    };
    let mut socket = ws(&server).await;
    send(&mut socket, call(1, "pid", json!({}))).await;
    let pid = next(&mut socket).await["result"]["structuredContent"]["result"]
        .as_u64()
        .expect("pid");
    assert_eq!(ready().await, 200);
    // While the flag exists every restart fails at once: the child stays down.
    std::fs::write(&flag, "").expect("flag");
    kill("-KILL", pid as u32);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = 200;
    while Instant::now() < deadline && status != 503 {
        status = ready().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503, "/ready reports the dead child");
    let metrics_url = server.http().replace("/mcp", "/metrics");
    let metrics = || async {
        reqwest::get(&metrics_url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let text = metrics().await;
    let server_label = [r#"server="bridge""#];
    assert_eq!(
        sample(&text, "mcp_bridge_healthy", &server_label),
        0.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "mcp_bridge_children_down", &server_label),
        1.0
    );
    std::fs::remove_file(&flag).expect("unflag");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && status != 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = ready().await;
    }
    assert_eq!(status, 200, "/ready recovers after the restart");
    let text = metrics().await;
    assert_eq!(
        sample(&text, "mcp_bridge_healthy", &server_label),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "mcp_bridge_children_down", &server_label),
        0.0
    );
    assert!(sample(&text, "mcp_bridge_child_restarts_total", &server_label) >= 1.0);
    assert_eq!(sample(&text, "mcp_bridge_sessions", &server_label), 1.0);
    send(&mut socket, call(2, "echo", json!({ "text": "back" }))).await;
    assert_eq!(
        next(&mut socket).await["result"]["content"][0]["text"],
        "back"
    );
}
