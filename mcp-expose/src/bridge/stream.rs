//! One HTTP response stream of the bridge (a POST's or the GET's): the child's messages wait
//! for the client in a queue bounded in bytes, so that routing never waits on a client. A
//! client that stops reading while its queue grows past the bound has its stream cut: what
//! waits is freed at once and the stream ends (the client sees it end and may reconnect),
//! instead of skipping messages or holding them without end.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

/// The bytes one stream may have waiting; a message is always taken when none waits.
pub(crate) const STREAM_BYTES: usize = 4 * 1024 * 1024;

/// A message on its way to a stream; `last` marks the answer that ends a POST.
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) line: String,
    pub(crate) last: bool,
}

impl Routed {
    pub(crate) fn event(line: String) -> Self {
        Self { line, last: false }
    }
}

#[derive(Debug, Default)]
struct State {
    lines: VecDeque<Routed>,
    bytes: usize,
    senders: usize,
    /// The client is gone, or was cut off: nothing more is taken.
    gone: bool,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    ready: Notify,
    limit: usize,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The routing end of a stream.
#[derive(Debug)]
pub(crate) struct Sender(Arc<Inner>);

/// The response end of a stream.
#[derive(Debug)]
pub(crate) struct Receiver(Arc<Inner>);

/// A stream whose waiting messages may take `limit` bytes.
pub(crate) fn channel(limit: usize) -> (Sender, Receiver) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            senders: 1,
            ..State::default()
        }),
        ready: Notify::new(),
        limit,
    });
    (Sender(Arc::clone(&inner)), Receiver(inner))
}

/// What became of a message handed to a stream.
#[derive(Debug)]
pub(crate) enum Sent {
    Queued,
    /// The stream was cut (its client fell behind) and the message dropped with the rest.
    Cut,
    /// The stream is gone: the message is handed back.
    Closed(Routed),
}

impl Sender {
    /// Queues `routed` without waiting.
    pub(crate) fn send(&self, routed: Routed) -> Sent {
        let mut state = self.0.state();
        if state.gone {
            return Sent::Closed(routed);
        }
        let bytes = routed.line.len();
        if state.bytes > 0 && state.bytes.saturating_add(bytes) > self.0.limit {
            tracing::warn!(
                waiting = state.bytes,
                limit = self.0.limit,
                "ended an HTTP stream whose client stopped reading (its unread messages exceed the limit)"
            );
            state.gone = true;
            state.bytes = 0;
            state.lines = VecDeque::new();
            drop(state);
            self.0.ready.notify_one();
            return Sent::Cut;
        }
        state.bytes += bytes;
        state.lines.push_back(routed);
        drop(state);
        self.0.ready.notify_one();
        Sent::Queued
    }

    /// The stream takes no more messages.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.state().gone
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.0.state().senders += 1;
        Self(Arc::clone(&self.0))
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.0.state();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.0.ready.notify_one();
        }
    }
}

impl Receiver {
    /// The next message; `None` once every sender is gone and nothing waits, or the stream
    /// was cut.
    pub(crate) async fn recv(&mut self) -> Option<Routed> {
        loop {
            {
                let mut state = self.0.state();
                if let Some(routed) = state.lines.pop_front() {
                    state.bytes -= routed.line.len();
                    return Some(routed);
                }
                if state.gone || state.senders == 0 {
                    return None;
                }
            }
            // One receiver: a notification sent before this wait is kept as a permit.
            self.0.ready.notified().await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.gone = true;
        state.lines = VecDeque::new();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Routed {
        Routed::event(text.to_owned())
    }

    #[tokio::test]
    async fn in_order_then_ends_when_the_senders_are_gone() {
        let (tx, mut rx) = channel(10);
        let second = tx.clone();
        assert!(matches!(tx.send(line("a")), Sent::Queued));
        assert!(matches!(second.send(line("b")), Sent::Queued));
        drop((tx, second));
        assert_eq!(rx.recv().await.map(|r| r.line).as_deref(), Some("a"));
        assert_eq!(rx.recv().await.map(|r| r.line).as_deref(), Some("b"));
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn past_the_limit_the_stream_is_cut_and_freed() {
        let (tx, mut rx) = channel(10);
        // One message is always taken, however long.
        assert!(matches!(tx.send(line(&"x".repeat(50))), Sent::Queued));
        assert!(matches!(tx.send(line("y")), Sent::Cut));
        assert!(tx.is_closed());
        assert!(matches!(tx.send(line("z")), Sent::Closed(_)));
        assert!(rx.recv().await.is_none(), "a cut stream ends at once");
    }

    #[tokio::test]
    async fn a_message_for_a_stream_whose_client_left_comes_back() {
        let (tx, rx) = channel(10);
        drop(rx);
        assert!(tx.is_closed());
        assert!(matches!(tx.send(line("a")), Sent::Closed(r) if r.line == "a"));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes() {
        let (tx, mut rx) = channel(10);
        let waiting = tokio::spawn(async move { rx.recv().await.map(|r| r.line) });
        tokio::task::yield_now().await;
        assert!(matches!(tx.send(line("a")), Sent::Queued));
        assert_eq!(waiting.await.expect("joined").as_deref(), Some("a"));
    }
}
