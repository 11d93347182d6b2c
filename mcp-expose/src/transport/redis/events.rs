//! rmcp's event store in Redis: [`RedisEvents`] keeps every event of a session's streams in a
//! Redis stream, so that `Last-Event-ID` resumes on any replica, and a session's `GET` stream
//! carries what other replicas send it.
//!
//! A request's stream (one per POST, named by a fresh UUID) is written by the one replica
//! that runs the request: its events get ids from this replica's own clock and go to Redis in
//! batches, behind the response rather than before it. A session's standalone stream
//! (`{session}:common`) may be written by any replica: its events get Redis's ids, one round
//! trip each.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::body::Bytes;
use futures::StreamExt as _;
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::session::store::{
            EventId, EventStore, EventStoreError, EventStream,
        },
    },
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    sessions::ms,
    writer::{self, QUEUE, Write, answer_entry, answer_key, events_key},
};
use crate::store::{Failure, Redis};

/// How long a stream's events are kept after its last event.
pub(crate) const EVENTS_TTL: Duration = Duration::from_secs(3600);
/// How many of a stream's last events are kept (about: Redis trims whole nodes).
pub(crate) const EVENTS_KEPT: usize = 1000;
/// How often a replica says it runs (its word lasts three times as long).
const BEAT: Duration = Duration::from_secs(1);
/// How long a request's stream, resumed, is followed at most (the client resumes again).
const FOLLOW: Duration = Duration::from_secs(300);
/// How long one read of a followed stream waits for its next event.
const FOLLOW_BLOCK: Duration = Duration::from_secs(1);
/// Sessions' event streams in Redis (ids as [`EventRef`] describes them); an entry of a
/// session's standalone stream names the replica that stored it (`o`), so that its tail skips
/// its own.
#[derive(Debug, Clone)]
pub(crate) struct RedisEvents {
    pub(super) redis: Redis,
    /// This replica, in the entries it stores.
    origin: Arc<str>,
    /// The events of requests' streams, on their way to Redis.
    writes: mpsc::Sender<Write>,
    /// The last id given to an event of a request's stream: (milliseconds, sequence).
    last: Arc<Mutex<(u64, u64)>>,
}

impl RedisEvents {
    /// The event store, its writer (a task that lasts while the store does) and this
    /// replica's heartbeat in Redis (until `stop`).
    pub(crate) fn new(redis: Redis, stop: CancellationToken) -> Self {
        let origin = Arc::clone(redis.origin());
        let (writes, queue) = mpsc::channel(QUEUE);
        tokio::spawn(writer::write(redis.clone(), queue));
        let events = Self {
            redis,
            origin,
            writes,
            last: Arc::default(),
        };
        events.beat(stop);
        events
    }

