//! Streamable HTTP (rmcp's `StreamableHttpService`) with the headers proxies and tunnels need,
//! and JSON bodies on errors.

use crate::observe::metrics::TransportKind;
use std::{
    convert::Infallible,
    fmt::Display,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Bytes,
    http::{HeaderValue, Request, header},
    response::Response,
};
use futures::future::BoxFuture;
use http_body_util::combinators::BoxBody;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::web::{json_error, json_rpc_error};
use crate::{handler::Handler, jsonrpc};

/// Streamable HTTP settings.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) stateless: bool,
    pub(crate) max_body: usize,
    pub(crate) keep_alive: Duration,
    /// `--state redis://..`: sessions and event streams shared by replicas.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::store::Redis>,
}

/// rmcp's streamable HTTP service for this server's handler.
pub(crate) type Service = StreamableHttpService<Handler, super::related::Related>;

/// What a response of rmcp's service is.
pub(crate) type ServiceResponse = axum::http::Response<BoxBody<Bytes, Infallible>>;

/// rmcp's service behind one `Arc`: axum clones a route's service for every request and rmcp's
/// own `call` clones it again, each clone copying its config (a cancellation token whose clone
/// and drop take a lock shared by every request); here a request costs one reference count.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Services>);

/// The services requests go to.
pub(crate) struct Services {
    /// Sessions (and, with no replicas, everything).
    pub(crate) sessions: Service,
    /// With `--state redis://..`: sessions any replica can serve.
    #[cfg(feature = "redis")]
    pub(crate) replicas: Option<super::redis::Replicas>,
}

impl<B> tower::Service<Request<B>> for Shared
where
    B: axum::body::HttpBody + Send + 'static,
    B::Error: Display + Into<axum::BoxError>,
    B::Data: Send + 'static,
{
    type Response = ServiceResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let services = Arc::clone(&self.0);
        let delete = request.method() == axum::http::Method::DELETE;
        Box::pin(async move {
            #[cfg(feature = "redis")]
            let response = match &services.replicas {
                Some(replicas) => replicas.handle(&services.sessions, request).await,
                None => services.sessions.handle(request).await,
            };
            #[cfg(not(feature = "redis"))]
            let response = services.sessions.handle(request).await;
            Ok(no_content(delete, response))
        })
    }
}

