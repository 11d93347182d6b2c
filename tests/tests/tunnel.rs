//! `--tunnel` against a faithful cloudflared test double (`src/bin/cloudflared/`, following
//! shared/facts/cloudflared.md): discovery, readiness, restarts, failures and clean stops, with
//! the real `bioseq` binary and real processes.

use std::time::{Duration, Instant};

use mcp_expose_tests::{
    ServerProcess, alive, gone_within, initialize, kill, sample,
    tunnel::{banner_host, pid_from, start, temp_file, token},
};
use serde_json::{Value, json};

async fn initialize_status(server: &ServerProcess, host: &str) -> u16 {
    initialize_with(server, host, Some(&token(server))).await
}

async fn initialize_with(server: &ServerProcess, host: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().post(server.http());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
        .header("host", host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn quick_tunnel_url_is_printed_once_ready_and_its_host_is_served() {
    // cloudflared's own lines (its registration among them) are logged at debug.
    let debug = ["--log-level", "info,rmcp=warn,cloudflared=debug"];
    let mut server = start(&[&["--http", "0", "--tunnel"][..], &debug].concat(), &[]).await;
    let registered = server
        .line_containing("Registered tunnel connection", Duration::from_secs(20))
        .await;
    assert!(registered.is_some(), "log:\n{}", server.log.join("\n"));
    let since_ready = Instant::now();
    let banner = server
        .line_containing("streamable HTTP: https://", Duration::from_secs(5))
        .await
        .expect("banner");
    // The double turns /ready to 200 as it logs the registration: the URL follows within 2 s.
    assert!(
        since_ready.elapsed() < Duration::from_secs(2),
        "URL printed {:?} after ready",
        since_ready.elapsed()
    );
    let host = banner_host(&banner);
    assert!(host.ends_with(".trycloudflare.com"), "{host}");
    let ws = server
        .line_containing("WebSocket:       wss://", Duration::from_secs(2))
        .await
        .expect("wss URL");
    assert!(ws.contains(&format!("wss://{host}/ws")), "{ws}");
    let claude = server
        .line_containing("\"args\":[\"connect\",\"https://", Duration::from_secs(2))
        .await
        .expect("a Claude Desktop config through the connector");
    assert_eq!(initialize_status(&server, &host).await, 200);
    assert_eq!(
        initialize_status(&server, "other-words.trycloudflare.com").await,
        403
    );
    // A tunnel turns authentication on: the generated token is in the printed configs.
    assert_eq!(initialize_with(&server, &host, None).await, 401);
    assert_eq!(initialize_with(&server, &host, Some("wrong")).await, 401);
    assert!(
        claude.contains(&format!("Bearer {}", token(&server))),
        "{claude}"
    );
    assert!(
        claude.contains("--header-env") && claude.contains("\"command\":\"mcp-expose\""),
        "{claude}"
    );
}

#[tokio::test]
async fn behind_the_tunnel_failed_tokens_count_per_client() {
    // Every tunnelled request arrives from cloudflared on loopback; the client is the one
    // Cloudflare's edge names in `Cf-Connecting-IP`.
    let mut server = start(
        &["--http", "0", "--tunnel", "--max-auth-failures", "2"],
        &[],
    )
    .await;
    let banner = server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .expect("banner");
    let host = banner_host(&banner);
    let token = token(&server);
    let from = |client: &'static str, token: String| {
        reqwest::Client::new()
            .post(server.http())
            .header("authorization", format!("Bearer {token}"))
            .header("host", &host)
            .header("cf-connecting-ip", client)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize(1, json!({})))
            .send()
    };
    let status = |r: reqwest::Result<reqwest::Response>| r.expect("request").status().as_u16();
    for guess in ["a", "b"] {
        assert_eq!(status(from("203.0.113.7", guess.into()).await), 401);
    }
    assert_eq!(status(from("203.0.113.7", token.clone()).await), 429);
    assert_eq!(status(from("198.51.100.2", token.clone()).await), 200);
    assert_eq!(initialize_status(&server, &host).await, 200);
}

#[tokio::test]
async fn no_auth_opts_out_with_a_warning() {
    let mut server = start(&["--http", "0", "--tunnel", "--no-auth"], &[]).await;
    let banner = server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .expect("banner");
    let host = banner_host(&banner);
    assert!(
        server
            .line_containing("no authentication", Duration::from_secs(2))
            .await
            .is_some()
    );
    assert_eq!(initialize_with(&server, &host, None).await, 200);
}

