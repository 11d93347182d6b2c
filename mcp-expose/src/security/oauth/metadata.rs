//! RFC 9728 protected resource metadata: which resource URL a token must be for, and where
//! clients learn which authorization servers to ask.

use std::sync::{Arc, OnceLock};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::security::policy::HostPolicy;

/// Where RFC 9728 metadata lives; a resource's path follows it.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// This server as an OAuth protected resource: its URL (or how to find it) and its metadata.
#[derive(Debug)]
pub(super) struct ProtectedResource {
    /// The authorization servers clients are sent to.
    pub(super) issuers: Vec<String>,
    /// The scopes every token must carry.
    pub(super) scopes: Vec<String>,
    /// `--oauth-resource`.
    pub(super) resource: Option<String>,
    policy: HostPolicy,
    /// The port of the listener serving `/mcp`: part of the loopback resource URL.
    local_port: OnceLock<u16>,
    /// A gateway's path prefixes (`/github`): each serves its own resource, `.../github/mcp`.
    prefixes: OnceLock<Vec<String>>,
}

impl ProtectedResource {
    pub(super) fn new(
        issuers: Vec<String>,
        scopes: Vec<String>,
        resource: Option<String>,
        policy: &HostPolicy,
    ) -> Self {
        Self {
            issuers,
            scopes,
            resource,
            policy: policy.clone(),
            local_port: OnceLock::new(),
            prefixes: OnceLock::new(),
        }
    }

    /// The resource URL for a request to `path`; always one this server owns, never a name the
    /// client made up (a token's audience must not be the client's choice): `--oauth-resource`;
    /// else this listener's loopback URL when the client named it so (`localhost`, `127.0.0.1`,
    /// `[::1]` with the bound port); else the tunnel's public URL; else `127.0.0.1` and the port.
    /// Under a gateway's prefix, the prefix goes before `/mcp` (`https://h/github/mcp`; with
    /// `--oauth-resource https://h/api/mcp`, `https://h/api/github/mcp`): a token for one of its
    /// servers is no token for another.
    pub(super) fn resource(&self, headers: &HeaderMap, path: &str) -> String {
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
    pub(super) fn set_local_port(&self, port: u16) {
        let _ = self.local_port.set(port);
    }

    /// A gateway's path prefixes (`/github`), before the routes are built.
    pub(super) fn set_prefixes(&self, prefixes: Vec<String>) {
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
    /// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
    pub(super) fn metadata_url(&self, headers: &HeaderMap, path: &str) -> String {
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
    /// `GET /.well-known/oauth-protected-resource[/mcp]`, and the path form RFC 9728 gives for
    /// each resource (`.../api/mcp` for `https://h/api/mcp`, `.../github/mcp` for a gateway's
    /// `/github`), when OAuth issuers are configured.
    pub(super) fn routes<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Option<Router<S>> {
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
async fn metadata(
    State(oauth): State<Arc<ProtectedResource>>,
    request: axum::extract::Request,
) -> Response {
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn resource_urls_are_the_servers_own() {
        let policy = HostPolicy::new(&["*".into()], &[]);
        let issuers = vec!["https://as.example.com".to_owned()];
        let at = |resource: Option<&str>| {
            ProtectedResource::new(
                issuers.clone(),
                Vec::new(),
                resource.map(str::to_owned),
                &policy,
            )
        };
        let oauth = at(None);
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
        let oauth = at(Some("https://mcp.example.com/api/mcp"));
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
            let oauth = at(Some(resource));
            oauth.set_prefixes(vec!["/github".into()]);
            let served = oauth.metadata_paths();
            for path in ["/mcp", "/github/mcp", "/github/ws"] {
                let url = oauth.metadata_url(&headers, path);
                let path = url.trim_start_matches("https://mcp.example.com");
                assert!(served.iter().any(|p| p == path), "{path} not in {served:?}");
            }
        }
    }
}
