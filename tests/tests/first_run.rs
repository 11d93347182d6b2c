//! What a new user meets first, run as they would run it: fatal errors as one sentence,
//! `--help`, a bridge on a command that does not exist, the bridge's landing page, and the
//! official Python SDK ending its sessions without complaint.

use std::{process::Stdio, time::Duration};

use mcp_expose_tests::{ServerProcess, bin};
use serde_json::Value;

/// Runs `name args...` to its end (at most 30 s); (exit success, stdout, stderr).
async fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let child = tokio::process::Command::new(bin(name))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`{name} {}` did not end within 30 s", args.join(" ")))
        .expect("output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A fatal error is one line a person reads: no Rust struct, no `kind:`, and what to do.
fn assert_one_sentence(stderr: &str, cause: &str) {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error: ") || l.contains("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    let line = errors[0];
    assert!(line.contains(cause), "`{cause}` missing from: {line}");
    for debug in ["Error {", "kind:", "Some(", "Os {", "message:"] {
        assert!(!line.contains(debug), "a Debug struct leaked: {line}");
    }
}

#[tokio::test]
async fn fatal_errors_are_one_plain_sentence_with_what_to_do() {
    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (ok, _, stderr) = run("bioseq", &["--http", &port], &[]).await;
    assert!(!ok);
    assert_one_sentence(&stderr, &format!("cannot listen on 127.0.0.1:{port}"));
    assert!(stderr.contains("choose another port"), "{stderr}");

    // A print flag that lacks what it needs.
    let (ok, _, stderr) = run(
        "bioseq",
        &[
            "--print-cloudflared-config",
            "--public-hostname",
            "mcp.example.com",
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert_one_sentence(&stderr, "needs --http PORT");

    // A required tunnel without cloudflared.
    let (ok, _, stderr) = run(
        "bioseq",
        &[
            "--http",
            "0",
            "--tunnel-required",
            "--tunnel",
            "--cloudflared",
            "/nonexistent/cloudflared",
        ],
        &[],
    )
    .await;
    assert!(!ok);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("Error: "), "{stderr}");
    for debug in ["Error {", "kind:", "Some("] {
        assert!(!last.contains(debug), "a Debug struct leaked: {last}");
    }
}

#[tokio::test]
async fn help_speaks_to_users() {
    let (ok, help, _) = run("bioseq", &["--help"], &[]).await;
    assert!(ok);
    let first = help.lines().next().unwrap_or_default();
    assert!(first.starts_with("DNA sequence tools"), "{first}");
    assert!(!help.contains("The command line"), "{help}");

    let (_, hello, _) = run("hello", &["--help"], &[]).await;
    assert!(
        hello
            .lines()
            .next()
            .unwrap_or_default()
            .contains("an MCP server"),
        "{hello}"
    );

    let (ok, bridge, _) = run("mcp-expose", &["bridge", "--help"], &[]).await;
    assert!(ok);
    assert!(
        !bridge.contains("--stdio"),
        "the bridge cannot serve stdio:\n{bridge}"
    );
    let (_, gateway, _) = run("mcp-expose", &["gateway", "--help"], &[]).await;
    assert!(
        gateway.contains("at /NAME/mcp for each server"),
        "{gateway}"
    );
    assert!(!gateway.contains("--stdio"));
    let (_, connect, _) = run("mcp-expose", &["connect", "--help"], &[]).await;
    assert!(!connect.contains("children"), "{connect}");

    let (ok, script, _) = run("mcp-expose", &["completions", "bash"], &[]).await;
    assert!(ok && script.contains("mcp-expose") && script.contains("complete"));
}

#[tokio::test]
async fn a_bridge_on_a_command_that_does_not_exist_fails_at_start() {
    for command in ["/nonexistent/server", "no-such-mcp-server-anywhere"] {
        let (ok, _, stderr) =
            run("mcp-expose", &["bridge", "--http", "0", "--", command], &[]).await;
        assert!(!ok, "{command}: the bridge must not serve");
        assert_one_sentence(
            &stderr,
            &format!("cannot start the bridged command: `{command}`"),
        );
    }
    // A gateway checks each server's command the same way, naming the server.
    let dir = std::env::temp_dir().join(format!("mcp-expose-first-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("missing.toml");
    std::fs::write(
        &config,
        "[servers.gh]\ncommand = \"no-such-mcp-server --stdio\"\n",
    )
    .expect("config");
    let (ok, _, stderr) = run(
        "mcp-expose",
        &["gateway", config.to_str().expect("path"), "--http", "0"],
        &[],
    )
    .await;
    assert!(!ok);
    assert_one_sentence(&stderr, "`no-such-mcp-server`");
    assert!(stderr.contains("[servers.gh]"), "{stderr}");
}

#[tokio::test]
async fn the_bridges_root_is_a_landing_page_for_browsers_and_a_session_for_websocket_clients() {
    let bioseq = bin("bioseq").display().to_string();
    for args in [
        vec!["bridge", "--http", "0", "--ws", "0", "--", &bioseq],
        vec!["bridge", "--ws", "0", "--", &bioseq],
    ] {
        let server = ServerProcess::start("mcp-expose", &args).await;
        let root = server.ws().replace("ws://", "http://").replace("/ws", "/");
        let page = reqwest::Client::new()
            .get(&root)
            .header("accept", "text/html")
            .send()
            .await
            .expect("GET /");
        assert_eq!(page.status(), 200, "{args:?}");
        let html = page.text().await.expect("body");
        assert!(
            html.contains("<h1>bioseq</h1>"),
            "named after the program: {html}"
        );
        assert!(html.contains(server.ws()), "{html}");
        // A WebSocket client at `/` still reaches the child.
        let (mut socket, _) = tokio_tungstenite::connect_async(root.replace("http://", "ws://"))
            .await
            .expect("upgrade at /");
        mcp_expose_tests::send(
            &mut socket,
            mcp_expose_tests::initialize(1, serde_json::json!({})),
        )
        .await;
        let answer: Value = mcp_expose_tests::next_json(&mut socket).await;
        assert_eq!(answer["result"]["serverInfo"]["name"], "bioseq", "{answer}");
    }
}

/// The Python SDK's session script: `(stdout, stderr)`.
async fn python_session(url: &str) -> (Value, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sdk_session.py");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg(script)
            .args([url, "gc_content", r#"{"seq": "GGCCAT"}"#])
            .output(),
    )
    .await
    .expect("the SDK session ends within 60 s")
    .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (
        serde_json::from_slice(&output.stdout).expect("one JSON line"),
        stderr,
    )
}

#[tokio::test]
async fn the_python_sdk_ends_sessions_without_a_warning() {
    let direct = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let bioseq = bin("bioseq").display().to_string();
    let bridged =
        ServerProcess::start("mcp-expose", &["bridge", "--http", "0", "--", &bioseq]).await;
    for server in [&direct, &bridged] {
        let (result, stderr) = python_session(server.http()).await;
        assert_eq!(result["is_error"], false, "{result}");
        assert!(result["tools"].to_string().contains("gc_content"));
        assert!(
            !stderr.contains("Session termination failed"),
            "{}: {stderr}",
            server.http()
        );
    }
}

/// `hello` built as a new user builds it (its own features only, not the workspace's union):
/// it compiles with the dependencies its Cargo.toml names, and `--tunnel` in a build without
/// the `tunnel` feature says which feature to enable instead of "unexpected argument".
#[test]
fn without_the_tunnel_feature_tunnel_says_which_feature_to_enable() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    // Apart from the test build's binaries, which have every feature.
    let target = root.join("target").join("standalone");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "hello", "--target-dir"])
        .arg(&target)
        .current_dir(root)
        .status()
        .expect("cargo build");
    assert!(
        status.success(),
        "hello does not build on its own dependencies"
    );
    let output = std::process::Command::new(target.join("debug").join("hello"))
        .arg("--tunnel")
        .output()
        .expect("run hello");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_one_sentence(&stderr, "--tunnel needs mcp-expose's `tunnel` feature");
    assert!(
        stderr.contains("cargo add mcp-expose --features tunnel"),
        "{stderr}"
    );
}
