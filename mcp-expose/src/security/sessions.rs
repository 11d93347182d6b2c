//! The session cap: how many sessions (HTTP sessions, WebSocket connections and legacy SSE
//! streams, each perhaps with a child process behind it) a listener holds at once. A request
//! that would open one more gets `503` with `Retry-After` and a JSON body; existing sessions
//! are untouched.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    extract::Request,
    http::{Method, header},
};

use crate::{
    session::SessionCount,
    web::{Refusal, json_error},
};

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
    /// extended CONNECT), a legacy SSE stream (`GET /sse`, `/NAME/sse`), or a streamable HTTP
    /// POST without `Mcp-Session-Id` (an `initialize`).
    fn opens_session(&self, request: &Request) -> bool {
        let headers = request.headers();
        if headers.contains_key(header::UPGRADE) || request.method() == Method::CONNECT {
            return true;
        }
        if request.method() == Method::GET && request.uri().path().ends_with("/sse") {
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

/// Which verified caller opened each HTTP session: a session is used, and ended, only with the
/// token (or OAuth subject) it was opened with; anyone else is told it does not exist (404),
/// so another caller can neither use nor end it, nor learn that it is there.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owners(Arc<std::sync::Mutex<Owned>>);

#[derive(Debug, Default)]
struct Owned {
    by_session: std::collections::HashMap<String, (Arc<str>, std::time::Instant)>,
    /// The map's size after the last sweep: the next sweep comes at twice it.
    swept_at: usize,
}

/// Sessions left unused this long are forgotten when the map is swept (rmcp and the bridge end
/// idle sessions sooner; a session forgotten while alive is claimed by its next caller).
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl Owners {
    /// Whether `principal` may use `session`; a session not seen before is theirs.
    fn admits(&self, session: &str, principal: &Arc<str>) -> bool {
        let mut owned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match owned.by_session.get_mut(session) {
            Some((owner, seen)) if owner == principal => {
                *seen = std::time::Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    fn record(&self, session: &str, principal: Arc<str>) {
        let mut owned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        owned
            .by_session
            .insert(session.to_owned(), (principal, std::time::Instant::now()));
        if owned.by_session.len() >= owned.swept_at.max(1024) * 2 {
            owned
                .by_session
                .retain(|_, (_, seen)| seen.elapsed() < FORGET_AFTER);
            owned.swept_at = owned.by_session.len();
        }
    }

    fn forget(&self, session: &str) {
        let mut owned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        owned.by_session.remove(session);
    }
}

/// Middleware (inside the token check): refuses a session to a caller other than its opener.
pub(crate) async fn owned(
    axum::extract::State(owners): axum::extract::State<Owners>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(principal) = request
        .extensions()
        .get::<crate::security::principal::Authenticated>()
        .map(|a| a.0.clone())
    else {
        return next.run(request).await;
    };
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session
        && !owners.admits(session, &principal)
    {
        tracing::debug!("refused a session to a caller other than the one that opened it");
        return json_error(
            axum::http::StatusCode::NOT_FOUND,
            "Not Found: session not found",
        );
    }
    let delete = request.method() == Method::DELETE;
    let response = next.run(request).await;
    match (&session, response.headers().get("mcp-session-id")) {
        (None, Some(opened)) => {
            if let Ok(opened) = opened.to_str() {
                owners.record(opened, principal);
            }
        }
        (Some(session), _)
            if (delete && response.status().is_success())
                || response.status() == axum::http::StatusCode::NOT_FOUND =>
        {
            owners.forget(session);
        }
        _ => {}
    }
    response
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
