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