#[tokio::test]
async fn killed_cloudflared_is_restarted_with_a_new_url_and_one_restart_is_reported() {
    let pidfile = temp_file("restart.pid");
    let env = [("FAKE_CLOUDFLARED_PIDFILE", pidfile.display().to_string())];
    let mut server = start(&["--http", "0", "--tunnel", "--tunnel-tools"], &env).await;
    let first = banner_host(
        &server
            .line_containing("streamable HTTP: https://", Duration::from_secs(20))
            .await
            .expect("first URL"),
    );
    let pid = pid_from(&pidfile);
    std::fs::remove_file(&pidfile).expect("remove pid file");
    kill("-KILL", pid);
    let restarting = server
        .line_containing("restarting in", Duration::from_secs(5))
        .await
        .expect("restart scheduled");
    let delay: f64 = restarting
        .split("restarting in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("delay");
    assert!(
        delay <= 1.0,
        "first backoff step is at most 1 s, got {delay}"
    );
    let second = banner_host(
        &server
            .line_containing("streamable HTTP: https://", Duration::from_secs(10))
            .await
            .expect("new URL"),
    );
    assert_ne!(first, second, "a restarted quick tunnel has a new hostname");
    assert!(server.logged("restart 1"));
    assert_eq!(
        initialize_status(&server, &second).await,
        200,
        "the new hostname is allowed"
    );
    assert_eq!(
        initialize_status(&server, &first).await,
        403,
        "the dead hostname is not"
    );

    // get_tunnel_status over streamable HTTP.
    let client = reqwest::Client::new();
    let post = |body: String, session: Option<String>| {
        let mut request = client
            .post(server.http())
            .header("authorization", format!("Bearer {}", token(&server)))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.body(body).send()
    };
    let init = post(initialize(1, json!({})), None)
        .await
        .expect("initialize");
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .expect("session")
        .to_owned();
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_tunnel_status","arguments":{}}});
    let body = post(call.to_string(), Some(session))
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    let data = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find(|d| d.contains("\"id\":2"))
        .expect("result event");
    let result: Value = serde_json::from_str(data).expect("JSON");
    let status = &result["result"]["structuredContent"];
    assert_eq!(status["restarts"], 1, "{status}");
    assert_eq!(status["status"], "ready");
    assert_eq!(status["url"], format!("https://{second}"));
    assert_eq!(status["cloudflared_version"], "2026.8.2");
    assert_eq!(status["ready_connections"], 1);

    // The same, in Prometheus form (behind the token on the main listener).
    let text = client
        .get(server.http().replace("/mcp", "/metrics"))
        .header("authorization", format!("Bearer {}", token(&server)))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(
        sample(&text, "mcp_tunnel_restarts_total", &[]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "mcp_tunnel_state", &[r#"state="ready""#]),
        1.0
    );
    assert_eq!(
        sample(&text, "mcp_tunnel_state", &[]),
        1.0,
        "one state at a time"
    );
    assert_eq!(sample(&text, "mcp_tunnel_ready_connections", &[]), 1.0);
}

#[tokio::test]
async fn configuration_error_is_reported_and_not_restarted() {
    let token = temp_file("token");
    std::fs::write(&token, "not-a-valid-token").expect("token file");
    let token_arg = token.display().to_string();
    let args = [
        "--http",
        "0",
        "--tunnel-token-file",
        token_arg.as_str(),
        "--public-hostname",
        "mcp.example.com",
    ];
    let mut server = start(&args, &[("FAKE_CLOUDFLARED_MODE", "bad-token".to_owned())]).await;
    let line = server
        .line_containing("tunnel unavailable", Duration::from_secs(20))
        .await
        .expect("failure reported");
    assert!(line.contains("token"), "{line}");
    assert!(
        server
            .line_containing("restarting in", Duration::from_millis(1500))
            .await
            .is_none()
    );
    assert_eq!(
        initialize_status(&server, "127.0.0.1").await,
        200,
        "the local server keeps serving"
    );
    assert!(
        !server.logged("not-a-valid-token"),
        "the token never reaches the log"
    );
}

#[tokio::test]
async fn missing_cloudflared_is_a_clear_error_while_the_local_server_serves() {
    let mut server = start(
        &[
            "--http",
            "0",
            "--tunnel",
            "--cloudflared",
            "/nonexistent/cloudflared",
        ],
        &[],
    )
    .await;
    let line = server
        .line_containing("tunnel unavailable", Duration::from_secs(20))
        .await
        .expect("error");
    assert!(
        line.contains("cloudflared not found") && line.contains("install"),
        "{line}"
    );
    assert_eq!(initialize_status(&server, "localhost").await, 200);
    let said = |s: &ServerProcess| s.log.iter().filter(|l| l.contains("not found")).count();
    assert_eq!(
        said(&server),
        1,
        "said once; log:\n{}",
        server.log.join("\n")
    );

    let mut required = start(
        &[
            "--http",
            "0",
            "--tunnel",
            "--tunnel-required",
            "--cloudflared",
            "/nonexistent/cloudflared",
        ],
        &[],
    )
    .await;
    let status = tokio::time::timeout(Duration::from_secs(20), required.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(!status.success(), "--tunnel-required makes it fatal");
    // Everything it wrote, up to the end of its stderr.
    let _ = required
        .line_containing("\u{0}", Duration::from_secs(5))
        .await;
    assert!(required.logged("required"), "{}", required.log.join("\n"));
    assert_eq!(
        said(&required),
        1,
        "said once; log:\n{}",
        required.log.join("\n")
    );
}

#[tokio::test]
async fn sigterm_of_the_server_stops_cloudflared() {
    let pidfile = temp_file("sigterm.pid");
    let env = [("FAKE_CLOUDFLARED_PIDFILE", pidfile.display().to_string())];
    let mut server = start(&["--http", "0", "--tunnel"], &env).await;
    server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .expect("ready");
    let double = pid_from(&pidfile);
    kill("-TERM", server.child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success());
    assert!(!alive(double), "cloudflared outlived the server");
}

#[tokio::test]
async fn sigkill_of_the_server_leaves_no_cloudflared_within_two_seconds() {
    let pidfile = temp_file("sigkill.pid");
    let env = [("FAKE_CLOUDFLARED_PIDFILE", pidfile.display().to_string())];
    let mut server = start(&["--http", "0", "--tunnel"], &env).await;
    server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .expect("ready");
    let double = pid_from(&pidfile);
    kill("-KILL", server.child.id().expect("pid"));
    let _ = server.child.wait().await;
    assert!(
        gone_within(double, Duration::from_secs(2)).await,
        "cloudflared still runs 2 s after SIGKILL of the server"
    );
}

#[tokio::test]
async fn a_cloudflared_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let pidfile = temp_file("stubborn.pid");
    let env = [
        ("FAKE_CLOUDFLARED_PIDFILE", pidfile.display().to_string()),
        ("FAKE_CLOUDFLARED_MODE", "ignore-sigterm".to_owned()),
    ];
    let mut server = start(&["--http", "0", "--tunnel"], &env).await;
    server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .expect("ready");
    let double = pid_from(&pidfile);
    kill("-TERM", server.child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success());
    assert!(!alive(double));
}

#[tokio::test]
async fn rate_limited_creation_backs_off_long() {
    let mut server = start(
        &["--http", "0", "--tunnel"],
        &[("FAKE_CLOUDFLARED_MODE", "rate-limited".to_owned())],
    )
    .await;
    let line = server
        .line_containing("restarting in", Duration::from_secs(20))
        .await
        .expect("restart scheduled");
    assert!(line.contains("rate limited"), "{line}");
    let delay: f64 = line
        .split("restarting in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("delay");
    assert!(delay >= 150.0, "rate limiting waits minutes, got {delay} s");
}

#[tokio::test]
async fn a_tunnel_that_never_becomes_ready_times_out_and_restarts() {
    let args = ["--http", "0", "--tunnel", "--tunnel-ready-timeout", "1"];
    let mut server = start(
        &args,
        &[("FAKE_CLOUDFLARED_MODE", "never-ready".to_owned())],
    )
    .await;
    let line = server
        .line_containing("restarting in", Duration::from_secs(20))
        .await
        .expect("restart scheduled");
    assert!(line.contains("not ready within"), "{line}");
}

fn run_bioseq(args: &[&str]) -> String {
    let output = std::process::Command::new(mcp_expose_tests::bin("bioseq"))
        .args(args)
        .output()
        .expect("run bioseq");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn print_cloudflared_config_routes_http_and_ws_and_ends_with_404() {
    let yaml = run_bioseq(&[
        "--http",
        "8000",
        "--print-cloudflared-config",
        "--public-hostname",
        "mcp.example.com",
        "--tunnel-id",
        "6ff42ae2-765d-4adf-8112-31c55c1551ef",
        "--credentials-file",
        "/etc/cloudflared/t.json",
    ]);
    assert!(
        yaml.contains("tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n"),
        "{yaml}"
    );
    assert!(yaml.contains("credentials-file: /etc/cloudflared/t.json\n"));
    assert!(yaml.contains("  - hostname: mcp.example.com\n    service: http://127.0.0.1:8000\n"));
    assert!(
        yaml.trim_end().ends_with("- service: http_status:404"),
        "{yaml}"
    );

    let split = run_bioseq(&[
        "--http",
        "8000",
        "--ws",
        "8001",
        "--print-cloudflared-config",
        "--public-hostname",
        "h.example.com",
    ]);
    assert!(
        split.contains("    path: ^/ws$\n    service: http://127.0.0.1:8001\n"),
        "{split}"
    );
}

#[test]
fn print_systemd_unit_restarts_on_failure_and_keeps_secrets_out_of_argv() {
    let unit = run_bioseq(&["--http", "8000", "--tunnel", "--print-systemd-unit"]);
    assert!(unit.contains("Restart=on-failure"));
    assert!(unit.contains("EnvironmentFile=-/etc/bioseq/env"));
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(exec.ends_with("bioseq --http 8000 --tunnel"), "{exec}");
    assert!(unit.contains("WantedBy=multi-user.target"));
}
