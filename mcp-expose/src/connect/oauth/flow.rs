//! One sign-in: client registration (pre-registered, a client ID metadata document, or
//! RFC 7591 dynamic registration), and the authorization code flow with PKCE S256 and the RFC
//! 8707 `resource` in a browser, the redirect caught on loopback (its code then exchanged by
//! [`token`](super::token)).

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
    token::{oauth_error, token_request},
};
use crate::error::{Result, describe};

/// How long the user has to finish signing in in the browser.
const SIGN_IN_WAIT: Duration = Duration::from_secs(300);
const CLIENT_NAME: &str = "mcp-expose connect";

/// The client for this sign-in: given, a metadata document URL, or registered now (for the
/// device flow when `redirect_uri` is empty).
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
    let mut body = if redirect_uri.is_empty() {
        // The device flow: no redirect.
        serde_json::json!({
            "client_name": CLIENT_NAME,
            "application_type": "native",
            "grant_types": [super::token::DEVICE_GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
    } else {
        serde_json::json!({
            "client_name": CLIENT_NAME,
            "application_type": "native",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    };
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
    let text = crate::connect::stream::bounded_text(response).await;
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
        Some(command) => run_browser(&command, url),
        None => {
            let url = url.to_owned();
            let opened = tokio::task::spawn_blocking(move || webbrowser::open(&url)).await;
            if !matches!(opened, Ok(Ok(()))) {
                tracing::info!("no browser to open; waiting for the URL to be opened by hand");
            }
        }
    }
}

/// Runs a browser `command` (the URL as its last argument, or in place of `%s`) with no stdin
/// or stdout (they carry the client's JSON-RPC), reaped in the background.
pub(super) fn run_browser(command: &str, url: &str) {
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

/// 32 random bytes, Base64url: a PKCE verifier (43 characters) or a state.
pub(super) fn random_token() -> String {
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
