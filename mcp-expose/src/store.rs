//! The Redis that replicas share (feature `redis`, `--state redis://..`): one connection that
//! comes back by itself after a failure, every command bounded in time, errors that name the
//! Redis and say what to check, and subscriptions that listen again after a failure. The task
//! store, the session and event stores and the routing of clients' answers build on it.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::backoff::Backoff;

/// How long one Redis command may take.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// What failed, in a sentence for a person: which Redis, and what to check.
#[derive(Debug, Clone)]
pub(crate) struct Failure(pub(crate) String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// A Redis shared by replicas, its keys under one prefix.
#[derive(Clone)]
pub(crate) struct Redis {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    url: String,
    /// This process among the replicas on this Redis: what it publishes and stores names it,
    /// so that it can skip its own.
    origin: std::sync::Arc<str>,
    /// The last command's failure, until one succeeds.
    failure: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// The Redis at `url` (`redis://HOST:PORT/DB`), keys under `prefix` (e.g.
    /// `mcp-expose:NAME:`). Connects on first use, and again after a failure.
    pub(crate) fn new(url: &str, prefix: impl Into<String>) -> Result<Self, Failure> {
        let client = redis::Client::open(url)
            .map_err(|e| Failure(format!("`{url}` is not a Redis URL: {e}")))?;
        // Reconnect attempts close together and few: a command fails fast while Redis is
        // away, and the next one (the watch's ping, twice a second) finds it once it is back.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(250))
            .set_number_of_retries(2);
        let connection = client
            .get_connection_manager_lazy(config)
            .map_err(|e| Failure(format!("cannot use the Redis at {url}: {e}")))?;
        Ok(Self {
            client,
            connection,
            prefix: prefix.into(),
            url: url.to_owned(),
            origin: {
                let mut random = [0u8; 8];
                let _ = getrandom::fill(&mut random);
                u64::from_le_bytes(random).to_string().into()
            },
            failure: std::sync::Arc::default(),
        })
    }

    /// This process's name among the replicas on this Redis (random, one per process).
    pub(crate) fn origin(&self) -> &std::sync::Arc<str> {
        &self.origin
    }

    /// Why Redis failed last, while it has not answered since; `None` when it works.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn record(&self, failure: Option<&Failure>) {
        let mut last = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (failure, last.is_some()) {
            (Some(failure), false) => {
                tracing::warn!("shared state unavailable: {failure}");
                *last = Some(failure.0.clone());
            }
            (Some(failure), true) => *last = Some(failure.0.clone()),
            (None, true) => {
                tracing::info!(
                    "shared state available again: the Redis at {} answers",
                    self.url
                );
                *last = None;
            }
            (None, false) => {}
        }
    }

    /// Pings Redis twice a second until `stop`, so that [`failure`](Self::failure) clears by
    /// itself once Redis is back, even when nothing else asks it anything.
    pub(crate) fn watch(&self, stop: tokio_util::sync::CancellationToken) {
        let redis = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                }
                let _ = redis.query::<String>(&redis::cmd("PING")).await;
            }
        });
    }

    /// The key `name` under this server's prefix.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A connection handle (cheap: the manager multiplexes one connection).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Runs one Redis call, bounded by [`COMMAND_TIMEOUT`]; a failure says which Redis.
    pub(crate) async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        self.bounded_by(COMMAND_TIMEOUT, call).await
    }

    /// Runs one Redis call, bounded by `limit`; a failure says which Redis.
    pub(crate) async fn bounded_by<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        let result = match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            // Redis refused this command (a wrong argument, a script error): Redis itself is
            // there, and the failure is this command's alone.
            Ok(Err(e)) if !is_away(&e) => {
                self.record(None);
                return Err(Failure(format!(
                    "the Redis at {} refused a command: {e}",
                    self.url
                )));
            }
            Ok(Err(e)) => Err(Failure(format!(
                "the Redis at {} failed ({e}); is it running?",
                self.url
            ))),
            Err(_) => Err(Failure(format!(
                "the Redis at {} did not answer within {} s",
                self.url,
                limit.as_secs()
            ))),
        };
        self.record(result.as_ref().err());
        result
    }

    /// Runs `command`, bounded by [`COMMAND_TIMEOUT`].
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, Failure> {
        let mut connection = self.connection();
        self.bounded(command.query_async(&mut connection)).await
    }

    /// A connection of its own, for commands that block (`XREAD BLOCK`) up to `wait`.
    pub(crate) async fn dedicated(
        &self,
        wait: Duration,
    ) -> Result<redis::aio::MultiplexedConnection, Failure> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(wait + COMMAND_TIMEOUT));
        self.bounded(
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
    }

    /// The payloads published on the channel `name` (under the prefix), for as long as the
    /// receiver is kept: subscribes again, with backoff, whenever the connection fails.
    pub(crate) fn subscribe(
        &self,
        name: &str,
        what: &'static str,
    ) -> mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.client.clone();
        let channel = self.key(name);
        let url = self.url.clone();
        tokio::spawn(async move {
            let mut backoff =
                Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).with_jitter();
            let mut warned = false;
            while !tx.is_closed() {
                match listen(&client, &channel, &tx).await {
                    Ok(()) => return,
                    // Said once; while Redis stays away, the retries are debug lines.
                    Err(error) if warned => {
                        tracing::debug!(
                            "{what}: the Redis at {url} failed ({error}); listening again"
                        );
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(error) => {
                        warned = true;
                        tracing::warn!(
                            "{what} from other replicas: the Redis at {url} failed ({error}); listening again"
                        );
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
        rx
    }
}

/// Whether `error` means Redis cannot serve now (unreachable, loading, read-only, down), as
/// opposed to refusing one command.
fn is_away(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match error.kind() {
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        ),
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse | ErrorKind::Client => false,
        _ => true,
    }
}

/// Forwards what is published on `channel` to `tx` until the connection fails (an error) or
/// nobody takes it any more (`Ok`).
async fn listen(
    client: &redis::Client,
    channel: &str,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
) -> redis::RedisResult<()> {
    use futures::StreamExt as _;
    let connect = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub());
    let mut pubsub = connect
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    pubsub.subscribe(channel).await?;
    let mut messages = pubsub.into_on_message();
    loop {
        // Closed receivers are noticed within a second even when nothing is published.
        let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
        match next {
            Ok(Some(message)) => {
                if tx.send(message.get_payload_bytes().to_vec()).is_err() {
                    return Ok(());
                }
            }
            Ok(None) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "the subscription ended",
                )));
            }
            Err(_) if tx.is_closed() => return Ok(()),
            Err(_) => {}
        }
    }
}
