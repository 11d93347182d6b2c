//! Where to sign in: the server's protected-resource metadata (RFC 9728), then its
//! authorization server's metadata (RFC 8414, or OpenID Connect discovery), as the MCP
//! authorization spec orders the well-known URLs; for servers of MCP 2025-03-26 without
//! either, the server's own origin with the default endpoints.

use reqwest::Url;
use serde::Deserialize;

use super::{Challenge, auth_error};
use crate::error::{Result, describe};

const PRM: &str = "/.well-known/oauth-protected-resource";
/// The largest metadata document read.
const MAX_DOCUMENT: usize = 1 << 20;

/// RFC 9728 protected-resource metadata, the fields a client uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResourceMetadata {
    pub(crate) resource: String,
    #[serde(default)]
    pub(crate) authorization_servers: Vec<String>,
    #[serde(default)]
    pub(crate) scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization server metadata, the fields a client uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServerMetadata {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    #[serde(default)]
    pub(crate) registration_endpoint: Option<String>,
    /// RFC 8628 device authorization.
    #[serde(default)]
    pub(crate) device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub(crate) scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
}

impl ServerMetadata {
    /// What a saved sign-in knows of its authorization server: enough for token requests.
    pub(crate) fn endpoints(issuer: &str, token_endpoint: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: String::new(),
            token_endpoint: token_endpoint.to_owned(),
            registration_endpoint: None,
            device_authorization_endpoint: None,
            scopes_supported: None,
            token_endpoint_auth_methods_supported: None,
            code_challenge_methods_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
        }
    }
}

/// Everything discovery found.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    /// The RFC 8707 `resource` to ask tokens for.
    pub(crate) resource: String,
    /// Scopes the resource lists, when it lists them.
    pub(crate) resource_scopes: Option<Vec<String>>,
    pub(crate) server: ServerMetadata,
    /// Whether the authorization server published metadata (else: MCP 2025-03-26 defaults).
    pub(crate) has_metadata: bool,
    /// Whether the server published protected-resource metadata (else: MCP 2025-03-26).
    pub(crate) has_resource_metadata: bool,
}

/// Discovers how to sign in to `server` after `challenge`.
pub(crate) async fn discover(
    client: &reqwest::Client,
    server: &Url,
    challenge: &Challenge,
) -> Result<Discovered> {
    // A WebSocket endpoint's metadata is at its HTTP origin, as the resource it belongs to.
    let websocket = matches!(server.scheme(), "ws" | "wss");
    let server = &over_http(server);
    let resource = resource_metadata(client, server, challenge).await?;
    let has_resource_metadata = resource.is_some();
    let (issuer, resource_id, resource_scopes) = match resource {
        Some(meta) => {
            check_resource(server, &meta.resource, websocket)?;
            let issuer = meta.authorization_servers.first().cloned().ok_or_else(|| {
                auth_error(format!(
                    "the server's resource metadata names no authorization server ({})",
                    meta.resource
                ))
            })?;
            (issuer, meta.resource, meta.scopes_supported)
        }
        // MCP 2025-03-26: the server is its own authorization server.
        None => (origin(server), server.to_string(), None),
    };
    let issuer_url = Url::parse(&issuer).map_err(|e| {
        auth_error(format!(
            "the authorization server {issuer:?} is not a URL: {e}"
        ))
    })?;
    let (server_meta, has_metadata) = match server_metadata(client, &issuer_url).await? {
        Some(meta) => {
            if !same_issuer(&meta.issuer, &issuer) {
                return Err(auth_error(format!(
                    "the authorization server's metadata names issuer {:?}, not {issuer:?} (RFC 8414 §3.3); refusing to sign in",
                    meta.issuer
                )));
            }
            (meta, true)
        }
        // MCP 2025-03-26 (no resource metadata either): the default endpoints.
        None if !has_resource_metadata => (fallback_endpoints(&issuer, &issuer_url), false),
        None => {
            return Err(auth_error(format!(
                "the authorization server {issuer} publishes no metadata (RFC 8414 or OpenID Connect discovery); cannot sign in"
            )));
        }
    };
    for (what, url) in [
        (
            "authorization endpoint",
            Some(&server_meta.authorization_endpoint),
        ),
        ("token endpoint", Some(&server_meta.token_endpoint)),
        (
            "registration endpoint",
            server_meta.registration_endpoint.as_ref(),
        ),
    ] {
        if let Some(url) = url {
            secure(what, url)?;
        }
    }
    Ok(Discovered {
        resource: resource_id,
        resource_scopes,
        server: server_meta,
        has_metadata,
        has_resource_metadata,
    })
}

