//! Host and Origin validation (DNS-rebinding protection) for the MCP endpoints, and JSON
//! bodies for HTTP errors.

use std::sync::{Arc, RwLock};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The hosts every server accepts: loopback names.
pub(crate) const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Which `Host` and `Origin` values a request may carry.
#[derive(Debug, Clone)]
pub(crate) struct HostPolicy {
    hosts: Arc<[String]>,
    origins: Arc<[String]>,
    any_host: bool,
    /// The tunnel's public hostname, which changes when a quick tunnel restarts.
    tunnel_host: Arc<RwLock<Option<String>>>,
}

impl HostPolicy {
    /// `extra_hosts` adds to the loopback names (`*` allows any host); `origins` are full
    /// origins (`https://app.example.com`) allowed besides those whose host is allowed.
    pub(crate) fn new(extra_hosts: &[String], origins: &[String]) -> Self {
        let any_host = extra_hosts.iter().any(|h| h == "*");
        let hosts = LOOPBACK_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .chain(
                extra_hosts
                    .iter()
                    .filter(|h| *h != "*")
                    .map(|h| h.trim().to_ascii_lowercase()),
            )
            .collect();
        let origins = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self {
            hosts,
            origins,
            any_host,
            tunnel_host: Arc::default(),
        }
    }

    /// Accepts `host` (and no longer the previous tunnel hostname).
    #[cfg_attr(not(feature = "tunnel"), allow(dead_code))]
    pub(crate) fn set_tunnel_host(&self, host: Option<String>) {
        *self.tunnel_host.write().unwrap_or_else(|e| e.into_inner()) =
            host.map(|h| h.to_ascii_lowercase());
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        let host = strip_port(&authority);
        self.any_host
            || self.hosts.iter().any(|h| *h == authority || h == host)
            || self
                .tunnel_host
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_deref()
                == Some(host)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        match origin.split_once("://") {
            Some(("http" | "https", authority)) => self.host_allowed(authority),
            _ => false,
        }
    }

    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match host {
            Some(host) if self.host_allowed(host) => {}
            Some(host) => {
                return Err(format!(
                    "Forbidden: Host `{host}` is not allowed (see --allowed-host)"
                ));
            }
            None => return Err("Forbidden: missing Host header".to_owned()),
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(format!(
                    "Forbidden: Origin `{origin}` is not allowed (see --allowed-origin)"
                ));
            }
        }
        Ok(())
    }
}

/// `host:port`, `[v6]:port`, `host` -> host.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

/// Middleware: 403 with a JSON body for a foreign Host or Origin.
pub(crate) async fn enforce(
    State(policy): State<HostPolicy>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(message) = policy.check(request.headers()) {
        tracing::warn!(%message, "rejected request");
        crate::observe::metrics::rejected("host");
        return json_error(StatusCode::FORBIDDEN, &message);
    }
    next.run(request).await
}

/// An HTTP error whose body is a JSON-RPC error object.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => -32600,
        StatusCode::NOT_FOUND => -32001,
        _ => -32000,
    };
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("x")),
        );
        if let Some(o) = origin {
            h.insert(
                header::ORIGIN,
                HeaderValue::from_str(o).unwrap_or(HeaderValue::from_static("x")),
            );
        }
        h
    }

    #[test]
    fn loopback_by_default_and_extra_hosts() {
        let p = HostPolicy::new(&["mcp.example.com".into()], &[]);
        assert!(p.check(&headers("127.0.0.1:8000", None)).is_ok());
        assert!(
            p.check(&headers("[::1]:8000", Some("http://[::1]:8000")))
                .is_ok()
        );
        assert!(
            p.check(&headers("localhost", Some("http://localhost:3000")))
                .is_ok()
        );
        assert!(
            p.check(&headers("mcp.example.com", Some("https://mcp.example.com")))
                .is_ok()
        );
        assert!(p.check(&headers("evil.example.com", None)).is_err());
        assert!(
            p.check(&headers("127.0.0.1:8000", Some("http://evil.example.com")))
                .is_err()
        );
        assert!(p.check(&headers("127.0.0.1:8000", Some("null"))).is_err());
        let any = HostPolicy::new(&["*".into()], &["https://app.example.com".into()]);
        assert!(
            any.check(&headers("anything", Some("https://app.example.com")))
                .is_ok()
        );
    }
}
