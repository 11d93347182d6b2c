//! OAuth 2.1 sign-in for `connect`, the client side of the MCP authorization spec: a `401`
//! (or a `403 insufficient_scope`) from the server starts discovery ([`discover`]),
//! registration and the browser flow ([`flow`]); tokens are kept per server ([`store`]),
//! refreshed before they expire, and never logged.

mod challenge;
mod discover;
mod flow;
mod store;
mod token;

use std::sync::Mutex;

use reqwest::Url;

pub(crate) use self::challenge::Challenge;
use self::store::{Saved, Store};
use crate::error::{Error, ErrorKind, Result};

/// A token this close to expiry is refreshed before it is sent.
const REFRESH_MARGIN_SECS: u64 = 30;
/// How long a failed sign-in answers for the requests that waited on it.
const FAILURE_MEMO: std::time::Duration = std::time::Duration::from_secs(30);
/// Each request to a metadata, registration or token endpoint.
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How to sign in, from the command line.
#[derive(Clone, Default)]
pub(crate) struct Settings {
    /// A client registered beforehand (`--oauth-client-id`), and its secret.
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    /// For `private_key_jwt`: the PEM file of the client's key.
    pub(crate) client_key: Option<std::path::PathBuf>,
    /// Sign in as the client itself (the client credentials grant): no user, no browser.
    pub(crate) client_credentials: bool,
    /// Sign in on another device (RFC 8628): a URL and a code printed here.
    pub(crate) device_code: bool,
    /// A client ID metadata document URL, used where the server accepts one.
    pub(crate) client_metadata_url: Option<String>,
    /// A command that opens a URL (`--oauth-browser`), else the desktop's browser.
    pub(crate) browser: Option<String>,
    /// The loopback port of the redirect (0: any).
    pub(crate) redirect_port: u16,
    /// Scopes to ask for instead of what the server suggests.
    pub(crate) scope: Option<String>,
}

// The client secret stays out of logs and panics.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("client_id", &self.client_id)
            .field("client_credentials", &self.client_credentials)
            .field("browser", &self.browser)
            .finish_non_exhaustive()
    }
}

/// Sign-ins (or refreshes) one request or WebSocket upgrade may cause: a server that keeps
/// refusing every token (or keeps asking for more scope) gets an error, not a loop.
const MAX_SIGN_INS: u32 = 3;

/// Signing in to one server, and the tokens for it.
#[derive(Debug)]
pub(crate) struct OAuth {
    settings: Settings,
    server: Url,
    /// For metadata (GET).
    http: reqwest::Client,
    /// For registration and tokens (POST, no redirects).
    post: reqwest::Client,
    store: Store,
    /// The sign-in in use (saved earlier, refreshed, or new).
    saved: Mutex<Option<Saved>>,
    /// One sign-in or refresh at a time; the others then use its token.
    flow: tokio::sync::Mutex<()>,
    /// The last sign-in that failed, and why.
    failed: Mutex<Option<(std::time::Instant, String)>>,
}

impl OAuth {
    /// Sign-in for `server`, starting from what was saved for it.
    pub(crate) fn new(server: Url, settings: Settings) -> Result<Self> {
        let store = Store::user()?;
        let client = |redirects| {
            reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .redirect(redirects)
                .user_agent(concat!("mcp-expose-connect/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| {
                    Error::with_source(ErrorKind::Config, "cannot create the HTTP client", e)
                })
        };
        let http = client(reqwest::redirect::Policy::limited(5))?;
        // Registration and token requests carry secrets in their bodies: never re-sent elsewhere.
        let post = client(reqwest::redirect::Policy::none())?;
        let saved = store.load(server.as_str());
        if saved.is_some() {
            tracing::debug!(%server, "using the saved sign-in");
        }
        Ok(Self {
            settings,
            server,
            http,
            post,
            store,
            saved: Mutex::new(saved),
            flow: tokio::sync::Mutex::new(()),
            failed: Mutex::default(),
        })
    }

    /// Whether a response (its status and headers) asks for (other) credentials: a `401`, or a
    /// `403` whose challenge is `insufficient_scope`; with whether it was the latter, and the
    /// challenges.
    fn challenged(
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) -> Option<(bool, Vec<String>)> {
        let challenges: Vec<String> = headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        match status {
            reqwest::StatusCode::UNAUTHORIZED => Some((false, challenges)),
            reqwest::StatusCode::FORBIDDEN
                if Challenge::parse(challenges.iter().map(String::as_str)).insufficient_scope() =>
            {
                Some((true, challenges))
            }
            _ => None,
        }
    }

