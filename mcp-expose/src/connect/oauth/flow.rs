//! One sign-in: client registration (pre-registered, a client ID metadata document, or
//! RFC 7591 dynamic registration), the authorization code flow with PKCE S256 and the RFC
//! 8707 `resource` in a browser, the redirect caught on loopback, and the token requests
//! (code and refresh) with the client authentication the server expects.

use std::{collections::HashMap, time::Duration};

use axum::{Router, extract::Query, response::Html, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::{
    Settings, auth_error,
    discover::{Discovered, ServerMetadata, same_issuer},
    store::{Registration, Tokens},
};
use crate::error::{Result, describe};

/// How long the user has to finish signing in in the browser.
const SIGN_IN_WAIT: Duration = Duration::from_secs(300);
const CLIENT_NAME: &str = "mcp-expose connect";

/// The client for this sign-in: given, a metadata document URL, or registered now.
pub(crate) async fn register(
    http: &reqwest::Client,
    settings: &Settings,
    found: &Discovered,
    redirect_uri: &str,
) -> Result<Registration> {
    let server = &found.server;
    if let Some(client_id) = &settings.client_id {
        let auth_method = if settings.client_key.is_some() {
            "private_key_jwt".to_owned()
        } else {
            pick_method(server, settings.client_secret.is_some(), None)
        };
        return Ok(Registration {
            client_id: client_id.clone(),
            client_secret: settings.client_secret.clone(),
            auth_method,
            key_file: settings.client_key.clone(),
            client_credentials: settings.client_credentials,
        });
    }
    if let Some(url) = settings
        .client_metadata_url
        .as_ref()
        .filter(|_| server.client_id_metadata_document_supported)
    {
        return Ok(Registration {
            client_id: url.clone(),
            client_secret: None,
            auth_method: "none".to_owned(),
            key_file: None,
            client_credentials: false,
        });
    }
    let Some(endpoint) = &server.registration_endpoint else {
        return Err(auth_error(format!(
            "the authorization server {} offers no client registration: register a client there and pass --oauth-client-id",
            server.issuer
        )));
    };
    let mut body = serde_json::json!({
        "client_name": CLIENT_NAME,
        "application_type": "native",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    // A public client where the server allows one; else a secret, sent the way it prefers.
    if let Some(supported) = &server.token_endpoint_auth_methods_supported
        && !supported.iter().any(|m| m == "none")
    {
        let method = ["client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("client_secret_basic");
        body["token_endpoint_auth_method"] = method.into();
    }
    #[derive(Deserialize)]
    struct Registered {
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        token_endpoint_auth_method: Option<String>,
    }
    let response = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| auth_error(format!("cannot register at {endpoint}: {}", describe(&e))))?;
    let status = response.status();
    let text = body_text(response).await;
    if !status.is_success() {
        return Err(auth_error(format!(
            "client registration at {endpoint} failed: HTTP {status}: {}",
            oauth_error(&text)
        )));
    }
    let registered: Registered = serde_json::from_str(&text).map_err(|e| {
        auth_error(format!(
            "client registration at {endpoint} answered no client: {e}"
        ))
    })?;
    let auth_method = pick_method(
        server,
        registered.client_secret.is_some(),
        registered.token_endpoint_auth_method,
    );
    Ok(Registration {
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        auth_method,
        key_file: None,
        client_credentials: false,
    })
}

/// The token endpoint authentication: what registration said, else the first the server
/// supports that fits whether there is a secret (`client_secret_basic` when it lists none).
fn pick_method(server: &ServerMetadata, has_secret: bool, registered: Option<String>) -> String {
    if let Some(method) = registered {
        return method;
    }
    if !has_secret {
        return "none".to_owned();
    }
    let supported = server.token_endpoint_auth_methods_supported.as_deref();
    match supported {
        None => "client_secret_basic".to_owned(),
        Some(list) => ["client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| list.iter().any(|s| s == m))
            .unwrap_or("client_secret_basic")
            .to_owned(),
    }
}

/// A loopback listener for the authorization redirect.
pub(crate) struct Redirect {
    pub(crate) uri: String,
    received: mpsc::Receiver<HashMap<String, String>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Redirect {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Redirect {
    /// Listens on `127.0.0.1:port` (0: any free port) for `/callback`.
    pub(crate) async fn listen(port: u16) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                auth_error(format!(
                    "cannot listen on 127.0.0.1:{port} for the sign-in redirect: {e}"
                ))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| auth_error(format!("cannot read the redirect listener's port: {e}")))?
            .port();
        let (tx, received) = mpsc::channel(8);
        let app = Router::new().route(
            "/callback",
            get(move |Query(query): Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let failed = query.contains_key("error");
                    let _ = tx.send(query).await;
                    Html(if failed {
                        "<!doctype html><title>mcp-expose</title><p>Sign-in failed; see the terminal that runs mcp-expose.</p>"
                    } else {
                        "<!doctype html><title>mcp-expose</title><p>Signed in. You can close this window.</p>"
                    })
                }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            uri: format!("http://127.0.0.1:{port}/callback"),
            received,
            server,
        })
    }

    /// Waits for the redirect that carries `state`; its `code`. Checks `iss` (RFC 9207) when
    /// the authorization server sends it or promises to.
    async fn code(&mut self, state: &str, server: &ServerMetadata) -> Result<String> {
        let deadline = tokio::time::Instant::now() + SIGN_IN_WAIT;
        loop {
            let query = tokio::time::timeout_at(deadline, self.received.recv())
                .await
                .map_err(|_| {
                    auth_error(format!(
                        "no sign-in arrived within {} min: open the printed URL in a browser, or pass --oauth-browser",
                        SIGN_IN_WAIT.as_secs() / 60
                    ))
                })?
                .ok_or_else(|| auth_error("the sign-in redirect listener stopped"))?;
            if query.get("state").map(String::as_str) != Some(state) {
                tracing::warn!("ignoring a sign-in redirect with a state that is not ours");
                continue;
            }
            match query.get("iss") {
                Some(iss) if !same_issuer(iss, &server.issuer) => {
                    return Err(auth_error(format!(
                        "the sign-in redirect came from issuer {iss:?}, not {:?} (RFC 9207); refusing it",
                        server.issuer
                    )));
                }
                None if server.authorization_response_iss_parameter_supported => {
                    return Err(auth_error(format!(
                        "the sign-in redirect lacks the `iss` that {} promises (RFC 9207); refusing it",
                        server.issuer
                    )));
                }
                _ => {}
            }
            if let Some(error) = query.get("error") {
                let detail = query
                    .get("error_description")
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Err(auth_error(format!(
                    "the authorization server refused the sign-in ({error}{detail})"
                )));
            }
            return query
                .get("code")
                .cloned()
                .ok_or_else(|| auth_error("the sign-in redirect carried no code"));
        }
    }
}

/// The browser part: the authorization URL opened (or printed), the code caught, exchanged.
pub(crate) async fn authorize(
    http: &reqwest::Client,
    settings: &Settings,
    found: &Discovered,
    client: &Registration,
    redirect: &mut Redirect,
    scope: Option<&str>,
) -> Result<Tokens> {
    let server = &found.server;
    if found.has_metadata
        && !server
            .code_challenge_methods_supported
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|m| m == "S256")
    {
        return Err(auth_error(format!(
            "the authorization server {} does not list PKCE S256 in code_challenge_methods_supported; refusing to sign in",
            server.issuer
        )));
    }
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_token();
    let mut url = Url::parse(&server.authorization_endpoint).map_err(|e| {
        auth_error(format!(
            "the authorization endpoint {:?} is not a URL: {e}",
            server.authorization_endpoint
        ))
    })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect.uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &found.resource);
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
        }
    }
    open_browser(settings.browser.as_deref(), url.as_str()).await;
    let code = redirect.code(&state, server).await?;
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect.uri.clone()),
        ("code_verifier", verifier),
        ("resource", found.resource.clone()),
    ];
    token_request(http, server, client, form).await
}

