//! The landing page, rendered by headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs): it shows the server, its tools and a client config, hides the tools from a
//! visitor without a token, and the suite keeps a screenshot of it.

use std::{path::PathBuf, process::Command};

use mcp_expose_tests::ServerProcess;

fn chromium(args: &[&str]) -> std::process::Output {
    // A profile of its own for every run: two Chromiums cannot share one.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile =
        std::env::temp_dir().join(format!("mcp-expose-chromium-{}-{run}", std::process::id()));
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("chromium runs (Debian's `chromium`; .ci/run installs it)");
    let _ = std::fs::remove_dir_all(profile);
    output
}

fn page(server: &ServerProcess) -> String {
    server.http().trim_end_matches("/mcp").to_owned() + "/"
}

#[tokio::test]
async fn the_page_shows_the_tools_and_a_client_config_and_a_screenshot_is_kept() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--ws", "0"]).await;
    let url = page(&server);
    let dom = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url]))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&dom.stderr).into_owned();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<h1>bioseq</h1>"), "{dom}\n{stderr}");
    for tool in [
        "gc_content",
        "reverse_complement",
        "translate",
        "find_orfs",
        "assembly_stats",
    ] {
        assert!(dom.contains(tool), "{tool} missing from the rendered page");
    }
    assert!(dom.contains("Tools (5)"));
    assert!(
        dom.contains("id=\"claude-config\"") && dom.contains("&quot;connect&quot;")
            || dom.contains("\"connect\""),
        "{dom}"
    );
    assert!(dom.contains(server.ws()), "the WebSocket URL is shown");

    let shot: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("landing.png");
    let _ = std::fs::remove_file(&shot);
    let (url, target) = (page(&server), format!("--screenshot={}", shot.display()));
    tokio::task::spawn_blocking(move || chromium(&[&target, "--window-size=1100,1500", &url]))
        .await
        .expect("join");
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("landing page screenshot: {}", shot.display());
}

#[tokio::test]
async fn without_a_token_the_page_shows_only_how_to_connect() {
    let dir = std::env::temp_dir().join(format!("mcp-expose-landing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "landing-token\n").expect("tokens");
    let tokens = tokens.display().to_string();
    let server =
        ServerProcess::start("bioseq", &["--http", "0", "--auth-token-file", &tokens]).await;
    let url = page(&server);
    let dom = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url]))
        .await
        .expect("join");
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<h1>bioseq</h1>"), "{dom}");
    assert!(dom.contains("requires a bearer token"));
    assert!(
        !dom.contains("gc_content"),
        "tools are hidden without a token"
    );
    assert!(!dom.contains("landing-token"), "the token never appears");

    let json: serde_json::Value = reqwest::Client::new()
        .get(server.http().replace("/mcp", "/.well-known/mcp"))
        .header("authorization", "Bearer landing-token")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        json["tools"].as_array().map(Vec::len),
        Some(5),
        "with the token, the tools are listed"
    );
}
