//! Tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663): a `tools/call` answered
//! at once with a task handle while the tool runs on; the client polls `tasks/get` for its
//! status and result, answers its questions with `tasks/update` and stops it with
//! `tasks/cancel`.
//!
//! A tool opts in with `#[tool(task = "optional")]` (a task when the client declared the
//! extension, an ordinary call otherwise) or `#[tool(task = "required")]` (a client without
//! the extension is refused with `-32021`). The call becomes a task as it starts, or, with
//! `task_start = "explicit"`, when the tool calls [`Context::start_task`](crate::Context::start_task)
//! (for a tool that first gathers input with input-required results, then runs long).
//! Inside a task, [`Context::elicit`](crate::Context::elicit), `sample` and `list_roots`
//! wait for the client's `tasks/update`: the task shows `input_required` with the open
//! requests until every one is answered.
//!
//! What a task is lives in a [`TaskStore`]: [`MemoryTaskStore`] by default; a store shared
//! by replicas implements the same trait. The running tool itself stays in the process
//! that started it.

mod memory;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod run;

use futures::future::BoxFuture;
use rmcp::model::DetailedTask;
use serde::{Deserialize, Serialize};

pub use self::memory::MemoryTaskStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisTaskStore;

/// Whether a tool's calls may run as tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TaskSupport {
    /// Never: every call is answered when the tool returns.
    #[default]
    Never,
    /// When the client declared the tasks extension; otherwise an ordinary call.
    Optional,
    /// Always: a client without the tasks extension is refused with `-32021`.
    Required,
}

/// When a call of a task-supporting tool becomes a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TaskStart {
    /// As it starts: the client gets the task handle at once.
    #[default]
    AtOnce,
    /// When the tool calls [`Context::start_task`](crate::Context::start_task); a tool that
    /// returns before that is answered as an ordinary call.
    Explicit,
}

/// A task as a [`TaskStore`] keeps it: its state as `tasks/get` shows it, whom it belongs to
/// and when it may be forgotten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskRecord {
    /// Status, timestamps and the status's payload (open requests, result or error).
    pub task: DetailedTask,
    /// The caller that created it (the subject of its token), when the server authenticates:
    /// no other caller can see or change it.
    pub owner: Option<String>,
    /// When the store may drop it, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Answers to its open requests that came in on a replica that does not run it, for the
    /// one that does.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub answers: std::collections::BTreeMap<String, serde_json::Value>,
}

impl TaskRecord {
    /// A record of `task` for `owner`, kept until `expires_at_ms`.
    pub fn new(task: DetailedTask, owner: Option<String>, expires_at_ms: u64) -> Self {
        Self {
            task,
            owner,
            expires_at_ms,
            answers: std::collections::BTreeMap::new(),
        }
    }
}

/// Why a [`TaskStore`] could not do what it was asked.
#[derive(Debug)]
#[non_exhaustive]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error saying `message`: what failed and, where it helps, what to do.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// What a store operation returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A change to a task, applied by [`TaskStore::update`]. It may run more than once (a store
/// that retries on a concurrent write) and must give the same change each time.
pub type TaskChange<'a> = &'a (dyn Fn(&mut TaskRecord) + Send + Sync);

/// Where tasks are kept. Every operation is atomic per task; a record past its
/// `expires_at_ms` may be dropped at any time and is then unknown.
pub trait TaskStore: Send + Sync + std::fmt::Debug + 'static {
    /// Keeps a new task. When this returns, [`get`](Self::get) finds it (the client may ask
    /// for it as soon as it has the handle).
    fn create(&self, record: TaskRecord) -> StoreFuture<'_, ()>;

    /// The task `id`, unless it is unknown or expired.
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>>;

    /// Applies `change` to the task `id` atomically and returns the result; `None` when the
    /// task is unknown or expired.
    fn update<'a>(
        &'a self,
        id: &'a str,
        change: TaskChange<'a>,
    ) -> StoreFuture<'a, Option<TaskRecord>>;

    /// Tells every replica that task `id` changed (it got an answer or a cancel where its tool
    /// does not run). One process needs none of it: the default does nothing.
    fn notify<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        let _ = id;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The ids [`notify`](Self::notify) announces, from every replica, for as long as the
    /// receiver is kept; `None` (the default) when there are no other replicas. Called once,
    /// within a Tokio runtime.
    fn changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        None
    }
}
