//! `mcp-expose bridge` over HTTP (issue 15): bodies follow `--max-message-size`. The child is
//! `tests/python/hostile_child.py`, driven by reqwest on loopback.

use std::time::Duration;

use mcp_expose_tests::{ServerProcess, initialize, initialized};
use serde_json::{Value, json};

fn hostile() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python/hostile_child.py")
        .display()
        .to_string()
}

/// A per-session bridge over HTTP with `options`, of the hostile child with `child_args`.
async fn bridge(options: &[&str], child_args: &[&str]) -> ServerProcess {
    let script = hostile();
    let mut args = vec!["bridge", "--http", "0"];
    args.extend_from_slice(options);
    args.extend(["--", "python3", &script]);
    args.extend_from_slice(child_args);
    ServerProcess::start("mcp-expose", &args).await
}

/// A streamable HTTP client of one bridge session.
struct Http {
    client: reqwest::Client,
    url: String,
    session: Option<String>,
}

impl Http {
    fn new(server: &ServerProcess) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: server.http().to_owned(),
            session: None,
        }
    }

    /// POSTs `body`; the response (status, body text), or a panic naming `what` when it does
    /// not come whole within `limit`.
    async fn post(&mut self, body: String, limit: Duration, what: &str) -> (u16, String) {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        let exchange = async {
            let response = request.send().await.expect("POST");
            if let Some(id) = response.headers().get("mcp-session-id") {
                self.session = Some(id.to_str().expect("session id").to_owned());
            }
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(answer) => answer,
            Err(_) => panic!("{what}: no complete answer within {limit:?} (the POST hangs)"),
        }
    }

    /// Opens the session: `initialize` answered, then `notifications/initialized`.
    async fn open(server: &ServerProcess) -> Self {
        let mut http = Self::new(server);
        let (status, body) = http
            .post(
                initialize(1, json!({})),
                Duration::from_secs(20),
                "initialize",
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"hostile\""), "{body}");
        http.post(initialized(), Duration::from_secs(10), "initialized")
            .await;
        http
    }
}

/// A `tools/call` with the raw JSON `id`.
fn raw_call(id: &str, arguments: Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"x","arguments":{arguments}}}}}"#
    )
}

#[tokio::test]
async fn http_bodies_follow_max_message_size() {
    let server = bridge(&["--max-message-size", "4194304"], &[]).await;
    let mut http = Http::open(&server).await;
    // Over axum's default of 2 MiB, under the limit: served.
    let pad = "p".repeat(3 << 20);
    let (status, body) = http
        .post(
            raw_call("2", json!({ "pad": pad })),
            Duration::from_secs(20),
            "a 3 MiB call",
        )
        .await;
    assert_eq!(status, 200, "a 3 MiB body under a 4 MiB limit: {body}");
    assert!(body.contains(r#""text": "ok""#), "{body}");
    // Over the limit: 413, with a JSON body.
    let pad = "p".repeat(5 << 20);
    let (status, body) = http
        .post(
            raw_call("3", json!({ "pad": pad })),
            Duration::from_secs(20),
            "a 5 MiB call",
        )
        .await;
    assert_eq!(status, 413, "a 5 MiB body over a 4 MiB limit: {body}");
    let error: Value = serde_json::from_str(&body).expect("a JSON body");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4194304")),
        "{error}"
    );
}