/// rmcp ends a session with 202; the MCP SDKs expect 200 or 204 and warn ("Session
/// termination failed: 202") on every disconnect otherwise. The bridge answers 204 too.
fn no_content(delete: bool, mut response: ServiceResponse) -> ServiceResponse {
    if delete && response.status() == axum::http::StatusCode::ACCEPTED {
        *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    response
}

pub(crate) fn service(handler: &Handler, settings: &HttpSettings, ct: CancellationToken) -> Shared {
    // Host and Origin are checked by our own policy layer, in front of this service.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_sse_keep_alive(Some(settings.keep_alive))
        .with_legacy_session_mode(!settings.stateless)
        .with_json_response(settings.stateless)
        .with_max_request_body_bytes(settings.max_body)
        .with_cancellation_token(ct.clone());
    #[cfg(feature = "redis")]
    if let Some(redis) = settings.redis.as_ref().filter(|_| !settings.stateless) {
        return Shared(super::redis::services(
            handler,
            config,
            redis,
            settings.max_body,
            ct,
        ));
    }
    let sessions = build(handler, settings.stateless, config, Arc::default());
    Shared(Arc::new(Services {
        sessions,
        #[cfg(feature = "redis")]
        replicas: None,
    }))
}

/// rmcp's service for `handler`, with `config` and sessions kept by `manager`.
pub(crate) fn build(
    handler: &Handler,
    stateless: bool,
    config: StreamableHttpServerConfig,
    manager: Arc<LocalSessionManager>,
) -> Service {
    let handler = handler.clone();
    StreamableHttpService::new(
        move || {
            Ok(if stateless {
                handler.stateless_session(TransportKind::Http)
            } else {
                handler.session(TransportKind::Http, None, None, None)
            })
        },
        Arc::new(super::related::Related(manager)),
        config,
    )
}

/// Anti-buffering headers on every response, and a JSON-RPC error body on errors that rmcp
/// (or axum) answers in plain text: one layer around the whole router. Its future is the
/// router's own, boxed only for the rare error whose body must be read and rewritten (an axum
/// `map_response` layer boxes a future and clones the route's service on every request).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Normalize;

impl<S> tower::Layer<S> for Normalize {
    type Service = Normalized<S>;

    fn layer(&self, inner: S) -> Normalized<S> {
        Normalized(inner)
    }
}

/// A service behind [`Normalize`].
#[derive(Debug, Clone)]
pub(crate) struct Normalized<S>(S);

impl<S> tower::Service<axum::extract::Request> for Normalized<S>
where
    S: tower::Service<axum::extract::Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = NormalizedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        NormalizedFuture::Inner {
            inner: self.0.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future; then, for a plain-text error, the rewrite of its body.
    #[project = NormalizedProjection]
    pub(crate) enum NormalizedFuture<F> {
        Inner { #[pin] inner: F },
        Rewrite { rewrite: BoxFuture<'static, Response> },
    }
}

impl<F> std::future::Future for NormalizedFuture<F>
where
    F: std::future::Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                NormalizedProjection::Inner { inner } => {
                    let Ok(mut response) = std::task::ready!(inner.poll(cx));
                    if !stamp(&mut response) {
                        return Poll::Ready(Ok(response));
                    }
                    self.set(Self::Rewrite {
                        rewrite: Box::pin(json_body(response)),
                    });
                }
                NormalizedProjection::Rewrite { rewrite } => {
                    return rewrite.as_mut().poll(cx).map(Ok);
                }
            }
        }
    }
}

/// Adds the anti-buffering headers; true for an error response whose body is not JSON.
fn stamp(response: &mut Response) -> bool {
    let headers = response.headers_mut();
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !is_json
}

/// An error response rewritten with a JSON-RPC error body carrying its text.
async fn json_body(response: Response) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let mut json = if let Some(why) = text.strip_prefix(UNREADABLE) {
        unreadable(why)
    } else if text.is_empty() {
        json_error(status, status.canonical_reason().unwrap_or("error"))
    } else {
        json_error(status, &text)
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// How rmcp words a POST body it cannot read as a JSON-RPC message (answered 415).
const UNREADABLE: &str = "fail to deserialize request body ";

/// rmcp's 415 for a body it cannot read, as JSON-RPC words it: 400 with -32700 for text that is
/// not JSON, -32600 for JSON that is no JSON-RPC message (a 415 says the media type is wrong,
/// and it is not: a client reading it would retry with another content type).
fn unreadable(why: &str) -> Response {
    // serde_json's syntax errors (its `ErrorCode`s other than `Message`); rmcp's own words
    // for a readable value of the wrong shape are "unrecognized JSON-RPC message".
    const SYNTAX: &[&str] = &[
        "EOF while parsing",
        "expected ",
        "invalid escape",
        "invalid number",
        "number out of range",
        "invalid unicode code point",
        "control character",
        "key must be a string",
        "lone leading surrogate",
        "unexpected end of hex escape",
        "trailing comma",
        "trailing characters",
        "recursion limit exceeded",
    ];
    let (code, message) = if SYNTAX.iter().any(|s| why.starts_with(s)) {
        (jsonrpc::PARSE_ERROR, format!("Parse error: {why}"))
    } else {
        (
            jsonrpc::INVALID_REQUEST,
            format!(
                "Invalid Request: not a JSON-RPC 2.0 request, notification or response ({why})"
            ),
        )
    };
    json_rpc_error(axum::http::StatusCode::BAD_REQUEST, code, &message)
}
