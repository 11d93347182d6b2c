//! `--tunnel` against the cloudflared double where the real binary was seen to differ offline
//! (shared/facts/cloudflared.md, "Seen with the real binary offline"): a user's own
//! `~/.cloudflared/config.yml`, no network, no DNS, an unreachable edge, the pre-check box,
//! start-up chatter, the bad token's second line, and metrics before any traffic. The server's
//! stderr at its default log level must say in one plain line what is wrong.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mcp_expose_tests::{
    ServerProcess, bin, sample,
    tunnel::{banner_host, start, temp_file, token, token_file},
};

/// Lines only cloudflared itself writes; none may reach the server's stderr at the default level.
const CHATTER: [&str; 8] = [
    "Thank you for trying Cloudflare Tunnel",
    "Requesting new quick Tunnel",
    "GOOS: linux",
    "Settings: map[",
    "Failed to fetch features",
    "ICMP proxy feature is disabled",
    "Please try the following things",
    "Failed to dial a quic connection",
];

fn assert_no_chatter(server: &ServerProcess) {
    for needle in CHATTER {
        let raw = server.log.iter().find(|l| l.contains(needle));
        assert!(
            raw.is_none(),
            "cloudflared's own line reached stderr: {raw:?}"
        );
    }
}

fn count(server: &ServerProcess, needle: &str) -> usize {
    server.log.iter().filter(|l| l.contains(needle)).count()
}

/// Reads the server's stderr until `n` lines contain `needle` (at most `timeout`).
async fn until_count(server: &mut ServerProcess, needle: &str, n: usize, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while count(server, needle) < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let seen = server.line_containing(needle, left).await;
        assert!(
            seen.is_some(),
            "{n} lines with {needle:?} expected within {timeout:?}; log:\n{}",
            server.log.join("\n")
        );
    }
}

/// `bioseq --http 0` behind a named tunnel for mcp.example.com, with `extra` arguments.
async fn named(name: &str, extra: &[&str], env: &[(&str, String)]) -> ServerProcess {
    let token = token_file(name).display().to_string();
    let mut args = vec![
        "--http",
        "0",
        "--tunnel-token-file",
        token.as_str(),
        "--public-hostname",
        "mcp.example.com",
    ];
    args.extend(extra);
    start(&args, env).await
}

#[tokio::test]
async fn named_tunnel_does_not_read_the_users_cloudflared_config() {
    // The real binary, run without --config, picks these up from ~/.cloudflared/config.yml.
    let home = temp_file("home");
    std::fs::create_dir_all(home.join(".cloudflared")).expect("home");
    std::fs::write(
        home.join(".cloudflared/config.yml"),
        "protocol: http2\nloglevel: debug\n",
    )
    .expect("config.yml");
    let env = [("HOME", home.display().to_string())];
    let debug = ["--log-level", "info,rmcp=warn,cloudflared=debug"];
    let mut server = named("config-token", &debug, &env).await;
    server
        .line_containing(
            "streamable HTTP: https://mcp.example.com/mcp",
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|| panic!("named tunnel ready; log:\n{}", server.log.join("\n")));
    until_count(
        &mut server,
        "Registered tunnel connection",
        4,
        Duration::from_secs(10),
    )
    .await;
    let settings = server
        .log
        .iter()
        .find(|l| l.contains("Settings: map["))
        .expect("cloudflared's Settings line at debug level");
    assert!(
        !settings.contains("http2") && !settings.contains("loglevel"),
        "{settings}"
    );
    assert!(
        settings.contains("config:"),
        "our own config is passed: {settings}"
    );
    let registered: Vec<&String> = (server.log.iter())
        .filter(|l| l.contains("Registered tunnel connection"))
        .collect();
    assert_eq!(registered.len(), 4, "{registered:?}");
    assert!(
        registered.iter().all(|l| l.contains("protocol=quic")),
        "{registered:?}"
    );
}

