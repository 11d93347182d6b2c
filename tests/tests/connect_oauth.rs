//! `mcp-expose connect` signing in to `bioseq --oauth-issuer`: the first run opens the
//! browser command on the test authorization server (which approves at once and redirects to
//! the connector's loopback port), later runs reuse the saved token (mode 0600), an expired
//! or rejected token is refreshed without the browser, `--logout` forgets it, and no token
//! ever appears in the connector's log.

use std::{os::unix::fs::PermissionsExt as _, path::Path};

use mcp_expose_tests::{
    ServerProcess,
    authorization::AuthServer,
    connector::{Connector, READ_TIMEOUT, assert_gc_result},
    oauth::SCOPE,
};
use serde_json::Value;

/// The one saved sign-in under `config`.
fn saved_file(config: &Path) -> std::path::PathBuf {
    let dir = config.join("mcp-expose").join("oauth");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(
        files.len(),
        1,
        "one saved sign-in in {}: {files:?}",
        dir.display()
    );
    files.pop().expect("file")
}

/// A test authorization server, and bioseq trusting it (requiring `mcp:tools`), listening
/// as `listen` says.
async fn protected_bioseq_on(listen: &[&str]) -> (AuthServer, ServerProcess) {
    let auth = AuthServer::start(SCOPE).await;
    let jwks = auth.jwks_url();
    let mut args = listen.to_vec();
    args.extend([
        "--oauth-issuer",
        &auth.url,
        "--oauth-jwks-url",
        &jwks,
        "--oauth-scope",
        SCOPE,
    ]);
    let server = ServerProcess::start("bioseq", &args).await;
    (auth, server)
}

/// The same, over streamable HTTP and WebSocket on ports of their own.
async fn protected_bioseq() -> (AuthServer, ServerProcess) {
    protected_bioseq_on(&["--http", "0", "--ws", "0"]).await
}

/// The same, with streamable HTTP and WebSocket on one port: one origin, one resource.
async fn protected_on_one_port() -> (AuthServer, ServerProcess) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    protected_bioseq_on(&["--http", &port, "--ws", &port]).await
}

/// Runs one connector session (`connect ARGS`, signing in with `browser`): initialize,
/// `gc_content`, exit; returns its stderr.
async fn call_once(args: &[&str], browser: &str, config: &Path) -> String {
    let config = config.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--oauth-browser", browser]);
    let mut connector =
        Connector::start(&all, &[("XDG_CONFIG_HOME", &config), ("RUST_LOG", "debug")]).await;
    let init = connector.handshake().await;
    assert!(
        init.get("result").is_some(),
        "{init}\n{}",
        connector.stderr()
    );
    assert_gc_result(&connector.gc_content(2, READ_TIMEOUT).await);
    let log = connector.stderr();
    assert!(connector.finish().await.success(), "{log}");
    log
}

