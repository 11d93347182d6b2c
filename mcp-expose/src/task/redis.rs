//! [`RedisTaskStore`]: tasks in Redis, shared by replicas (feature `redis`, `--state
//! redis://..`).
//!
//! A task is one key, `{prefix}task:{id}`, holding its [`TaskRecord`] as JSON and expiring
//! with it. A change is read, applied and written back only if the key still holds what was
//! read (a compare-and-set script), retried on a concurrent write. A replica that changes a
//! task another runs (an answer, a cancel) publishes its id on `{prefix}task-changes`; every
//! replica listens there and wakes the tool if it runs it. Every Redis call is bounded; an
//! unreachable Redis is an error saying so, and the connection comes back by itself.

use std::time::Duration;

use redis::{AsyncCommands as _, Script, aio::ConnectionManager};
use tokio::sync::mpsc;

use super::{StoreError, StoreFuture, TaskChange, TaskRecord, TaskStore};
use crate::backoff::Backoff;

/// How long one Redis command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a contended change is retried.
const ATTEMPTS: usize = 32;

/// Writes `ARGV[2]` (expiring at `ARGV[3]` ms) if the key still holds `ARGV[1]`.
const COMPARE_AND_SET: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
  return 1
end
return 0
";

/// Tasks in Redis, for replicas that share them.
pub struct RedisTaskStore {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    url: String,
    cas: Script,
}

impl std::fmt::Debug for RedisTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTaskStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
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
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(format!("`{url}` is not a Redis URL: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let connection = client
            .get_connection_manager_lazy(config)
            .map_err(|e| StoreError::new(format!("cannot use the Redis at {url}: {e}")))?;
        Ok(Self {
            client,
            connection,
            prefix: prefix.into(),
            url: url.to_owned(),
            cas: Script::new(COMPARE_AND_SET),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}task:{id}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}task-changes", self.prefix)
    }

    fn failed(&self, error: &redis::RedisError) -> StoreError {
        StoreError::new(format!(
            "the Redis at {} failed ({error}); is it running?",
            self.url
        ))
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(result) => result.map_err(|e| self.failed(&e)),
            Err(_) => Err(StoreError::new(format!(
                "the Redis at {} did not answer within {} s",
                self.url,
                COMMAND_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<(String, TaskRecord)>, StoreError> {
        let mut connection = self.connection.clone();
        let text: Option<String> = self.bounded(connection.get(key)).await?;
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
            let mut connection = self.connection.clone();
            let options = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PXAT(record.expires_at_ms));
            let set: Option<String> = self
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
                let mut connection = self.connection.clone();
                let mut invocation = self.cas.key(&key);
                invocation.arg(&old).arg(&new).arg(record.expires_at_ms);
                let written: i64 = self
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
            let mut connection = self.connection.clone();
            let _: i64 = self.bounded(connection.publish(self.channel(), id)).await?;
            Ok(())
        })
    }

    fn changes(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.client.clone();
        let channel = self.channel();
        let url = self.url.clone();
        tokio::spawn(async move {
            let mut backoff =
                Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).with_jitter();
            while !tx.is_closed() {
                match listen(&client, &channel, &tx).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(
                            "task changes from other replicas: the Redis at {url} failed ({error}); listening again"
                        );
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
        Some(rx)
    }
}

/// Forwards the ids published on `channel` to `tx` until the connection fails (an error) or
/// nobody takes them any more (`Ok`).
async fn listen(
    client: &redis::Client,
    channel: &str,
    tx: &mpsc::UnboundedSender<String>,
) -> redis::RedisResult<()> {
    use futures::StreamExt as _;
    let connect = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub());
    let mut pubsub = connect
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    pubsub.subscribe(channel).await?;
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Ok(id) = message.get_payload::<String>() else {
            continue;
        };
        if tx.send(id).is_err() {
            return Ok(());
        }
    }
    Err(redis::RedisError::from((
        redis::ErrorKind::Io,
        "the subscription ended",
    )))
}
