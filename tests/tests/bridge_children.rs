//! `mcp-expose bridge`, per-session children that misbehave (issue 15): a child's background
//! processes die with it or with the bridge. The child is `tests/python/hostile_child.py`,
//! driven by reqwest on loopback.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess, alive, gone_within, initialize, initialized, kill, request, response_messages,
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
