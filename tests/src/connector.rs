//! `mcp-expose connect` as a child process with piped stdin/stdout, driven the way Claude
//! Desktop drives a stdio server.

use std::{
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::{assert_gc_ggccat, bin, initialize, initialized, request};

/// How long a test waits for one answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `mcp-expose connect`, killed when dropped.
#[derive(Debug)]
pub struct Connector {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every stderr line so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Connector {
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(bin("mcp-expose"))
            .arg("connect")
            .args(args)
            // The restart tests look for the re-initialization in the log; CONNECT_TEST_LOG=debug
            // shows everything when one fails.
            .env(
                "RUST_LOG",
                std::env::var("CONNECT_TEST_LOG").unwrap_or_else(|_| "mcp_expose=info".to_owned()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mcp-expose connect");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().expect("stderr log").push(line);
            }
        });
        Self {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("stdout")).lines(),
            stderr,
            child,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr log").join("\n")
    }

    /// Waits (bounded) until the connector logged a line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?} within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).await.expect("write");
        stdin.write_all(b"\n").await.expect("write");
        stdin.flush().await.expect("flush");
    }

    /// The next stdout line, which must be one JSON-RPC message.
    pub async fn next(&mut self, timeout: Duration) -> Value {
        let line = tokio::time::timeout(timeout, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("no output within {timeout:?}; stderr:\n{}", self.stderr()))
            .expect("read stdout")
            .unwrap_or_else(|| panic!("stdout closed; stderr:\n{}", self.stderr()));
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC: {line}");
        value
    }

    /// Sends a request and returns its response (other messages on the way are skipped).
    pub async fn call(&mut self, id: u64, method: &str, params: Value, timeout: Duration) -> Value {
        self.send(&request(id, method, params)).await;
        self.response(id, timeout).await
    }

    pub async fn response(&mut self, id: u64, timeout: Duration) -> Value {
        for _ in 0..50 {
            let message = self.next(timeout).await;
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
        panic!("no response to request {id} within 50 messages");
    }

    pub async fn handshake(&mut self) -> Value {
        self.send(&initialize(1, json!({}))).await;
        let reply = self.response(1, READ_TIMEOUT).await;
        self.send(&initialized()).await;
        reply
    }

    pub async fn gc_content(&mut self, id: u64, timeout: Duration) -> Value {
        self.call(
            id,
            "tools/call",
            json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
            timeout,
        )
        .await
    }

    /// Closes stdin, the way a client shuts a stdio server down, and waits for the exit.
    pub async fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit after stdin closed; stderr:\n{}", self.stderr()))
            .expect("wait")
    }
}

/// `gc_content("GGCCAT")`'s answer.
pub fn assert_gc_result(reply: &Value) {
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    let value = reply["result"]["structuredContent"]["result"]
        .as_f64()
        .unwrap_or_else(|| panic!("no structured result: {reply}"));
    assert_gc_ggccat(value);
}
