//! Streamable HTTP (rmcp's `StreamableHttpService`) with the headers proxies and tunnels need,
//! and JSON bodies on errors.

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

use super::policy::json_error;
use crate::handler::Handler;

/// Streamable HTTP settings.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) stateless: bool,
    pub(crate) max_body: usize,
    pub(crate) keep_alive: Duration,
}

/// rmcp's service behind one `Arc`: axum clones a route's service for every request and rmcp's
/// own `call` clones it again, each clone copying its config (a cancellation token whose clone
/// and drop take a lock shared by every request); here a request costs one reference count.
#[derive(Clone)]
pub(crate) struct Shared(Arc<StreamableHttpService<Handler, LocalSessionManager>>);

impl<B> tower::Service<Request<B>> for Shared
where
    B: axum::body::HttpBody + Send + 'static,
    B::Error: Display,
    B::Data: Send + 'static,
{
    type Response = axum::http::Response<BoxBody<Bytes, Infallible>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

pub(crate) fn service(handler: &Handler, settings: &HttpSettings, ct: CancellationToken) -> Shared {
    // Host and Origin are checked by our own policy layer, in front of this service.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_sse_keep_alive(Some(settings.keep_alive))
        .with_legacy_session_mode(!settings.stateless)
        .with_json_response(settings.stateless)
        .with_max_request_body_bytes(settings.max_body)
        .with_cancellation_token(ct);
    let handler = handler.clone();
    Shared(Arc::new(StreamableHttpService::new(
        move || Ok(handler.session("http", None)),
        Arc::new(LocalSessionManager::default()),
        config,
    )))
}

/// Response middleware (`map_response`: no per-request service clone): anti-buffering headers
/// on every response, and a JSON-RPC error body on errors that rmcp answers in plain text.
pub(crate) async fn normalize(mut response: Response) -> Response {
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
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut json = json_error(status, &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}