/// The protected-resource metadata: from the challenge's `resource_metadata`, else the
/// path-aware well-known URL, else the root one; `None` when the server has none.
async fn resource_metadata(
    client: &reqwest::Client,
    server: &Url,
    challenge: &Challenge,
) -> Result<Option<ResourceMetadata>> {
    let mut candidates = Vec::new();
    if let Some(url) = &challenge.resource_metadata {
        candidates.push(
            server
                .join(url)
                .map_err(|e| auth_error(format!("resource_metadata {url:?} is not a URL: {e}")))?,
        );
    }
    let path = server.path().trim_end_matches('/');
    if !path.is_empty() {
        candidates.push(with_path(server, &format!("{PRM}{path}")));
    }
    candidates.push(with_path(server, PRM));
    first_found(client, candidates).await
}

/// The authorization server's metadata, trying the RFC 8414 and OpenID Connect URLs in the
/// order the MCP spec gives (path-aware forms first for an issuer with a path).
async fn server_metadata(client: &reqwest::Client, issuer: &Url) -> Result<Option<ServerMetadata>> {
    let path = issuer.path().trim_end_matches('/');
    let candidates = if path.is_empty() {
        vec![
            with_path(issuer, "/.well-known/oauth-authorization-server"),
            with_path(issuer, "/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            with_path(
                issuer,
                &format!("/.well-known/oauth-authorization-server{path}"),
            ),
            with_path(issuer, &format!("/.well-known/openid-configuration{path}")),
            with_path(issuer, &format!("{path}/.well-known/openid-configuration")),
        ]
    };
    first_found(client, candidates).await
}

/// MCP 2025-03-26 defaults for an authorization server without metadata.
fn fallback_endpoints(name: &str, issuer: &Url) -> ServerMetadata {
    ServerMetadata {
        issuer: name.to_owned(),
        authorization_endpoint: with_path(issuer, "/authorize").to_string(),
        token_endpoint: with_path(issuer, "/token").to_string(),
        registration_endpoint: Some(with_path(issuer, "/register").to_string()),
        device_authorization_endpoint: None,
        scopes_supported: None,
        token_endpoint_auth_methods_supported: None,
        code_challenge_methods_supported: None,
        client_id_metadata_document_supported: false,
        authorization_response_iss_parameter_supported: false,
    }
}

/// Tries each URL in turn: the first document found, `None` when every one answered 4xx (not
/// published), the last error when none was found and one failed otherwise.
async fn first_found<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    candidates: Vec<Url>,
) -> Result<Option<T>> {
    let mut failure = None;
    for url in candidates {
        match fetch_json(client, &url).await {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(reason = %e.sentence(), "trying the next metadata URL");
                failure = Some(e);
            }
        }
    }
    failure.map_or(Ok(None), Err)
}

/// An endpoint the client sends secrets or the user to: HTTPS, or HTTP on loopback.
fn secure(what: &str, url: &str) -> Result<()> {
    let parsed =
        Url::parse(url).map_err(|e| auth_error(format!("the {what} {url:?} is not a URL: {e}")))?;
    let loopback = match parsed.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(auth_error(format!(
            "the {what} {url} is not HTTPS; refusing to sign in through it"
        ))),
    }
}

/// GETs `url` as JSON (at most 1 MiB): `None` on 4xx (not published there), an error on
/// anything else.
async fn fetch_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &Url,
) -> Result<Option<T>> {
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| auth_error(format!("cannot fetch {url}: {}", describe(&e))))?;
    let status = response.status();
    if status.is_client_error() {
        tracing::debug!(%url, %status, "no metadata here");
        return Ok(None);
    }
    if !status.is_success() {
        return Err(auth_error(format!("{url} answered HTTP {status}")));
    }
    let body = crate::connect::stream::bounded_body(response, MAX_DOCUMENT)
        .await
        .map_err(|e| auth_error(format!("cannot read {url}: {e}")))?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| auth_error(format!("{url} is not valid metadata: {e}")))
}

