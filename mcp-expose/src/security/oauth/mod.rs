//! OAuth 2.1 resource server (the MCP authorization spec) and a Cloudflare Access preset.
//!
//! Access tokens are JWTs signed with RS256 or ES256 by a key from the issuer's JWKS (see
//! [`jwks`](super::jwks)); `iss` must be a configured issuer, `aud` the resource URL (or
//! `--oauth-audience`), `exp` must not have passed and `nbf` must have, each with 30 s of
//! leeway for clock skew. `/.well-known/oauth-protected-resource` (RFC 9728) tells clients
//! which authorization servers to ask. Behind Cloudflare Access, the edge adds
//! `Cf-Access-Jwt-Assertion`, validated against the team's certs and the application's AUD.

mod metadata;
mod options;
mod verify;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

pub use self::options::OAuthOptions;
pub(crate) use self::verify::{Verdict, genuine};
use self::{
    metadata::ProtectedResource,
    verify::{Keys, Source, Verifier},
};
use super::jwks::{KeySet, Location, check_url};
use crate::{
    error::{Error, ErrorKind, Result},
    security::policy::HostPolicy,
    web::json_error,
};

/// The resource server: verifiers for OAuth and Cloudflare Access tokens, and the metadata.
#[derive(Debug)]
pub(crate) struct OAuth {
    verifiers: Vec<Verifier>,
    metadata: Arc<ProtectedResource>,
}

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
            metadata: Arc::new(ProtectedResource::new(
                issuers,
                options.oauth_scopes.clone(),
                options.oauth_resource.clone(),
                policy,
            )),
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

    /// The port of the listener serving `/mcp`, once bound.
    pub(crate) fn set_local_port(&self, port: u16) {
        self.metadata.set_local_port(port);
    }

    /// A gateway's path prefixes (`/github`), before the routes are built.
    pub(crate) fn set_prefixes(&self, prefixes: Vec<String>) {
        self.metadata.set_prefixes(prefixes);
    }

    /// Whether a token's audience needs a resource URL the server cannot know by itself:
    /// `--oauth-issuer` without `--oauth-resource` or `--oauth-audience` behind a proxy or on
    /// a public address.
    pub(crate) fn needs_resource(&self) -> bool {
        self.metadata.resource.is_none()
            && self
                .verifiers
                .iter()
                .any(|v| v.source == Source::Bearer && v.audiences.is_empty())
    }

    /// Checks the request's tokens with every verifier; the first valid one wins.
    pub(crate) async fn verify(
        &self,
        headers: &HeaderMap,
        path: &str,
        bearer: Option<&str>,
    ) -> Verdict {
        verify::first_valid(&self.verifiers, headers, bearer, || {
            self.metadata.resource(headers, path)
        })
        .await
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
        let metadata = &self.metadata;
        if !metadata.scopes.is_empty() {
            params.push(format!(
                r#"scope="{}""#,
                quotable(&metadata.scopes.join(" "))
            ));
        }
        if !metadata.issuers.is_empty() {
            params.push(format!(
                r#"resource_metadata="{}""#,
                quotable(&metadata.metadata_url(headers, path))
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
    /// each resource, when OAuth issuers are configured.
    pub(crate) fn routes<S: Clone + Send + Sync + 'static>(&self) -> Option<Router<S>> {
        self.metadata.routes()
    }
}

/// Drops what cannot appear inside a quoted header parameter.
fn quotable(value: &str) -> String {
    value
        .chars()
        .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_resource_only_without_one_or_an_audience() {
        let policy = HostPolicy::new(&["*".into()], &[]);
        let options = OAuthOptions {
            oauth_issuers: vec!["https://as.example.com".into()],
            oauth_jwks_url: Some("https://as.example.com/jwks".into()),
            ..OAuthOptions::default()
        };
        let resolve = |options: &OAuthOptions| {
            OAuth::resolve(options, &policy)
                .ok()
                .flatten()
                .expect("configured")
        };
        assert!(resolve(&options).needs_resource());
        let explicit = OAuthOptions {
            oauth_resource: Some("https://mcp.example.com/api/mcp".into()),
            ..options.clone()
        };
        assert!(!resolve(&explicit).needs_resource());
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
