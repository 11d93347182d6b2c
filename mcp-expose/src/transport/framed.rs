//! A frame-oriented rmcp transport: frames come from a reader task, messages go to a writer
//! task, and frames that do not decode are answered with a JSON-RPC error.

use crate::observe::metrics::TransportKind;
use std::{borrow::Cow, fmt};

use rmcp::{
    RoleServer,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::mpsc;

use super::decode::{Decoded, decode};

/// What a reader task hands over.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One frame (a line, a WebSocket message).
    Frame(Vec<u8>),
    /// A reply the reader produced itself (for example for an oversized line).
    Reply(String),
    /// A message decoded already (a legacy SSE POST, checked before it was accepted).
    Message(Box<RxJsonRpcMessage<RoleServer>>),
}

/// What the writer task sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One serialized JSON-RPC message.
    Message(String),
    /// Close the connection with a code and a reason (WebSocket only; legacy SSE ends its
    /// stream).
    Close(u16, String),
}

/// The writer task is gone: the connection closed.
#[derive(Debug)]
pub(crate) struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed")
    }
}

impl std::error::Error for Closed {}

pub(crate) struct Framed {
    name: TransportKind,
    inbound: mpsc::Receiver<Inbound>,
    outbound: Option<mpsc::Sender<Outbound>>,
    backlog: Option<std::sync::Arc<Backlog>>,
}

/// Bytes of answers a connection has not taken yet, across rmcp's pending sends and our queue.
/// rmcp sends each answer from a task of its own, so a client that asks and never reads would
/// have every answer held in memory; past `budget` the connection is given up instead.
#[derive(Debug)]
pub(crate) struct Backlog {
    pending: std::sync::atomic::AtomicUsize,
    budget: usize,
    /// Cancelled once the budget is exceeded: the connection closes.
    pub(crate) exceeded: tokio_util::sync::CancellationToken,
}

impl Backlog {
    pub(crate) fn new(budget: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            pending: std::sync::atomic::AtomicUsize::new(0),
            budget,
            exceeded: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// `bytes` were written to the client (replies the reader queued itself were never
    /// counted: the count stops at zero).
    pub(crate) fn written(&self, bytes: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self
            .pending
            .fetch_update(Relaxed, Relaxed, |p| Some(p.saturating_sub(bytes)));
    }

    /// Counts `bytes` about to be queued; false (and the connection given up) past the budget.
    fn admit(&self, bytes: usize) -> bool {
        let before = self
            .pending
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        if before.saturating_add(bytes) > self.budget {
            self.written(bytes);
            if !self.exceeded.is_cancelled() {
                tracing::warn!(
                    budget = self.budget,
                    "disconnecting a client whose unread answers exceed the budget"
                );
                self.exceeded.cancel();
            }
            return false;
        }
        true
    }
}

impl Framed {
    pub(crate) fn new(
        name: TransportKind,
        inbound: mpsc::Receiver<Inbound>,
        outbound: mpsc::Sender<Outbound>,
    ) -> Self {
        Self {
            name,
            inbound,
            outbound: Some(outbound),
            backlog: None,
        }
    }

    /// Bounds the bytes of answers the client has not taken (see [`Backlog`]).
    pub(crate) fn with_backlog(mut self, backlog: std::sync::Arc<Backlog>) -> Self {
        self.backlog = Some(backlog);
        self
    }

    async fn reply(&self, reply: String) {
        if let Some(outbound) = &self.outbound {
            let _ = outbound.send(Outbound::Message(reply)).await;
        }
    }
}

impl Transport<RoleServer> for Framed {
    type Error = Closed;

    fn name() -> Cow<'static, str> {
        "mcp-expose framed".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outbound = self.outbound.clone();
        // Serialized now, in rmcp's loop, so the backlog counts it before a task holds it.
        let text = serde_json::to_string(&item).map_err(|e| {
            tracing::error!(error = %e, "cannot serialize an outgoing message");
            Closed
        });
        let admitted = match (&text, &self.backlog) {
            (Ok(text), Some(backlog)) => backlog.admit(text.len()),
            _ => true,
        };
        async move {
            let outbound = outbound.ok_or(Closed)?;
            let text = text?;
            if !admitted {
                return Err(Closed);
            }
            outbound
                .send(Outbound::Message(text))
                .await
                .map_err(|_| Closed)
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.inbound.recv().await? {
                Inbound::Frame(frame) => match decode(&frame) {
                    Decoded::Message(message) => return Some(*message),
                    Decoded::Reply(reply) => {
                        tracing::debug!(transport = %self.name, "answered an undecodable frame");
                        self.reply(reply).await;
                    }
                    Decoded::Ignore => {}
                },
                Inbound::Reply(reply) => self.reply(reply).await,
                Inbound::Message(message) => return Some(*message),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.outbound = None;
        self.inbound.close();
        Ok(())
    }
}
