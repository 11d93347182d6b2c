//! Legacy HTTP+SSE (protocol revision 2024-11-05, issue 17 item 6): `GET /sse` and
//! `POST /messages?sessionId=`, with the official Python SDK's `sse_client` against `serve()`
//! (bioseq), a bridge and a gateway, and raw HTTP for what a bad client sends.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess, assert_gc_ggccat, bin, initialize, initialized, request, sample,
};
use serde_json::{Value, json};

fn python(name: &str) -> String {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import mcp.client.sse"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "the SSE client needs PyPI's `mcp<2` (pip install 'mcp<2'; .ci/run installs it)"
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    path.join(name).display().to_string()
}

/// The origin (`http://127.0.0.1:PORT`) of a server's streamable HTTP URL.
fn origin(server: &ServerProcess) -> String {
    let url = server.http();
    let path = url["http://".len()..].find('/').expect("a path");
    url[.."http://".len() + path].to_owned()
}

/// The Python SDK's `sse_client` session (`python/sse_session.py`): its one JSON line.
async fn sdk_session(url: &str, tool: &str, arguments: Value, token: Option<&str>) -> Value {
    let script = python("sse_session.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(script)
        .args([url, tool, &arguments.to_string()])
        .args(token)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the SDK session ends within 60 s")
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{url}: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{url}: {e}: {stderr}"))
}

/// Polls `/metrics` (at most 10 s) until no legacy SSE session is open.
async fn sse_sessions_close(server: &ServerProcess) {
    let url = format!("{}/metrics", origin(server));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = reqwest::get(&url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let open = sample(&text, "mcp_sessions", &["transport=\"sse\""]);
        if open == 0.0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} SSE sessions still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_python_sdk_sse_client_lists_and_calls_a_served_server() {
    let mut server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let url = format!("{}/sse", origin(&server));
    let logged = format!("legacy HTTP+SSE on {url}");
    assert!(
        server.logged(&logged)
            || server
                .line_containing(&logged, Duration::from_secs(5))
                .await
                .is_some(),
        "{:?}",
        server.log
    );
    let result = sdk_session(&url, "gc_content", json!({ "seq": "GGCCAT" }), None).await;
    assert_eq!(result["server"], "bioseq", "{result}");
    let tools = result["tools"].to_string();
    for tool in ["gc_content", "reverse_complement", "translate"] {
        assert!(tools.contains(tool), "{result}");
    }
    assert_eq!(result["is_error"], false, "{result}");
    assert_gc_ggccat(result["structured"]["result"].as_f64().expect("a number"));
    // The client gone, its session is freed.
    sse_sessions_close(&server).await;

    // Listed beside streamable HTTP and WebSocket.
    let listed: Value = reqwest::get(format!("{}/.well-known/mcp", origin(&server)))
        .await
        .expect("landing")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["endpoints"]["sse"], json!([url]), "{listed}");
    let health: Value = reqwest::get(format!("{}/health", origin(&server)))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["transports"]["sse"], url, "{health}");
}

