//! `mcp-expose bridge`, per-session children that misbehave (issue 15, items 6, 9, 10 and 13):
//! what they print is bounded and only JSON-RPC is passed on, one session's crash loop leaves
//! the bridge healthy, the public pages never show the child's command line, and a child's
//! background processes die with it or with the bridge. The child is
//! `tests/python/hostile_child.py`, driven by reqwest and tokio-tungstenite on loopback.

use std::time::{Duration, Instant};

use mcp_expose_tests::{
    ServerProcess, alive, gone_within, initialize, initialized, kill, next_json, request,
    response_messages, send,
};
use serde_json::{Value, json};

fn hostile() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python/hostile_child.py")
        .display()
        .to_string()
}

/// A per-session bridge over HTTP and WebSocket with `options`, of `child`.
async fn bridge(options: &[&str], child: &[&str]) -> ServerProcess {
    let mut args = vec!["bridge", "--http", "0", "--ws", "0"];
    args.extend_from_slice(options);
    args.push("--");
    args.extend_from_slice(child);
    ServerProcess::start("mcp-expose", &args).await
}

/// A streamable HTTP session of the bridge at `url`, opened with `initialize`.
struct Http {
    client: reqwest::Client,
    url: String,
    session: String,
    token: Option<String>,
}

impl Http {
    async fn open(url: &str, token: Option<&str>) -> Self {
        let mut http = Self {
            client: reqwest::Client::new(),
            url: url.to_owned(),
            session: String::new(),
            token: token.map(str::to_owned),
        };
        let response = http.send(initialize(1, json!({}))).await;
        assert_eq!(response.status(), 200);
        http.session = mcp_expose_tests::session_id(&response);
        http.send(initialized()).await;
        http
    }

    async fn send(&self, body: String) -> reqwest::Response {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .timeout(Duration::from_secs(30))
            .body(body);
        if !self.session.is_empty() {
            request = request.header("mcp-session-id", &self.session);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("an answer within 30 s")
    }

    /// A `tools/call` with `arguments` for the hostile child; its one answer.
    async fn call(&self, id: u64, arguments: Value) -> Value {
        let body = request(
            id,
            "tools/call",
            json!({ "name": "x", "arguments": arguments }),
        );
        let mut messages = response_messages(self.send(body).await).await;
        assert_eq!(
            messages.len(),
            1,
            "one answer and nothing else: {messages:?}"
        );
        messages.remove(0)
    }
}

/// The bridge process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(server: &ServerProcess) -> u64 {
    let pid = server.child.id().expect("bridge pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    kib * 1024
}

#[tokio::test]
async fn an_oversized_stdout_line_fails_its_call_and_the_next_call_is_served() {
    let script = hostile();
    let server = bridge(&["--max-message-size", "1048576"], &["python3", &script]).await;
    let http = Http::open(server.http(), None).await;
    let before = peak_rss(&server);
    let answer = http.call(2, json!({ "stdout_bytes": 64 << 20 })).await;
    assert_eq!(answer["id"], 2);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("larger than the limit of 1048576 bytes")),
        "a 64 MiB answer over a 1 MiB limit is an error: {}",
        answer.to_string().chars().take(300).collect::<String>()
    );
    let grown = peak_rss(&server).saturating_sub(before);
    assert!(
        grown < 24 << 20,
        "the bridge's peak RSS grew by {} MiB reading a 64 MiB line",
        grown >> 20
    );
    // Resynchronised at the newline: the next answer is read as usual.
    let answer = http.call(3, json!({})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
}

#[tokio::test]
async fn child_stderr_lines_are_capped_and_rate_limited() {
    let script = hostile();
    let mut server = bridge(&[], &["python3", &script]).await;
    let http = Http::open(server.http(), None).await;
    let before = peak_rss(&server);
    // 20,000 lines at once, then 16 MiB with no newline.
    let arguments = json!({ "stderr_lines": 20_000, "stderr_unterminated": 16 << 20 });
    let answer = http.call(2, arguments).await;
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    let report = server
        .line_containing("dropped", Duration::from_secs(10))
        .await;
    // Let the rest of the flood reach the log, if it would.
    server
        .line_containing("not in any log line", Duration::from_secs(3))
        .await;
    let logged = server
        .log
        .iter()
        .filter(|l| l.contains("child stderr line"))
        .count();
    assert!(
        logged < 2_000,
        "{logged} of 20,000 stderr lines were logged"
    );
    assert!(report.is_some(), "no `dropped N lines` report in the log");
    let grown = peak_rss(&server).saturating_sub(before);
    assert!(
        grown < 8 << 20,
        "the bridge's peak RSS grew by {} MiB reading a 16 MiB stderr line",
        grown >> 20
    );
}