    /// Answers a response that asks for (other) credentials, unless `sign_ins` (this request's
    /// count, bumped here) reached [`MAX_SIGN_INS`]: `None` when there is nothing to answer
    /// (send the response on), `Some(Ok)` when the request may go again with the new token.
    pub(crate) async fn answer(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        sent: Option<&str>,
        sign_ins: &mut u32,
    ) -> Option<Result<()>> {
        let (forbidden, challenges) = Self::challenged(status, headers)?;
        if *sign_ins >= MAX_SIGN_INS {
            return None;
        }
        *sign_ins += 1;
        Some(self.respond(forbidden, &challenges, sent).await)
    }

    fn saved(&self) -> std::sync::MutexGuard<'_, Option<Saved>> {
        lock(&self.saved)
    }

    /// The `Authorization` value to send, refreshing a token about to expire first.
    pub(crate) async fn authorization(&self) -> Option<String> {
        let expiring = self.saved().as_ref().is_some_and(|s| {
            s.tokens.refresh_token.is_some()
                && s.tokens
                    .expires_at
                    .is_some_and(|at| at <= flow::now() + REFRESH_MARGIN_SECS)
        });
        if expiring {
            let sent = self.current();
            let _one = self.flow.lock().await;
            if self.current() == sent
                && let Err(e) = self.refresh().await
            {
                tracing::info!(reason = %e.sentence(), "refreshing the token failed; the server will ask to sign in again");
            }
        }
        self.current()
    }

    fn current(&self) -> Option<String> {
        self.saved()
            .as_ref()
            .map(|s| format!("Bearer {}", s.tokens.access_token))
    }

    /// Answers a `401` or `403` sent to a request that carried `sent`: refreshes the token or
    /// signs in again (with the scopes a `403 insufficient_scope` asks for). `Ok` means: send
    /// the request again.
    async fn respond(
        &self,
        forbidden: bool,
        challenges: &[String],
        sent: Option<&str>,
    ) -> Result<()> {
        let challenge = Challenge::parse(challenges.iter().map(String::as_str));
        let _one = self.flow.lock().await;
        if self.current().as_deref() != sent {
            // Another request signed in or refreshed meanwhile.
            return Ok(());
        }
        // A sign-in that just failed is not tried again (and again) for each waiting request.
        if let Some((at, why)) = lock(&self.failed).clone()
            && at.elapsed() < FAILURE_MEMO
        {
            return Err(auth_error(why));
        }
        // Another connector for the same server may have refreshed or signed in meanwhile.
        if let Some(disk) = self.store.load(self.server.as_str())
            && Some(format!("Bearer {}", disk.tokens.access_token)).as_deref() != sent
        {
            *self.saved() = Some(disk);
            return Ok(());
        }
        if forbidden && self.granted_covers(&challenge) {
            return Err(auth_error(format!(
                "{} refuses the token although it carries the scopes it asks for ({}); the account lacks access",
                self.server,
                challenge.scope.as_deref().unwrap_or_default()
            )));
        }
        let outcome = self.renew(forbidden, &challenge).await;
        if let Err(e) = &outcome {
            *lock(&self.failed) = Some((std::time::Instant::now(), e.sentence()));
        }
        outcome
    }

    /// Whether the token in use was granted every scope `challenge` asks for.
    fn granted_covers(&self, challenge: &Challenge) -> bool {
        let granted = self.saved().as_ref().and_then(|s| s.tokens.scope.clone());
        match (granted, &challenge.scope) {
            (Some(granted), Some(wanted)) => wanted
                .split_whitespace()
                .all(|w| granted.split_whitespace().any(|g| g == w)),
            _ => false,
        }
    }

    /// A refreshed token, or else a new sign-in.
    async fn renew(&self, forbidden: bool, challenge: &Challenge) -> Result<()> {
        if !forbidden
            && self
                .saved()
                .as_ref()
                .is_some_and(|s| s.tokens.refresh_token.is_some())
        {
            match self.refresh().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::info!(reason = %e.sentence(), "refreshing the token failed; signing in again")
                }
            }
        }
        self.sign_in(challenge).await
    }

    async fn refresh(&self) -> Result<()> {
        let Some(mut saved) = self.saved().clone() else {
            return Err(auth_error("there is no token to refresh"));
        };
        let refresh_token = saved
            .tokens
            .refresh_token
            .clone()
            .ok_or_else(|| auth_error("the token cannot be refreshed"))?;
        if saved.client.client_credentials {
            return Err(auth_error(
                "client credentials are granted anew, not refreshed",
            ));
        }
        let server = discover::ServerMetadata::endpoints(&saved.issuer, &saved.token_endpoint);
        let mut tokens = token::refresh(
            &self.post,
            &server,
            &saved.client,
            &refresh_token,
            &saved.resource,
        )
        .await?;
        tokens.scope = tokens.scope.or(saved.tokens.scope.take());
        saved.tokens = tokens;
        self.keep(saved);
        tracing::info!(server = %self.server, "refreshed the access token");
        Ok(())
    }

    async fn sign_in(&self, challenge: &Challenge) -> Result<()> {
        let found = discover::discover(&self.http, &self.server, challenge).await?;
        // SEP-2350: a new sign-in asks for what was granted before too, so that stepping up
        // for one request does not lose the scopes the others need.
        let granted = self.saved().as_ref().and_then(|s| s.tokens.scope.clone());
        let scope = choose_scope(&self.settings, challenge, &found, granted);
        let (client, mut tokens) = if self.settings.device_code {
            let client = flow::register(&self.post, &self.settings, &found, "").await?;
            let browser = self.settings.browser.as_deref();
            let tokens =
                token::device(&self.post, browser, &found, &client, scope.as_deref()).await?;
            (client, tokens)
        } else if self.settings.client_credentials {
            let client = flow::register(&self.post, &self.settings, &found, "").await?;
            let tokens =
                token::client_credentials(&self.post, &found, &client, scope.as_deref()).await?;
            (client, tokens)
        } else {
            let mut redirect = flow::Redirect::listen(self.settings.redirect_port).await?;
            let client = flow::register(&self.post, &self.settings, &found, &redirect.uri)
                .await
                .map_err(|e| {
                    if found.has_metadata || found.has_resource_metadata {
                        return e;
                    }
                    auth_error(format!(
                        "HTTP 401 from {}: the server wants credentials but publishes no OAuth metadata to sign in with ({}); pass them with --header or --header-env",
                        self.server,
                        e.sentence()
                    ))
                })?;
            let tokens = flow::authorize(
                &self.post,
                &self.settings,
                &found,
                &client,
                &mut redirect,
                scope.as_deref(),
            )
            .await?;
            (client, tokens)
        };
        tokens.scope = tokens.scope.or(scope);
        self.keep(Saved {
            server: self.server.to_string(),
            issuer: found.server.issuer,
            token_endpoint: found.server.token_endpoint,
            resource: found.resource,
            client,
            tokens,
        });
        tracing::info!(server = %self.server, "signed in");
        Ok(())
    }

    /// Uses `saved` from now on, and keeps it on disk (a failure to is logged, not fatal).
    fn keep(&self, saved: Saved) {
        if let Err(e) = self.store.save(&saved) {
            tracing::warn!(reason = %e.sentence(), "the sign-in works for this run but was not saved");
        }
        *self.saved() = Some(saved);
    }
}

