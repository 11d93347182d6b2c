//! Bearer-token authentication for HTTP and WebSocket, as an axum middleware.
//!
//! Tokens come from `--auth-token-file` (one per line) or `MCP_EXPOSE_TOKENS` (comma-separated;
//! several allow rotation). When the server is reachable beyond loopback (a tunnel, or a
//! non-loopback bind) and no token was given, one is generated and printed once on stderr;
//! `--no-auth` opts out. `/health` stays open. With the `oauth` feature, OAuth access tokens
//! and Cloudflare Access assertions are accepted too (see [`oauth`](super::oauth)).

use std::{path::PathBuf, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::principal::{Authenticated, digest};
use crate::{
    error::{Error, ErrorKind, Result},
    security::policy::HostPolicy,
    web::json_error,
};

/// Authentication flags.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct AuthOptions {
    /// A file of accepted bearer tokens, one per line (MCP_EXPOSE_TOKENS, comma-separated, also works).
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Accepted tokens, from the environment only (never on the command line).
    #[arg(skip = std::env::var("MCP_EXPOSE_TOKENS").ok())]
    pub tokens_env: Option<String>,

    /// Serve without authentication even when reachable beyond loopback (a tunnel or a public bind).
    #[arg(long)]
    pub no_auth: bool,

    /// Failed token checks allowed per client address and minute; past them the address gets
    /// 429 for every request until it is back under (0: no limit) [default: 30]. Behind a proxy,
    /// see --trusted-proxy: otherwise its address is every client's.
    #[arg(long, value_name = "N")]
    pub max_auth_failures: Option<u32>,

    /// OAuth 2.1 and Cloudflare Access.
    #[cfg(feature = "oauth")]
    #[command(flatten)]
    pub oauth: super::oauth::OAuthOptions,
}

/// Failed token checks per client address and minute, unless configured.
pub(crate) const DEFAULT_MAX_AUTH_FAILURES: u32 = 30;

