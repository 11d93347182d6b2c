//! The bridge over legacy HTTP+SSE (2024-11-05): a child session per event stream, its lines
//! sent as `message` events; each `POST /messages?sessionId=ID` is checked as one JSON-RPC
//! message and written to the child. The stream gone, its session and child end.

use std::sync::Arc;

use axum::{
    extract::Request,
    http::StatusCode,
    response::{IntoResponse as _, Response},
};

use super::{Bridge, Link, child::Outlet, envelope};
use crate::{
    transport::{
        sse::{accepted, event_stream},
        ws::SEND_TIMEOUT,
    },
    web::{json_rpc_error, read_body},
};

/// Lines queued for one stream. Few, as for a WebSocket: what a client has not read is bounded
/// in bytes before this (the shared child's outbox) or backs up into its own child's pipe.
const QUEUE: usize = 16;

/// The bridge's legacy SSE sessions.
pub(crate) type Sessions = crate::transport::sse::Sessions<Arc<Link>>;

/// `GET /sse`: opens a session and its stream.
pub(crate) async fn open(bridge: Arc<Bridge>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let registration = bridge.sse.open(
        // The link's tag is only for logs: the session id itself stays out of them.
        Arc::new(bridge.open(
            format!("sse:{:08x}", super::rand_tag()),
            Outlet::Channel(tx),
        )),
        &parts,
    );
    let id = registration.id().to_owned();
    // The registration lives as long as the stream: dropped, the session (and child) ends.
    let lines = futures::stream::unfold((rx, registration), |(mut rx, registration)| async {
        let line = rx.recv().await?;
        Some((line, (rx, registration)))
    });
    event_stream(&parts, &id, lines, bridge.keep_alive)
}

/// `POST /messages?sessionId=ID`: one message for the session's child, answered 202.
pub(crate) async fn message(bridge: Arc<Bridge>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let link = match bridge.sse.find(&parts) {
        Ok(link) => link,
        Err(unknown) => return unknown.into_response(),
    };
    let body = match read_body(body, bridge.max_message).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err((code, text)) = envelope::parse(&body) {
        return json_rpc_error(StatusCode::BAD_REQUEST, code, &text);
    }
    accepted(tokio::time::timeout(SEND_TIMEOUT, link.send(body.to_vec())).await)
}
