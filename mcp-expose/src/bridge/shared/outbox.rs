//! A session's outbound queue in the shared model: bounded in bytes and drained by a task of
//! its own, so that the shared child's reader hands a message over without ever waiting on one
//! session. A session that falls too far behind, or stays full too long, is dropped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use crate::bridge::child::Outlet;

/// The bytes one session may have waiting in its queue (one message is always taken).
pub(super) const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// How long a session's socket may refuse a message before the session is dropped.
pub(super) const STALL: Duration = Duration::from_secs(10);

/// Where the shared child's messages for one session go.
pub(super) enum Outbox {
    /// HTTP: routing into the session's streams never waits.
    Direct(Outlet),
    /// A socket writer's channel, with an overflow queue its own task drains.
    Queued {
        socket: mpsc::Sender<String>,
        queue: mpsc::UnboundedSender<String>,
        bytes: Arc<AtomicUsize>,
        /// Dropping it stops the task.
        _stop: oneshot::Sender<()>,
    },
}

impl Outbox {
    /// An outbox for `out`; `stalled` runs when its socket stays full past [`STALL`].
    pub(super) fn new(out: Outlet, stalled: impl FnOnce() + Send + 'static) -> Self {
        let socket = match out {
            Outlet::Channel(socket) => socket,
            http => return Self::Direct(http),
        };
        let (queue, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let bytes = Arc::<AtomicUsize>::default();
        tokio::spawn(drain(socket.clone(), rx, bytes.clone(), stopped, stalled));
        Self::Queued {
            socket,
            queue,
            bytes,
            _stop: stop,
        }
    }

    /// Hands `line` over without waiting; `false` when the session is past its bound (or its
    /// queue is gone) and must be dropped.
    pub(super) fn push(&self, line: String) -> bool {
        let (socket, queue, bytes) = match self {
            Self::Queued {
                socket,
                queue,
                bytes,
                ..
            } => (socket, queue, bytes),
            Self::Direct(Outlet::Http(routes)) => {
                crate::bridge::routes::route(routes, line);
                return true;
            }
            Self::Direct(Outlet::Channel(_)) => return true,
        };
        // Straight into the socket's channel while nothing waits before it: order is kept
        // because the queue counts a message until the socket took it.
        let line = if bytes.load(Ordering::Acquire) == 0 {
            match socket.try_send(line) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(line)) => line,
                // The socket is gone; its session detaches.
                Err(mpsc::error::TrySendError::Closed(_)) => return true,
            }
        } else {
            line
        };
        let waiting = bytes.load(Ordering::Acquire);
        if waiting > 0 && waiting + line.len() > QUEUE_BYTES {
            return false;
        }
        bytes.fetch_add(line.len(), Ordering::AcqRel);
        queue.send(line).is_ok()
    }
}

async fn drain(
    socket: mpsc::Sender<String>,
    mut queue: mpsc::UnboundedReceiver<String>,
    bytes: Arc<AtomicUsize>,
    mut stop: oneshot::Receiver<()>,
    stalled: impl FnOnce(),
) {
    loop {
        let line = tokio::select! {
            biased;
            _ = &mut stop => return,
            line = queue.recv() => match line {
                Some(line) => line,
                None => return,
            },
        };
        let len = line.len();
        let sent = tokio::select! {
            biased;
            _ = &mut stop => return,
            sent = tokio::time::timeout(STALL, socket.send(line)) => sent,
        };
        bytes.fetch_sub(len, Ordering::AcqRel);
        match sent {
            Ok(Ok(())) => {}
            // The socket is gone; its session detaches.
            Ok(Err(_)) => return,
            Err(_) => return stalled(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_bytes_and_in_order() {
        let (socket, mut written) = mpsc::channel(2);
        let outbox = Outbox::new(Outlet::Channel(socket), || {});
        let mib = "x".repeat(1024 * 1024);
        assert!(outbox.push("a".into()) && outbox.push("b".into()));
        // The socket's channel is full: the rest waits in the queue, one message always taken.
        let big = format!("c{}", mib.repeat(5));
        assert!(outbox.push(big.clone()));
        assert!(!outbox.push("d".into()), "past the bound");
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(written.recv().await.expect("a message"));
        }
        assert_eq!(seen, ["a".to_owned(), "b".to_owned(), big]);
        // Drained: taken again, straight through.
        tokio::task::yield_now().await;
        for line in ["e", "f"] {
            assert!(outbox.push(format!("{line}{mib}")));
        }
        assert!(written.recv().await.is_some_and(|l| l.starts_with('e')));
        assert!(written.recv().await.is_some_and(|l| l.starts_with('f')));
    }
}
