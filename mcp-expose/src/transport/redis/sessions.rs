//! rmcp's session store in Redis: [`RedisSessions`] keeps a session's `initialize`, so that a
//! replica that never saw the session restores it. A session in use stays: each replica that
//! serves it renews its expiry once every [`RENEW_EVERY`] (see [`Renewals`]).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::store::{Failure, Redis};

/// How long a session is kept in Redis after it was last used.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a replica renews the expiry of a session it serves.
const RENEW_EVERY: Duration = Duration::from_secs(3600);

/// `duration` in milliseconds, as Redis's `PX` and `PEXPIRE` take it.
pub(super) fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Sessions' `initialize` in Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisSessions(pub(crate) Redis);

impl RedisSessions {
    fn key(&self, id: &str) -> String {
        self.0.key(&format!("session:{id}"))
    }

    /// Renews `session`'s expiry in Redis, in the background: a session used within
    /// [`SESSION_TTL`] never expires.
    pub(super) fn renew(&self, session: &str) {
        let mut renew = redis::cmd("PEXPIRE");
        renew.arg(self.key(session)).arg(ms(SESSION_TTL));
        let redis = self.0.clone();
        tokio::spawn(async move {
            if let Err(failure) = redis.query::<i64>(&renew).await {
                tracing::debug!("a session's expiry was not renewed: {failure}");
            }
        });
    }
}

/// When this replica last renewed each session it served, so that it renews each once every
/// [`RENEW_EVERY`] at most. Sessions not seen for [`SESSION_TTL`] are forgotten.
#[derive(Debug, Default)]
pub(crate) struct Renewals(Mutex<HashMap<String, Instant>>);

impl Renewals {
    /// Whether `session`, used `now`, is due a renewal (and if so, notes it as renewed).
    pub(super) fn due(&self, session: &str, now: Instant) -> bool {
        let mut renewed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if renewed
            .get(session)
            .is_some_and(|at| now.saturating_duration_since(*at) < RENEW_EVERY)
        {
            return false;
        }
        // Forget sessions gone quiet, now and then: nothing grows without bound.
        if renewed.len() >= 1024 && renewed.len().is_power_of_two() {
            renewed.retain(|_, at| now.saturating_duration_since(*at) < SESSION_TTL);
        }
        renewed.insert(session.to_owned(), now);
        true
    }

    /// Forgets `session` (ended).
    pub(super) fn forget(&self, session: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let mut get = redis::cmd("GETEX");
        get.arg(self.key(session_id)).arg("PX").arg(ms(SESSION_TTL));
        let Some(text) = self.0.query::<Option<String>>(&get).await? else {
            return Ok(None);
        };
        let state = serde_json::from_str(&text).map_err(|e| {
            Failure(format!(
                "session {session_id} in Redis is not a session: {e}"
            ))
        })?;
        Ok(Some(state))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let text = serde_json::to_string(state)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(session_id))
            .arg(text)
            .arg("PX")
            .arg(ms(SESSION_TTL));
        Ok(self.0.query::<()>(&set).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(session_id));
        self.0.query::<i64>(&del).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_renewed_once_an_hour_at_most() {
        let renewals = Renewals::default();
        let start = Instant::now();
        assert!(renewals.due("a", start), "first use");
        assert!(!renewals.due("a", start + Duration::from_secs(60)));
        assert!(
            renewals.due("b", start + Duration::from_secs(60)),
            "another session"
        );
        assert!(!renewals.due("a", start + RENEW_EVERY - Duration::from_secs(1)));
        assert!(renewals.due("a", start + RENEW_EVERY), "an hour on");
        renewals.forget("a");
        assert!(
            renewals.due("a", start + RENEW_EVERY),
            "ended, then seen again"
        );
    }
}