/// The accepted tokens, kept as SHA-256 digests and compared in constant time.
#[derive(Clone)]
pub(crate) struct Auth {
    /// Each token's digest, and the principal a request presenting it is (computed once here,
    /// not per request).
    tokens: Arc<[([u8; 32], Arc<str>)]>,
    /// Failed checks per client address.
    strikes: Option<Arc<super::rate::Strikes>>,
    /// A token generated at start, to print in client configs.
    pub(crate) generated: Option<String>,
    #[cfg(feature = "oauth")]
    oauth: Option<Arc<super::oauth::OAuth>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .field("oauth", &self.oauth_enabled())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The authentication to use: configured tokens and OAuth; a generated token when `exposed`
    /// without either; none when the user opted out or the server is loopback-only without them.
    /// `policy` tells OAuth the tunnel's public hostname.
    pub(crate) fn resolve(
        options: &AuthOptions,
        exposed: bool,
        policy: &HostPolicy,
    ) -> Result<Option<Self>> {
        let mut tokens = Vec::new();
        if let Some(file) = &options.auth_token_file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::with_source(
                    ErrorKind::Config,
                    format!("cannot read {}", file.display()),
                    e,
                )
            })?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && !t.starts_with('#'))
                    .map(str::to_owned),
            );
            if tokens.is_empty() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{} holds no token", file.display()),
                ));
            }
        }
        if let Some(env) = &options.tokens_env {
            tokens.extend(
                env.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        #[cfg(feature = "oauth")]
        if options.no_auth && options.oauth.configured() {
            return Err(Error::new(
                ErrorKind::Config,
                "--no-auth contradicts --oauth-issuer / --cf-access-team",
            ));
        }
        #[cfg(feature = "oauth")]
        let oauth = super::oauth::OAuth::resolve(&options.oauth, policy)?;
        #[cfg(not(feature = "oauth"))]
        let _ = policy;
        if options.no_auth {
            if exposed {
                tracing::warn!("--no-auth: anyone who can reach this server can call its tools");
            }
            return Ok(None);
        }
        #[cfg(feature = "oauth")]
        let configured = !tokens.is_empty() || oauth.is_some();
        #[cfg(not(feature = "oauth"))]
        let configured = !tokens.is_empty();
        let strikes = super::rate::Strikes::new(
            options
                .max_auth_failures
                .unwrap_or(DEFAULT_MAX_AUTH_FAILURES),
        )
        .map(Arc::new);
        if configured {
            return Ok(Some(Self {
                tokens: tokens.iter().map(|t| Authenticated::token(t)).collect(),
                strikes,
                generated: None,
                #[cfg(feature = "oauth")]
                oauth,
            }));
        }
        if !exposed {
            return Ok(None);
        }
        let token = generate_token()?;
        Ok(Some(Self {
            tokens: Arc::new([Authenticated::token(&token)]),
            strikes,
            generated: Some(token),
            #[cfg(feature = "oauth")]
            oauth: None,
        }))
    }

    /// Counts failed token checks in `redis`, across the replicas sharing it.
    #[cfg(feature = "redis")]
    pub(crate) fn share_strikes(&mut self, redis: crate::store::Redis) {
        if let Some(strikes) = self.strikes.as_mut().and_then(Arc::get_mut) {
            strikes.share(redis);
        }
    }

    /// Once the listeners are bound: tells OAuth the port of `/mcp` and a gateway's path
    /// prefixes (each a resource of its own), and refuses a setup where a token's audience would
    /// have to be guessed from the request (`direct` means: loopback bind, no trusted proxy).
    #[cfg_attr(not(feature = "oauth"), allow(unused_variables))]
    pub(crate) fn bind_resource(
        &self,
        http_port: Option<u16>,
        prefixes: Vec<String>,
        tunneled: bool,
        direct: bool,
    ) -> Result<()> {
        #[cfg(feature = "oauth")]
        if let Some(oauth) = &self.oauth {
            if let Some(port) = http_port {
                oauth.set_local_port(port);
            }
            oauth.set_prefixes(prefixes);
            if oauth.needs_resource() && !tunneled && !direct {
                return Err(Error::new(
                    ErrorKind::Config,
                    "--oauth-issuer on a public address or behind a proxy needs --oauth-resource URL \
                     (the URL clients connect to, which tokens must be issued for)",
                ));
            }
        }
        Ok(())
    }

    fn oauth_enabled(&self) -> bool {
        #[cfg(feature = "oauth")]
        return self.oauth.is_some();
        #[cfg(not(feature = "oauth"))]
        false
    }

    /// The open routes that come with the authentication: RFC 9728 metadata under OAuth.
    pub(crate) fn metadata_routes<S: Clone + Send + Sync + 'static>(
        &self,
    ) -> Option<axum::Router<S>> {
        #[cfg(feature = "oauth")]
        return self.oauth.as_ref().and_then(|oauth| oauth.routes());
        #[cfg(not(feature = "oauth"))]
        None
    }

    #[cfg(test)]
    fn accepts(&self, presented: &str) -> bool {
        self.principal(presented).is_some()
    }

    /// The principal of the token `presented`, if it is one of ours. Digests are compared, so
    /// neither the tokens' contents nor their lengths show in the time taken; every token is
    /// compared, so neither does which one nearly matched.
    fn principal(&self, presented: &str) -> Option<Arc<str>> {
        let presented = digest(presented);
        let mut found = None;
        for (token, principal) in self.tokens.iter() {
            if bool::from(token.ct_eq(&presented)) {
                found = Some(principal.clone());
            }
        }
        found
    }
}

/// 32 random bytes, base64url.
fn generate_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot generate a token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The token a request presents: `Authorization: Bearer <token>`, or for a WebSocket upgrade
/// from a browser (which cannot set headers) a subprotocol `bearer.<token>`.
fn presented(request: &Request) -> Option<&str> {
    let headers = request.headers();
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        // Two Authorization headers are ambiguous: neither is believed.
        if authorization.next().is_some() {
            return Some("");
        }
        let (scheme, token) = value.to_str().ok()?.trim().split_once([' ', '\t'])?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer."))
}

/// An event stream opened with a token that expires ends when the token does (plus the
/// leeway): the client reconnects with a fresh one, as it would after any dropped stream
/// (`Last-Event-ID` resumes it). Other responses are whole already.
#[cfg(feature = "oauth")]
fn ends_at(response: Response, at: tokio::time::Instant) -> Response {
    use futures::StreamExt as _;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming {
        return response;
    }
    response.map(|body| {
        let expired = tokio::time::sleep_until(at);
        axum::body::Body::from_stream(body.into_data_stream().take_until(expired))
    })
}

