//! rmcp's session and event stores in Redis: [`RedisSessions`] (a session's `initialize`, so
//! that a replica that never saw the session restores it) and [`RedisEvents`] (every event of
//! a session's streams, so that `Last-Event-ID` resumes on any replica, and a session's `GET`
//! stream carries what other replicas send it).

use std::{sync::Arc, time::Duration};

use axum::body::Bytes;
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::session::store::{
            EventId, EventStore, EventStoreError, EventStream, SessionState, SessionStore,
            SessionStoreError,
        },
    },
};

use crate::store::{Failure, Redis};

/// How long a session is kept in Redis after it was created or last restored.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a stream's events are kept after its last event.
pub(crate) const EVENTS_TTL: Duration = Duration::from_secs(3600);
/// How many of a stream's last events are kept (about: Redis trims whole nodes).
pub(crate) const EVENTS_KEPT: usize = 1000;

fn ms(duration: Duration) -> u64 {
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

/// Sessions' event streams in Redis streams: an event's id is `{redis id}@{stream}`; each
/// entry names the replica that stored it (`o`).
#[derive(Debug, Clone)]
pub(crate) struct RedisEvents {
    pub(super) redis: Redis,
    /// This replica, in the entries it stores.
    origin: Arc<str>,
}

impl RedisEvents {
    pub(crate) fn new(redis: Redis) -> Self {
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        Self {
            redis,
            origin: u64::from_le_bytes(random).to_string().into(),
        }
    }

    fn key(&self, stream: &str) -> String {
        self.redis.key(&format!("events:{stream}"))
    }

    /// The notifications other replicas send on `session`'s standalone stream (its `GET`),
    /// from now on, as SSE events, while the receiver is kept.
    pub(super) fn others_common(&self, session: &str) -> tokio::sync::mpsc::Receiver<Bytes> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let events = self.clone();
        let stream = format!("{session}:common");
        tokio::spawn(async move {
            if let Err(failure) = events.tail(&stream, &tx).await {
                tracing::warn!(
                    "a GET stream misses the notifications of other replicas: {failure}"
                );
            }
        });
        rx
    }

    async fn tail(
        &self,
        stream: &str,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<(), Failure> {
        const BLOCK: Duration = Duration::from_secs(5);
        let key = self.key(stream);
        let mut latest = redis::cmd("XREVRANGE");
        latest.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
        let mut after = self
            .redis
            .query::<Vec<(String, Vec<(String, String)>)>>(&latest)
            .await?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
        let mut connection = self.redis.dedicated(BLOCK).await?;
        while !tx.is_closed() {
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(5000))
                .arg("STREAMS")
                .arg(&key)
                .arg(&after);
            type Reply = Option<Vec<(String, Vec<(String, Vec<(String, String)>)>)>>;
            let call = read.query_async::<Reply>(&mut connection);
            let reply = self.redis.bounded_by(BLOCK + COMMAND_GRACE, call).await?;
            for (_, entries) in reply.unwrap_or_default() {
                for (entry, fields) in entries {
                    after.clone_from(&entry);
                    let mut message = None;
                    let mut ours = false;
                    for (name, value) in fields {
                        match name.as_str() {
                            "m" if !value.is_empty() => message = Some(value),
                            "o" => ours = *value == *self.origin,
                            _ => {}
                        }
                    }
                    let Some(message) = message.filter(|_| !ours) else {
                        continue;
                    };
                    let event = format!("data: {message}\nid: {entry}@{stream}\n\n");
                    if tx.send(Bytes::from(event)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// How much longer than its own block a blocking Redis command may take.
const COMMAND_GRACE: Duration = Duration::from_secs(2);

/// Splits an event id into the Redis stream entry's id and the stream's.
fn split_event_id(id: &str) -> Option<(&str, &str)> {
    let (entry, stream) = id.split_once('@')?;
    let valid = !entry.is_empty()
        && entry.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && !stream.is_empty();
    valid.then_some((entry, stream))
}

#[async_trait::async_trait]
impl EventStore for RedisEvents {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
        // A priming event (a `retry` hint, no message) is not kept: its id names the start of
        // the stream, so that resuming from it replays every event. One round trip less per
        // call.
        let Some(message) = &event.message else {
            return Ok(format!("0-0@{stream_id}"));
        };
        let key = self.key(stream_id);
        let mut add = redis::cmd("XADD");
        add.arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_KEPT)
            .arg("*")
            .arg("m")
            .arg(serde_json::to_string(message.as_ref())?);
        if let Some(retry) = event.retry {
            add.arg("r").arg(ms(retry));
        }
        add.arg("o").arg(&*self.origin);
        // One round trip, not a transaction: an entry whose expiry did not take still goes
        // when the stream's next event sets it, or with MAXLEN.
        let mut pipe = redis::pipe();
        pipe.add_command(add)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ms(EVENTS_TTL))
            .ignore();
        let mut connection = self.redis.connection();
        let (entry,): (String,) = self
            .redis
            .bounded(pipe.query_async(&mut connection))
            .await?;
        Ok(format!("{entry}@{stream_id}"))
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let Some((entry, stream)) = split_event_id(last_event_id) else {
            return Err(Box::new(Failure(format!(
                "Last-Event-ID `{last_event_id}` is not an event of this server"
            ))));
        };
        let mut range = redis::cmd("XRANGE");
        range
            .arg(self.key(stream))
            .arg(format!("({entry}"))
            .arg("+");
        let entries = self
            .redis
            .query::<Vec<(String, Vec<(String, String)>)>>(&range)
            .await?;
        let mut events = Vec::with_capacity(entries.len());
        for (entry, fields) in entries {
            let id = format!("{entry}@{stream}");
            let mut message = None;
            let mut retry = None;
            for (name, value) in fields {
                match name.as_str() {
                    "m" if !value.is_empty() => {
                        message = Some(serde_json::from_str::<ServerJsonRpcMessage>(&value)?);
                    }
                    "r" => retry = value.parse::<u64>().ok().map(Duration::from_millis),
                    _ => {}
                }
            }
            let mut event = match (message, retry) {
                (Some(message), _) => ServerSseMessage::new(id.clone(), message),
                (None, Some(retry)) => ServerSseMessage::priming(id.clone(), retry),
                (None, None) => continue,
            };
            event.event_id = Some(id);
            events.push(event);
        }
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_name_their_stream() {
        assert_eq!(
            split_event_id("1700000000000-0@3f2a:common"),
            Some(("1700000000000-0", "3f2a:common"))
        );
        assert_eq!(split_event_id("0-0@s"), Some(("0-0", "s")));
        assert_eq!(split_event_id("12"), None);
        assert_eq!(split_event_id("x@s"), None);
        assert_eq!(split_event_id("1-0@"), None);
    }
}
