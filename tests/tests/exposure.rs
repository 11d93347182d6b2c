//! Serving behind proxies and to browsers, and the session cap, against the real `bioseq`
//! binary: `--max-sessions`, `--cors-origin`, `--trusted-proxy`.

use mcp_expose_tests::{ServerProcess, initialize, initialized, request};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Error as WsError};

fn post(url: &str, body: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
}

/// Opens a session; returns its id.
async fn open_session(url: &str) -> String {
    let response = post(url, initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);
    let id = response.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let _ = response.text().await;
    let response = post(url, initialized())
        .header("mcp-session-id", &id)
        .send()
        .await
        .expect("initialized");
    assert_eq!(response.status(), 202);
    id
}

async fn list_tools(url: &str, session: &str) -> String {
    let response = post(url, request(2, "tools/list", json!({})))
        .header("mcp-session-id", session)
        .send()
        .await
        .expect("tools/list");
    assert_eq!(response.status(), 200);
    response.text().await.expect("body")
}

#[tokio::test]
async fn session_cap_refuses_new_sessions_with_503_and_keeps_the_others() {
    let server = ServerProcess::start(
        "bioseq",
        &["--http", "0", "--ws", "0", "--max-sessions", "2"],
    )
    .await;
    let url = server.http();
    let first = open_session(url).await;
    let second = open_session(url).await;

    let response = post(url, initialize(1, json!({})))
        .send()
        .await
        .expect("third initialize");
    assert_eq!(response.status(), 503, "over the cap");
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.expect("a JSON body");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("--max-sessions"), "{message}");

    // A WebSocket is a session too: its upgrade is refused the same way.
    match connect_async(server.ws()).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503 upgrade refusal, got {other:?}"),
    }

    // The sessions already open keep working.
    assert!(list_tools(url, &first).await.contains("gc_content"));
    assert!(list_tools(url, &second).await.contains("gc_content"));

    // Closing one frees its slot.
    let response = reqwest::Client::new()
        .delete(url)
        .header("mcp-session-id", &first)
        .send()
        .await
        .expect("delete");
    assert!(response.status().is_success(), "{}", response.status());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = post(url, initialize(1, json!({})))
            .send()
            .await
            .expect("initialize");
        if response.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slot not freed after DELETE: {}",
            response.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cors_preflight_and_responses_expose_the_mcp_headers() {
    let app = "https://app.example.com";
    let server = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--cors-origin",
            app,
            "--auth-token-file",
            &token_file(),
            "--max-sessions",
            "2",
        ],
    )
    .await;
    let url = server.http();
    let client = reqwest::Client::new();

    // A preflight carries no token, and must still be answered.
    let response = client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", app)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id, mcp-protocol-version",
        )
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], app);
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for name in [
        "authorization",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ] {
        assert!(allowed.contains(name), "{name} not allowed: {allowed}");
    }

    // The real request: answered with the session id readable by the page.
    let response = post(url, initialize(1, json!({})))
        .header("origin", app)
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for name in [
        "mcp-session-id",
        "mcp-protocol-version",
        "authorization",
        "last-event-id",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    assert!(response.headers().contains_key("mcp-session-id"));

    // A 401 is readable by the page too, so it can ask for a token.
    let response = post(url, initialize(1, json!({})))
        .header("origin", app)
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["access-control-allow-origin"], app);

    // Another origin gets no CORS grant, and the Origin check refuses it.
    let response = post(url, initialize(1, json!({})))
        .header("origin", "https://evil.example.com")
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 403);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // Over the session cap (the second session fills it): the 503 is readable by the page.
    let initialize_from_app = || {
        post(url, initialize(1, json!({})))
            .header("origin", app)
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
    };
    let response = initialize_from_app().await.expect("second session");
    assert_eq!(response.status(), 200);
    let response = initialize_from_app().await.expect("third session");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["access-control-allow-origin"], app);
    assert_eq!(response.headers()["retry-after"], "5");
}

const TOKEN: &str = "exposure-token-0123456789";

