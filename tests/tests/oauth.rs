//! OAuth 2.1 resource server and the Cloudflare Access preset, against the real `bioseq`
//! binary: a JWKS server runs in the test on loopback, tokens are signed with the test keys in
//! `tests/fixtures/oauth`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_expose_tests::{
    ServerProcess, assert_gc_ggccat, initialize, initialized, next_json, request, send,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const RSA_1: &str = include_str!("../fixtures/oauth/rsa-1.pem");
const RSA_2: &str = include_str!("../fixtures/oauth/rsa-2.pem");
const EC_1: &str = include_str!("../fixtures/oauth/ec-1.pem");
const SCOPE: &str = "mcp:tools";
const CF_AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

/// A signing key and its public JWK.
struct TestKey {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
}

impl TestKey {
    fn new(kid: &'static str, alg: Algorithm, pem: &str) -> Self {
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("test key");
        Self { kid, alg, key }
    }

    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("jwk");
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).expect("jwk json")
    }

    /// A token with `claims`, signed by this key (the header naming `kid`).
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An identity provider on loopback: JWKS (swappable), Cloudflare Access certs, RFC 8414
/// metadata; counts JWKS fetches.
#[derive(Clone)]
struct Idp {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Idp {
    async fn start(keys: &[&TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let idp = Self {
            url: url.clone(),
            jwks: Arc::new(Mutex::new(Value::Null)),
            fetches: Arc::default(),
        };
        idp.publish(keys);
        async fn jwks(State(idp): State<Idp>) -> ([(&'static str, &'static str); 1], Json<Value>) {
            idp.fetches.fetch_add(1, Ordering::SeqCst);
            let body = idp.jwks.lock().expect("jwks").clone();
            ([("cache-control", "public, max-age=600")], Json(body))
        }
        let metadata = {
            let url = url.clone();
            move || async move { Json(json!({ "issuer": url, "jwks_uri": format!("{url}/jwks") })) }
        };
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/cdn-cgi/access/certs", get(jwks))
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .with_state(idp.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        idp
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().expect("jwks") =
            json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Claims the server accepts: from `issuer`, for `audience`, valid for five minutes.
fn claims(issuer: &str, audience: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "aud": audience, "sub": "user-1", "scope": scope,
        "iat": now, "nbf": now, "exp": now + 300,
    })
}

async fn bioseq(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--http", "0", "--ws", "0"];
    args.extend_from_slice(extra);
    ServerProcess::start("bioseq", &args).await
}

/// An OAuth server trusting `idp` by its JWKS URL, requiring `mcp:tools`.
async fn oauth_server(idp: &Idp) -> ServerProcess {
    let jwks = format!("{}/jwks", idp.url);
    bioseq(&[
        "--oauth-issuer",
        &idp.url,
        "--oauth-jwks-url",
        &jwks,
        "--oauth-scope",
        SCOPE,
    ])
    .await
}

fn post(url: &str, body: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
}

fn bearer(url: &str, token: &str, body: String) -> reqwest::RequestBuilder {
    post(url, body).header("authorization", format!("Bearer {token}"))
}

/// The JSON-RPC message of a JSON or SSE response.
async fn message(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .map(str::to_owned)
        .unwrap_or(text);
    serde_json::from_str(&data).expect("JSON-RPC message")
}

/// initialize, initialized, tools/call gc_content over streamable HTTP with `headers`.
async fn call_gc(url: &str, headers: &[(&str, String)]) {
    let with = |request: reqwest::RequestBuilder| {
        headers
            .iter()
            .fold(request, |r, (name, value)| r.header(*name, value))
    };
    let init = with(post(url, initialize(1, json!({}))))
        .send()
        .await
        .expect("initialize");
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .expect("session id")
        .to_owned();
    assert!(message(init).await["result"]["serverInfo"].is_object());
    let notified = with(post(url, initialized()))
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("initialized");
    assert_eq!(notified.status(), 202);
    let call = request(
        2,
        "tools/call",
        json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
    );
    let response = with(post(url, call))
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("tools/call");
    assert_eq!(response.status(), 200);
    let result = message(response).await;
    assert_gc_ggccat(
        result["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or_else(|| panic!("no result: {result}")),
    );
}

/// Asserts a refusal: `status`, a JSON body, and a `WWW-Authenticate` containing `expected`.
async fn assert_refused(response: reqwest::Response, status: u16, expected: &str) -> String {
    assert_eq!(response.status(), status);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(expected),
        "WWW-Authenticate `{challenge}` lacks `{expected}`"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.expect("JSON body");
    assert!(body["error"]["message"].is_string(), "{body}");
    challenge
}

#[tokio::test]
async fn metadata_document_and_challenge_without_a_token() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let idp = Idp::start(&[&rsa]).await;
    let server = oauth_server(&idp).await;
    let base = server.http().trim_end_matches("/mcp").to_owned();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(format!("{base}{path}"))
            .await
            .expect("metadata");
        assert_eq!(response.status(), 200, "{path} is open");
        let document: Value = response.json().await.expect("JSON");
        assert_eq!(document["resource"], server.http());
        assert_eq!(document["authorization_servers"], json!([idp.url]));
        assert_eq!(document["scopes_supported"], json!([SCOPE]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
    let denied = post(server.http(), initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    let challenge = assert_refused(denied, 401, "resource_metadata=").await;
    assert!(
        challenge.contains(&format!(
            r#"resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
        )),
        "{challenge}"
    );
    assert!(!challenge.contains("error="), "no error without a token");
    let health = reqwest::get(format!("{base}/health"))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    // The landing page stays public but hides the tools from visitors without a token.
    let page: Value = reqwest::get(format!("{base}/.well-known/mcp"))
        .await
        .expect("landing")
        .json()
        .await
        .expect("JSON");
    assert!(page["tools"].is_null(), "{page}");
}

#[tokio::test]
async fn rs256_and_es256_tokens_initialize_and_call_a_tool() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let ec = TestKey::new("ec-1", Algorithm::ES256, EC_1);
    let idp = Idp::start(&[&rsa, &ec]).await;
    let server = oauth_server(&idp).await;
    for key in [&rsa, &ec] {
        let token = key.sign(&claims(&idp.url, server.http(), "openid mcp:tools"));
        call_gc(
            server.http(),
            &[("authorization", format!("Bearer {token}"))],
        )
        .await;
    }
    // An authenticated visitor sees the tools on the landing page.
    let token = rsa.sign(&claims(&idp.url, server.http(), SCOPE));
    let page: Value = reqwest::Client::new()
        .get(server.http().replace("/mcp", "/.well-known/mcp"))
        .bearer_auth(token)
        .send()
        .await
        .expect("landing")
        .json()
        .await
        .expect("JSON");
    assert!(
        page["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{page}"
    );
}

#[tokio::test]
async fn invalid_tokens_get_401_and_a_missing_scope_403() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let other = TestKey::new("rsa-2", Algorithm::RS256, RSA_2);
    let idp = Idp::start(&[&rsa]).await;
    let server = oauth_server(&idp).await;
    let url = server.http();
    let good = claims(&idp.url, url, SCOPE);
    let with = |change: Value| {
        let mut c = good.clone();
        c.as_object_mut()
            .expect("object")
            .extend(change.as_object().expect("object").clone());
        c
    };
    let unsigned = {
        use base64::Engine as _;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(json!({ "alg": "none", "typ": "JWT" })),
            b64(good.clone())
        )
    };
    // Correctly signed, but its header marks an extension critical (RFC 7515: reject).
    let critical = {
        use base64::Engine as _;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1", "crit": ["exp-ext"], "exp-ext": 1 });
        let signed = format!("{}.{}", b64(header), b64(good.clone()));
        let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), &rsa.key, Algorithm::RS256)
            .expect("sign");
        format!("{signed}.{signature}")
    };
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"a shared secret is not accepted"),
    )
    .expect("sign");
    let cases = [
        (
            "expired",
            rsa.sign(&with(json!({ "exp": now() - 120 }))),
            "token expired",
        ),
        (
            "not yet valid",
            rsa.sign(&with(json!({ "nbf": now() + 600 }))),
            "not yet valid",
        ),
        (
            "wrong audience",
            rsa.sign(&with(json!({ "aud": "https://elsewhere.example/mcp" }))),
            "wrong audience",
        ),
        (
            "wrong issuer",
            rsa.sign(&with(json!({ "iss": "https://evil.example" }))),
            "wrong issuer",
        ),
        (
            "bad signature",
            other.sign_as("rsa-1", &good),
            "bad signature",
        ),
        ("alg none", unsigned, "invalid_token"),
        ("crit", critical, "critical header"),
        ("HS256", hs256, "invalid_token"),
        ("garbage", "not.a.jwt".to_owned(), "invalid_token"),
    ];
    for (name, token, expected) in cases {
        let response = bearer(url, &token, initialize(1, json!({})))
            .send()
            .await
            .expect("request");
        let challenge = assert_refused(response, 401, expected).await;
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
    }
    let unscoped = rsa.sign(&claims(&idp.url, url, "openid profile"));
    let response = bearer(url, &unscoped, initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    let challenge = assert_refused(response, 403, r#"error="insufficient_scope""#).await;
    assert!(challenge.contains(r#"scope="mcp:tools""#), "{challenge}");
    let ok = bearer(url, &rsa.sign(&good), initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200, "the server kept serving");
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_unknown_kids_refetch_at_most_once() {
    let old = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let new = TestKey::new("rsa-2", Algorithm::RS256, RSA_2);
    let idp = Idp::start(&[&old]).await;
    let server = oauth_server(&idp).await;
    let url = server.http();
    let send = |token: String| bearer(url, &token, initialize(1, json!({}))).send();
    let status = |token: String| async { send(token).await.expect("request").status() };
    assert_eq!(status(old.sign(&claims(&idp.url, url, SCOPE))).await, 200);
    let before = idp.fetches();
    assert!(before >= 1, "fetched at start");
    // Cached: more requests with the known key fetch nothing.
    for _ in 0..5 {
        assert_eq!(status(old.sign(&claims(&idp.url, url, SCOPE))).await, 200);
    }
    assert_eq!(idp.fetches(), before);

    // The provider rotates: the new key's kid is unknown, so the server refetches once.
    idp.publish(&[&new]);
    assert_eq!(status(new.sign(&claims(&idp.url, url, SCOPE))).await, 200);
    assert_eq!(idp.fetches(), before + 1);
    assert_eq!(
        status(old.sign(&claims(&idp.url, url, SCOPE))).await,
        401,
        "the retired key is gone"
    );

    // A flood of made-up kids (concurrently) cannot make the server hammer the provider.
    let flood = (0..20).map(|i| {
        let token = new.sign_as(&format!("made-up-{i}"), &claims(&idp.url, url, SCOPE));
        status(token)
    });
    let statuses = futures::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        idp.fetches() == before + 1,
        "{} fetches for 20 unknown kids",
        idp.fetches() - before
    );
}

#[tokio::test]
async fn keys_found_through_the_issuers_metadata() {
    let ec = TestKey::new("ec-1", Algorithm::ES256, EC_1);
    let idp = Idp::start(&[&ec]).await;
    let server = bioseq(&["--oauth-issuer", &idp.url]).await;
    let token = ec.sign(&claims(&idp.url, server.http(), ""));
    call_gc(
        server.http(),
        &[("authorization", format!("Bearer {token}"))],
    )
    .await;
}

#[tokio::test]
async fn cloudflare_access_assertion_is_validated() {
    let rsa = TestKey::new("cf-1", Algorithm::RS256, RSA_1);
    let idp = Idp::start(&[&rsa]).await;
    // The team as a URL (a team name means https://NAME.cloudflareaccess.com).
    let server = bioseq(&["--cf-access-team", &idp.url, "--cf-access-aud", CF_AUD]).await;
    let url = server.http();
    let assertion = |aud: &str| {
        let now = now();
        rsa.sign(&json!({
            "iss": idp.url, "aud": [aud], "sub": "a1b2", "email": "dev@example.com",
            "type": "app", "iat": now, "nbf": now, "exp": now + 300,
        }))
    };
    call_gc(url, &[("cf-access-jwt-assertion", assertion(CF_AUD))]).await;
    let wrong = post(url, initialize(1, json!({})))
        .header("cf-access-jwt-assertion", assertion("another-application"))
        .send()
        .await
        .expect("request");
    assert_refused(wrong, 401, "wrong audience").await;
    let missing = post(url, initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    let challenge = assert_refused(missing, 401, "realm").await;
    assert!(
        !challenge.contains("resource_metadata"),
        "no OAuth issuer to point at"
    );
    let metadata = reqwest::get(url.replace("/mcp", "/.well-known/oauth-protected-resource"))
        .await
        .expect("request");
    assert_eq!(
        metadata.status(),
        404,
        "no metadata without an OAuth issuer"
    );
}

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

#[tokio::test]
async fn each_gateway_server_is_a_resource_of_its_own() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let idp = Idp::start(&[&rsa]).await;
    let jwks = format!("{}/jwks", idp.url);
    let bioseq = serde_json::to_string(&mcp_expose_tests::bin("bioseq").display().to_string())
        .expect("a TOML string");
    let dir = std::env::temp_dir().join(format!("mcp-expose-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!("[servers.a]\ncommand = [{bioseq}]\n\n[servers.b]\ncommand = [{bioseq}]\n"),
    )
    .expect("config");
    let config = config.display().to_string();
    let server = ServerProcess::start(
        "mcp-expose",
        &[
            "gateway",
            &config,
            "--http",
            "0",
            "--oauth-issuer",
            &idp.url,
            "--oauth-jwks-url",
            &jwks,
        ],
    )
    .await;
    // The first server's URL is logged first.
    let base = server.http().trim_end_matches("/a/mcp").to_owned();
    let (a, b) = (format!("{base}/a/mcp"), format!("{base}/b/mcp"));
    // The challenge names a's own metadata, and that names a's URL: what RFC 9728 clients
    // (the MCP SDKs among them) check against the URL they asked.
    let denied = post(&a, initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    let challenge = assert_refused(denied, 401, "resource_metadata=").await;
    let metadata = format!("{base}/.well-known/oauth-protected-resource/a/mcp");
    assert!(
        challenge.contains(&format!(r#"resource_metadata="{metadata}""#)),
        "{challenge}"
    );
    let document: Value = reqwest::get(&metadata)
        .await
        .expect("metadata")
        .json()
        .await
        .expect("JSON");
    assert_eq!(document["resource"], a.as_str());
    assert_eq!(document["authorization_servers"], json!([idp.url]));
    // The Python MCP SDK's own discovery and resource check accept both servers.
    for url in [&a, &b] {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/oauth_discovery.py");
        let output = tokio::process::Command::new("python3")
            .arg(script)
            .arg(url)
            .output()
            .await
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let found: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
        assert_eq!(found["status"], 401);
        assert_eq!(found["resource"], url.as_str());
        assert_eq!(found["allowed"], true, "{found}");
    }

    let token_a = rsa.sign(&claims(&idp.url, &a, SCOPE));
    call_gc(&a, &[("authorization", format!("Bearer {token_a}"))]).await;
    // A token issued for one server of the gateway is no token for another.
    let refused = bearer(&b, &token_a, initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    assert_refused(refused, 401, "invalid_token").await;
    let token_b = rsa.sign(&claims(&idp.url, &b, SCOPE));
    call_gc(&b, &[("authorization", format!("Bearer {token_b}"))]).await;
}

#[tokio::test]
async fn forged_tokens_count_against_their_address_and_expired_ones_do_not() {
    let rsa = TestKey::new("rsa-1", Algorithm::RS256, RSA_1);
    let other = TestKey::new("rsa-2", Algorithm::RS256, RSA_2);
    let idp = Idp::start(&[&rsa]).await;
    let jwks = format!("{}/jwks", idp.url);
    let server = bioseq(&[
        "--oauth-issuer",
        &idp.url,
        "--oauth-jwks-url",
        &jwks,
        "--max-auth-failures",
        "2",
    ])
    .await;
    let url = server.http();
    let status = |token: String| async move {
        bearer(url, &token, initialize(1, json!({})))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    };
    // The issuer's own tokens, refused for their claims: a client about to refresh, no guess.
    let mut expired = claims(&idp.url, url, SCOPE);
    expired["exp"] = json!(now() - 3600);
    let mut elsewhere = claims(&idp.url, url, SCOPE);
    elsewhere["aud"] = json!("https://elsewhere.example/mcp");
    for token in [&expired, &expired, &elsewhere, &elsewhere] {
        assert_eq!(status(rsa.sign(token)).await, 401);
    }
    assert_eq!(status(rsa.sign(&claims(&idp.url, url, SCOPE))).await, 200);
    // Forged ones count: past two, the address is locked out, a valid token included.
    let good = claims(&idp.url, url, SCOPE);
    assert_eq!(status(other.sign_as("rsa-1", &good)).await, 401);
    assert_eq!(status("not.a.jwt".to_owned()).await, 401);
    assert_eq!(status(rsa.sign(&good)).await, 429);
}
