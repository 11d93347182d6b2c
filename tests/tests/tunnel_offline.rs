//! `--tunnel` against the cloudflared double where the real binary was seen to differ offline
//! (shared/facts/cloudflared.md, "Seen with the real binary offline"): a user's own
//! `~/.cloudflared/config.yml`, no network, no DNS, an unreachable edge, the pre-check box,
//! start-up chatter, the bad token's second line, and metrics before any traffic. The server's
//! stderr at its default log level must say in one plain line what is wrong.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess,
    tunnel::{start, temp_file, token_file},
};

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