/// A token for the client itself (the client credentials grant, RFC 6749 §4.4): no user, no
/// browser.
pub(crate) async fn client_credentials(
    http: &reqwest::Client,
    found: &Discovered,
    client: &Registration,
    scope: Option<&str>,
) -> Result<Tokens> {
    let mut form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("resource", found.resource.clone()),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope.to_owned()));
    }
    token_request(http, &found.server, client, form).await
}

/// A new access token from a refresh token.
pub(crate) async fn refresh(
    http: &reqwest::Client,
    server: &ServerMetadata,
    client: &Registration,
    refresh_token: &str,
    resource: &str,
) -> Result<Tokens> {
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
        ("resource", resource.to_owned()),
    ];
    let mut tokens = token_request(http, server, client, form).await?;
    // A server that does not rotate refresh tokens keeps the old one valid.
    tokens
        .refresh_token
        .get_or_insert_with(|| refresh_token.to_owned());
    Ok(tokens)
}

/// POSTs a token request with the client's authentication.
async fn token_request(
    http: &reqwest::Client,
    server: &ServerMetadata,
    client: &Registration,
    mut form: Vec<(&'static str, String)>,
) -> Result<Tokens> {
    let endpoint = server.token_endpoint.as_str();
    let mut request = http.post(endpoint);
    match (client.auth_method.as_str(), &client.client_secret) {
        ("private_key_jwt", _) => {
            form.push(("client_id", client.client_id.clone()));
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push(("client_assertion", assertion(client, &server.issuer)?));
        }
        ("client_secret_basic", Some(secret)) => {
            let pair = format!("{}:{}", form_encode(&client.client_id), form_encode(secret));
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        ("client_secret_post", Some(secret)) => {
            form.push(("client_id", client.client_id.clone()));
            form.push(("client_secret", secret.clone()));
        }
        _ => form.push(("client_id", client.client_id.clone())),
    }
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            auth_error(format!(
                "cannot reach the token endpoint {endpoint}: {}",
                describe(&e)
            ))
        })?;
    let status = response.status();
    let text = body_text(response).await;
    if !status.is_success() {
        return Err(auth_error(format!(
            "the token endpoint {endpoint} refused: HTTP {status}: {}",
            oauth_error(&text)
        )));
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        access_token: String,
        #[serde(default)]
        token_type: Option<String>,
        #[serde(default)]
        refresh_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
        #[serde(default)]
        scope: Option<String>,
    }
    let parsed: TokenResponse = serde_json::from_str(&text).map_err(|_| {
        auth_error(format!(
            "the token endpoint {endpoint} answered no access token"
        ))
    })?;
    if let Some(kind) = parsed
        .token_type
        .as_deref()
        .filter(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(auth_error(format!(
            "the token endpoint {endpoint} issued a {kind:?} token; only Bearer tokens can be sent"
        )));
    }
    Ok(Tokens {
        access_token: parsed.access_token,
        refresh_token: parsed.refresh_token,
        expires_at: parsed.expires_in.map(|s| now() + s),
        scope: parsed.scope,
    })
}