#[tokio::test]
async fn quick_tunnel_offline_says_in_one_line_per_attempt_what_is_wrong() {
    let env = [("FAKE_CLOUDFLARED_MODE", "offline".to_owned())];
    let mut server = start(&["--http", "0", "--tunnel"], &env).await;
    // The first two attempts (backoff 1 s, then 2 s, with jitter).
    until_count(
        &mut server,
        "cannot reach Cloudflare",
        2,
        Duration::from_secs(20),
    )
    .await;
    let line = server
        .log
        .iter()
        .find(|l| l.contains("cannot reach Cloudflare"))
        .expect("summary");
    assert!(
        line.contains("network is unreachable") && line.contains("; retrying in "),
        "{line}"
    );
    assert!(!line.contains("trycloudflare.com/tunnel"), "{line}");
    assert_eq!(count(&server, "restarting in"), 0, "one line per attempt");
    assert_no_chatter(&server);
}

#[tokio::test]
async fn named_tunnel_without_dns_is_summarised_not_echoed() {
    let env = [("FAKE_CLOUDFLARED_MODE", "no-dns".to_owned())];
    let mut server = named("no-dns-token", &[], &env).await;
    until_count(
        &mut server,
        "cannot reach Cloudflare",
        2,
        Duration::from_secs(20),
    )
    .await;
    let line = server
        .log
        .iter()
        .find(|l| l.contains("cannot reach Cloudflare"))
        .expect("summary");
    assert!(
        line.contains("_v2-origintunneld._tcp.argotunnel.com") && line.contains("retrying in"),
        "{line}"
    );
    assert_no_chatter(&server);
    assert_eq!(count(&server, "Error looking up Cloudflare edge IPs"), 0);
    assert_eq!(
        count(&server, "tunnel unavailable"),
        0,
        "a DNS failure is retried"
    );
}

#[tokio::test]
async fn unreachable_edge_is_reported_once_not_per_redial() {
    // TUNNEL_EDGE reaches cloudflared through the server's environment, as it would for a user.
    let env = [
        ("TUNNEL_EDGE", "127.0.0.1:7844".to_owned()),
        ("FAKE_CLOUDFLARED_REDIAL_MS", "150".to_owned()),
    ];
    let debug = [
        "--http",
        "0",
        "--tunnel",
        "--log-level",
        "info,rmcp=warn,cloudflared=debug",
    ];
    let mut server = start(&debug, &env).await;
    until_count(
        &mut server,
        "Failed to dial a quic connection",
        5,
        Duration::from_secs(20),
    )
    .await;
    let dials: Vec<&String> = (server.log.iter())
        .filter(|l| l.contains("Failed to dial a quic connection"))
        .collect();
    assert!(
        dials
            .iter()
            .all(|l| l.contains("DEBUG") && l.contains("ip=127.0.0.1")),
        "cloudflared's lines stay at debug, and it dials the edge it was given: {dials:?}"
    );
    assert!(!server.logged("Retrying connection in up to"));
    let summary = "cloudflared is running but cannot reach Cloudflare's edge";
    assert_eq!(
        count(&server, summary),
        1,
        "log:\n{}",
        server.log.join("\n")
    );
    let line = server
        .log
        .iter()
        .find(|l| l.contains(summary))
        .expect("summary");
    assert!(
        line.contains("no recent network activity") && line.contains("WARN"),
        "{line}"
    );
    assert!(
        !server.logged("streamable HTTP: https://"),
        "never ready, never announced"
    );
}

#[tokio::test]
async fn connectivity_precheck_box_is_not_taken_for_the_url_banner() {
    // The pre-check box comes after the URL banner and before the edge connection registers.
    let env = [
        ("FAKE_CLOUDFLARED_PRECHECK_MS", "100".to_owned()),
        ("FAKE_CLOUDFLARED_READY_DELAY_MS", "1500".to_owned()),
    ];
    let debug = [
        "--http",
        "0",
        "--tunnel",
        "--log-level",
        "info,rmcp=warn,cloudflared=debug",
    ];
    let mut server = start(&debug, &env).await;
    let banner = server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("ready; log:\n{}", server.log.join("\n")));
    let position = |needle: &str| server.log.iter().position(|l| l.contains(needle));
    let precheck = position("UDP Connectivity").expect("the pre-check box was logged");
    let registered = position("Registered tunnel connection").expect("registered");
    assert!(precheck < registered, "the box came before readiness");
    let host = banner_host(&banner);
    let url_line = position("INF |  https://").expect("the URL banner");
    assert!(
        server.log[url_line].contains(&host),
        "{host} vs {}",
        server.log[url_line]
    );
    assert!(
        !server.logged("disagree"),
        "the box was not read as a banner"
    );
}

