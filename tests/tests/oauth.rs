//! OAuth 2.1 resource server and the Cloudflare Access preset, against the real `bioseq`
//! binary: a JWKS server runs in the test on loopback, tokens are signed with the test keys in
//! `tests/fixtures/oauth`. This file checks a request's token (algorithms, claims, keys,
//! refusals and their challenges, RFC 9728 metadata, a gateway's per-server resources, the
//! lockout); `oauth_sessions.rs` what a valid token opens (the caller a tool sees, WebSocket
//! sessions that end with their token).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_expose_tests::{
    ServerProcess, assert_gc_ggccat, initialize, initialized,
    oauth::{
        EC_1, Idp, RSA_1, RSA_2, SCOPE, TestKey, bearer, bioseq, claims, message, now,
        oauth_server, post,
    },
    request,
};
use serde_json::{Value, json};

const CF_AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

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
