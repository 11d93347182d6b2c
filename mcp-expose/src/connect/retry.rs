//! How long and how often to retry an unreachable server.

use std::time::Duration;

/// How long a message waits for the server to come back before its request is answered with
/// an error: long enough to ride out a restart, short enough for a person waiting on it.
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Limit for establishing one TCP/TLS/WebSocket connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may finish after stdin closed.
pub(crate) const DRAIN: Duration = Duration::from_secs(5);

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

/// Exponential backoff: 100 ms doubling to 5 s.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// The delay to wait now; the following one is twice as long (up to 5 s).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_five_seconds() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), FIRST);
    }
}
