//! Helpers for the integration tests: locate the workspace's built binaries and run them as
//! real processes on loopback.

pub mod authorization;
pub mod connector;
pub mod oauth;
pub mod replicas;
pub mod tunnel;

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

/// The path of a binary built from this workspace. `cargo test` builds only test harnesses for
/// other packages' binaries, so the first call builds the workspace's binaries (with the same
/// features as the test build, so nothing but linking is redone).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut command = std::process::Command::new(cargo);
        command.args([
            "build",
            "--workspace",
            "--all-features",
            "--bins",
            "--quiet",
        ]);
        if dir.file_name().is_some_and(|p| p == "release") {
            command.arg("--release");
        }
        if let Some(target) = dir.parent() {
            command.env("CARGO_TARGET_DIR", target);
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A server process serving on loopback; killed when dropped.
#[allow(missing_debug_implementations)]
pub struct ServerProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT/mcp`, when it serves HTTP.
    pub http_url: Option<String>,
    /// `ws://127.0.0.1:PORT/ws`, when it serves WebSocket.
    pub ws_url: Option<String>,
    /// Every stderr line read so far (its log).
    pub log: Vec<String>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ServerProcess {
    /// Starts `bin args...` and waits (at most 20 s) until it logged its listening URLs.
    pub async fn start(name: &str, args: &[&str]) -> Self {
        Self::start_with_env(name, args, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub async fn start_with_env(name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut child = Command::new(bin(name))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let wants_http = args.contains(&"--http") || args.contains(&"--tunnel");
        let wants_ws = args.contains(&"--ws") || args.contains(&"--tunnel");
        let mut server = Self {
            child,
            http_url: None,
            ws_url: None,
            log: Vec::new(),
            lines,
        };
        let ready = server
            .wait_for(Duration::from_secs(20), |s| {
                s.http_url.is_some() == wants_http && s.ws_url.is_some() == wants_ws
            })
            .await;
        assert!(
            ready.is_some(),
            "server did not start; log:\n{}",
            server.log.join("\n")
        );
        server
    }

    /// Reads stderr until `done(self)` holds (returns the last line read) or `timeout` passes.
    async fn wait_for(
        &mut self,
        timeout: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()??;
            if self.http_url.is_none()
                && let Some(url) = find_url(&line, "http://", "/mcp")
            {
                self.http_url = Some(url);
            }
            if self.ws_url.is_none()
                && let Some(url) = find_url(&line, "ws://", "/ws")
            {
                self.ws_url = Some(url);
            }
            self.log.push(line.clone());
            if done(self) {
                return Some(line);
            }
        }
    }

    /// Reads stderr until a line contains `needle`; returns it, or `None` after `timeout`.
    pub async fn line_containing(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let start = self.log.len();
        self.wait_for(timeout, |s| {
            s.log[start..].iter().any(|l| l.contains(needle))
        })
        .await
    }

    /// Whether any stderr line read so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|l| l.contains(needle))
    }

    /// The WebSocket URL; panics when the server does not serve WebSocket.
    pub fn ws(&self) -> &str {
        self.ws_url.as_deref().expect("server serves WebSocket")
    }

    /// The streamable HTTP URL; panics when the server does not serve HTTP.
    pub fn http(&self) -> &str {
        self.http_url.as_deref().expect("server serves HTTP")
    }
}

fn find_url(line: &str, scheme: &str, path: &str) -> Option<String> {
    let start = line.find(scheme)?;
    let rest = &line[start..];
    let end = rest.find(path)? + path.len();
    Some(rest[..end].to_owned())
}

/// A JSON-RPC request.
pub fn request(id: u64, method: &str, params: serde_json::Value) -> String {
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
        .to_string()
}

/// The `initialize` request every session starts with.
pub fn initialize(id: u64, capabilities: serde_json::Value) -> String {
    request(
        id,
        "initialize",
        serde_json::json!({
            "protocolVersion": "2025-06-18",
            "capabilities": capabilities,
            "clientInfo": { "name": "mcp-expose-tests", "version": "0" },
        }),
    )
}

/// A `tools/call` request for `name` with `arguments`.
pub fn tool_call(id: u64, name: &str, arguments: serde_json::Value) -> String {
    request(
        id,
        "tools/call",
        serde_json::json!({ "name": name, "arguments": arguments }),
    )
}

/// The version of PyPI's `mcp` (the official Python SDK 2.x) in the virtualenv `.venv-mcp2`.
pub const PYTHON_SDK2_VERSION: &str = "2.3.0";

/// The Python of the virtualenv `.venv-mcp2` at the workspace root, which holds the official
/// Python SDK 2.x ([`PYTHON_SDK2_VERSION`]) beside the global 1.x; scripts/test.sh creates it.
/// Panics with the command that creates it when it is missing.
pub fn python_sdk2() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let python = root.join(".venv-mcp2").join("bin").join("python");
    let check = format!(
        "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '{PYTHON_SDK2_VERSION}')"
    );
    let probe = std::process::Command::new(&python)
        .args(["-c", &check])
        .stderr(Stdio::null())
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "the Python SDK 2.x tests need the virtualenv {venv} with mcp=={PYTHON_SDK2_VERSION}: \
         run scripts/test.sh, or `cd {root} && python3 -m venv .venv-mcp2 && \
         .venv-mcp2/bin/python -m pip install 'mcp=={PYTHON_SDK2_VERSION}'`",
        venv = root.join(".venv-mcp2").display(),
        root = root.display(),
    );
    python
}