#[tokio::test]
async fn bad_token_second_line_does_not_replace_the_reason() {
    let env = [("FAKE_CLOUDFLARED_MODE", "bad-token".to_owned())];
    let mut server = named("bad-token", &[], &env).await;
    let line = server
        .line_containing("tunnel unavailable", Duration::from_secs(20))
        .await
        .expect("failure reported");
    assert!(line.contains("token is not valid"), "{line}");
    assert!(!line.contains("--help"), "{line}");
    assert!(!server.logged("See 'cloudflared tunnel run --help'."));
    assert_eq!(count(&server, "token is not valid"), 1, "said once");
}

#[tokio::test]
async fn metrics_before_any_traffic_are_read() {
    // No response_by_code or server_locations yet, and `; escaping=underscores` in the type.
    let mut server = named("metrics-token", &[], &[]).await;
    server
        .line_containing(
            "streamable HTTP: https://mcp.example.com/mcp",
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|| panic!("ready; log:\n{}", server.log.join("\n")));
    // Named tunnels register 4 connections, the first makes it ready: poll for all four.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = reqwest::Client::new()
            .get(server.http().replace("/mcp", "/metrics"))
            .header("authorization", format!("Bearer {}", token(&server)))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if sample(&text, "mcp_tunnel_ready_connections", &[]) == 4.0 {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "4 ready connections expected within 10 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(&text, "mcp_tunnel_state", &[r#"state="ready""#]),
        1.0
    );
    // A healthy start's chatter (ICMP warnings, Settings, ...) stays at debug too.
    assert_no_chatter(&server);
}

/// A quick-tunnel API on loopback answering every `POST /tunnel` with `status` and `body`;
/// returns its base URL and a count of the requests it got.
async fn quick_tunnel_api(status: u16, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/tunnel",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let status = axum::http::StatusCode::from_u16(status).expect("status");
            async move { (status, body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// The double, always given `--quick-service URL` (the supervisor never passes it): a script
/// to hand to `--cloudflared`.
fn double_with_quick_service(name: &str, url: &str) -> PathBuf {
    let double = bin("cloudflared").display().to_string();
    let script = temp_file(name);
    let text = format!(
        "#!/bin/sh\nif [ \"$1\" = tunnel ]; then shift; exec '{double}' tunnel --quick-service '{url}' \"$@\"; fi\nexec '{double}' \"$@\"\n"
    );
    std::fs::write(&script, text).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

async fn quick_via(script: &std::path::Path) -> ServerProcess {
    let script = script.display().to_string();
    start(&["--http", "0", "--tunnel", "--cloudflared", &script], &[]).await
}

#[tokio::test]
async fn the_quick_tunnel_api_given_by_quick_service_names_the_url() {
    let body = r#"{"success":true,"result":{"id":"3c1f9d2e-6a4b-4c8d-9e0f-1a2b3c4d5e6f","name":"qt-local","hostname":"local-api-words.trycloudflare.com","account_tag":"0123","secret":"c2VjcmV0"},"errors":[],"messages":[]}"#;
    let (url, calls) = quick_tunnel_api(200, body).await;
    let mut server = quick_via(&double_with_quick_service("qs-ok.sh", &url)).await;
    let banner = server
        .line_containing("streamable HTTP: https://", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("ready; log:\n{}", server.log.join("\n")));
    assert_eq!(banner_host(&banner), "local-api-words.trycloudflare.com");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one API call per start");
}

#[tokio::test]
async fn a_refused_or_rate_limited_quick_tunnel_api_is_said_plainly() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut refused = quick_via(&double_with_quick_service("qs-refused.sh", &url)).await;
    let line = refused
        .line_containing("cannot reach Cloudflare", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("summary; log:\n{}", refused.log.join("\n")));
    assert!(
        line.contains("connect: connection refused; retrying in "),
        "{line}"
    );
    assert_no_chatter(&refused);

    let (url, calls) = quick_tunnel_api(429, "error code: 1015").await;
    let mut limited = quick_via(&double_with_quick_service("qs-429.sh", &url)).await;
    let line = limited
        .line_containing("restarting in", Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("restart; log:\n{}", limited.log.join("\n")));
    assert!(line.contains("rate limited"), "{line}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        !limited.logged("Error unmarshaling"),
        "cloudflared's ERR line stays at debug"
    );
}
