//! A test OAuth authorization server on loopback, for `mcp-expose connect`'s sign-in: RFC 8414
//! metadata, dynamic client registration, an authorization endpoint that approves at once
//! (302 back to the client's redirect with `code`, `state` and `iss`), and a token endpoint
//! that checks PKCE S256 and issues RS256 JWTs (for the `resource` asked for) with refresh
//! tokens, and device authorization (RFC 8628: a code approved by a GET of its verification
//! URL). It keeps every token it issued, so a test can look for them where they must not be.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::oauth::{RSA_1, TestKey, now};

/// The authorization server: its issuer URL, and what it did.
#[derive(Clone)]
pub struct AuthServer {
    /// The issuer: `http://127.0.0.1:PORT`.
    pub url: String,
    inner: Arc<Inner>,
}

struct Inner {
    key: TestKey,
    scope: String,
    log: Mutex<Log>,
}

/// What the server saw and issued.
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// Authorization requests (one per browser sign-in).
    pub authorizations: usize,
    /// Device codes approved (one per sign-in on another device).
    pub device_approvals: usize,
    /// Refresh-token grants.
    pub refreshes: usize,
    /// Every access and refresh token issued.
    pub issued: Vec<String>,
    /// The `resource` of each token request.
    pub resources: Vec<String>,
    /// Pending codes: code -> (PKCE challenge, scope).
    codes: HashMap<String, (String, String)>,
    /// Live refresh tokens: token -> (resource, scope).
    refresh_tokens: HashMap<String, (String, String)>,
    /// Device codes: device code -> (user code, resource, approved).
    device_codes: HashMap<String, (String, String, bool)>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Serves on loopback; tokens carry `scope`.
    pub async fn start(scope: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = Self {
            url,
            inner: Arc::new(Inner {
                key: TestKey::new("as-1", Algorithm::RS256, RSA_1),
                scope: scope.to_owned(),
                log: Mutex::default(),
            }),
        };
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks", get(jwks))
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/device", post(device))
            .route("/activate", get(activate))
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    /// The JWKS URL (for `--oauth-jwks-url`).
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    /// What happened so far.
    pub fn log(&self) -> Log {
        self.logbook().clone()
    }

    /// The log, to record in.
    fn logbook(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.log.lock().expect("log")
    }

    fn mint(&self, resource: &str, scope: &str) -> Value {
        let now = now();
        let access = self.inner.key.sign(&json!({
            "iss": self.url, "aud": resource, "sub": "user-1", "scope": scope,
            "iat": now, "nbf": now, "exp": now + 300,
        }));
        let refresh = format!("refresh-{}-{}", now, self.log().issued.len());
        let mut log = self.logbook();
        log.issued.push(access.clone());
        log.issued.push(refresh.clone());
        log.refresh_tokens
            .insert(refresh.clone(), (resource.to_owned(), scope.to_owned()));
        json!({
            "access_token": access, "token_type": "Bearer", "expires_in": 300,
            "refresh_token": refresh, "scope": scope,
        })
    }
}

async fn metadata(State(server): State<AuthServer>) -> Json<Value> {
    let url = &server.url;
    Json(json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "registration_endpoint": format!("{url}/register"),
        "device_authorization_endpoint": format!("{url}/device"),
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [server.inner.scope, "offline_access"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn jwks(State(server): State<AuthServer>) -> Json<Value> {
    Json(json!({ "keys": [server.inner.key.jwk()] }))
}

async fn register(State(_): State<AuthServer>, Json(body): Json<Value>) -> Response {
    let mut client = body;
    client["client_id"] = "connect-client".into();
    client["token_endpoint_auth_method"] = "none".into();
    (StatusCode::CREATED, Json(client)).into_response()
}

async fn authorize(
    State(server): State<AuthServer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (Some(redirect), Some(challenge)) =
        (query.get("redirect_uri"), query.get("code_challenge"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri and code_challenge are required",
        )
            .into_response();
    };
    if query.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return (StatusCode::BAD_REQUEST, "PKCE S256 is required").into_response();
    }
    let code = format!("code-{}", now());
    let scope = query.get("scope").cloned().unwrap_or_default();
    {
        let mut log = server.logbook();
        log.authorizations += 1;
        log.codes.insert(code.clone(), (challenge.clone(), scope));
    }
    let mut location = reqwest::Url::parse(redirect).expect("redirect_uri is a URL");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", query.get("state").map_or("", String::as_str))
        .append_pair("iss", &server.url);
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device(
    State(server): State<AuthServer>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let n = now();
    let (device_code, user_code) = (format!("device-{n}"), format!("CODE-{}", n % 10_000));
    let resource = form.get("resource").cloned().unwrap_or_default();
    server
        .logbook()
        .device_codes
        .insert(device_code.clone(), (user_code.clone(), resource, false));
    let url = &server.url;
    Json(json!({
        "device_code": device_code, "user_code": user_code,
        "verification_uri": format!("{url}/activate"),
        "verification_uri_complete": format!("{url}/activate?user_code={user_code}"),
        "expires_in": 60, "interval": 1,
    }))
}

async fn activate(
    State(server): State<AuthServer>,
    Query(query): Query<HashMap<String, String>>,
) -> StatusCode {
    let mut log = server.logbook();
    let wanted = query.get("user_code").cloned().unwrap_or_default();
    let found = log
        .device_codes
        .values_mut()
        .find(|(code, _, _)| *code == wanted)
        .map(|entry| entry.2 = true);
    match found {
        Some(()) => {
            log.device_approvals += 1;
            StatusCode::OK
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn token(
    State(server): State<AuthServer>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refused =
        |error: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    let resource = form.get("resource").cloned().unwrap_or_default();
    server.logbook().resources.push(resource.clone());
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, _)) = server.logbook().codes.remove(&code) else {
                return refused("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                return refused("invalid_grant");
            }
            Json(server.mint(&resource, &server.inner.scope)).into_response()
        }
        Some("refresh_token") => {
            let token = form.get("refresh_token").cloned().unwrap_or_default();
            let known = {
                let mut log = server.logbook();
                log.refreshes += 1;
                log.refresh_tokens.remove(&token)
            };
            match known {
                Some((bound, scope)) if bound == resource => {
                    Json(server.mint(&resource, &scope)).into_response()
                }
                _ => refused("invalid_grant"),
            }
        }
        Some(DEVICE_GRANT) => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let entry = server.logbook().device_codes.get(&code).cloned();
            match entry {
                Some((_, bound, true)) if bound == resource => {
                    server.logbook().device_codes.remove(&code);
                    Json(server.mint(&resource, &server.inner.scope)).into_response()
                }
                Some((_, _, false)) => refused("authorization_pending"),
                _ => refused("invalid_grant"),
            }
        }
        _ => refused("unsupported_grant_type"),
    }
}