#[tokio::test]
async fn stdout_lines_that_are_not_json_rpc_are_never_passed_on() {
    let script = hostile();
    let server = bridge(&[], &["python3", &script]).await;
    // Over HTTP: the answer comes alone (a banner would have made it an event stream).
    let http = Http::open(server.http(), None).await;
    let answer = http.call(2, json!({ "stdout_noise": 3 })).await;
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    // Over WebSocket: the next frame is the answer.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws())
        .await
        .expect("handshake");
    send(&mut socket, initialize(1, json!({}))).await;
    assert_eq!(next_json(&mut socket).await["id"], 1);
    send(&mut socket, initialized()).await;
    let call = request(
        2,
        "tools/call",
        json!({ "name": "x", "arguments": { "stdout_noise": 3 } }),
    );
    send(&mut socket, call).await;
    let answer = next_json(&mut socket).await;
    assert_eq!(answer["id"], 2, "{answer}");
}

async fn status(url: &str) -> u16 {
    reqwest::get(url).await.expect("GET").status().as_u16()
}

#[tokio::test]
async fn one_sessions_crash_loop_leaves_health_and_ready_ok() {
    let script = hostile();
    let server = bridge(&[], &["python3", &script]).await;
    let health = server.http().replace("/mcp", "/health");
    let ready = server.http().replace("/mcp", "/ready");
    let crasher = Http::open(server.http(), None).await;
    // Five exits within a minute: this session's child is given up on.
    for id in 2..7 {
        let answer = crasher.call(id, json!({ "crash": true })).await;
        assert!(answer["error"].is_object(), "{answer}");
    }
    let answer = crasher.call(7, json!({})).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not restarting")),
        "{answer}"
    );
    // The bridge still serves everyone else, and says so, for good.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(
            status(&health).await,
            200,
            "/health after one session's crash loop"
        );
        assert_eq!(
            status(&ready).await,
            200,
            "/ready after one session's crash loop"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let other = Http::open(server.http(), None).await;
    let answer = other.call(2, json!({})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    assert_eq!(status(&health).await, 200);
}

#[tokio::test]
async fn public_pages_never_show_the_childs_arguments() {
    const SECRET: &str = "SECRET-API-KEY-123";
    let script = hostile();
    let dir = std::env::temp_dir().join(format!("mcp-expose-argv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "a-token-for-the-test\n").expect("token file");
    let tokens = tokens.display().to_string();
    let argument = format!("--api-key={SECRET}");
    for token in [None, Some("a-token-for-the-test")] {
        let options: &[&str] = match token {
            Some(_) => &["--auth-token-file", &tokens],
            None => &[],
        };
        let server = bridge(options, &["python3", &script, &argument]).await;
        // A running child, and one that failed, are on the pages too.
        let http = Http::open(server.http(), token).await;
        http.call(2, json!({ "crash": true })).await;
        let base = server.http().trim_end_matches("/mcp").to_owned();
        let client = reqwest::Client::new();
        for (path, accept) in [
            ("/health", "application/json"),
            ("/ready", "application/json"),
            ("/", "text/html"),
            ("/", "application/json"),
            ("/.well-known/mcp", "application/json"),
        ] {
            let body = client
                .get(format!("{base}{path}"))
                .header("accept", accept)
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("body");
            assert!(
                !body.contains(SECRET),
                "anonymous GET {path} ({accept}) of a bridge {} shows the child's argument: {body}",
                if token.is_some() {
                    "with a token"
                } else {
                    "without a token"
                }
            );
        }
    }
}

/// A bridge of `sh -c 'sleep 120 & ...; exec CHILD'`, one session opened; the bridge, the
/// session, and the background `sleep`'s pid.
async fn child_with_a_background_process(tag: &str) -> (ServerProcess, Http, u32) {
    let script = hostile();
    let pidfile = std::env::temp_dir().join(format!("mcp-expose-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let env = format!("GRANDCHILD={}", pidfile.display());
    let command = format!("sleep 120 & echo $! > \"$GRANDCHILD\"; exec python3 {script}");
    let server = bridge(&["--env", &env], &["sh", "-c", &command]).await;
    let http = Http::open(server.http(), None).await;
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .expect("the child's shell wrote the background process's pid");
    let _ = std::fs::remove_file(&pidfile);
    assert!(alive(pid), "the background process runs");
    (server, http, pid)
}

#[tokio::test]
async fn sigkill_of_the_bridge_kills_a_childs_background_processes() {
    let (server, _http, grandchild) = child_with_a_background_process("sigkill").await;
    kill("-KILL", server.child.id().expect("bridge pid"));
    assert!(
        gone_within(grandchild, Duration::from_secs(5)).await,
        "the child's background process {grandchild} outlived the bridge's SIGKILL by 5 s"
    );
}

#[tokio::test]
async fn a_childs_background_processes_end_with_it() {
    let (_server, http, grandchild) = child_with_a_background_process("exit").await;
    let answer = http.call(2, json!({ "crash": true })).await;
    assert!(answer["error"].is_object(), "{answer}");
    assert!(
        gone_within(grandchild, Duration::from_secs(5)).await,
        "the background process {grandchild} of a child that exited is alive 5 s later"
    );
}