#[tokio::test]
async fn the_python_sdk_sse_client_through_a_bridge_and_a_gateway() {
    let child = python("child_server.py");
    let bridged = ServerProcess::start(
        "mcp-expose",
        &["bridge", "--http", "0", "--", "python3", &child],
    )
    .await;
    let url = format!("{}/sse", origin(&bridged));
    let result = sdk_session(&url, "echo", json!({ "text": "through sse" }), None).await;
    assert_eq!(result["server"], "py-child", "{result}");
    assert_eq!(result["text"], json!(["through sse"]), "{result}");

    let dir = std::env::temp_dir().join(format!("mcp-expose-sse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("gateway.toml");
    let quoted = |s: &str| serde_json::to_string(s).expect("string");
    let text = format!(
        "[servers.bioseq]\ncommand = [{}]\n\n[servers.py]\ncommand = [\"python3\", {}]\nchild = \"shared\"\n",
        quoted(&bin("bioseq").display().to_string()),
        quoted(&child),
    );
    std::fs::write(&config, text).expect("config");
    let config = config.display().to_string();
    let gateway = ServerProcess::start("mcp-expose", &["gateway", &config, "--http", "0"]).await;
    let base = origin(&gateway);
    let result = sdk_session(
        &format!("{base}/bioseq/sse"),
        "gc_content",
        json!({ "seq": "GGCCAT" }),
        None,
    )
    .await;
    assert_eq!(result["server"], "bioseq", "{result}");
    assert_gc_ggccat(result["structured"]["result"].as_f64().expect("a number"));
    let result = sdk_session(
        &format!("{base}/py/sse"),
        "echo",
        json!({ "text": "py" }),
        None,
    )
    .await;
    assert_eq!(result["text"], json!(["py"]), "{result}");
    // Each server's stream listed under its own prefix.
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["servers"]["py"]["sse"], format!("{base}/py/sse"));
    // The clients gone, their sessions (and the per-session child) are freed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health: Value = reqwest::get(format!("{base}/health"))
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        let open = &health["servers"]["bioseq"]["sessions"];
        if open == 0 && health["servers"]["py"]["sessions"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A legacy SSE stream read over raw HTTP.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(url: &str, token: Option<&str>) -> Self {
        let mut request = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = tokio::time::timeout(Duration::from_secs(10), request.send())
            .await
            .expect("headers within 10 s")
            .expect("a response");
        assert_eq!(response.status(), 200, "{url}");
        let headers = response.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/event-stream")
        );
        assert_eq!(headers["x-accel-buffering"], "no");
        assert_eq!(headers["cache-control"], "no-cache, no-transform");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, `(event, data)`, within 10 s; keep-alive comments are skipped.
    async fn next(&mut self) -> (String, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .filter_map(|l| l.strip_prefix(name))
                        .map(|v| v.strip_prefix(' ').unwrap_or(v))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                if block.lines().all(|l| l.starts_with(':')) {
                    continue;
                }
                return (field("event:"), field("data:"));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("the stream reads")
                .expect("the stream is open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The endpoint the stream announces (a path), checked.
    async fn endpoint(&mut self, prefix: &str) -> String {
        let (event, data) = self.next().await;
        assert_eq!(event, "endpoint", "{data}");
        let id = data
            .strip_prefix(&format!("{prefix}/messages?sessionId="))
            .unwrap_or_else(|| panic!("{data}"));
        assert_eq!(id.len(), 32, "{data}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{data}");
        data
    }

    /// The next `message` event's JSON.
    async fn message(&mut self) -> Value {
        let (event, data) = self.next().await;
        assert_eq!(event, "message", "{data}");
        serde_json::from_str(&data).expect("JSON data")
    }
}

async fn post(url: &str, body: impl Into<reqwest::Body>, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.body(body).send().await.expect("a response");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

fn error_code(body: &str) -> i64 {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    value["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("{body}"))
}

/// Bad POSTs get their errors, and the stream they named carries on.
async fn bad_input(base: &str, prefix: &str) {
    let mut stream = Stream::open(&format!("{base}{prefix}/sse"), None).await;
    let endpoint = format!("{base}{}", stream.endpoint(prefix).await);
    let (status, body) = post(
        &format!("{base}{prefix}/messages?sessionId=0123456789abcdef0123456789abcdef"),
        initialized(),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body), -32001, "{body}");
    let (status, body) = post(&format!("{base}{prefix}/messages"), initialized(), None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&endpoint, "{\"jsonrpc\": \"2.0\", \"id\": 1, ", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), -32700, "{body}");
    let (status, body) = post(&endpoint, vec![b' '; 100_000], None).await;
    assert_eq!(status, 413, "{body}");
    // The session is still there: initialize, list the tools, call one.
    let (status, body) = post(&endpoint, initialize(1, json!({})), None).await;
    assert_eq!((status, body.as_str()), (202, ""));
    let init = stream.message().await;
    assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");
    assert_eq!(post(&endpoint, initialized(), None).await.0, 202);
    assert_eq!(
        post(&endpoint, request(2, "tools/list", json!({})), None)
            .await
            .0,
        202
    );
    let tools = stream.message().await;
    assert_eq!(tools["id"], 2, "{tools}");
    assert!(
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{tools}"
    );
    // The stream closed, its session is gone.
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = post(&endpoint, request(3, "ping", json!({})), None).await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 202, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn bad_posts_are_answered_and_the_stream_survives_them() {
    let options = ["--http", "0", "--max-message-size", "65536"];
    let server = ServerProcess::start("bioseq", &options).await;
    bad_input(&origin(&server), "").await;

    let child = python("child_server.py");
    let dir = std::env::temp_dir().join(format!("mcp-expose-sse-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("gateway.toml");
    let quoted = serde_json::to_string(&child).expect("string");
    let text = format!("[servers.py]\ncommand = [\"python3\", {quoted}]\n");
    std::fs::write(&config, text).expect("config");
    let config = config.display().to_string();
    let gateway = ServerProcess::start(
        "mcp-expose",
        &[
            "gateway",
            &config,
            "--http",
            "0",
            "--max-message-size",
            "65536",
        ],
    )
    .await;
    bad_input(&origin(&gateway), "/py").await;
}

#[tokio::test]
async fn a_session_answers_only_the_token_that_opened_it() {
    let dir = std::env::temp_dir().join(format!("mcp-expose-sse-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "sse-token-a\nsse-token-b\n").expect("tokens");
    let tokens = tokens.display().to_string();
    let bioseq = bin("bioseq").display().to_string();
    let served =
        ServerProcess::start("bioseq", &["--http", "0", "--auth-token-file", &tokens]).await;
    let bridged = ServerProcess::start(
        "mcp-expose",
        &[
            "bridge",
            "--http",
            "0",
            "--auth-token-file",
            &tokens,
            "--",
            &bioseq,
        ],
    )
    .await;
    for server in [&served, &bridged] {
        let base = origin(server);
        let anonymous = reqwest::get(format!("{base}/sse"))
            .await
            .expect("a response");
        assert_eq!(anonymous.status(), 401);
        let mut stream = Stream::open(&format!("{base}/sse"), Some("sse-token-a")).await;
        let endpoint = format!("{base}{}", stream.endpoint("").await);
        let message = initialize(1, json!({}));
        let (status, body) = post(&endpoint, message.clone(), Some("sse-token-b")).await;
        assert_eq!(status, 404, "{base}: {body}");
        assert_eq!(post(&endpoint, message.clone(), None).await.0, 401);
        assert_eq!(post(&endpoint, message, Some("sse-token-a")).await.0, 202);
        let init = stream.message().await;
        assert_eq!(init["id"], 1, "{init}");
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        // The Python SDK sends its token on both the stream and the POSTs.
        let result = sdk_session(
            &format!("{base}/sse"),
            "gc_content",
            json!({ "seq": "GGCCAT" }),
            Some("sse-token-b"),
        )
        .await;
        assert_gc_ggccat(result["structured"]["result"].as_f64().expect("a number"));
    }
}

#[tokio::test]
async fn an_sse_stream_counts_against_the_session_cap() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--max-sessions", "1"]).await;
    let base = origin(&server);
    let mut first = Stream::open(&format!("{base}/sse"), None).await;
    first.endpoint("").await;
    let second = reqwest::get(format!("{base}/sse"))
        .await
        .expect("a response");
    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));
    drop(first);
    // Its stream closed, the place is free again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = reqwest::get(format!("{base}/sse"))
            .await
            .expect("a response");
        if again.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", again.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
