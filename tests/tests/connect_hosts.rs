//! Desktop hosts of an older revision through `mcp-expose connect`: the official Python SDK
//! 1.x (MCP 2025-11-25, stdio) reaching a server over MCP 2026-07-28 only (the connector
//! answers `initialize` from `server/discover` and turns input-required results into the
//! host's sampling, elicitation and roots), and a server that speaks only the HTTP+SSE
//! transport of 2024-11-05 (the connector falls back to it).

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess, bin, connector::Connector, python_script, python_server, replicas::free_port,
};
use serde_json::{Value, json};

/// Runs the Python host (`tests/python/stdio_host.py`) with `mcp-expose connect ARGS`, calling
/// `tool`; its report.
async fn host(tool: &str, arguments: Value, connect: &[&str]) -> Value {
    let connector = bin("mcp-expose").display().to_string();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg(python_script("stdio_host.py"))
            .args([tool, &arguments.to_string(), &connector, "connect"])
            .args(connect)
            .output(),
    )
    .await
    .expect("the host finishes within 60 s")
    .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

#[tokio::test]
async fn a_2025_host_answers_a_2026_servers_sampling_elicitation_and_roots() {
    let _ = python_server("stdio_host.py");
    // A server of MCP 2026-07-28 alone: it refuses `initialize`.
    let server = ServerProcess::start(
        "conformance-server",
        &["--http", "0", "--protocol", "2026-07-28"],
    )
    .await;
    let url = server.http().to_owned();
    let connect = [url.as_str()];

    let sampled = host("test_sampling", json!({ "prompt": "Say hi" }), &connect).await;
    assert_eq!(sampled["protocol"], "2025-11-25", "{sampled}");
    assert_eq!(sampled["is_error"], false, "{sampled}");
    assert_eq!(
        sampled["text"],
        json!(["LLM response: from the host"]),
        "{sampled}"
    );
    assert_eq!(
        sampled["asked"],
        json!(["sampling/createMessage"]),
        "{sampled}"
    );

    let elicited = host(
        "test_input_required_result_elicitation",
        json!({}),
        &connect,
    )
    .await;
    assert_eq!(
        elicited["asked"],
        json!(["elicitation/create"]),
        "{elicited}"
    );
    assert_eq!(elicited["is_error"], false, "{elicited}");

    let rooted = host("test_input_required_result_list_roots", json!({}), &connect).await;
    assert_eq!(rooted["asked"], json!(["roots/list"]), "{rooted}");
    let text = rooted["text"].to_string();
    assert!(text.contains("file:///srv/data"), "{rooted}");

    // A host's initialize sent as it is (`--protocol 2025-11-25`) is refused by this server.
    let mut direct = Connector::start(&[&url, "--protocol", "2025-11-25"], &[]).await;
    let refused = direct.handshake().await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    drop(direct);

    // Through the connector by default the server saw no 2025 request but that one, and two
    // rounds per call.
    let metrics = reqwest::get(url.replace("/mcp", "/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains(r#"mcp_requests_total{transport="http",method="initialize"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mcp_requests_total{transport="http",method="tools/call"} 6"#),
        "three calls of two rounds each:\n{metrics}"
    );
}

#[tokio::test]
async fn falls_back_to_http_sse_for_a_legacy_server() {
    let script = python_server("legacy_sse_server.py");
    let port = free_port();
    let log = std::env::temp_dir().join(format!("mcp-expose-legacy-sse-{port}.log"));
    let mut server = tokio::process::Command::new("python3")
        .args([script, port.to_string()])
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("start the legacy server");
    let ready = async {
        for _ in 0..150 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(ready.await, "the legacy server listens within 15 s");
    let url = format!("http://127.0.0.1:{port}/sse");

    let echoed = host("echo", json!({ "text": "over SSE" }), &[&url]).await;
    assert_eq!(echoed["text"], json!(["over SSE"]), "{echoed}");
    assert_eq!(echoed["tools"], json!(["echo", "ask"]), "{echoed}");
    // A request from the server on the event stream reaches the host, and its answer returns.
    let asked = host("ask", json!({ "question": "Who?" }), &[&url]).await;
    assert_eq!(asked["text"], json!(["from the host"]), "{asked}");
    assert_eq!(asked["asked"], json!(["sampling/createMessage"]), "{asked}");

    server.kill().await.expect("stop the legacy server");
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(seen.contains("GET /sse"), "{seen}");
    assert!(seen.contains("POST /messages/"), "{seen}");
    let _ = std::fs::remove_file(&log);
}
