//! Requests to the token endpoint: the client's authentication (none, `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt`), the grants (authorization code, refresh, client
//! credentials, device code), and their answers, read within bounds.

use base64::Engine as _;
use serde::Deserialize;

use super::{
    auth_error,
    discover::{Discovered, ServerMetadata},
    flow::{now, random_token},
    store::{Registration, Tokens},
};
use crate::error::{Result, describe};

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

/// POSTs a token request with the client's authentication; its tokens.
pub(super) async fn token_request(
    http: &reqwest::Client,
    server: &ServerMetadata,
    client: &Registration,
    form: Vec<(&'static str, String)>,
) -> Result<Tokens> {
    let endpoint = server.token_endpoint.as_str();
    let (status, text) = send_form(http, endpoint, &server.issuer, client, form).await?;
    if !status.is_success() {
        return Err(auth_error(format!(
            "the token endpoint {endpoint} refused: HTTP {status}: {}",
            oauth_error(&text)
        )));
    }
    tokens(endpoint, &text)
}

/// POSTs `form` to `endpoint` with the client's authentication (RFC 6749 §2.3, RFC 7523);
/// the status and the body (at most 1 MiB).
async fn send_form(
    http: &reqwest::Client,
    endpoint: &str,
    issuer: &str,
    client: &Registration,
    mut form: Vec<(&'static str, String)>,
) -> Result<(reqwest::StatusCode, String)> {
    let mut request = http.post(endpoint);
    match (client.auth_method.as_str(), &client.client_secret) {
        ("private_key_jwt", _) => {
            form.push(("client_id", client.client_id.clone()));
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push(("client_assertion", assertion(client, issuer)?));
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
        .map_err(|e| auth_error(format!("cannot reach {endpoint}: {}", describe(&e))))?;
    let status = response.status();
    Ok((status, crate::connect::stream::bounded_text(response).await))
}

/// The tokens of a successful token response.
fn tokens(endpoint: &str, text: &str) -> Result<Tokens> {
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
    let parsed: TokenResponse = serde_json::from_str(text).map_err(|_| {
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

/// The device authorization grant (RFC 8628): the user signs in on another device, with the
/// URL and code printed here, while the connector polls the token endpoint (at the pace the
/// server asks, for as long as the code lives, at most 15 minutes).
pub(crate) async fn device(
    http: &reqwest::Client,
    browser: Option<&str>,
    found: &Discovered,
    client: &Registration,
    scope: Option<&str>,
) -> Result<Tokens> {
    let server = &found.server;
    let endpoint = server.device_authorization_endpoint.as_deref().ok_or_else(|| {
        auth_error(format!(
            "the authorization server {} offers no device authorization (RFC 8628); leave out --oauth-device-code",
            server.issuer
        ))
    })?;
    let mut form = vec![("resource", found.resource.clone())];
    if let Some(scope) = scope {
        form.push(("scope", scope.to_owned()));
    }
    let (status, text) = send_form(http, endpoint, &server.issuer, client, form).await?;
    if !status.is_success() {
        return Err(auth_error(format!(
            "device authorization at {endpoint} refused: HTTP {status}: {}",
            oauth_error(&text)
        )));
    }
    #[derive(Deserialize)]
    struct DeviceAuthorization {
        device_code: String,
        user_code: String,
        verification_uri: String,
        #[serde(default)]
        verification_uri_complete: Option<String>,
        expires_in: u64,
        #[serde(default)]
        interval: Option<u64>,
    }
    let granted: DeviceAuthorization = serde_json::from_str(&text)
        .map_err(|e| auth_error(format!("{endpoint} answered no device code: {e}")))?;
    eprintln!(
        "mcp-expose: to sign in, open {} on any device and enter the code {}",
        granted.verification_uri, granted.user_code
    );
    if let (Some(browser), Some(complete)) = (browser, &granted.verification_uri_complete) {
        super::flow::run_browser(browser, complete);
    }
    let mut interval = std::time::Duration::from_secs(granted.interval.unwrap_or(5).clamp(1, 60));
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(granted.expires_in.min(DEVICE_WAIT_SECS));
    loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() > deadline {
            return Err(auth_error(
                "the device code expired before the sign-in was approved; run the client again",
            ));
        }
        let form = vec![
            ("grant_type", DEVICE_GRANT.to_owned()),
            ("device_code", granted.device_code.clone()),
            ("resource", found.resource.clone()),
        ];
        let endpoint = server.token_endpoint.as_str();
        let (status, text) = send_form(http, endpoint, &server.issuer, client, form).await?;
        if status.is_success() {
            return tokens(endpoint, &text);
        }
        match error_code(&text).as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += std::time::Duration::from_secs(5),
            _ => {
                return Err(auth_error(format!(
                    "the device sign-in ended: HTTP {status}: {}",
                    oauth_error(&text)
                )));
            }
        }
    }
}

/// The grant type of RFC 8628's token requests.
pub(super) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The longest a device code is waited for.
const DEVICE_WAIT_SECS: u64 = 900;

/// The `error` of an OAuth error body.
fn error_code(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    serde_json::from_str::<OAuthError>(body)
        .ok()
        .map(|e| e.error)
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

/// The readable part of an OAuth error body (`error` and `error_description`).
pub(super) fn oauth_error(body: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_encode("plain-id"), "plain-id");
    }
}
