//! `mcp-expose gateway`: two stdio servers (bioseq and a Python server) under path prefixes on
//! one port.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use mcp_expose_tests::{ServerProcess, assert_gc_ggccat, bin, initialize, initialized, request};
use rmcp::{
    ServiceExt as _, model::CallToolRequestParams, transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-expose-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config");
    path
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

#[tokio::test]
async fn two_servers_under_prefixes_on_one_port() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/child_server.py");
    let text = format!(
        "[servers.bioseq]\ncommand = [{}]\n\n[servers.py]\ncommand = [\"python3\", {}]\nchild = \"shared\"\n",
        toml_string(&bin("bioseq").display().to_string()),
        toml_string(&script.display().to_string()),
    );
    let path = config("two.toml", &text);
    let path = path.display().to_string();
    let server = ServerProcess::start(
        "mcp-expose",
        &["gateway", &path, "--http", "0", "--ws", "0"],
    )
    .await;
    let base = server.http().trim_end_matches("/mcp").to_owned();

    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{base}/bioseq/mcp"
        )))
        .await
        .expect("initialize bioseq");
    let arguments = json!({ "seq": "GGCCAT" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new("gc_content").with_arguments(arguments))
        .await
        .expect("call");
    assert_gc_ggccat(
        result.structured_content.expect("structured")["result"]
            .as_f64()
            .expect("number"),
    );
    client.cancel().await.expect("close");

    let ws = format!("{}/py/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = connect_async(ws).await.expect("handshake");
    socket
        .send(Message::text(initialize(0, json!({}))))
        .await
        .expect("send");
    let mut frames = Vec::new();
    socket
        .send(Message::text(initialized()))
        .await
        .expect("send");
    socket
        .send(Message::text(request(
            1,
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "via gateway" } }),
        )))
        .await
        .expect("send");
    while frames.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                frames.push(serde_json::from_str::<Value>(&text).expect("JSON"))
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    assert_eq!(frames[0]["result"]["serverInfo"]["name"], "py-child");
    assert_eq!(frames[1]["result"]["content"][0]["text"], "via gateway");

    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["status"], "ok", "{health}");
    assert!(
        health["servers"]["bioseq"].is_object() && health["servers"]["py"].is_object(),
        "{health}"
    );
    assert_eq!(
        reqwest::get(format!("{base}/nope/mcp"))
            .await
            .expect("404")
            .status(),
        404
    );
}

#[test]
fn a_bad_config_is_an_error_naming_the_line() {
    let path = config(
        "bad.toml",
        "[servers.a]\ncommand = [\"true\"]\nchild = \"sharde\"\n",
    );
    let output = std::process::Command::new(bin("mcp-expose"))
        .args(["gateway"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("sharde"), "{stderr}");
}

#[test]
fn cloudflared_config_routes_each_server_by_path_or_subdomain() {
    let path = config(
        "print.toml",
        "[servers.github]\ncommand = [\"x\"]\n[servers.db]\ncommand = [\"y\"]\n",
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "gateway",
            path.to_str().expect("path"),
            "--http",
            "8000",
            "--print-cloudflared-config",
        ];
        args.extend_from_slice(&["--public-hostname", "mcp.example.com"]);
        args.extend_from_slice(extra);
        let output = std::process::Command::new(bin("mcp-expose"))
            .args(&args)
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let by_path = run(&[]);
    assert!(by_path.contains("  - hostname: mcp.example.com\n    path: ^/github/(mcp|ws)$\n    service: http://127.0.0.1:8000\n"), "{by_path}");
    assert!(by_path.contains("path: ^/db/(mcp|ws)$"));
    assert!(by_path.trim_end().ends_with("- service: http_status:404"));
    let by_subdomain = run(&["--by-subdomain"]);
    assert!(
        by_subdomain.contains("  - hostname: github.mcp.example.com\n"),
        "{by_subdomain}"
    );
}
