//! What a valid OAuth token opens, against the real `bioseq` binary and an in-process server:
//! a WebSocket upgrade by header or subprotocol, the verified caller a tool sees, and sessions
//! (direct and bridged) and event streams that end when their token expires. The token checks
//! themselves are in `oauth.rs`.

use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use mcp_expose_tests::{
    ServerProcess, assert_gc_ggccat, initialize, initialized, next_json,
    oauth::{Idp, RSA_1, SCOPE, TestKey, bearer, claims, message, now, oauth_server, post},
    request, send,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

#[tokio::test]
async fn websocket_upgrade_with_a_jwt() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let idp = Idp::start(&[&rsa]).await;
    let server = oauth_server(&idp).await;
    // The audience is the resource, the HTTP endpoint's URL, whichever transport is used.
    let token = rsa.sign(&claims(&idp.url, server.http(), SCOPE));

    let refused = tokio_tungstenite::connect_async(server.ws()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("expected a 401, got {other:?}"),
    }

    let mut by_header = server.ws().into_client_request().expect("request");
    let headers = by_header.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    headers.insert("sec-websocket-protocol", "mcp".parse().expect("header"));
    let mut by_subprotocol = server.ws().into_client_request().expect("request");
    by_subprotocol.headers_mut().insert(
        "sec-websocket-protocol",
        format!("mcp, bearer.{token}").parse().expect("header"),
    );
    for request in [by_header, by_subprotocol] {
        let (mut socket, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(request),
        )
        .await
        .expect("in time")
        .expect("upgrade with a JWT");
        send(&mut socket, initialize(0, json!({}))).await;
        assert!(next_json(&mut socket).await["result"]["serverInfo"].is_object());
        send(&mut socket, initialized()).await;
        send(&mut socket, request_gc(1)).await;
        let response = next_json(&mut socket).await;
        assert_gc_ggccat(
            response["result"]["structuredContent"]["result"]
                .as_f64()
                .unwrap_or_else(|| panic!("no result: {response}")),
        );
    }
}

fn request_gc(id: u64) -> String {
    request(
        id,
        "tools/call",
        json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
    )
}

/// Says who called, as the server read their token (JSON text).
#[mcp_expose::tool]
async fn whoami(ctx: mcp_expose::Context) -> Result<String, mcp_expose::ToolError> {
    let caller = ctx.caller().ok_or("no verified caller")?;
    let expires = caller
        .expires_at
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map(|left| left.as_secs());
    Ok(json!({
        "issuer": caller.issuer,
        "subject": caller.subject,
        "email": caller.email,
        "scopes": caller.scopes,
        "expires": expires,
        "has_scope": caller.has_scope(SCOPE),
        // The token itself never reaches a tool.
        "authorization": ctx.headers().and_then(|h| h.get("authorization")).is_some(),
    })
    .to_string())
}

/// What `whoami` answered in a tools/call response.
fn who(response: &Value) -> Value {
    let text = response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text: {response}"));
    serde_json::from_str(text).expect("whoami's JSON")
}