/// A `ws://` or `wss://` URL as the `http://` or `https://` URL of the same place; others as
/// they are.
pub(crate) fn over_http(url: &Url) -> Url {
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return url.clone(),
    };
    let mut mapped = url.clone();
    // Both are special schemes of the same kind, which `set_scheme` allows.
    let _ = mapped.set_scheme(scheme);
    mapped
}

/// RFC 9728 §3.3 / MCP: the metadata's `resource` must be the server, or a prefix of it on a
/// path-segment boundary, at the same origin. A WebSocket endpoint (mapped to HTTP) may also
/// belong to its sibling's resource: `wss://h/github/ws` to `https://h/github/mcp`, not to
/// `https://h/db/mcp`.
fn check_resource(server: &Url, resource: &str, websocket: bool) -> Result<()> {
    let matches = Url::parse(resource).is_ok_and(|r| {
        let (path, base) = (server.path(), r.path().trim_end_matches('/'));
        let parent = &r.path()[..=r.path().rfind('/').unwrap_or(0)];
        r.origin() == server.origin()
            && (path == base
                || path.trim_end_matches('/') == base
                || path.starts_with(&format!("{base}/"))
                || (websocket && path.starts_with(parent)))
    });
    if matches {
        Ok(())
    } else {
        let hint = if websocket {
            " (a WebSocket endpoint signs in for an HTTP endpoint at its own origin: serve both on one port)"
        } else {
            ""
        };
        Err(auth_error(format!(
            "the server's resource metadata is for {resource:?}, not {server}; refusing to sign in (RFC 9728 §3.3){hint}"
        )))
    }
}

/// Issuers compare as plain strings, without URL normalization (RFC 8414 §3.3, RFC 9207 §2.4):
/// `https://as.example` and `https://as.example/` are different issuers.
pub(crate) fn same_issuer(a: &str, b: &str) -> bool {
    a == b
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn with_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_matches_itself_or_a_parent_path() {
        let server = Url::parse("http://127.0.0.1:5/api/mcp").unwrap();
        for ok in [
            "http://127.0.0.1:5/api/mcp",
            "http://127.0.0.1:5/api",
            "http://127.0.0.1:5/",
            "http://127.0.0.1:5",
        ] {
            assert!(check_resource(&server, ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:6/api/mcp",
            "http://127.0.0.1:5/ap",
            "https://evil.example/api/mcp",
            "nonsense",
        ] {
            assert!(check_resource(&server, bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_websocket_endpoint_belongs_to_its_siblings_resource_at_its_http_origin() {
        let ws = Url::parse("wss://h.example/github/ws").unwrap();
        let server = over_http(&ws);
        assert_eq!(server.as_str(), "https://h.example/github/ws");
        assert_eq!(
            over_http(&Url::parse("ws://127.0.0.1:5/ws").unwrap()).as_str(),
            "http://127.0.0.1:5/ws"
        );
        for ok in ["https://h.example/github/mcp", "https://h.example/github"] {
            assert!(check_resource(&server, ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "https://h.example/db/mcp",
            "http://h.example/github/mcp",
            "https://evil.example/github/mcp",
        ] {
            assert!(check_resource(&server, bad, true).is_err(), "{bad}");
        }
        // Over HTTP, a sibling is not the server.
        let http = Url::parse("https://h.example/github/ws").unwrap();
        assert!(check_resource(&http, "https://h.example/github/mcp", false).is_err());
    }

    #[test]
    fn endpoints_must_be_https_or_loopback() {
        for ok in [
            "https://as.example/token",
            "http://localhost:9/t",
            "http://127.0.0.1/t",
            "http://[::1]:8/t",
        ] {
            assert!(secure("token endpoint", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://as.example/token",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "x",
        ] {
            assert!(secure("token endpoint", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuers_compare_as_strings() {
        assert!(same_issuer("http://a:1", "http://a:1"));
        assert!(!same_issuer("http://a:1/", "http://a:1"));
    }
}
