//! The bridge over WebSocket: one child session per socket, frames forwarded as they are;
//! closed with 1009 for an oversized message, and 1008 when the upgrade's token expires or the
//! bridge dropped a session that fell too far behind.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt as _, StreamExt as _};

use super::Bridge;
use crate::transport::ws::{
    MESSAGE_TOO_BIG, POLICY_VIOLATION, SEND_TIMEOUT, TOKEN_EXPIRED, protocol_close, token_expiry,
};

/// Messages queued for one socket's writer. Few: what a client has not read is bounded in
/// bytes before this (the shared child's outbox) or backs up into its own child's pipe; a long
/// queue of large answers would hold them all (1,024 x 256 KiB in the hostile soak).
const QUEUE: usize = 16;

const FELL_BEHIND: &str = "the session fell too far behind its messages";

pub(crate) async fn serve_socket(
    socket: WebSocket,
    bridge: Arc<Bridge>,
    tag: String,
    caller: Option<Arc<crate::session::Caller>>,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut out) = tokio::sync::mpsc::channel(QUEUE);
    let session = bridge.open(tag, super::child::Outlet::Channel(tx));
    let max = bridge.max_message;
    let writer = async {
        while let Some(line) = out.recv().await {
            let mut next = Some(line);
            // A client that stops reading is let go after SEND_TIMEOUT, as on a direct server.
            while let Some(line) = next {
                let fed = tokio::time::timeout(SEND_TIMEOUT, sink.feed(Message::Text(line.into())));
                if !matches!(fed.await, Ok(Ok(()))) {
                    return false;
                }
                next = out.try_recv().ok();
            }
            if !matches!(
                tokio::time::timeout(SEND_TIMEOUT, sink.flush()).await,
                Ok(Ok(()))
            ) {
                return false;
            }
        }
        // The bridge ended the session (a shared child's session that fell too far behind).
        true
    };
    let reader = async {
        while let Some(frame) = stream.next().await {
            let bytes = match frame {
                Ok(Message::Text(text)) => Vec::from(text.as_bytes()),
                Ok(Message::Binary(bytes)) => bytes.to_vec(),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(Message::Close(_)) => return None,
                Err(e) => return protocol_close(&e),
            };
            if bytes.len() > max {
                return Some((
                    MESSAGE_TOO_BIG,
                    format!(
                        "message of {} bytes exceeds the limit of {max} bytes",
                        bytes.len()
                    ),
                ));
            }
            if !session.send(bytes).await {
                return None;
            }
        }
        None
    };
    let closing = tokio::select! {
        ended = writer => ended.then(|| (POLICY_VIOLATION, FELL_BEHIND.to_owned())),
        closing = reader => closing,
        () = token_expiry(caller) => {
            tracing::info!("closing a bridged WebSocket session: its token expired");
            Some((POLICY_VIOLATION, TOKEN_EXPIRED.to_owned()))
        }
    };
    if let Some((code, reason)) = closing {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    // Dropping the session stops its child.
}