/// The path of `tests/python/NAME` (a script; nothing checked).
pub fn python_script(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    path.join(name).display().to_string()
}

/// The path of `tests/python/NAME`, a Python stdio MCP server (PyPI's `mcp` 1.x), after
/// checking that `mcp` imports.
pub fn python_server(name: &str) -> String {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import mcp.server.fastmcp"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "the Python child needs PyPI's `mcp<2` (pip install 'mcp<2'; .ci/run installs it)"
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    path.join(name).display().to_string()
}

/// The `notifications/initialized` notification.
pub fn initialized() -> String {
    serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string()
}

/// The JSON-RPC messages of a streamable HTTP response body: one JSON body
/// (`application/json`) or the `data:` lines of an event stream (`text/event-stream`).
pub fn http_messages(content_type: &str, body: &str) -> Vec<serde_json::Value> {
    if content_type.starts_with("application/json") {
        return vec![serde_json::from_str(body).expect("a JSON body")];
    }
    assert!(
        content_type.starts_with("text/event-stream"),
        "unexpected content type {content_type}"
    );
    body.lines()
        .filter_map(|line| line.strip_prefix("data: ").or(line.strip_prefix("data:")))
        // The priming event (an id and empty data) carries no message.
        .filter(|data| !data.trim().is_empty())
        .map(|data| serde_json::from_str(data).expect("JSON event data"))
        .collect()
}

/// The `Mcp-Session-Id` a response to `initialize` opened.
pub fn session_id(response: &reqwest::Response) -> String {
    response.headers()["mcp-session-id"]
        .to_str()
        .expect("a session id")
        .to_owned()
}

/// The JSON-RPC messages of a streamable HTTP response, whichever its content type.
pub async fn response_messages(response: reqwest::Response) -> Vec<serde_json::Value> {
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap_or("")
        .to_owned();
    http_messages(&content_type, &response.text().await.expect("a body"))
}

/// Asserts `value` is 4/6 to four decimals (the GC content of GGCCAT).
pub fn assert_gc_ggccat(value: f64) {
    assert!(
        (value - 4.0 / 6.0).abs() < 5e-5,
        "gc_content(GGCCAT) = {value}, expected 0.6667"
    );
}

/// A WebSocket client connection.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one text frame.
pub async fn send(socket: &mut Socket, text: String) {
    use futures::SinkExt as _;
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .expect("send");
}

/// The next text frame as JSON (pings and pongs skipped), within 20 s.
pub async fn next_json(socket: &mut Socket) -> serde_json::Value {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let text = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("a frame within 20 s");
    serde_json::from_str(&text).expect("JSON frame")
}

/// Whether `pid` is a live process (a zombie awaiting its reaper does not count).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            != Some("Z")
    })
}

/// Waits (at most `limit`) for `pid` to be gone; whether it is.
pub async fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline && alive(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !alive(pid)
}

/// `kill SIGNAL PID`; panics when it fails.
pub fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// The sum of the Prometheus samples named `name` whose labels include every one of `labels`
/// (`transport="ws"`), in a `/metrics` text.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The resident memory of `pid`, in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A raw WebSocket connection to `url` (`ws://HOST:PORT/PATH`, handshake done), for frames a
/// client library would not send; a small receive buffer makes what the server sends back up
/// quickly when the test does not read.
pub async fn raw_websocket(url: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.trim_start_matches("ws://");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut tcp = socket
        .connect(authority.parse().expect("addr"))
        .await
        .expect("connect");
    let head = format!(
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("handshake");
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.expect("handshake response");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    tcp
}

/// `count` masked client pings with the largest control payload (125 bytes), back to back:
/// each asks the server for a pong as large.
pub fn ping_frames(count: usize) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut ping = vec![0x89, 0x80 | 125];
    ping.extend(mask);
    ping.extend((0..125u8).map(|i| i ^ mask[usize::from(i % 4)]));
    ping.iter()
        .copied()
        .cycle()
        .take(ping.len() * count)
        .collect()
}

/// A `redis-server` of the test's own on a free loopback port, with nothing saved to disk;
/// killed when dropped.
#[allow(missing_debug_implementations)]
pub struct RedisServer {
    child: Option<std::process::Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one and waits (at most 10 s) until it answers `PING`.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self { child: None, port };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it (SIGKILL), as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was saved).
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs Debian's redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping().await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ping(&self) -> bool {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").await.is_ok()
            && tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply))
                .await
                .is_ok_and(|r| r.is_ok())
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
