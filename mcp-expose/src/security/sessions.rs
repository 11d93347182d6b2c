//! The session cap: how many sessions (HTTP sessions and WebSocket connections, each perhaps
//! with a child process behind it) a listener holds at once. A request that would open one more
//! gets `503` with `Retry-After` and a JSON body; existing sessions are untouched.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    extract::Request,
    http::{Method, header},
};

use crate::serve::gate::Refusal;

/// Open sessions of one server or bridge.
#[derive(Debug, Default)]
pub(crate) struct SessionCount(AtomicUsize);

impl SessionCount {
    /// Counts a session until the returned slot is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> SessionSlot {
        self.0.fetch_add(1, Ordering::AcqRel);
        SessionSlot(self.clone())
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One open session; dropping it closes the slot.
#[derive(Debug)]
pub(crate) struct SessionSlot(Arc<SessionCount>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The cap over the counts of everything served on one listener.
#[derive(Debug, Clone)]
pub(crate) struct SessionCap {
    pub(crate) max: usize,
    pub(crate) counts: Arc<[Arc<SessionCount>]>,
    /// Whether a POST without `Mcp-Session-Id` opens a session (not in stateless mode).
    pub(crate) http_sessions: bool,
    /// Admitted requests whose session may not be counted yet.
    pending: Arc<AtomicUsize>,
}

impl SessionCap {
    pub(crate) fn new(max: usize, counts: Vec<Arc<SessionCount>>, http_sessions: bool) -> Self {
        Self {
            max,
            counts: counts.into(),
            http_sessions,
            pending: Arc::default(),
        }
    }

    fn open(&self) -> usize {
        self.counts.iter().map(|c| c.get()).sum()
    }

    /// Reserves a place for a session about to open, or `None` at the cap. Concurrent openers
    /// see each other's reservations, so a burst cannot overshoot.
    fn reserve(&self) -> Option<Reservation> {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| {
                (self.open() + pending < self.max).then_some(pending + 1)
            })
            .ok()?;
        Some(Reservation(self.pending.clone()))
    }

    /// A request that opens a session: a WebSocket upgrade (HTTP/1.1 `Upgrade`, or HTTP/2
    /// extended CONNECT), or a streamable HTTP POST without `Mcp-Session-Id` (an `initialize`).
    fn opens_session(&self, request: &Request) -> bool {
        let headers = request.headers();
        if headers.contains_key(header::UPGRADE) || request.method() == Method::CONNECT {
            return true;
        }
        self.http_sessions
            && request.method() == Method::POST
            && !headers.contains_key("mcp-session-id")
    }

    /// Admits a request: `Ok(None)` when it opens no session, `Ok(Some(_))` holding a place
    /// for the one it opens until the request is answered, or a refusal (503) when the
    /// listener already holds `max` sessions.
    pub(crate) fn admit(&self, request: &Request) -> Result<Option<Reservation>, Refusal> {
        if !self.opens_session(request) {
            return Ok(None);
        }
        if let Some(reservation) = self.reserve() {
            return Ok(Some(reservation));
        }
        tracing::warn!(
            max = self.max,
            "refused a new session: the session cap is reached"
        );
        crate::observe::metrics::rejected("sessions");
        Err(Refusal::Full { max: self.max })
    }
}

/// Held while the request that opens a session runs: by its end the session counts itself.
pub(crate) struct Reservation(Arc<AtomicUsize>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_until_dropped() {
        let count = Arc::new(SessionCount::default());
        let cap = SessionCap::new(3, vec![count.clone(), Arc::default()], true);
        let a = count.open();
        let b = count.open();
        assert_eq!(cap.open(), 2);
        // One place left: a second concurrent opener is refused while the first is pending.
        let reserved = cap.reserve().expect("a place");
        assert!(cap.reserve().is_none());
        drop(reserved);
        drop(a);
        assert_eq!(cap.open(), 1);
        let _c = cap.reserve().expect("a place");
        let _d = cap.reserve().expect("another");
        assert!(cap.reserve().is_none());
        drop(b);
        assert_eq!(count.get(), 0);
    }
}
