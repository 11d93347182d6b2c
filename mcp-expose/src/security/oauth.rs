//! OAuth 2.1 resource server (the MCP authorization spec) and a Cloudflare Access preset.
//!
//! Access tokens are JWTs signed with RS256 or ES256 by a key from the issuer's JWKS (see
//! [`jwks`](super::jwks)); `iss` must be a configured issuer, `aud` the resource URL (or
//! `--oauth-audience`), `exp` must not have passed and `nbf` must have, each with 30 s of
//! leeway for clock skew. `/.well-known/oauth-protected-resource` (RFC 9728) tells clients
//! which authorization servers to ask. Behind Cloudflare Access, the edge adds
//! `Cf-Access-Jwt-Assertion`, validated against the team's certs and the application's AUD.

use std::{collections::HashSet, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind as JwtError};

use super::jwks::{KeySet, Location, check_url};
use crate::{
    error::{Error, ErrorKind, Result},
    transport::policy::{HostPolicy, json_error},
};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = crate::context::TOKEN_LEEWAY_SECS;
/// Longer tokens are refused without parsing.
const MAX_TOKEN: usize = 16 * 1024;
/// The header Cloudflare Access adds to requests it let through.
const CF_ACCESS_HEADER: &str = "cf-access-jwt-assertion";

/// OAuth and Cloudflare Access flags (feature `oauth`).
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct OAuthOptions {
    /// Accept OAuth access tokens (JWTs) from this authorization server (repeatable): a token's
    /// `iss` must be one of them. Listed in /.well-known/oauth-protected-resource.
    #[arg(
        long = "oauth-issuer",
        value_name = "URL",
        value_delimiter = ',',
        env = "MCP_EXPOSE_OAUTH_ISSUERS"
    )]
    pub oauth_issuers: Vec<String>,

    /// Where the issuers' signing keys are (default: `jwks_uri` from each issuer's metadata).
    #[arg(long, value_name = "URL", requires = "oauth_issuers")]
    pub oauth_jwks_url: Option<String>,

    /// Accepted `aud` values (repeatable; default: the resource URL).
    #[arg(
        long = "oauth-audience",
        value_name = "AUD",
        requires = "oauth_issuers"
    )]
    pub oauth_audiences: Vec<String>,

    /// Scopes every token must carry (repeatable); a token without them gets 403.
    #[arg(long = "oauth-scope", value_name = "SCOPE", requires = "oauth_issuers")]
    pub oauth_scopes: Vec<String>,

    /// This server's resource URL, e.g. `https://mcp.example.com/mcp` (default: the tunnel's
    /// public URL, else `http://<Host header>/mcp`).
    #[arg(long, value_name = "URL", requires = "oauth_issuers")]
    pub oauth_resource: Option<String>,

    /// Accept Cloudflare Access's `Cf-Access-Jwt-Assertion` from this team (`NAME` for
    /// `https://NAME.cloudflareaccess.com`, or a full URL).
    #[arg(long, value_name = "TEAM", requires = "cf_access_aud")]
    pub cf_access_team: Option<String>,

    /// The Access application's audience tag (repeatable).
    #[arg(
        long = "cf-access-aud",
        value_name = "AUD",
        value_delimiter = ',',
        requires = "cf_access_team"
    )]
    pub cf_access_aud: Vec<String>,
}

impl OAuthOptions {
    pub(crate) fn configured(&self) -> bool {
        !self.oauth_issuers.is_empty() || self.cf_access_team.is_some()
    }
}

/// Where a verifier finds its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `Authorization: Bearer` (or the WebSocket `bearer.` subprotocol).
    Bearer,
    CfAccess,
}

#[derive(Debug)]
enum Keys {
    /// One key set for every issuer.
    Shared(KeySet),
    /// Each issuer's own, found through its metadata.
    PerIssuer(Vec<(String, KeySet)>),
}

