//! Bytes in and out of streamable HTTP, counted as body frames pass (SSE streams included).

use super::metrics::{Direction, TransportKind};
use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{body::Body, extract::Request, response::Response};
use futures::TryFutureExt as _;
use http_body_util::BodyExt as _;

/// Layer: counts request and response body bytes as `mcp_bytes_total{transport="http"}`.
///
/// A service of its own rather than an axum `from_fn`: it runs on every request, and adds
/// no boxed future or service clone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountHttp;

impl<S> tower::Layer<S> for CountHttp {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted(inner)
    }
}

/// A service whose HTTP bodies are counted.
#[derive(Debug, Clone)]
pub(crate) struct Counted<S>(S);

impl<S, B> tower::Service<Request> for Counted<S>
where
    S: tower::Service<Request, Response = Response<B>, Error = Infallible>,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::MapOk<S::Future, fn(Response<B>) -> Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let request = request.map(|body| {
            Body::new(body.map_frame(|frame| {
                if let Some(data) = frame.data_ref() {
                    super::metrics::bytes(TransportKind::Http, Direction::In, data.len());
                }
                frame
            }))
        });
        self.0
            .call(request)
            .map_ok(count_out::<B> as fn(Response<B>) -> Response)
    }
}

fn count_out<B>(response: Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    response.map(|body| {
        Body::new(body.map_frame(|frame| {
            if let Some(data) = frame.data_ref() {
                super::metrics::bytes(TransportKind::Http, Direction::Out, data.len());
            }
            frame
        }))
    })
}
