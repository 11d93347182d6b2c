//! HTTP plumbing every layer shares: JSON bodies for HTTP errors, the refusals a request can get
//! before it reaches a route, request bodies read within a limit, and the client's address. It
//! imports nothing of the crate's own but [`jsonrpc`](crate::jsonrpc), so security, the
//! transports, the bridge and the server all build on it.

use std::net::{IpAddr, SocketAddr};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::jsonrpc;

/// Why a request was refused before its route (logged and counted where it was decided).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A foreign `Host` or `Origin`: 403.
    Host(String),
    /// A `Host` that is no host (twice, missing, malformed): 400.
    Malformed(String),
    /// Shutdown began: 503, `Retry-After: 1`.
    ShuttingDown,
    /// The listener holds its maximum of sessions: 503, `Retry-After: 5`.
    Full { max: usize },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (message, retry_after) = match self {
            Self::Host(message) => return json_error(StatusCode::FORBIDDEN, &message),
            Self::Malformed(message) => {
                return json_error(StatusCode::BAD_REQUEST, &message);
            }
            Self::ShuttingDown => ("Service Unavailable: shutting down".to_owned(), "1"),
            Self::Full { max } => (
                format!(
                    "Service Unavailable: this server holds its maximum of {max} sessions (see --max-sessions); retry later"
                ),
                "5",
            ),
        };
        let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, &message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
        response
    }
}

/// An HTTP error whose body is a JSON-RPC error object.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => jsonrpc::INVALID_REQUEST,
        StatusCode::NOT_FOUND => jsonrpc::SESSION_NOT_FOUND,
        _ => jsonrpc::SERVER_UNAVAILABLE,
    };
    json_rpc_error(status, code, message)
}

/// An HTTP error whose body is a JSON-RPC error with `code`.
pub(crate) fn json_rpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        jsonrpc::error("null", code, message),
    )
        .into_response()
}

/// A request's whole body, at most `max` bytes (`--max-message-size`, not axum's default): a
/// larger one is refused with 413 as soon as it is known to be larger.
pub(crate) async fn read_body(
    body: axum::body::Body,
    max: usize,
) -> Result<axum::body::Bytes, Response> {
    use http_body_util::{BodyExt as _, LengthLimitError, Limited};
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Payload Too Large: the body exceeds the limit of {max} bytes"),
        )),
        Err(e) => Err(json_error(
            StatusCode::BAD_REQUEST,
            &format!("Bad Request: cannot read the body ({e})"),
        )),
    }
}

/// The client a trusted proxy (or the tunnel) says a request comes from, when not the peer: put
/// in the request's extensions by the host policy; rate limits and failed-token limits key on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

/// The client's address from a request's extensions: as the host policy resolved it (a trusted
/// proxy's report), else the peer's.
pub(crate) fn client_of(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<ClientAddr>().map(|c| c.0).or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| canonical(info.0.ip()))
    })
}

/// An IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d: the IPv4 address.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