#[derive(Debug)]
struct Verifier {
    source: Source,
    issuers: Vec<String>,
    /// Empty: the resource URL.
    audiences: Vec<String>,
    scopes: Vec<String>,
    keys: Keys,
}

/// The outcome of checking a request's tokens.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Kept in the request's extensions, for [`Context::caller`](crate::Context::caller).
    Valid(Arc<crate::Caller>),
    Missing,
    Invalid(&'static str),
    InsufficientScope,
    /// No keys to check against (the JWKS could not be fetched yet).
    Unavailable,
}

/// The resource server: verifiers for OAuth and Cloudflare Access tokens, and the metadata.
#[derive(Debug)]
pub(crate) struct OAuth {
    verifiers: Vec<Verifier>,
    issuers: Vec<String>,
    scopes: Vec<String>,
    resource: Option<String>,
    policy: HostPolicy,
    /// The port of the listener serving `/mcp`: part of the loopback resource URL.
    local_port: std::sync::OnceLock<u16>,
    /// A gateway's path prefixes (`/github`): each serves its own resource, `.../github/mcp`.
    prefixes: std::sync::OnceLock<Vec<String>>,
}

/// Where RFC 9728 metadata lives; a resource's path follows it.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

impl OAuth {
    /// `None` when neither OAuth nor Cloudflare Access is configured. Starts fetching keys.
    pub(crate) fn resolve(
        options: &OAuthOptions,
        policy: &HostPolicy,
    ) -> Result<Option<Arc<Self>>> {
        if !options.configured() {
            return Ok(None);
        }
        // Both backends compiled in (by feature unification) would leave the choice open.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("mcp-expose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Config, "cannot build an HTTP client", e))?;
        let mut verifiers = Vec::new();
        let issuers: Vec<String> = options
            .oauth_issuers
            .iter()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect();
        if !issuers.is_empty() {
            for issuer in &issuers {
                check_url(issuer)?;
            }
            let keys = match &options.oauth_jwks_url {
                Some(url) => {
                    check_url(url)?;
                    Keys::Shared(KeySet::new(Location::Url(url.clone()), client.clone()))
                }
                None => Keys::PerIssuer(
                    issuers
                        .iter()
                        .map(|i| {
                            let keys = KeySet::new(Location::Discover(i.clone()), client.clone());
                            (i.clone(), keys)
                        })
                        .collect(),
                ),
            };
            verifiers.push(Verifier {
                source: Source::Bearer,
                issuers: issuers.clone(),
                audiences: options.oauth_audiences.clone(),
                scopes: options.oauth_scopes.clone(),
                keys,
            });
        }
        if let Some(team) = &options.cf_access_team {
            let team = team.trim().trim_end_matches('/');
            let issuer = if team.contains("://") {
                team.to_owned()
            } else {
                format!("https://{team}.cloudflareaccess.com")
            };
            check_url(&issuer)?;
            if options.cf_access_aud.is_empty() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "--cf-access-team needs --cf-access-aud",
                ));
            }
            let certs = format!("{issuer}/cdn-cgi/access/certs");
            verifiers.push(Verifier {
                source: Source::CfAccess,
                issuers: vec![issuer],
                audiences: options.cf_access_aud.clone(),
                scopes: Vec::new(),
                keys: Keys::Shared(KeySet::new(Location::Url(certs), client.clone())),
            });
        }
        if let Some(resource) = &options.oauth_resource {
            reqwest::Url::parse(resource).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("--oauth-resource `{resource}`: {e}"),
                )
            })?;
        }
        tracing::info!(
            issuers = ?issuers,
            cloudflare_access = options.cf_access_team.is_some(),
            scopes = ?options.oauth_scopes,
            "OAuth: requests need an access token"
        );
        let oauth = Arc::new(Self {
            verifiers,
            issuers,
            scopes: options.oauth_scopes.clone(),
            resource: options.oauth_resource.clone(),
            policy: policy.clone(),
            local_port: std::sync::OnceLock::new(),
            prefixes: std::sync::OnceLock::new(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let prefetch = oauth.clone();
            runtime.spawn(async move {
                let sets = prefetch.verifiers.iter().flat_map(|v| match &v.keys {
                    Keys::Shared(keys) => vec![keys],
                    Keys::PerIssuer(sets) => sets.iter().map(|(_, k)| k).collect(),
                });
                futures::future::join_all(sets.map(KeySet::prefetch)).await;
            });
        }
        Ok(Some(oauth))
    }

    /// The resource URL for a request to `path`; always one this server owns, never a name the
    /// client made up (a token's audience must not be the client's choice): `--oauth-resource`;
    /// else this listener's loopback URL when the client named it so (`localhost`, `127.0.0.1`,
    /// `[::1]` with the bound port); else the tunnel's public URL; else `127.0.0.1` and the port.
    /// Under a gateway's prefix, the prefix goes before `/mcp` (`https://h/github/mcp`; with
    /// `--oauth-resource https://h/api/mcp`, `https://h/api/github/mcp`): a token for one of its
    /// servers is no token for another.
    fn resource(&self, headers: &HeaderMap, path: &str) -> String {
        let prefix = self.prefix_of(path);
        let root = self.root_resource(headers);
        if prefix.is_empty() {
            return root;
        }
        match reqwest::Url::parse(&root) {
            Ok(mut url) => {
                let base = url.path().trim_end_matches('/');
                let base = base.strip_suffix("/mcp").unwrap_or(base);
                url.set_path(&format!("{base}{prefix}/mcp"));
                url.to_string()
            }
            Err(_) => root,
        }
    }

    /// The gateway prefix `path` is under (`""` for none).
    fn prefix_of<'a>(&'a self, path: &str) -> &'a str {
        self.prefixes
            .get()
            .into_iter()
            .flatten()
            .filter(|p| {
                path.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|p| p.len())
            .map_or("", String::as_str)
    }

    /// The resource outside any gateway prefix.
    fn root_resource(&self, headers: &HeaderMap) -> String {
        if let Some(resource) = &self.resource {
            return resource.clone();
        }
        let port = self.local_port.get().copied();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        if let (Some(host), Some(port)) = (host, port) {
            let named_port = host
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
            let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
            if loopback && named_port == Some(port) {
                return format!("http://{host}/mcp");
            }
        }
        if let Some(host) = self.policy.tunnel_host() {
            return format!("https://{host}/mcp");
        }
        format!("http://127.0.0.1:{}/mcp", port.unwrap_or(80))
    }

    /// The port of the listener serving `/mcp`, once bound.
    pub(crate) fn set_local_port(&self, port: u16) {
        let _ = self.local_port.set(port);
    }

    /// A gateway's path prefixes (`/github`), before the routes are built.
    pub(crate) fn set_prefixes(&self, prefixes: Vec<String>) {
        let _ = self.prefixes.set(prefixes);
    }

    /// Where a gateway's prefixes go in a resource's path: `--oauth-resource`'s path without
    /// its `/mcp` (`/api` for `https://h/api/mcp`, `/v1` for `https://h/v1`), else empty.
    fn base_path(&self) -> String {
        let path = self
            .resource
            .as_deref()
            .and_then(|r| reqwest::Url::parse(r).ok())
            .map(|url| url.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        path.strip_suffix("/mcp").unwrap_or(&path).to_owned()
    }

    /// Whether a token's audience needs a resource URL the server cannot know by itself:
    /// `--oauth-issuer` without `--oauth-resource` or `--oauth-audience` behind a proxy or on
    /// a public address.
    pub(crate) fn needs_resource(&self) -> bool {
        self.resource.is_none()
            && self
                .verifiers
                .iter()
                .any(|v| v.source == Source::Bearer && v.audiences.is_empty())
    }

    /// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
    fn metadata_url(&self, headers: &HeaderMap, path: &str) -> String {
        let resource = self.resource(headers, path);
        match reqwest::Url::parse(&resource) {
            Ok(url) => format!(
                "{}{WELL_KNOWN}{}",
                url.origin().ascii_serialization(),
                url.path().trim_end_matches('/')
            ),
            Err(_) => resource,
        }
    }

    /// Checks the request's tokens with every verifier; the first valid one wins.
    pub(crate) async fn verify(
        &self,
        headers: &HeaderMap,
        path: &str,
        bearer: Option<&str>,
    ) -> Verdict {
        let mut verdict = Verdict::Missing;
        for verifier in &self.verifiers {
            let token = match verifier.source {
                Source::Bearer => bearer,
                Source::CfAccess => headers.get(CF_ACCESS_HEADER).and_then(|v| v.to_str().ok()),
            };
            let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
                continue;
            };
            let outcome = verifier
                .verify(token, || self.resource(headers, path))
                .await;
            // Report the most telling failure: a scope problem, then an outage, then a bad token.
            verdict = match (outcome, verdict) {
                (Verdict::Valid(claims), _) => return Verdict::Valid(claims),
                (_, Verdict::InsufficientScope) | (Verdict::InsufficientScope, _) => {
                    Verdict::InsufficientScope
                }
                (_, Verdict::Unavailable) | (Verdict::Unavailable, _) => Verdict::Unavailable,
                (Verdict::Invalid(why), _) => Verdict::Invalid(why),
                (_, previous) => previous,
            };
        }
        verdict
    }

    /// The error response for a request without a valid token.
    pub(crate) fn refusal(&self, verdict: &Verdict, headers: &HeaderMap, path: &str) -> Response {
        let mut params = vec![r#"realm="mcp""#.to_owned()];
        let (status, message) = match verdict {
            Verdict::InsufficientScope => {
                params.push(r#"error="insufficient_scope""#.to_owned());
                (
                    StatusCode::FORBIDDEN,
                    "Forbidden: the token lacks a required scope".to_owned(),
                )
            }
            Verdict::Invalid(why) => {
                params.push(r#"error="invalid_token""#.to_owned());
                params.push(format!(r#"error_description="{why}""#));
                (
                    StatusCode::UNAUTHORIZED,
                    format!("Unauthorized: invalid token ({why})"),
                )
            }
            Verdict::Unavailable => {
                let mut response = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable: the authorization server's keys cannot be fetched",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
            Verdict::Missing | Verdict::Valid(_) => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send `Authorization: Bearer <access token>`".to_owned(),
            ),
        };
        if !self.scopes.is_empty() {
            params.push(format!(r#"scope="{}""#, quotable(&self.scopes.join(" "))));
        }
        if !self.issuers.is_empty() {
            params.push(format!(
                r#"resource_metadata="{}""#,
                quotable(&self.metadata_url(headers, path))
            ));
        }
        let challenge = format!("Bearer {}", params.join(", "));
        let mut response = json_error(status, &message);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
        );
        response
    }

    /// `GET /.well-known/oauth-protected-resource[/mcp]`, and the path form RFC 9728 gives for
    /// each resource (`.../api/mcp` for `https://h/api/mcp`, `.../github/mcp` for a gateway's
    /// `/github`), when OAuth issuers are configured.
    pub(crate) fn routes<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Option<Router<S>> {
        (!self.issuers.is_empty()).then(|| {
            self.metadata_paths()
                .iter()
                .fold(Router::new(), |router, path| {
                    router.route(path, get(metadata))
                })
                .with_state(self.clone())
        })
    }

    /// Where the metadata is served: the bare and `/mcp` forms, the root resource's path form,
    /// and each gateway prefix's.
    fn metadata_paths(&self) -> Vec<String> {
        let root = self
            .resource
            .as_deref()
            .and_then(|r| reqwest::Url::parse(r).ok())
            .map(|url| url.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let base = self.base_path();
        let mut paths = vec![
            WELL_KNOWN.to_owned(),
            format!("{WELL_KNOWN}/mcp"),
            format!("{WELL_KNOWN}{root}"),
        ];
        paths.extend(
            self.prefixes
                .get()
                .into_iter()
                .flatten()
                .map(|prefix| format!("{WELL_KNOWN}{base}{prefix}/mcp")),
        );
        paths.sort();
        paths.dedup();
        paths
    }
}

/// RFC 9728 protected resource metadata; for a gateway's server, the resource under its prefix.
async fn metadata(State(oauth): State<Arc<OAuth>>, request: axum::extract::Request) -> Response {
    let path = request.uri().path();
    let rest = path.strip_prefix(WELL_KNOWN).unwrap_or(path);
    let base = oauth.base_path();
    let rest = rest.strip_prefix(base.as_str()).unwrap_or(rest);
    let mut document = serde_json::json!({
        "resource": oauth.resource(request.headers(), rest),
        "authorization_servers": oauth.issuers,
        "bearer_methods_supported": ["header"],
    });
    if !oauth.scopes.is_empty() {
        document["scopes_supported"] = oauth.scopes.clone().into();
    }
    Json(document).into_response()
}

/// Drops what cannot appear inside a quoted header parameter.
fn quotable(value: &str) -> String {
    value
        .chars()
        .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
        .collect()
}

#[derive(serde::Deserialize)]
struct TokenClaims {
    iss: String,
    sub: Option<String>,
    /// Required by the validation; kept to close WebSocket sessions in time.
    /// A NumericDate: seconds, possibly fractional.
    exp: Option<f64>,
    email: Option<String>,
    /// OAuth's space-separated `scope`.
    scope: Option<String>,
    /// Some servers (Azure AD, Okta) say `scp`, a list or a string.
    scp: Option<ScopeList>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ScopeList {
    One(String),
    Many(Vec<String>),
}

impl TokenClaims {
    fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect();
        match &self.scp {
            Some(ScopeList::One(s)) => scopes.extend(s.split_whitespace().map(str::to_owned)),
            Some(ScopeList::Many(list)) => scopes.extend(list.iter().cloned()),
            None => {}
        }
        scopes
    }
}

/// Whether the token's JOSE header carries `crit`.
fn has_crit(token: &str) -> bool {
    use base64::Engine as _;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
        })
        .is_some_and(|header| header.contains_key("crit"))
}

impl Verifier {
    async fn verify(&self, token: &str, resource: impl FnOnce() -> String) -> Verdict {
        if token.len() > MAX_TOKEN {
            return Verdict::Invalid("token too long");
        }
        // `none`, HS* and anything else but RS256/ES256 fail here or just below.
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Verdict::Invalid("malformed token or unsupported algorithm");
        };
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Verdict::Invalid("unsupported algorithm");
        }
        // RFC 7515 §4.1.11: a `crit` header names extensions the recipient must understand or
        // reject the token; we understand none (jsonwebtoken ignores the field).
        if has_crit(token) {
            return Verdict::Invalid(
                "token has a critical header extension (crit) we do not support",
            );
        }
        let keys = match &self.keys {
            Keys::Shared(keys) => keys,
            Keys::PerIssuer(sets) => {
                // The signature is not checked yet: `iss` only picks the key set to check it with.
                #[derive(serde::Deserialize)]
                struct Issuer {
                    iss: String,
                }
                let issuer = jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(token);
                let Some((_, keys)) = issuer
                    .ok()
                    .and_then(|claims| sets.iter().find(|(i, _)| *i == claims.iss))
                else {
                    return Verdict::Invalid("unknown issuer");
                };
                keys
            }
        };
        let Some(candidates) = keys.keys(header.kid.as_deref()).await else {
            return Verdict::Unavailable;
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&self.issuers);
        if self.audiences.is_empty() {
            validation.set_audience(&[resource()]);
        } else {
            validation.set_audience(&self.audiences);
        }
        let mut matching = candidates.iter().filter(|k| {
            k.algorithm == header.alg
                && (header.kid.is_none() || k.kid.as_deref() == header.kid.as_deref())
        });
        let mut why = "no key matches the token's kid";
        // Without a `kid`, each key of the right type is tried (a handful at most).
        for key in matching.by_ref().take(8) {
            match jsonwebtoken::decode::<TokenClaims>(token, &key.key, &validation) {
                Ok(data) => return self.authorize(data.claims),
                Err(e) => {
                    why = describe(e.kind());
                    if why != "bad signature" {
                        break;
                    }
                }
            }
        }
        Verdict::Invalid(why)
    }

    fn authorize(&self, claims: TokenClaims) -> Verdict {
        let scopes = claims.scopes();
        let granted: HashSet<&str> = scopes.iter().map(String::as_str).collect();
        if !self.scopes.iter().all(|s| granted.contains(s.as_str())) {
            return Verdict::InsufficientScope;
        }
        Verdict::Valid(Arc::new(crate::Caller {
            issuer: claims.iss,
            subject: claims.sub,
            email: claims.email,
            scopes,
            expires_at: claims
                .exp
                .and_then(|exp| Duration::try_from_secs_f64(exp).ok())
                .and_then(|exp| std::time::UNIX_EPOCH.checked_add(exp)),
        }))
    }
}

/// Whether a token refused for `why` was still the issuer's own: these are found only once its
/// signature checked out (an expired token, one for another server), so it is no guess.
pub(crate) fn genuine(why: &str) -> bool {
    matches!(
        why,
        "token expired"
            | "token not yet valid"
            | "wrong audience"
            | "wrong issuer"
            | "a required claim is missing"
    )
}

fn describe(kind: &JwtError) -> &'static str {
    match kind {
        JwtError::ExpiredSignature => "token expired",
        JwtError::ImmatureSignature => "token not yet valid",
        JwtError::InvalidAudience => "wrong audience",
        JwtError::InvalidIssuer => "wrong issuer",
        JwtError::InvalidSignature => "bad signature",
        JwtError::MissingRequiredClaim(_) => "a required claim is missing",
        JwtError::InvalidAlgorithm => "unsupported algorithm",
        _ => "malformed token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forged_or_garbled_tokens_are_guesses() {
        for kind in [
            JwtError::ExpiredSignature,
            JwtError::ImmatureSignature,
            JwtError::InvalidAudience,
            JwtError::InvalidIssuer,
            JwtError::MissingRequiredClaim("exp".into()),
        ] {
            assert!(genuine(describe(&kind)), "{kind:?}");
        }
        for kind in [
            JwtError::InvalidSignature,
            JwtError::InvalidAlgorithm,
            JwtError::InvalidToken,
        ] {
            assert!(!genuine(describe(&kind)), "{kind:?}");
        }
    }

    fn claims(json: serde_json::Value) -> TokenClaims {
        serde_json::from_value(json).expect("claims")
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let c = claims(serde_json::json!({ "iss": "i", "scope": "read  write" }));
        assert_eq!(c.scopes(), ["read", "write"]);
        let c = claims(serde_json::json!({ "iss": "i", "scp": ["a", "b"] }));
        assert_eq!(c.scopes(), ["a", "b"]);
        let c = claims(serde_json::json!({ "iss": "i", "scp": "a b" }));
        assert_eq!(c.scopes(), ["a", "b"]);
    }

    #[test]
    fn resource_urls_are_the_servers_own() {
        let policy = HostPolicy::new(&["*".into()], &[]);
        let options = OAuthOptions {
            oauth_issuers: vec!["https://as.example.com".into()],
            oauth_jwks_url: Some("https://as.example.com/jwks".into()),
            ..OAuthOptions::default()
        };
        let oauth = OAuth::resolve(&options, &policy)
            .ok()
            .flatten()
            .expect("configured");
        assert!(oauth.needs_resource());
        oauth.set_local_port(8000);
        let with_host = |host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(host));
            headers
        };
        let resource = |host| oauth.resource(&with_host(host), "/mcp");
        assert_eq!(resource("127.0.0.1:8000"), "http://127.0.0.1:8000/mcp");
        assert_eq!(resource("localhost:8000"), "http://localhost:8000/mcp");
        assert_eq!(
            oauth.metadata_url(&with_host("localhost:8000"), "/mcp"),
            "http://localhost:8000/.well-known/oauth-protected-resource/mcp"
        );
        // A name the client made up (even an allowed one), or another local port, is not it.
        assert_eq!(resource("other.example:8000"), "http://127.0.0.1:8000/mcp");
        assert_eq!(resource("localhost:9000"), "http://127.0.0.1:8000/mcp");
        policy.set_tunnel_host(Some("abc.trycloudflare.com".into()), true);
        assert_eq!(
            resource("other.example"),
            "https://abc.trycloudflare.com/mcp"
        );
        assert_eq!(
            resource("abc.trycloudflare.com"),
            "https://abc.trycloudflare.com/mcp"
        );
        let explicit = OAuthOptions {
            oauth_resource: Some("https://mcp.example.com/api/mcp".into()),
            ..options
        };
        let oauth = OAuth::resolve(&explicit, &policy)
            .ok()
            .flatten()
            .expect("configured");
        assert!(!oauth.needs_resource());
        assert_eq!(
            oauth.metadata_url(&with_host("127.0.0.1:8000"), "/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp"
        );
        // A gateway's servers: each prefix is a resource of its own.
        oauth.set_prefixes(vec!["/github".into(), "/db".into()]);
        let headers = with_host("127.0.0.1:8000");
        assert_eq!(
            oauth.resource(&headers, "/github/ws"),
            "https://mcp.example.com/api/github/mcp"
        );
        assert_eq!(
            oauth.metadata_url(&headers, "/db/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/api/db/mcp"
        );
        assert_eq!(
            oauth.resource(&headers, "/githubx/mcp"),
            "https://mcp.example.com/api/mcp"
        );
        // Every challenge points at metadata that is served, whatever the resource's path.
        for resource in [
            "https://mcp.example.com/api/mcp",
            "https://mcp.example.com/v1",
        ] {
            let oauth = OAuth::resolve(
                &OAuthOptions {
                    oauth_resource: Some(resource.into()),
                    ..explicit.clone()
                },
                &policy,
            )
            .ok()
            .flatten()
            .expect("configured");
            oauth.set_prefixes(vec!["/github".into()]);
            let served = oauth.metadata_paths();
            for path in ["/mcp", "/github/mcp", "/github/ws"] {
                let url = oauth.metadata_url(&headers, path);
                let path = url.trim_start_matches("https://mcp.example.com");
                assert!(served.iter().any(|p| p == path), "{path} not in {served:?}");
            }
        }
    }

    #[test]
    fn refuses_plain_http_issuers_and_lone_cf_team() {
        let policy = HostPolicy::new(&[], &[]);
        let http = OAuthOptions {
            oauth_issuers: vec!["http://as.example.com".into()],
            ..OAuthOptions::default()
        };
        assert!(OAuth::resolve(&http, &policy).is_err());
        let lone = OAuthOptions {
            cf_access_team: Some("team".into()),
            ..OAuthOptions::default()
        };
        assert!(OAuth::resolve(&lone, &policy).is_err());
        assert!(
            OAuth::resolve(&OAuthOptions::default(), &policy)
                .ok()
                .flatten()
                .is_none()
        );
    }

    #[test]
    fn header_parameters_stay_quoted() {
        assert_eq!(quotable(r#"http://a"b\c/mcp x"#), "http://abc/mcp x");
    }
}
