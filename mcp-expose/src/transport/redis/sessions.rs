//! rmcp's session store in Redis: [`RedisSessions`] keeps a session's `initialize`, so that a
//! replica that never saw the session restores it.

use std::time::Duration;

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::store::{Failure, Redis};

/// How long a session is kept in Redis after it was created or last restored.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

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