/// A browser's visit to the landing page: shown (in part) without a token.
fn public_page(request: &Request) -> bool {
    request.method() == axum::http::Method::GET
        && matches!(request.uri().path(), "/" | "/.well-known/mcp")
        && !request.headers().contains_key(header::UPGRADE)
}

/// Middleware: 401 with `WWW-Authenticate: Bearer` and a JSON body unless a valid token is presented.
pub(crate) async fn require(
    State(auth): State<Auth>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = crate::web::client_of(request.extensions());
    let locked = match (&auth.strikes, client) {
        (Some(strikes), Some(client)) => strikes.locked_anywhere(client).await,
        _ => None,
    };
    if let (Some(wait), Some(client)) = (locked, client) {
        tracing::debug!(%client, retry_after = ?wait, "refused an address with too many failed token checks");
        crate::observe::metrics::rejected("auth_failures");
        return super::rate::too_many(
            "Too Many Requests: too many failed token checks from this address; retry later",
            wait,
        );
    }
    // A wrong token counts against its address; no token (a client discovering how to sign
    // in) does not.
    let strike = async |auth: &Auth| {
        if let (Some(strikes), Some(client)) = (&auth.strikes, client) {
            strikes.strike_anywhere(client).await;
        }
    };
    let bearer = presented(&request).map(str::to_owned);
    if let Some(principal) = bearer.as_deref().and_then(|token| auth.principal(token)) {
        request.extensions_mut().insert(Authenticated(principal));
        return next.run(request).await;
    }
    #[cfg(feature = "oauth")]
    if let Some(oauth) = &auth.oauth {
        use super::oauth::Verdict;
        let verdict = oauth
            .verify(request.headers(), request.uri().path(), bearer.as_deref())
            .await;
        if let Verdict::Valid(caller) = verdict {
            let deadline = caller.deadline();
            request
                .extensions_mut()
                .insert(Authenticated::caller(&caller));
            request.extensions_mut().insert(caller);
            let response = next.run(request).await;
            return match deadline {
                Some(at) => ends_at(response, at),
                None => response,
            };
        }
        // A forged or garbled token counts; a genuine one refused for its claims (expired: its
        // client is about to refresh it) does not. A bearer matching no static token and unread
        // by OAuth (only Cloudflare Access is configured) was a wrong token too.
        let wrong = match &verdict {
            Verdict::Invalid(why) => !super::oauth::genuine(why),
            Verdict::Missing => bearer.is_some(),
            _ => false,
        };
        if wrong {
            strike(&auth).await;
        }
        if public_page(&request) {
            return next.run(request).await;
        }
        tracing::debug!(path = %request.uri().path(), ?client, ?verdict, "rejected a request without a valid token");
        crate::observe::metrics::rejected("auth");
        return oauth.refusal(&verdict, request.headers(), request.uri().path());
    }
    if bearer.is_some() {
        strike(&auth).await;
    }
    let challenge = match bearer {
        _ if public_page(&request) => return next.run(request).await,
        Some(_) => r#"Bearer realm="mcp", error="invalid_token""#,
        None => r#"Bearer realm="mcp""#,
    };
    tracing::debug!(path = %request.uri().path(), ?client, "rejected a request without a valid token");
    crate::observe::metrics::rejected("auth");
    let mut response = json_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized: send `Authorization: Bearer <token>`",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_when_exposed_and_not_otherwise() {
        let options = AuthOptions::default();
        let policy = HostPolicy::new(&[], &[]);
        assert!(
            Auth::resolve(&options, false, &policy)
                .ok()
                .flatten()
                .is_none()
        );
        let auth = Auth::resolve(&options, true, &policy)
            .ok()
            .flatten()
            .expect("generated");
        let token = auth.generated.clone().expect("token");
        assert_eq!(token.len(), 43);
        assert!(auth.accepts(&token));
        assert!(!auth.accepts("wrong"));
        let opted_out = AuthOptions {
            no_auth: true,
            ..AuthOptions::default()
        };
        assert!(
            Auth::resolve(&opted_out, true, &policy)
                .ok()
                .flatten()
                .is_none()
        );
        let env = AuthOptions {
            tokens_env: Some("a, b".into()),
            ..AuthOptions::default()
        };
        let auth = Auth::resolve(&env, false, &policy)
            .ok()
            .flatten()
            .expect("configured");
        assert!(auth.accepts("a") && auth.accepts("b") && auth.generated.is_none());
    }
}
