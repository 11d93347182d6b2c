#![allow(deprecated)] // logging is deprecated by the 2026-07-28 revision; older clients use it
//! Log messages to the client: [`LogLevel`] and [`Context::log`].

use futures::channel::mpsc;
use rmcp::model::{
    JsonRpcNotification, LoggingLevel, LoggingMessageNotification, LoggingMessageNotificationParam,
    ServerJsonRpcMessage, ServerNotification,
};

use super::Context;
use crate::session::Session;

/// Where a request's related messages go while its own stream is open: a request extension
/// that the streamable HTTP transport (`transport::related`) puts there.
#[derive(Debug, Clone)]
pub(crate) struct RelatedSender(mpsc::Sender<ServerJsonRpcMessage>);

impl RelatedSender {
    /// The sending end of a request's stream (the transport holds the other).
    pub(crate) fn new(sender: mpsc::Sender<ServerJsonRpcMessage>) -> Self {
        Self(sender)
    }

    /// Sends a log message on the request's stream; gives it back once that stream has ended.
    pub(crate) async fn log(
        &self,
        params: LoggingMessageNotificationParam,
    ) -> Result<(), LoggingMessageNotificationParam> {
        let message = ServerJsonRpcMessage::notification(
            ServerNotification::LoggingMessageNotification(LoggingMessageNotification::new(params)),
        );
        // Waits for room (a slow client holds the tool back, as rmcp's own channel does).
        let mut sender = self.0.clone();
        let unsent = match futures::future::poll_fn(|cx| sender.poll_ready(cx)).await {
            Ok(()) => match sender.try_send(message) {
                Ok(()) => return Ok(()),
                Err(unsent) => unsent.into_inner(),
            },
            Err(_) => message,
        };
        match unsent {
            ServerJsonRpcMessage::Notification(JsonRpcNotification {
                notification: ServerNotification::LoggingMessageNotification(log),
                ..
            }) => Err(log.params),
            _ => unreachable!("only log messages are sent here"),
        }
    }
}

impl Context {
    /// Sends a `notifications/message` log entry to the client, if `level` is at or above the
    /// level the client set with `logging/setLevel` (default: info). On MCP 2026-07-28 the
    /// request itself names the level (`io.modelcontextprotocol/logLevel` in its `_meta`); a
    /// request that names none gets no log entries. Over streamable HTTP the entry goes on the
    /// request's own stream, ahead of its answer (after the answer, as from a task: on the
    /// session's `GET` stream).
    pub async fn log(&self, level: LogLevel, data: impl serde::Serialize) {
        let level = level.into_rmcp();
        let enabled = if self.inner.sessionless {
            self.inner
                .log_level
                .is_some_and(|least| Session::at_least(level, least))
        } else {
            self.inner.session.log_enabled(level)
        };
        if !enabled {
            return;
        }
        let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
        let params = LoggingMessageNotificationParam::new(level, data);
        // On the request's own stream while it is open, else (a task outlives it) the session's.
        let params = match &self.inner.related {
            Some(related) => match related.log(params).await {
                Ok(()) => return,
                Err(params) => params,
            },
            None => params,
        };
        let sent = self.inner.peer.notify_logging_message(params).await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "log notification not delivered");
        }
    }

    /// [`log`](Self::log) at `info`.
    pub async fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message.into()).await;
    }

    /// [`log`](Self::log) at `warning`.
    pub async fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warning, message.into()).await;
    }

    /// [`log`](Self::log) at `debug`.
    pub async fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message.into()).await;
    }
}

/// Severity of a log message sent to the client (RFC 5424 levels, as MCP uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LogLevel {
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Normal but significant.
    Notice,
    /// Something unexpected.
    Warning,
    /// An error.
    Error,
    /// A critical condition.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// The system is unusable.
    Emergency,
}

impl LogLevel {
    fn into_rmcp(self) -> LoggingLevel {
        match self {
            LogLevel::Debug => LoggingLevel::Debug,
            LogLevel::Info => LoggingLevel::Info,
            LogLevel::Notice => LoggingLevel::Notice,
            LogLevel::Warning => LoggingLevel::Warning,
            LogLevel::Error => LoggingLevel::Error,
            LogLevel::Critical => LoggingLevel::Critical,
            LogLevel::Alert => LoggingLevel::Alert,
            LogLevel::Emergency => LoggingLevel::Emergency,
        }
    }
}
