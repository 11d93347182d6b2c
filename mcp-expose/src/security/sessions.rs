//! The session cap: how many sessions (HTTP sessions and WebSocket connections, each perhaps
//! with a child process behind it) a listener holds at once. A request that would open one more
//! gets `503` with `Retry-After` and a JSON body; existing sessions are untouched.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};

use crate::transport::policy::json_error;

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
}

impl SessionCap {
    fn open(&self) -> usize {
        self.counts.iter().map(|c| c.get()).sum()
    }
}

/// A request that opens a session: a WebSocket upgrade, or a streamable HTTP POST without
/// `Mcp-Session-Id` (an `initialize`).
fn opens_session(request: &Request) -> bool {
    let headers = request.headers();
    if headers.contains_key(header::UPGRADE) {
        return true;
    }
    request.method() == Method::POST && !headers.contains_key("mcp-session-id")
}

/// Middleware: 503 with `Retry-After` when the listener already holds `max` sessions.
pub(crate) async fn admit(State(cap): State<SessionCap>, request: Request, next: Next) -> Response {
    if opens_session(&request) && cap.open() >= cap.max {
        tracing::warn!(
            max = cap.max,
            "refused a new session: the session cap is reached"
        );
        crate::observe::metrics::rejected("sessions");
        let mut response = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "Service Unavailable: this server holds its maximum of {} sessions (see --max-sessions); retry later",
                cap.max
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_until_dropped() {
        let count = Arc::new(SessionCount::default());
        let cap = SessionCap {
            max: 2,
            counts: vec![count.clone(), Arc::new(SessionCount::default())].into(),
        };
        let a = count.open();
        let b = count.open();
        assert_eq!(cap.open(), 2);
        drop(a);
        assert_eq!(cap.open(), 1);
        drop(b);
        assert_eq!(count.get(), 0);
    }
}