/// The next frame that is a Close, within `limit`: its code and reason.
async fn closed_within(socket: &mut mcp_expose_tests::Socket, limit: Duration) -> (u16, String) {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("closed in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A WebSocket session opened with the header `name: value` (carrying a token), past its
/// initialize handshake.
async fn ws_session(url: &str, name: &'static str, value: String) -> mcp_expose_tests::Socket {
    let mut upgrade = url.into_client_request().expect("request");
    upgrade
        .headers_mut()
        .insert(name, value.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(upgrade)
        .await
        .expect("upgrade while the token is valid");
    send(&mut socket, initialize(0, json!({}))).await;
    assert!(next_json(&mut socket).await["result"]["serverInfo"].is_object());
    send(&mut socket, initialized()).await;
    socket
}

/// The socket is closed with 1008 `token expired` within 15 s.
async fn assert_closed_for_expiry(socket: &mut mcp_expose_tests::Socket) {
    let (code, reason) = closed_within(socket, Duration::from_secs(15)).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("token expired"), "{reason}");
}

#[tokio::test]
async fn tools_see_the_verified_caller_and_sockets_close_when_the_token_expires() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let idp = Idp::start(&[&rsa]).await;
    let mut options = mcp_expose::serve::Options::default();
    options.auth.oauth.oauth_issuers = vec![idp.url.clone()];
    options.auth.oauth.oauth_jwks_url = Some(format!("{}/jwks", idp.url));
    options.auth.oauth.oauth_scopes = vec![SCOPE.to_owned()];
    let running = mcp_expose::Server::new("whoami", "1.0.0")
        .options(options)
        .http(0)
        .ws(0)
        .start()
        .await
        .expect("start");
    let http = format!("http://{}/mcp", running.http_addr().expect("http"));
    let ws = format!("ws://{}/ws", running.ws_addr().expect("ws"));
    let mut token_claims = claims(&idp.url, &http, &format!("{SCOPE} notes:read"));
    token_claims["email"] = json!("ada@example.com");
    let expires = token_claims["exp"].as_u64().expect("exp");
    let token = rsa.sign(&token_claims);

    // Streamable HTTP: the claims of this request's token.
    let init = bearer(&http, &token, initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"].clone();
    let sent = bearer(&http, &token, initialized())
        .header("mcp-session-id", session.clone())
        .send()
        .await
        .expect("initialized");
    assert_eq!(sent.status(), 202);
    let call = request(
        2,
        "tools/call",
        json!({ "name": "whoami", "arguments": {} }),
    );
    let answer = bearer(&http, &token, call.clone())
        .header("mcp-session-id", session.clone())
        .send()
        .await
        .expect("tools/call");
    let seen = who(&message(answer).await);
    assert_eq!(seen["issuer"], idp.url.as_str(), "{seen}");
    assert_eq!(seen["subject"], "user-1");
    assert_eq!(seen["email"], "ada@example.com");
    assert_eq!(seen["scopes"], json!([SCOPE, "notes:read"]));
    assert_eq!(seen["expires"], expires);
    assert_eq!(seen["has_scope"], true);
    assert_eq!(seen["authorization"], false);

    // WebSocket: the upgrade's token, for the whole session, which ends when the token does.
    // This one expired 27 s ago: still inside the 30 s allowed for clock skew, for about 3 s.
    let mut short = claims(&idp.url, &http, SCOPE);
    short["sub"] = json!("user-2");
    short["exp"] = json!(now() - 27);
    let bearer_protocol = format!("mcp, bearer.{}", rsa.sign(&short));
    let mut socket = ws_session(&ws, "sec-websocket-protocol", bearer_protocol).await;
    send(&mut socket, call).await;
    let seen = who(&next_json(&mut socket).await);
    assert_eq!(seen["subject"], "user-2", "{seen}");
    assert_eq!(seen["authorization"], false);
    assert_closed_for_expiry(&mut socket).await;

    // An event stream opened with such a token ends when the token does (the client
    // reconnects with a fresh one); without this it would stay open with keep-alives. The
    // session is user-1's: a token of theirs, not user-2's, may reopen its stream.
    short["sub"] = json!("user-1");
    short["exp"] = json!(now() - 27);
    let mut stream = reqwest::Client::new()
        .get(&http)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("authorization", format!("Bearer {}", rsa.sign(&short)))
        .send()
        .await
        .expect("GET stream");
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream"))
    );
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream outlived its token");

    // Without a token nothing gets through; the server itself keeps serving.
    let refused = post(&http, initialize(3, json!({})))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    running.shutdown().await;
}

#[tokio::test]
async fn bridged_websocket_sessions_close_when_the_token_expires() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let idp = Idp::start(&[&rsa]).await;
    let jwks = format!("{}/jwks", idp.url);
    let bioseq = mcp_expose_tests::bin("bioseq").display().to_string();
    let server = ServerProcess::start(
        "mcp-expose",
        &[
            "bridge",
            "--http",
            "0",
            "--ws",
            "0",
            "--oauth-issuer",
            &idp.url,
            "--oauth-jwks-url",
            &jwks,
            "--",
            &bioseq,
            "--stdio",
        ],
    )
    .await;
    let mut short = claims(&idp.url, server.http(), SCOPE);
    short["exp"] = json!(now() - 27);
    let authorization = format!("Bearer {}", rsa.sign(&short));
    let mut socket = ws_session(server.ws(), "authorization", authorization).await;
    send(&mut socket, request_gc(1)).await;
    assert_gc_ggccat(
        next_json(&mut socket).await["result"]["structuredContent"]["result"]
            .as_f64()
            .expect("a result"),
    );
    assert_closed_for_expiry(&mut socket).await;
}