#[tokio::test]
async fn signs_in_once_then_reuses_refreshes_and_forgets_the_token() {
    let (auth, server) = protected_bioseq().await;
    let url = server.http().to_owned();
    let dir = std::env::temp_dir().join(format!("mcp-expose-connect-oauth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("config");
    let opened = dir.join("browser.log");
    // The "browser": notes that it was opened, then follows the authorization server's
    // redirect back to the connector, as a browser would.
    let browser = format!(
        "echo opened >> '{}'; curl -fsS -o /dev/null -L",
        opened.display()
    );
    let opened_count = || std::fs::read_to_string(&opened).map_or(0, |t| t.lines().count());
    let mut logs = Vec::new();

    // First run: the server answers 401, the connector signs in through the browser.
    logs.push(call_once(&[&url], &browser, &config).await);
    assert_eq!(opened_count(), 1, "the browser opened once");
    assert_eq!(auth.log().authorizations, 1);
    let file = saved_file(&config);
    let mode = std::fs::metadata(&file)
        .expect("saved")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    let dir_mode = std::fs::metadata(file.parent().expect("dir"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "the directory is the user's alone");
    // The token is for this server (RFC 8707), as its resource metadata names it.
    assert!(
        auth.log().resources.iter().all(|r| r == &url),
        "{:?}",
        auth.log().resources
    );

    // Second run: the saved token, no browser, no refresh.
    logs.push(call_once(&[&url], &browser, &config).await);
    assert_eq!(opened_count(), 1, "no browser on the second run");
    assert_eq!((auth.log().authorizations, auth.log().refreshes), (1, 0));

    // An expired token is refreshed before it is sent.
    let mut saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    saved["tokens"]["expires_at"] = 1.into();
    std::fs::write(&file, saved.to_string()).expect("write");
    logs.push(call_once(&[&url], &browser, &config).await);
    assert_eq!(
        (opened_count(), auth.log().refreshes),
        (1, 1),
        "refreshed, no browser"
    );

    // A token the server rejects (401) is refreshed, and the request sent again.
    let mut saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    saved["tokens"]["access_token"] = "not-a-jwt".into();
    std::fs::write(&file, saved.to_string()).expect("write");
    logs.push(call_once(&[&url], &browser, &config).await);
    assert_eq!(
        (opened_count(), auth.log().refreshes),
        (1, 2),
        "refreshed, no browser"
    );

    // --logout forgets it: the next run signs in through the browser again.
    let logout = tokio::process::Command::new(mcp_expose_tests::bin("mcp-expose"))
        .args(["connect", "--logout", &url])
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .await
        .expect("run --logout");
    let said = String::from_utf8_lossy(&logout.stderr).into_owned();
    assert!(logout.status.success(), "{said}");
    assert!(said.contains("signed out"), "{said}");
    assert!(!file.exists(), "the token file is gone");
    logs.push(said);
    logs.push(call_once(&[&url], &browser, &config).await);
    assert_eq!(opened_count(), 2, "signed in again after --logout");

    // No access or refresh token in any log line, at debug level.
    let issued = auth.log().issued;
    assert!(issued.len() >= 8, "{issued:?}");
    for log in &logs {
        for token in &issued {
            assert!(!log.contains(token.as_str()), "a token in the log:\n{log}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 8628: no browser here; the URL and code go to stderr, and "another device" (a curl of
/// the verification URL, through `--oauth-browser`) approves; the connector polls until then.
#[tokio::test]
async fn signs_in_on_another_device() {
    let (auth, server) = protected_bioseq().await;
    let dir =
        std::env::temp_dir().join(format!("mcp-expose-connect-device-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = call_once(
        &[server.http(), "--oauth-device-code"],
        "sleep 1; curl -fsS -o /dev/null",
        &dir,
    )
    .await;
    assert!(
        log.contains("/activate on any device and enter the code CODE-"),
        "{log}"
    );
    let seen = auth.log();
    assert_eq!(
        (seen.device_approvals, seen.authorizations),
        (1, 0),
        "{seen:?}"
    );
    assert!(saved_file(&dir).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over WebSocket: the upgrade refused with 401 signs in (the resource is the HTTP endpoint
/// at the same origin), the token rides on every upgrade after, and an expired one is
/// refreshed before the upgrade.
#[tokio::test]
async fn signs_in_over_websocket_and_reuses_the_token() {
    let (auth, server) = protected_on_one_port().await;
    let (ws, http) = (server.ws().to_owned(), server.http().to_owned());
    let dir = std::env::temp_dir().join(format!("mcp-expose-connect-ws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opened = dir.join("browser.log");
    std::fs::create_dir_all(&dir).expect("dir");
    let browser = format!(
        "echo opened >> '{}'; curl -fsS -o /dev/null -L",
        opened.display()
    );
    let opened_count = || std::fs::read_to_string(&opened).map_or(0, |t| t.lines().count());
    let log = call_once(&[&ws], &browser, &dir).await;
    assert_eq!(opened_count(), 1, "signed in through the browser:\n{log}");
    assert!(
        auth.log().resources.iter().all(|r| r == &http),
        "the token is for the server's resource: {:?}",
        auth.log().resources
    );
    let file = saved_file(&dir);
    call_once(&[&ws], &browser, &dir).await;
    assert_eq!(opened_count(), 1, "the saved token, no browser");

    let mut saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    saved["tokens"]["expires_at"] = 1.into();
    std::fs::write(&file, saved.to_string()).expect("write");
    call_once(&[&ws], &browser, &dir).await;
    assert_eq!(
        (opened_count(), auth.log().refreshes),
        (1, 1),
        "refreshed, no browser"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