/// The scopes to ask for (the MCP spec's order): `--oauth-scope`; the challenge's `scope`
/// (with the scopes already granted); else every scope the resource lists;
/// else none. `offline_access` is added when the authorization server offers it, so that the
/// sign-in can be refreshed.
fn choose_scope(
    settings: &Settings,
    challenge: &Challenge,
    found: &discover::Discovered,
    granted: Option<String>,
) -> Option<String> {
    let mut scopes: Vec<String> = if let Some(scope) = &settings.scope {
        scope.split_whitespace().map(str::to_owned).collect()
    } else if let Some(scope) = &challenge.scope {
        let mut scopes: Vec<String> = granted
            .iter()
            .flat_map(|g| g.split_whitespace())
            .map(str::to_owned)
            .collect();
        scopes.extend(scope.split_whitespace().map(str::to_owned));
        scopes
    } else {
        found.resource_scopes.clone().unwrap_or_default()
    };
    if scopes.is_empty() {
        return None;
    }
    let offers_offline = found
        .server
        .scopes_supported
        .as_deref()
        .is_some_and(|s| s.iter().any(|s| s == "offline_access"));
    if offers_offline {
        scopes.push("offline_access".to_owned());
    }
    let mut unique = Vec::new();
    for scope in scopes {
        if !unique.contains(&scope) {
            unique.push(scope);
        }
    }
    Some(unique.join(" "))
}

/// Removes the sign-in saved for `server`; prints what it did.
pub(crate) fn logout(server: &Url) -> Result<()> {
    let store = Store::user()?;
    if store.remove(server.as_str())? {
        eprintln!(
            "mcp-expose: signed out of {server} (removed {})",
            store.path(server.as_str()).display()
        );
    } else {
        eprintln!("mcp-expose: no saved sign-in for {server}");
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn auth_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Auth, message)
}
