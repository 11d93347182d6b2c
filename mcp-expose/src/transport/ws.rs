//! WebSocket: one JSON-RPC message per text frame (binary frames are read the same way),
//! subprotocol `mcp` echoed when offered, pings to keep proxies from idling the socket out,
//! close code 1009 for an oversized message, and 1008 when the token the socket was opened
//! with expires.

use crate::observe::metrics::{Direction, TransportKind};
use std::{sync::Arc, time::Duration};

use axum::{
    extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    http::{HeaderMap, HeaderValue},
    response::Response,
};
use futures::{SinkExt as _, StreamExt as _, stream::SplitSink, stream::SplitStream};
use rmcp::ServiceExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::framed::{Backlog, Framed, Inbound, Outbound};
use crate::handler::Handler;

const QUEUE: usize = 256;
/// A client that accepts nothing for this long is disconnected, not buffered for.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Close code for a message larger than the limit (RFC 6455 §7.4.1).
pub(crate) const MESSAGE_TOO_BIG: u16 = 1009;
/// Close code for a socket whose token expired (RFC 6455 §7.4.1: policy violation).
pub(crate) const POLICY_VIOLATION: u16 = 1008;
/// The close reason then.
pub(crate) const TOKEN_EXPIRED: &str = "token expired: reconnect with a fresh token";
/// Close code for a frame that breaks the WebSocket protocol (RFC 6455 §7.4.1).
pub(crate) const PROTOCOL_ERROR: u16 = 1002;

/// How to close a socket whose read failed: 1002 for a protocol violation (an unmasked or
/// reserved-bit frame, a bad opcode, ...), `None` when the connection itself is gone.
/// tungstenite's errors reach us through axum's opaque error, so by their words.
pub(crate) fn protocol_close(error: &axum::Error) -> Option<(u16, String)> {
    let text = error.to_string();
    text.strip_prefix("WebSocket protocol error: ")
        .map(|why| (PROTOCOL_ERROR, format!("protocol error: {why}")))
}

/// Completes when the token `caller` came with expires (with the clock-skew allowance that
/// the token check gives); never without a caller or an expiry.
pub(crate) async fn token_expiry(caller: Option<Arc<crate::session::Caller>>) {
    match caller.and_then(|caller| caller.deadline()) {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What tungstenite may hold unsent for one socket: one message of the largest size and some
/// room. A client that does not read (our answers, or the pongs to its own pings) fills it, and
/// the socket is closed instead of growing without bound.
pub(crate) fn write_buffer_limit(max_message: usize) -> usize {
    max_message.saturating_add(256 * 1024)
}

/// WebSocket settings.
#[derive(Debug, Clone)]
pub(crate) struct WsSettings {
    pub(crate) max_message: usize,
    pub(crate) ping_interval: Duration,
}

/// Accepts an upgrade and serves one MCP session on the socket; the session keeps the upgrade
/// request's headers, caller and client address for its tools.
pub(crate) fn upgrade(
    upgrade: WebSocketUpgrade,
    request: &http::request::Parts,
    handler: &Handler,
    settings: &WsSettings,
    ct: CancellationToken,
) -> Response {
    let handler = handler.session(
        TransportKind::Ws,
        Some(owned(&request.headers)),
        request
            .extensions
            .get::<Arc<crate::session::Caller>>()
            .cloned(),
        crate::web::client_of(&request.extensions),
    );
    let settings = settings.clone();
    // Let a slightly larger message through tungstenite so that we can answer it with a
    // clean 1009 and our own reason instead of a protocol error.
    let wire_limit = settings.max_message.saturating_add(1);
    upgrade
        .protocols(["mcp"])
        // tungstenite allocates its read buffer up front (128 KiB by default): small buffers
        // that grow on demand (a frame's whole length is reserved once its header is read)
        // keep thousands of idle sessions cheap.
        .read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(wire_limit)
        .max_frame_size(wire_limit)
        .max_write_buffer_size(write_buffer_limit(settings.max_message))
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            serve_socket(sink, stream, handler, settings, ct)
        })
}

/// The header values hyper parsed are slices of its connection's read buffer: copies let that
/// buffer go while the session keeps its headers.
pub(crate) fn owned(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .map(|(name, value)| {
            let copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
            (name.clone(), copy)
        })
        .collect()
}

