//! The bridge on replicas (issue 18): per-session children are processes and cannot move, so
//! nginx (`mcp-expose bridge --print-nginx-config`) sends a session's requests to the bridge
//! whose replica id starts the session id, and everything without a session (new sessions,
//! MCP 2026-07-28 requests) round-robin.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess,
    replicas::{self, Nginx, free_port},
    response_messages,
};
use serde_json::json;

/// POSTs `body` to `url`, in `session` (2025-11-25) when given.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    session: Option<&str>,
) -> reqwest::Response {
    replicas::post(client, url, body, session)
        .await
        .expect("an answer")
}

/// Asserts that `answer` is `test_simple_text`'s.
async fn assert_simple_text(answer: reqwest::Response) {
    assert!(answer.status().is_success(), "{}", answer.status());
    let messages = response_messages(answer).await;
    assert_eq!(
        messages.last().map(|m| &m["result"]["content"][0]["text"]),
        Some(&json!("This is a simple text response for testing.")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn sessions_stay_on_their_bridge_and_2026_requests_go_round_robin() {
    let child = mcp_expose_tests::bin("conformance-server");
    let child = child.to_str().expect("a path");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut bridges = Vec::new();
    for port in &ports {
        let port = port.to_string();
        let args = ["bridge", "--http", &port, "--", child];
        bridges.push(ServerProcess::start("mcp-expose", &args).await);
    }
    let front = free_port();
    let replicas: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let printed = std::process::Command::new(mcp_expose_tests::bin("mcp-expose"))
        .args(["bridge", "--print-nginx-config", "--replicas"])
        .arg(replicas.join(","))
        .arg("--nginx-listen")
        .arg(format!("127.0.0.1:{front}"))
        .output()
        .expect("--print-nginx-config");
    assert!(printed.status.success(), "{printed:?}");
    let config = String::from_utf8(printed.stdout).expect("text");
    let _nginx = Nginx::start(&config, front, "/health").await;
    let url = format!("http://127.0.0.1:{front}/mcp");
    let client = reqwest::Client::new();

    // Six sessions, created round-robin: two on each bridge, each named by its session id.
    let mut sessions = Vec::new();
    for _ in 0..6 {
        let init = post(
            &client,
            &url,
            mcp_expose_tests::initialize(1, json!({})),
            None,
        )
        .await;
        assert!(init.status().is_success(), "{}", init.status());
        let session = mcp_expose_tests::session_id(&init);
        response_messages(init).await;
        sessions.push(session);
    }
    for port in &ports {
        let here = sessions
            .iter()
            .filter(|s| s.starts_with(&format!("{port}.")))
            .count();
        assert_eq!(
            here, 2,
            "two sessions on the bridge at {port}: {sessions:?}"
        );
    }
    // Every request of a session reaches its bridge (round-robin would miss 2 of 3).
    for session in &sessions {
        let ack = post(
            &client,
            &url,
            mcp_expose_tests::initialized(),
            Some(session),
        )
        .await;
        assert!(ack.status().is_success(), "{}", ack.status());
        for id in 2..7 {
            let call = mcp_expose_tests::tool_call(id, "test_simple_text", json!({}));
            assert_simple_text(post(&client, &url, call, Some(session)).await).await;
        }
    }
    // MCP 2026-07-28 requests carry no session: any bridge answers them.
    for id in 0..6 {
        let call = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {
                "name": "test_simple_text", "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        });
        let answer = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "test_simple_text")
            .timeout(Duration::from_secs(20))
            .body(call.to_string())
            .send()
            .await
            .expect("an answer");
        assert_simple_text(answer).await;
    }
}

/// The gateway names its sessions the same way (`--replica-id`, else its `--http` port), and
/// prints the same nginx routing.
#[tokio::test]
async fn gateway_sessions_start_with_its_replica_id() {
    let dir = std::env::temp_dir().join(format!("mcp-gateway-replica-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("servers.toml");
    let child = serde_json::to_string(
        mcp_expose_tests::bin("conformance-server")
            .to_str()
            .expect("a path"),
    )
    .expect("toml");
    std::fs::write(&path, format!("[servers.conf]\ncommand = [{child}]\n")).expect("toml");
    let path = path.to_str().expect("a path");
    let args = ["gateway", path, "--http", "0", "--replica-id", "g1"];
    let gateway = ServerProcess::start("mcp-expose", &args).await;
    let client = reqwest::Client::new();
    let init = post(
        &client,
        gateway.http(),
        mcp_expose_tests::initialize(1, json!({})),
        None,
    )
    .await;
    assert!(init.status().is_success(), "{}", init.status());
    let session = mcp_expose_tests::session_id(&init);
    assert!(session.starts_with("g1."), "{session}");

    let printed = std::process::Command::new(mcp_expose_tests::bin("mcp-expose"))
        .args(["gateway", path, "--print-nginx-config", "--replicas"])
        .arg("g1=127.0.0.1:8001,g2=127.0.0.1:8002")
        .output()
        .expect("--print-nginx-config");
    let config = String::from_utf8_lossy(&printed.stdout);
    assert!(config.contains("\"~^g2\\.\" 127.0.0.1:8002;"), "{config}");
    let _ = std::fs::remove_dir_all(&dir);
}
