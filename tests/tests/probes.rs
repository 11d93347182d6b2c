//! Hostile-input probes against the real `bioseq` binary with authentication on: every bad
//! request gets a clear, typed refusal, and the server keeps serving.

use std::time::Duration;

use futures::StreamExt as _;
use mcp_expose_tests::{
    ServerProcess, assert_gc_ggccat, initialize, initialized, next_json, request, send,
};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, protocol::frame::coding::CloseCode},
};

const TOKEN: &str = "probe-token-0123456789";

async fn server(extra: &[&str]) -> ServerProcess {
    let dir = std::env::temp_dir().join(format!("mcp-expose-probes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("{TOKEN}\n")).expect("token file");
    let file = file.display().to_string();
    let mut args = vec![
        "--http",
        "0",
        "--ws",
        "0",
        "--auth-token-file",
        file.as_str(),
        "--max-message-size",
        "65536",
    ];
    args.extend_from_slice(extra);
    ServerProcess::start("bioseq", &args).await
}

fn post(url: &str, token: Option<&str>, body: String) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
}

async fn json_body(response: reqwest::Response) -> Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn http_probes_get_typed_refusals() {
    let server = server(&[]).await;
    let url = server.http();
    let init = || initialize(1, json!({}));

    let response = post(url, None, init()).send().await.expect("request");
    assert_eq!(response.status(), 401, "no token");
    assert!(json_body(response).await["error"]["message"].is_string());
    let response = post(url, Some("wrong"), init())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401, "wrong token");

    let response = post(url, Some(TOKEN), init())
        .header("host", "evil.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403, "foreign Host");
    assert!(
        json_body(response).await["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Host"))
    );
    let response = post(url, Some(TOKEN), init())
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403, "foreign Origin");
    assert!(
        json_body(response).await["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Origin"))
    );

    let big = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "gc_content", "arguments": { "seq": "A".repeat(200_000) } } });
    let response = post(url, Some(TOKEN), big.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413, "body over the limit");
    assert!(json_body(response).await["error"]["message"].is_string());

    let response = post(url, Some(TOKEN), "{not json".to_owned())
        .send()
        .await
        .expect("request");
    assert!(response.status().is_client_error());
    assert!(json_body(response).await["error"].is_object());

    let response = post(url, Some(TOKEN), init())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "and the server still serves");
}

