//! A frame-oriented rmcp transport: frames come from a reader task, messages go to a writer
//! task, and frames that do not decode are answered with a JSON-RPC error.

use std::{borrow::Cow, fmt};

use rmcp::{
    RoleServer,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::mpsc;

use super::jsonrpc::{Decoded, decode};

/// What a reader task hands over.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One frame (a line, a WebSocket message).
    Frame(Vec<u8>),
    /// A reply the reader produced itself (for example for an oversized line).
    Reply(String),
}

/// What the writer task sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One serialized JSON-RPC message.
    Message(String),
    /// Close the connection with a code and a reason (WebSocket only).
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
    name: &'static str,
    inbound: mpsc::Receiver<Inbound>,
    outbound: Option<mpsc::Sender<Outbound>>,
}

impl Framed {
    pub(crate) fn new(
        name: &'static str,
        inbound: mpsc::Receiver<Inbound>,
        outbound: mpsc::Sender<Outbound>,
    ) -> Self {
        Self {
            name,
            inbound,
            outbound: Some(outbound),
        }
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
        async move {
            let outbound = outbound.ok_or(Closed)?;
            let text = serde_json::to_string(&item).map_err(|e| {
                tracing::error!(error = %e, "cannot serialize an outgoing message");
                Closed
            })?;
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
                        tracing::debug!(transport = self.name, "answered an undecodable frame");
                        self.reply(reply).await;
                    }
                    Decoded::Ignore => {}
                },
                Inbound::Reply(reply) => self.reply(reply).await,
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.outbound = None;
        self.inbound.close();
        Ok(())
    }
}
