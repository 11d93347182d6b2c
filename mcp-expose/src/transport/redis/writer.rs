//! The writer of requests' events to Redis: in batches, behind the answers (nobody waits for
//! it), in order. A stream's lone event, its answer (most calls send nothing else), is kept as
//! one string with its expiry (`SET .. PX`, one command); a stream with more events is a
//! Redis stream (`XADD` and `PEXPIRE`).

use std::{collections::HashMap, time::Duration};

use tokio::sync::mpsc;

use super::{
    events::{EVENTS_KEPT, EVENTS_TTL},
    sessions::ms,
};
use crate::store::Redis;

/// How many events wait for the writer at most; more wait for room.
pub(super) const QUEUE: usize = 4096;
/// How many events the writer sends to Redis in one round trip at most.
const BATCH: usize = 256;
/// How long the writer lets events gather before a round trip: fewer, fuller round trips
/// cost Redis and this process less, and nobody waits for them.
const GATHER: Duration = Duration::from_millis(2);

/// An event of a request's stream, on its way to Redis.
pub(super) struct Write {
    pub(super) stream: String,
    pub(super) entry: String,
    pub(super) message: String,
    pub(super) retry: Option<u64>,
    /// The stream's answer: nothing comes after it.
    pub(super) last: bool,
}

/// The Redis stream of a request stream's events.
pub(super) fn events_key(redis: &Redis, stream: &str) -> String {
    redis.key(&format!("events:{stream}"))
}

/// The string that holds a request stream's answer when it is the stream's only event:
/// `{entry}\n{message}`.
pub(super) fn answer_key(redis: &Redis, stream: &str) -> String {
    redis.key(&format!("answer:{stream}"))
}

/// An answer string as a stream entry: `(entry id, [("m", message)])`.
pub(super) fn answer_entry(text: &str) -> Option<(String, Vec<(String, String)>)> {
    let (entry, message) = text.split_once('\n')?;
    Some((entry.to_owned(), vec![("m".to_owned(), message.to_owned())]))
}

/// Writes the events of requests' streams to Redis in order, as many per round trip as have
/// queued up, until every sender is gone. A batch Redis refuses is lost to resumption (the
/// client has had its events already), with a warning while Redis stays away.
pub(super) async fn write(redis: Redis, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut connection = redis.connection();
    let mut failing = false;
    // Streams with events in Redis and no answer yet (when each began), so that their answer
    // joins them. Forgotten after EVENTS_TTL (a call cancelled sends no answer).
    let mut open: HashMap<String, tokio::time::Instant> = HashMap::new();
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            tokio::time::sleep(GATHER).await;
            while batch.len() < BATCH
                && let Ok(write) = queue.try_recv()
            {
                batch.push(write);
            }
        }
        let mut pipe = redis::pipe();
        for write in batch.drain(..) {
            let alone = write.last && write.retry.is_none() && !open.contains_key(&write.stream);
            if alone {
                pipe.cmd("SET")
                    .arg(answer_key(&redis, &write.stream))
                    .arg(format!("{}\n{}", write.entry, write.message))
                    .arg("PX")
                    .arg(ms(EVENTS_TTL))
                    .ignore();
                continue;
            }
            let key = events_key(&redis, &write.stream);
            let add = pipe
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(EVENTS_KEPT)
                .arg(&write.entry)
                .arg("m")
                .arg(&write.message);
            if let Some(retry) = write.retry {
                add.arg("r").arg(retry);
            }
            add.ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(ms(EVENTS_TTL)).ignore();
            if write.last {
                open.remove(&write.stream);
            } else if !open.contains_key(&write.stream) {
                if open.len() >= 4096 && open.len().is_power_of_two() {
                    open.retain(|_, began| began.elapsed() < EVENTS_TTL);
                }
                open.insert(write.stream, tokio::time::Instant::now());
            }
        }
        match redis.bounded(pipe.query_async::<()>(&mut connection)).await {
            Ok(()) => failing = false,
            Err(failure) if !failing => {
                failing = true;
                tracing::warn!("events could not be kept for resumption: {failure}");
            }
            Err(failure) => tracing::debug!("events could not be kept: {failure}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_string_reads_as_an_entry() {
        let entry = answer_entry("1700000000000-3\n{\"jsonrpc\":\"2.0\"}").expect("an entry");
        assert_eq!(entry.0, "1700000000000-3");
        assert_eq!(
            entry.1,
            [("m".to_owned(), "{\"jsonrpc\":\"2.0\"}".to_owned())]
        );
        assert_eq!(answer_entry("no newline"), None);
    }
}