#[tokio::test]
async fn websocket_probes_get_typed_refusals() {
    let server = server(&[]).await;
    assert!(
        connect_async(server.ws()).await.is_err(),
        "no token: the upgrade is refused"
    );
    let mut upgrade = server.ws().into_client_request().expect("request");
    upgrade.headers_mut().insert(
        "sec-websocket-protocol",
        format!("mcp, bearer.{TOKEN}").parse().expect("header"),
    );
    let (mut socket, response) = connect_async(upgrade)
        .await
        .expect("token as a subprotocol is accepted");
    assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");

    send(&mut socket, initialize(0, json!({}))).await;
    next_json(&mut socket).await;
    send(&mut socket, initialized()).await;
    // 1,000 malformed messages: 1,000 error replies, then the connection still serves.
    for i in 0..1000 {
        let frame = match i % 4 {
            0 => "{\"broken\": ".to_owned(),
            1 => "[]".to_owned(),
            2 => "42".to_owned(),
            _ => r#"{"jsonrpc":"2.0","id":"x"}"#.to_owned(),
        };
        send(&mut socket, frame).await;
    }
    for i in 0..1000 {
        let reply = next_json(&mut socket).await;
        let code = reply["error"]["code"].as_i64().unwrap_or(0);
        assert!(code == -32700 || code == -32600, "reply {i}: {reply}");
    }
    send(
        &mut socket,
        request(
            7,
            "tools/call",
            json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
        ),
    )
    .await;
    let answer = next_json(&mut socket).await;
    assert_eq!(answer["id"], 7);
    assert_gc_ggccat(
        answer["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );

    send(&mut socket, "x".repeat(70_000)).await;
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 10 s")
    .expect("a close code");
    assert_eq!(close.code, CloseCode::Size, "message over the limit");
    assert!(close.reason.contains("limit"), "{}", close.reason);
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let server = server(&["--rate-limit", "5"]).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let response = post(server.http(), Some(TOKEN), initialize(1, json!({})))
            .send()
            .await
            .expect("request");
        let retry_after = response.headers().get("retry-after").cloned();
        statuses.push((response.status().as_u16(), retry_after));
    }
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(
        limited.iter().all(|(_, retry)| retry.is_some()),
        "429s carry Retry-After"
    );
    assert!(
        statuses.iter().take(5).all(|(s, _)| *s == 200),
        "the burst is allowed: {statuses:?}"
    );
}

/// `initialize` with `token`, as a proxy in front reports client `from` (`Cf-Connecting-IP`).
async fn initialize_from(url: &str, token: Option<&str>, from: &str) -> reqwest::Response {
    post(url, token, initialize(1, json!({})))
        .header("cf-connecting-ip", from)
        .header("x-forwarded-for", from)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn guessing_tokens_locks_out_the_guesser_and_no_one_else() {
    let server = server(&["--max-auth-failures", "3", "--trusted-proxy", "127.0.0.1"]).await;
    let url = server.http();
    let (guesser, other) = ("203.0.113.7", "198.51.100.2");
    for guess in ["a", "b", "c"] {
        let response = initialize_from(url, Some(guess), guesser).await;
        assert_eq!(response.status(), 401, "guess {guess}");
    }
    // Locked out, even with the right token: a guesser must not learn which guess was right.
    let response = initialize_from(url, Some(TOKEN), guesser).await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert!(
        (1..=20).contains(&retry),
        "3 a minute: 20 s each, got {retry}"
    );
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], -32000);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed token checks")),
        "{body}"
    );
    // A WebSocket upgrade from the guesser is refused the same way.
    let mut upgrade = server.ws().into_client_request().expect("request");
    let headers = upgrade.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("value"),
    );
    headers.insert("cf-connecting-ip", guesser.parse().expect("value"));
    match connect_async(upgrade).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }

    // Everyone else is served: another client of the proxy, and the proxy's own address.
    let response = initialize_from(url, Some(TOKEN), other).await;
    assert_eq!(response.status(), 200);
    let session = mcp_expose_tests::session_id(&response);
    let post_in_session = |body: String| {
        post(url, Some(TOKEN), body)
            .header("mcp-session-id", &session)
            .header("cf-connecting-ip", other)
            .send()
    };
    assert_eq!(
        post_in_session(initialized()).await.expect("sent").status(),
        202
    );
    let call = post_in_session(request(
        2,
        "tools/call",
        json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
    ))
    .await
    .expect("sent");
    assert_eq!(call.status(), 200);
    let answer = mcp_expose_tests::response_messages(call).await;
    assert_gc_ggccat(
        answer[0]["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    let own = post(url, Some(TOKEN), initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    assert_eq!(own.status(), 200);
    // Asking without a token (a client finding out how to sign in) is no guess.
    for _ in 0..5 {
        let response = initialize_from(url, None, "192.0.2.1").await;
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        initialize_from(url, Some(TOKEN), "192.0.2.1")
            .await
            .status(),
        200
    );
    let metrics = reqwest::Client::new()
        .get(url.replace("/mcp", "/metrics"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        mcp_expose_tests::sample(
            &metrics,
            "mcp_rejected_total",
            &["reason=\"auth_failures\""]
        ) >= 2.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_from_untrusted_peers() {
    // No --trusted-proxy: the headers are the client's own words, so every guess counts against
    // the one address the requests come from, whatever they claim.
    let server = server(&["--max-auth-failures", "2"]).await;
    let url = server.http();
    for (guess, from) in [("a", "203.0.113.1"), ("b", "203.0.113.2")] {
        assert_eq!(initialize_from(url, Some(guess), from).await.status(), 401);
    }
    let response = initialize_from(url, Some(TOKEN), "203.0.113.3").await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn rate_limits_count_per_client_behind_a_trusted_proxy() {
    // No token (--no-auth, since a proxy in front counts as exposed): the limit keys on the
    // client address the proxy reports.
    let server = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--rate-limit",
            "3",
            "--trusted-proxy",
            "127.0.0.1",
            "--no-auth",
        ],
    )
    .await;
    let url = server.http();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(
            initialize_from(url, None, "203.0.113.9")
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        initialize_from(url, None, "198.51.100.4").await.status(),
        200
    );
}