fn token_file() -> String {
    let dir = std::env::temp_dir().join(format!("mcp-expose-exposure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("{TOKEN}\n")).expect("token file");
    file.display().to_string()
}

#[tokio::test]
async fn forwarded_host_is_believed_only_from_trusted_proxies() {
    let public = "mcp.example.com";
    let tokens = token_file();
    let trusting = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--allowed-host",
            public,
            "--trusted-proxy",
            "127.0.0.1/32",
            "--auth-token-file",
            &tokens,
        ],
    )
    .await;
    let distrusting = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--allowed-host",
            public,
            "--trusted-proxy",
            "10.0.0.0/8",
            "--auth-token-file",
            &tokens,
        ],
    )
    .await;
    let proxied = |url: &str| {
        post(url, initialize(1, json!({})))
            .header("host", "backend.internal:8000")
            .header("x-forwarded-host", public)
            .header("x-forwarded-proto", "https")
            .header("authorization", format!("Bearer {TOKEN}"))
    };

    // From a trusted proxy (this test, on 127.0.0.1) the forwarded host is the one checked.
    let response = proxied(trusting.http()).send().await.expect("request");
    assert_eq!(response.status(), 200);
    // The landing page's JSON twin names the public address first.
    let base = trusting.http().trim_end_matches("/mcp");
    let info: Value = reqwest::Client::new()
        .get(format!("{base}/.well-known/mcp"))
        .header("host", "backend.internal:8000")
        .header("x-forwarded-host", public)
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    let urls = info.to_string();
    assert!(urls.contains("https://mcp.example.com/mcp"), "{urls}");

    // From anyone else it is ignored, and the real Host is foreign.
    let response = proxied(distrusting.http()).send().await.expect("request");
    assert_eq!(response.status(), 403);
    // A trusted proxy cannot forward a host that is not allowed.
    let response = post(trusting.http(), initialize(1, json!({})))
        .header("x-forwarded-host", "evil.example.com")
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
}

/// Whatever forwards a public name to a loopback server (cloudflared run by someone else, a
/// reverse proxy) makes every request look local: naming a public host must require a token.
#[tokio::test]
async fn a_server_named_publicly_requires_a_token_even_on_loopback() {
    for flags in [
        &["--public-hostname", "mcp.example.com"][..],
        &["--allowed-host", "mcp.example.com"][..],
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--allowed-host",
            "mcp.example.com",
        ][..],
    ] {
        let mut args = vec!["--http", "0"];
        args.extend_from_slice(flags);
        let mut server = ServerProcess::start("bioseq", &args).await;
        let logged = server
            .log
            .iter()
            .find(|l| l.contains("generated access token"))
            .cloned();
        let line = match logged {
            Some(line) => Some(line),
            None => {
                server
                    .line_containing("generated access token", std::time::Duration::from_secs(5))
                    .await
            }
        }
        .unwrap_or_else(|| {
            panic!(
                "{flags:?}: no token generated; log:\n{}",
                server.log.join("\n")
            )
        });
        let token = line.rsplit(' ').next().expect("the token").to_owned();
        assert!(server.logged("so it requires a token"), "{flags:?}");
        // As cloudflared forwards it: the public Host, from loopback.
        let as_forwarded = |token: Option<&str>| {
            let request =
                post(server.http(), initialize(1, json!({}))).header("host", "mcp.example.com");
            match token {
                Some(token) => request.header("authorization", format!("Bearer {token}")),
                None => request,
            }
        };
        let response = as_forwarded(None).send().await.expect("request");
        assert_eq!(response.status(), 401, "{flags:?}: no token must not pass");
        let response = as_forwarded(Some(&token)).send().await.expect("request");
        assert_eq!(
            response.status(),
            200,
            "{flags:?}: the public host is allowed"
        );
    }
    // Local names alone keep a loopback server open, as before.
    let server = ServerProcess::start(
        "bioseq",
        &["--http", "0", "--allowed-host", "localhost:8000"],
    )
    .await;
    let response = post(server.http(), initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}
