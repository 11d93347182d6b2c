//! Bytes in and out of streamable HTTP, counted as body frames pass (SSE streams included).

use axum::{body::Body, extract::Request, middleware::Next, response::Response};
use http_body_util::BodyExt as _;

/// Middleware: counts request and response body bytes as `mcp_bytes_total{transport="http"}`.
pub(crate) async fn count_http(request: Request, next: Next) -> Response {
    let request = request.map(|body| {
        Body::new(body.map_frame(|frame| {
            if let Some(data) = frame.data_ref() {
                super::metrics::bytes("http", "in", data.len());
            }
            frame
        }))
    });
    next.run(request).await.map(|body| {
        Body::new(body.map_frame(|frame| {
            if let Some(data) = frame.data_ref() {
                super::metrics::bytes("http", "out", data.len());
            }
            frame
        }))
    })
}
