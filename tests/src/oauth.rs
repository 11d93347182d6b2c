//! Helpers for the OAuth tests: signing keys from `tests/fixtures/oauth`, an identity provider
//! on loopback (JWKS, Cloudflare Access certs, RFC 8414 metadata), tokens and requests.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

use crate::ServerProcess;

/// An RSA test key (RS256).
pub const RSA_1: &str = include_str!("../fixtures/oauth/rsa-1.pem");
/// Another RSA test key (RS256).
pub const RSA_2: &str = include_str!("../fixtures/oauth/rsa-2.pem");
/// An EC test key (ES256).
pub const EC_1: &str = include_str!("../fixtures/oauth/ec-1.pem");
/// The scope the test servers require.
pub const SCOPE: &str = "mcp:tools";

/// A signing key and its public JWK.
pub struct TestKey {
    kid: &'static str,
    alg: Algorithm,
    /// The private key, for tokens a test assembles by hand.
    pub key: EncodingKey,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// The key in `pem` (PKCS#8), published as `kid` for `alg`.
    pub fn new(kid: &'static str, alg: Algorithm, pem: &str) -> Self {
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("test key");
        Self { kid, alg, key }
    }

    /// The public JWK, named `kid`.
    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("jwk");
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).expect("jwk json")
    }

    /// A token with `claims`, signed by this key (the header naming `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    /// A token with `claims` whose header names `kid`, another key's to forge one.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An identity provider on loopback: JWKS (swappable), Cloudflare Access certs, RFC 8414
/// metadata; counts JWKS fetches.
#[derive(Clone, Debug)]
pub struct Idp {
    /// The issuer: `http://127.0.0.1:PORT`.
    pub url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Idp {
    /// Serves on loopback, publishing `keys`.
    pub async fn start(keys: &[&TestKey]) -> Self {
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

    /// Replaces the published keys (a rotation).
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().expect("jwks") =
            json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Claims the server accepts: from `issuer`, for `audience`, valid for five minutes.
pub fn claims(issuer: &str, audience: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "aud": audience, "sub": "user-1", "scope": scope,
        "iat": now, "nbf": now, "exp": now + 300,
    })
}

/// `bioseq` on HTTP and WebSocket (port 0), with `extra` arguments.
pub async fn bioseq(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--http", "0", "--ws", "0"];
    args.extend_from_slice(extra);
    ServerProcess::start("bioseq", &args).await
}

/// An OAuth server trusting `idp` by its JWKS URL, requiring `mcp:tools`.
pub async fn oauth_server(idp: &Idp) -> ServerProcess {
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

/// A streamable HTTP POST of `body`.
pub fn post(url: &str, body: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
}

/// [`post`] with `Authorization: Bearer token`.
pub fn bearer(url: &str, token: &str, body: String) -> reqwest::RequestBuilder {
    post(url, body).header("authorization", format!("Bearer {token}"))
}

/// The JSON-RPC message of a JSON or SSE response.
pub async fn message(response: reqwest::Response) -> Value {
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
