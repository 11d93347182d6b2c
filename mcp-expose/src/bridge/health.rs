//! The bridge's health: the counters `/health`, `/ready` and `/metrics` report, the crash
//! window that decides between a restart (with backoff) and giving up, and the mark of a child
//! that is down.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::backoff::Backoff;

/// Counters the health endpoint reports: whether the bridge can serve new sessions. One
/// session's crash-looping child fails that session, not the bridge; a shared child that
/// crash-loops, or a program that cannot be started, fails the bridge.
#[derive(Debug, Default)]
pub(crate) struct BridgeHealth {
    pub(crate) sessions: AtomicUsize,
    /// Children that are dead and not yet restarted.
    pub(crate) down: AtomicUsize,
    /// Of those, per-session children: they do not keep the bridge from serving new sessions.
    pub(crate) sessions_down: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    /// Why no new session can be served: the last child start failed, or the shared child
    /// crash-loops.
    pub(crate) failure: Mutex<Option<String>>,
}

impl BridgeHealth {
    pub(crate) fn healthy(&self) -> bool {
        // `sessions_down` rises before `down` and falls after it.
        let down = self.down.load(Ordering::Acquire);
        down <= self.sessions_down.load(Ordering::Acquire)
            && self.failure.lock().map(|f| f.is_none()).unwrap_or(false)
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
    }
}

const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// Restart delays by the exits within the window: 100 ms, 200 ms, 400 ms, ...
const RESTART: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
const MAX_CRASHES: usize = 5;

/// Exits within the last minute: the restart delay, or the verdict that the child crash-loops.
#[derive(Debug, Default)]
pub(crate) struct Crashes(VecDeque<Instant>);

impl Crashes {
    /// Records an exit; `None` means: stop restarting.
    pub(crate) fn record(&mut self) -> Option<Duration> {
        let now = Instant::now();
        self.0.push_back(now);
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.0.pop_front();
        }
        if self.0.len() >= MAX_CRASHES {
            return None;
        }
        let restarts = u32::try_from(self.0.len() - 1).unwrap_or(u32::MAX);
        Some(RESTART.delay(restarts))
    }

    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}

/// Marks a child down in the health counters while it lives.
#[derive(Debug)]
pub(crate) struct Down {
    health: Arc<BridgeHealth>,
    session: bool,
}

impl Down {
    /// The shared child is down: no session is served meanwhile.
    pub(crate) fn new(health: &Arc<BridgeHealth>) -> Self {
        health.down.fetch_add(1, Ordering::AcqRel);
        Self {
            health: health.clone(),
            session: false,
        }
    }

    /// One session's child is down: counted, but other sessions are served.
    pub(crate) fn session(health: &Arc<BridgeHealth>) -> Self {
        health.sessions_down.fetch_add(1, Ordering::AcqRel);
        health.down.fetch_add(1, Ordering::AcqRel);
        Self {
            health: health.clone(),
            session: true,
        }
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        self.health.down.fetch_sub(1, Ordering::AcqRel);
        if self.session {
            self.health.sessions_down.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
