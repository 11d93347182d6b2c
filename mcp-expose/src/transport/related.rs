//! A tool's log messages on its own request's stream. rmcp sends every notification but
//! progress to a session's standalone `GET` stream; the MCP spec says a request's stream
//! carries what relates to it, and the SDKs put a call's logs there. On `GET`, a log can reach
//! the client after the call's answer (through another replica, after its tail of Redis), or
//! never (a client that opens no `GET` stream). [`Related`] wraps the session manager: each
//! request it turns into a stream carries a [`RelatedSender`] in its extensions, which
//! [`Context::log`](crate::Context::log) uses while the request's stream is open; what is sent
//! there comes out before the answer.
//!
//! Such a message has no event id: a stream resumed with `Last-Event-ID` replays the answer
//! and what rmcp stored, not the logs sent here.

// Logging is deprecated by SEP-2577 (MCP 2026-07-28); the 2025 sessions served here have it.
#![allow(deprecated)]

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures::Stream;
use futures::channel::mpsc;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::{
        common::server_side_http::{ServerSseMessage, SessionId},
        streamable_http_server::session::{
            RestoreOutcome, SessionManager, local::LocalSessionManager, store::EventStore,
        },
    },
};

use crate::context::RelatedSender;

/// How many related messages wait for a slow client before the tool waits too. (A channel of
/// `futures`, whose messages are allocated as they come: tokio's allocates 32 slots of a
/// message, 12 KB, at once, on every call.)
const QUEUE: usize = 64;

/// rmcp's session manager, with each request's stream open to its related messages.
pub(crate) struct Related(pub(crate) Arc<LocalSessionManager>);

impl SessionManager for Related {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.0.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.0.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.0.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.0.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        use rmcp::model::{ClientRequest, GetExtensions as _};
        // Only what runs the user's code (with a `Context`) can log; the rest costs nothing.
        let related = match &mut message {
            ClientJsonRpcMessage::Request(request)
                if matches!(
                    request.request,
                    ClientRequest::CallToolRequest(_)
                        | ClientRequest::ReadResourceRequest(_)
                        | ClientRequest::GetPromptRequest(_)
                ) =>
            {
                let (sender, related) = mpsc::channel(QUEUE);
                request
                    .request
                    .extensions_mut()
                    .insert(RelatedSender::new(sender));
                Some(related)
            }
            _ => None,
        };
        let answers = self.0.create_stream(id, message).await?;
        Ok(match related {
            Some(related) => futures::future::Either::Left(Merged {
                answers: Box::pin(answers),
                related,
                held: None,
                answered: false,
            }),
            None => futures::future::Either::Right(answers),
        })
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.0.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.0.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.0.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.0.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.0.event_store()
    }
}

/// A request's stream: rmcp's events, with the related messages sent meanwhile. Those come
/// first when both are ready, so a log sent before the answer is never behind it; the stream
/// ends with rmcp's, once the related messages already sent are out.
struct Merged<S> {
    answers: Pin<Box<S>>,
    related: mpsc::Receiver<ServerJsonRpcMessage>,
    /// An event of rmcp's held back for a related message that was sent before it.
    held: Option<ServerSseMessage>,
    /// rmcp's stream has ended.
    answered: bool,
}

impl<S: Stream<Item = ServerSseMessage>> Stream for Merged<S> {
    type Item = ServerSseMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(Some(message)) = Pin::new(&mut this.related).poll_next(cx) {
            return Poll::Ready(Some(ServerSseMessage::from_message(message)));
        }
        if let Some(held) = this.held.take() {
            return Poll::Ready(Some(held));
        }
        if this.answered {
            return Poll::Ready(None);
        }
        match this.answers.as_mut().poll_next(cx) {
            Poll::Ready(Some(event)) => match this.related.try_next() {
                // Sent while rmcp's event was on its way: it goes first.
                Ok(Some(message)) => {
                    this.held = Some(event);
                    Poll::Ready(Some(ServerSseMessage::from_message(message)))
                }
                _ => Poll::Ready(Some(event)),
            },
            Poll::Ready(None) => {
                this.answered = true;
                // What was sent before the end still goes out; nothing after.
                this.related.close();
                match this.related.try_next() {
                    Ok(Some(message)) => Poll::Ready(Some(ServerSseMessage::from_message(message))),
                    _ => Poll::Ready(None),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use rmcp::model::{
        LoggingLevel, LoggingMessageNotificationParam, NumberOrString, ServerResult,
    };

    fn log(text: &str) -> LoggingMessageNotificationParam {
        LoggingMessageNotificationParam::new(LoggingLevel::Info, text.into())
    }

    fn answer() -> ServerSseMessage {
        ServerSseMessage::from_message(ServerJsonRpcMessage::response(
            ServerResult::empty(()),
            NumberOrString::Number(1),
        ))
    }

    fn kinds(events: &[ServerSseMessage]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e.message.as_deref() {
                Some(ServerJsonRpcMessage::Notification(_)) => "log",
                Some(ServerJsonRpcMessage::Response(_)) => "answer",
                _ => "other",
            })
            .collect()
    }

    #[tokio::test]
    async fn related_messages_sent_before_the_answer_come_before_it_and_none_after_the_end() {
        let (sender, related) = mpsc::channel(QUEUE);
        let sender = RelatedSender::new(sender);
        // Everything is already there when the stream is first polled: the worst order.
        sender.log(log("one")).await.expect("open");
        sender.log(log("two")).await.expect("open");
        let merged = Merged {
            answers: Box::pin(futures::stream::iter([answer()])),
            related,
            held: None,
            answered: false,
        };
        let events: Vec<_> = merged.collect().await;
        assert_eq!(kinds(&events), ["log", "log", "answer"]);
        assert!(
            sender.log(log("late")).await.is_err(),
            "the stream has ended"
        );
    }
}