/// One task per socket: the frame reader and writer run beside the session, not as tasks of
/// their own.
///
/// An idle session's memory is mostly this task's future, so it is kept small: the socket is
/// split before the future is built (arguments live as long as the future does), and rmcp's
/// handshake and service futures are boxed, each freed when it completes.
async fn serve_socket(
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    handler: Handler,
    settings: WsSettings,
    ct: CancellationToken,
) {
    let (inbound_tx, inbound_rx) = mpsc::channel(QUEUE);
    let (outbound_tx, outbound_rx) = mpsc::channel(QUEUE);
    // The client gone, nobody can receive answers: cancel the session and its running tools.
    let ct = ct.child_token();
    let gone = ct.clone();
    let (replies, max_message) = (outbound_tx.clone(), settings.max_message);
    let caller = handler.caller();
    let closing = outbound_tx.clone();
    // Answers the client has not read: its largest message and 16 MiB more, then it is let go.
    let backlog = Backlog::new(settings.max_message.saturating_add(16 * 1024 * 1024));
    let exceeded = backlog.exceeded.clone();
    let transport =
        Framed::new(TransportKind::Ws, inbound_rx, outbound_tx).with_backlog(backlog.clone());
    // The writer drains what the session queued, and ends once every sender is gone.
    // The writer gone (the client stopped reading, or the socket broke), the session ends too:
    // nothing it produces can be delivered, and its queues and buffers are freed.
    let written = CancellationToken::new();
    let writer_gone = written.clone();
    tokio::join!(
        async move {
            tokio::select! {
                () = run_session(handler, transport, ct) => {}
                () = writer_gone.cancelled() => {}
                () = exceeded.cancelled() => {}
                () = async move {
                    tokio::select! {
                        () = read_frames(stream, inbound_tx, replies, max_message) => {}
                        () = token_expiry(caller) => {
                            tracing::info!("closing a WebSocket session: its token expired");
                            let close = Outbound::Close(POLICY_VIOLATION, TOKEN_EXPIRED.into());
                            let _ = closing.send(close).await;
                        }
                    }
                    gone.cancel();
                    // The session ends through the cancellation; the reader is dropped with it.
                    std::future::pending::<()>().await;
                } => {}
            }
        },
        async move {
            tokio::select! {
                () = write_frames(sink, outbound_rx, settings.ping_interval, &backlog) => {}
                // Given up on: the socket is dropped (closed) with what it held.
                () = backlog.exceeded.cancelled() => {}
            }
            written.cancel();
        }
    );
}

async fn run_session(handler: Handler, transport: Framed, ct: CancellationToken) {
    let running = match Box::pin(handler.serve_with_ct(transport, ct)).await {
        Ok(running) => running,
        Err(e) => {
            tracing::debug!(error = %e, "websocket session did not initialize");
            return;
        }
    };
    let reason = Box::pin(running.waiting()).await;
    tracing::debug!(?reason, "websocket session ended");
}

async fn read_frames(
    mut stream: SplitStream<WebSocket>,
    inbound: mpsc::Sender<Inbound>,
    outbound: mpsc::Sender<Outbound>,
    max_message: usize,
) {
    while let Some(frame) = stream.next().await {
        let bytes = match frame {
            Ok(Message::Text(text)) => Vec::from(text.as_bytes()),
            Ok(Message::Binary(bytes)) => bytes.to_vec(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => break,
            Err(e) => {
                let text = e.to_string();
                if text.contains("too long") || text.contains("Space limit") {
                    too_big(&outbound, None, max_message).await;
                } else if let Some((code, reason)) = protocol_close(&e) {
                    tracing::debug!(%reason, "closing websocket");
                    let _ = outbound.send(Outbound::Close(code, reason)).await;
                } else {
                    tracing::debug!(error = %text, "websocket read failed");
                }
                break;
            }
        };
        crate::observe::metrics::bytes(TransportKind::Ws, Direction::In, bytes.len());
        if bytes.len() > max_message {
            too_big(&outbound, Some(bytes.len()), max_message).await;
            break;
        }
        if inbound.send(Inbound::Frame(bytes)).await.is_err() {
            break;
        }
    }
}

async fn too_big(outbound: &mpsc::Sender<Outbound>, size: Option<usize>, max: usize) {
    let reason = match size {
        Some(size) => format!("message of {size} bytes exceeds the limit of {max} bytes"),
        None => format!("message exceeds the limit of {max} bytes"),
    };
    tracing::warn!(%reason, "closing websocket");
    let _ = outbound
        .send(Outbound::Close(MESSAGE_TOO_BIG, reason))
        .await;
}

async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    ping: Duration,
    backlog: &Backlog,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { break };
                let mut next = Some(message);
                while let Some(message) = next {
                    match message {
                        Outbound::Message(text) => {
                            crate::observe::metrics::bytes(TransportKind::Ws, Direction::Out, text.len());
                            backlog.written(text.len());
                            let fed = tokio::time::timeout(SEND_TIMEOUT, sink.feed(Message::Text(text.into()))).await;
                            if !matches!(fed, Ok(Ok(()))) {
                                tracing::warn!("disconnecting a WebSocket client that stopped reading");
                                return;
                            }
                        }
                        Outbound::Close(code, reason) => {
                            let frame = CloseFrame { code, reason: reason.into() };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            return;
                        }
                    }
                    next = rx.try_recv().ok();
                }
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, sink.flush()).await, Ok(Ok(()))) {
                    tracing::warn!("disconnecting a WebSocket client that stopped reading");
                    return;
                }
            }
            _ = ticker.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "server closing".into(),
        })))
        .await;
}