    /// Says in Redis, every [`BEAT`], that this replica runs: a request's stream resumed on
    /// another replica is followed while the replica that runs the request does.
    fn beat(&self, stop: CancellationToken) {
        let mut set = redis::cmd("SET");
        set.arg(self.alive_key(&self.origin))
            .arg(1)
            .arg("PX")
            .arg(ms(BEAT * 3));
        let redis = self.redis.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(BEAT);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                }
                let _ = redis.query::<()>(&set).await;
            }
        });
    }

    fn alive_key(&self, origin: &str) -> String {
        self.redis.key(&format!("replica:{origin}"))
    }

    /// A new entry id, after every one this replica gave before: `{ms}-{sequence}`.
    fn next_entry(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = if now > last.0 {
            (now, 0)
        } else {
            (last.0, last.1 + 1)
        };
        format!("{}-{}", last.0, last.1)
    }

    fn key(&self, stream: &str) -> String {
        events_key(&self.redis, stream)
    }

    /// The notifications other replicas send on `session`'s standalone stream (its `GET`),
    /// from now on (every one sent once this returns), as SSE events, while the receiver is
    /// kept.
    pub(super) async fn others_common(
        &self,
        session: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Bytes>, Failure> {
        let stream = format!("{session}:common");
        let mut latest = redis::cmd("XREVRANGE");
        latest
            .arg(self.key(&stream))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let after = self
            .redis
            .query::<Entries>(&latest)
            .await?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let events = self.clone();
        tokio::spawn(async move {
            if let Err(failure) = events.tail(&stream, after, &tx).await {
                tracing::warn!(
                    "a GET stream misses the notifications of other replicas: {failure}"
                );
            }
        });
        Ok(rx)
    }

    /// Sends `stream`'s entries after `after` that other replicas wrote to `tx`, as they
    /// come, while `tx` is open.
    async fn tail(
        &self,
        stream: &str,
        mut after: String,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<(), Failure> {
        const BLOCK: Duration = Duration::from_secs(5);
        let key = self.key(stream);
        let mut connection = self.redis.dedicated(BLOCK).await?;
        while !tx.is_closed() {
            for (entry, fields) in self.read(&mut connection, &key, &after, BLOCK).await? {
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
        Ok(())
    }

    /// The entries of the Redis stream `key` after `after`, waiting up to `block` for one, on
    /// a connection of its own (`XREAD BLOCK` holds it).
    async fn read(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
        key: &str,
        after: &str,
        block: Duration,
    ) -> Result<Entries, Failure> {
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(ms(block))
            .arg("STREAMS")
            .arg(key)
            .arg(after);
        type Reply = Option<Vec<(String, Entries)>>;
        let reply = self
            .redis
            .bounded_by(block + COMMAND_GRACE, read.query_async::<Reply>(connection))
            .await?;
        Ok(reply.into_iter().flatten().flat_map(|(_, e)| e).collect())
    }

    /// A request's or a session's stream's entries after `after`, its lone answer included.
    async fn entries_after(&self, stream: &str, after: &str) -> Result<Entries, Failure> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(answer_key(&self.redis, stream))
            .cmd("XRANGE")
            .arg(self.key(stream))
            .arg(format!("({after}"))
            .arg("+");
        let mut connection = self.redis.connection();
        let (answer, mut entries): (Option<String>, Entries) = self
            .redis
            .bounded(pipe.query_async(&mut connection))
            .await?;
        if let Some(entry) = answer
            .as_deref()
            .and_then(answer_entry)
            .filter(|(e, _)| later(e, after))
        {
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The events of a request's stream after `after`, as they come, until its answer; or
    /// until the replica that runs the request stops running (its events are all in by
    /// then), or after [`FOLLOW`] (the client resumes again).
    fn follow(&self, stream: &str, origin: &str, after: &str) -> EventStream {
        let state = Following {
            key: self.key(stream),
            events: self.clone(),
            stream: stream.to_owned(),
            origin: origin.to_owned(),
            after: after.to_owned(),
            until: tokio::time::Instant::now() + FOLLOW,
            connection: None,
            done: false,
        };
        // Followed by a task of its own (the stream rmcp takes must be `Sync`), which ends
        // with the stream or when the client goes.
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(state.run(tx));
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        }))
    }
}

/// How much longer than its own block a blocking Redis command may take.
const COMMAND_GRACE: Duration = Duration::from_secs(2);

/// An event id taken apart: `{entry}@{stream}` for a session's standalone stream,
/// `{entry}@{stream}@{replica}` for a request's stream (`replica` runs the request).
#[derive(Debug, PartialEq, Eq)]
struct EventRef<'a> {
    entry: &'a str,
    stream: &'a str,
    origin: Option<&'a str>,
}

impl<'a> EventRef<'a> {
    fn parse(id: &'a str) -> Option<Self> {
        let mut parts = id.split('@');
        let entry = parts.next()?;
        let stream = parts.next()?;
        let origin = parts.next();
        let valid = !entry.is_empty()
            && entry.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && !stream.is_empty()
            && origin.is_none_or(|o| !o.is_empty())
            && parts.next().is_none();
        valid.then_some(Self {
            entry,
            stream,
            origin,
        })
    }

    /// The id of `entry` of the same stream.
    fn with_entry(&self, entry: &str) -> String {
        match self.origin {
            Some(origin) => format!("{entry}@{}@{origin}", self.stream),
            None => format!("{entry}@{}", self.stream),
        }
    }
}

/// Stream entries as `(entry id, fields)`, the way Redis answers `XRANGE` and `XREAD`.
type Entries = Vec<(String, Vec<(String, String)>)>;

/// `entries` of the stream `at` names, as SSE events with their ids.
fn to_events(
    at: &EventRef<'_>,
    entries: Entries,
) -> Result<Vec<ServerSseMessage>, EventStoreError> {
    let mut events = Vec::with_capacity(entries.len());
    for (entry, fields) in entries {
        let id = at.with_entry(&entry);
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
    Ok(events)
}

/// Whether `event` ends its request's stream (the answer to the request).
fn is_final(event: &ServerSseMessage) -> bool {
    use rmcp::model::JsonRpcMessage;
    event
        .message
        .as_deref()
        .is_some_and(|m| matches!(m, JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_)))
}

/// A request's stream, resumed: followed in Redis, from the replica that resumed it.
struct Following {
    events: RedisEvents,
    key: String,
    stream: String,
    origin: String,
    after: String,
    until: tokio::time::Instant,
    connection: Option<redis::aio::MultiplexedConnection>,
    done: bool,
}