/// A signed client assertion (RFC 7523 §2.2, `private_key_jwt`): the client names itself to
/// `issuer` with the key in its key file (EC keys sign ES256, RSA keys RS256).
fn assertion(client: &Registration, issuer: &str) -> Result<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let path = client
        .key_file
        .as_ref()
        .ok_or_else(|| auth_error("private_key_jwt needs --oauth-client-key-file"))?;
    let pem = std::fs::read(path).map_err(|e| {
        auth_error(format!(
            "cannot read the client key {}: {e}",
            path.display()
        ))
    })?;
    let (key, alg) = match EncodingKey::from_ec_pem(&pem) {
        Ok(key) => (key, Algorithm::ES256),
        Err(_) => EncodingKey::from_rsa_pem(&pem)
            .map(|key| (key, Algorithm::RS256))
            .map_err(|_| {
                auth_error(format!(
                    "{} holds no EC or RSA private key in PEM",
                    path.display()
                ))
            })?,
    };
    let now = now();
    let claims = serde_json::json!({
        "iss": client.client_id, "sub": client.client_id, "aud": issuer,
        "iat": now, "exp": now + 300, "jti": random_token(),
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, &key)
        .map_err(|e| auth_error(format!("cannot sign the client assertion: {e}")))
}

/// Opens `url` with `browser` (a shell command, the URL as its last argument) or the
/// desktop's browser; the URL is printed either way, for a machine without one.
async fn open_browser(browser: Option<&str>, url: &str) {
    eprintln!("mcp-expose: to sign in, open this URL in a browser:\n  {url}");
    // $BROWSER (the first of its `:`-separated commands) runs like --oauth-browser, away from
    // stdin and stdout: a text browser must not read or write the client's JSON-RPC.
    let from_env = std::env::var("BROWSER").ok().and_then(|b| {
        let first = b.split(':').next()?.trim().to_owned();
        (!first.is_empty()).then_some(first)
    });
    match browser.map(str::to_owned).or(from_env) {
        Some(command) => {
            let line = if command.contains("%s") {
                command.replace("%s", "\"$1\"")
            } else {
                format!("{command} \"$1\"")
            };
            let spawned = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(line)
                .arg("mcp-expose")
                .arg(url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn();
            match spawned {
                // Reaped in the background; a browser may outlive the sign-in.
                Ok(mut child) => {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(SIGN_IN_WAIT, child.wait()).await;
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot run the browser command"),
            }
        }
        None => {
            let url = url.to_owned();
            let opened = tokio::task::spawn_blocking(move || webbrowser::open(&url)).await;
            if !matches!(opened, Ok(Ok(()))) {
                tracing::info!("no browser to open; waiting for the URL to be opened by hand");
            }
        }
    }
}

/// A registration or token response's body (at most 1 MiB).
async fn body_text(response: reqwest::Response) -> String {
    let body = crate::connect::stream::bounded_body(response, 1 << 20)
        .await
        .unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}

/// The readable part of an OAuth error body (`error` and `error_description`).
fn oauth_error(body: &str) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_str::<OAuthError>(body) {
        Ok(e) => match e.error_description {
            Some(d) => format!("{} ({d})", e.error),
            None => e.error,
        },
        Err(_) => body.trim().chars().take(200).collect(),
    }
}

/// RFC 6749 §2.3.1: client credentials in Basic are form-encoded first.
fn form_encode(text: &str) -> String {
    reqwest::Url::parse_with_params("x:", [("v", text)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("v=").to_owned()))
        .unwrap_or_else(|| text.to_owned())
}

/// 32 random bytes, Base64url: a PKCE verifier (43 characters) or a state.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_encode("plain-id"), "plain-id");
    }

    #[test]
    fn a_verifier_is_43_url_safe_characters() {
        let v = random_token();
        assert_eq!(v.len(), 43);
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(v, random_token());
    }
}
