//! [`RedisTaskStore`]: tasks in Redis, shared by replicas (feature `redis`, `--state
//! redis://..`).
//!
//! A task is one key, `{prefix}task:{id}`, holding its [`TaskRecord`] as JSON and expiring
//! with it. A change is read, applied and written back only if the key still holds what was
//! read (a compare-and-set script), retried on a concurrent write. A replica that changes a
//! task another runs (an answer, a cancel) publishes its id on `{prefix}task-changes`; every
//! replica listens there and wakes the tool if it runs it. Every Redis call is bounded; an
//! unreachable Redis is an error saying so, and the connection comes back by itself.

use redis::{AsyncCommands as _, Script};
use tokio::sync::mpsc;

use super::{StoreError, StoreFuture, TaskChange, TaskRecord, TaskStore};
use crate::store::{Failure, Redis};

/// How often a contended change is retried.
const ATTEMPTS: usize = 32;
/// Where a replica that changes a task another runs says so.
const CHANNEL: &str = "task-changes";

/// Writes `ARGV[2]` (expiring at `ARGV[3]` ms) if the key still holds `ARGV[1]`.
const COMPARE_AND_SET: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
  return 1
end
return 0
";

/// Tasks in Redis, for replicas that share them.
#[derive(Debug)]
pub struct RedisTaskStore {
    redis: Redis,
    cas: Script,
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        StoreError::new(failure.0)
    }
}

impl RedisTaskStore {
    /// A store in the Redis at `url` (`redis://HOST:PORT/DB`), its keys under `prefix`
    /// (e.g. `mcp-expose:`). Connects on first use, and again after a failure.
    ///
    /// # Errors
    ///
    /// When `url` is not a Redis URL.
    pub fn new(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Ok(Self::on(Redis::new(url, prefix)?))
    }

    /// A store in `redis`, shared with the server's other uses of it.
    pub(crate) fn on(redis: Redis) -> Self {
        Self {
            redis,
            cas: Script::new(COMPARE_AND_SET),
        }
    }

    fn key(&self, id: &str) -> String {
        self.redis.key(&format!("task:{id}"))
    }

    async fn read(&self, key: &str) -> Result<Option<(String, TaskRecord)>, StoreError> {
        let mut connection = self.redis.connection();
        let text: Option<String> = self.redis.bounded(connection.get(key)).await?;
        let Some(text) = text else {
            return Ok(None);
        };
        let record = serde_json::from_str(&text)
            .map_err(|e| StoreError::new(format!("task {key} in Redis is not a task: {e}")))?;
        Ok(Some((text, record)))
    }
}

fn encode(record: &TaskRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::new(format!("cannot encode a task: {e}")))
}

impl TaskStore for RedisTaskStore {
    fn create(&self, record: TaskRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let key = self.key(&record.task.task.task_id);
            let text = encode(&record)?;
            let mut connection = self.redis.connection();
            let options = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PXAT(record.expires_at_ms));
            let set: Option<String> = self
                .redis
                .bounded(connection.set_options(&key, text, options))
                .await?;
            match set {
                Some(_) => Ok(()),
                None => Err(StoreError::new(format!("task {key} exists already"))),
            }
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        Box::pin(async move { Ok(self.read(&self.key(id)).await?.map(|(_, record)| record)) })
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        change: TaskChange<'a>,
    ) -> StoreFuture<'a, Option<TaskRecord>> {
        Box::pin(async move {
            let key = self.key(id);
            for _ in 0..ATTEMPTS {
                let Some((old, mut record)) = self.read(&key).await? else {
                    return Ok(None);
                };
                change(&mut record);
                let new = encode(&record)?;
                let mut connection = self.redis.connection();
                let mut invocation = self.cas.key(&key);
                invocation.arg(&old).arg(&new).arg(record.expires_at_ms);
                let written: i64 = self
                    .redis
                    .bounded(invocation.invoke_async(&mut connection))
                    .await?;
                if written == 1 {
                    return Ok(Some(record));
                }
            }
            Err(StoreError::new(format!(
                "task {id} changed {ATTEMPTS} times while it was being updated; try again"
            )))
        })
    }

    fn notify<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.redis.connection();
            let channel = self.redis.key(CHANNEL);
            let _: i64 = self.redis.bounded(connection.publish(channel, id)).await?;
            Ok(())
        })
    }

    fn changes(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        let mut payloads = self.redis.subscribe(CHANNEL, "task changes");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(payload) = payloads.recv().await {
                let Ok(id) = String::from_utf8(payload) else {
                    continue;
                };
                if tx.send(id).is_err() {
                    return;
                }
            }
        });
        Some(rx)
    }
}