impl Following {
    /// The stream's next entries (waiting up to [`FOLLOW_BLOCK`] for one), and whether the
    /// replica that runs the request still runs. When it does not, the entries are the last
    /// ones.
    async fn read(&mut self) -> Result<(Entries, bool), Failure> {
        let redis = self.events.redis.clone();
        // A lone answer is not in the Redis stream, which XREAD waits on.
        let mut answer = redis::cmd("GET");
        answer.arg(answer_key(&redis, &self.stream));
        if let Some(text) = redis.query::<Option<String>>(&answer).await?
            && let Some(entry) = answer_entry(&text).filter(|(e, _)| later(e, &self.after))
        {
            return Ok((vec![entry], true));
        }
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(redis.dedicated(FOLLOW_BLOCK).await?),
        };
        let entries = self
            .events
            .read(connection, &self.key, &self.after, FOLLOW_BLOCK)
            .await?;
        if !entries.is_empty() {
            return Ok((entries, true));
        }
        let mut alive = redis::cmd("EXISTS");
        alive.arg(self.events.alive_key(&self.origin));
        if redis.query::<i64>(&alive).await? > 0 {
            return Ok((entries, true));
        }
        // Gone: whatever it wrote before it went is all there is.
        let last = self.events.entries_after(&self.stream, &self.after).await?;
        Ok((last, false))
    }

    /// Sends the stream's events to `tx` until it ends (see [`RedisEvents::follow`]).
    async fn run(mut self, tx: mpsc::Sender<ServerSseMessage>) {
        while !self.done && tokio::time::Instant::now() < self.until && !tx.is_closed() {
            let (entries, alive) = match self.read().await {
                Ok(read) => read,
                Err(failure) => {
                    tracing::debug!("a resumed stream ends early: {failure}");
                    return;
                }
            };
            let at = EventRef {
                entry: "",
                stream: &self.stream,
                origin: Some(&self.origin),
            };
            let events = match to_events(&at, entries) {
                Ok(events) => events,
                Err(error) => {
                    tracing::debug!("a resumed stream ends early: {error}");
                    return;
                }
            };
            self.done = !alive || events.iter().any(is_final);
            if let Some(last) = events.last().and_then(|e| e.event_id.as_deref())
                && let Some(at) = EventRef::parse(last)
            {
                self.after = at.entry.to_owned();
            }
            for event in events {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether the entry id `entry` (`ms-seq`) comes after `after`.
fn later(entry: &str, after: &str) -> bool {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    parse(entry) > parse(after)
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
        let common = stream_id.ends_with(":common");
        let Some(message) = &event.message else {
            return Ok(if common {
                format!("0-0@{stream_id}")
            } else {
                format!("0-0@{stream_id}@{}", self.origin)
            });
        };
        if !common {
            // A request's stream: only this replica writes it, in order.
            let entry = self.next_entry();
            let id = format!("{entry}@{stream_id}@{}", self.origin);
            let write = Write {
                stream: stream_id.to_owned(),
                entry,
                message: serde_json::to_string(message.as_ref())?,
                retry: event.retry.map(ms),
                last: is_final(event),
            };
            self.writes
                .send(write)
                .await
                .map_err(|_| Failure("the writer of events to Redis has stopped".to_owned()))?;
            return Ok(id);
        }
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
        let Some(at) = EventRef::parse(last_event_id) else {
            return Err(Box::new(Failure(format!(
                "Last-Event-ID `{last_event_id}` is not an event of this server"
            ))));
        };
        let entries = self.entries_after(at.stream, at.entry).await?;
        let events = to_events(&at, entries)?;
        let replayed = futures::stream::iter(events.clone());
        // A request's stream not answered yet: followed until it is.
        let Some(origin) = at.origin.filter(|_| !events.iter().any(is_final)) else {
            return Ok(Box::pin(replayed));
        };
        let after = events
            .last()
            .and_then(|e| e.event_id.as_deref())
            .and_then(EventRef::parse)
            .map_or(at.entry, |last| last.entry)
            .to_owned();
        Ok(Box::pin(
            replayed.chain(self.follow(at.stream, origin, &after)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_ordered_by_time_then_sequence() {
        assert!(later("1700000000001-0", "1700000000000-9"));
        assert!(later("1700000000000-10", "1700000000000-9"));
        assert!(!later("1700000000000-9", "1700000000000-9"));
        assert!(later("1-0", "0-0"));
    }

    #[test]
    fn event_ids_name_their_stream_and_replica() {
        let parse = |id| EventRef::parse(id).map(|at| (at.entry, at.stream, at.origin));
        assert_eq!(
            parse("1700000000000-0@3f2a:common"),
            Some(("1700000000000-0", "3f2a:common", None))
        );
        assert_eq!(parse("0-0@s@42"), Some(("0-0", "s", Some("42"))));
        assert_eq!(parse("12"), None);
        assert_eq!(parse("x@s"), None);
        assert_eq!(parse("1-0@"), None);
        assert_eq!(parse("1-0@s@"), None);
        assert_eq!(parse("1-0@s@1@2"), None);
    }
}
