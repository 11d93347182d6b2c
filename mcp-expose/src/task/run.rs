//! This process's tasks at work: creating them, the client's `tasks/get`, `tasks/update` and
//! `tasks/cancel`, and a running tool's questions and its end.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rmcp::model::{
    DetailedTask, ErrorData, InputRequest, InputResponses, JsonObject, Task, TaskPayload,
    TaskStatus,
};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{StoreError, TaskRecord, TaskStore};

/// How often clients are asked to poll `tasks/get`.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// An unguessable task id: 128 random bits in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tasks of a server: where they are kept and those running here.
#[derive(Debug)]
pub(crate) struct Tasks {
    store: Arc<dyn TaskStore>,
    /// How long a task is kept after it was created (and the longest it may run).
    ttl: Duration,
    /// The tasks whose tool runs in this process.
    local: Mutex<HashMap<String, Arc<Local>>>,
}

/// A task whose tool runs in this process.
#[derive(Debug)]
struct Local {
    cancel: CancellationToken,
    /// The tool's requests to the client that wait for an answer, by key.
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Requests made so far (for the keys `KIND-N`).
    asked: AtomicUsize,
}

impl Local {
    fn waiting(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<Value>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One task this process runs, as its tool sees it.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    tasks: Arc<Tasks>,
    id: String,
    local: Arc<Local>,
}

fn unknown(id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown task: {id} (never created, expired, or another caller's)"),
        None,
    )
}

fn store_failed(error: &StoreError) -> ErrorData {
    ErrorData::internal_error(format!("the task store failed: {error}"), None)
}

/// The record with its status moved to `payload`'s, stamped now.
fn settle(record: &mut TaskRecord, payload: TaskPayload) {
    let mut task = record.task.task.clone();
    task.last_updated_at = timestamp();
    record.task = DetailedTask::new(task, payload);
}

impl Tasks {
    /// The tasks kept in `store` for `ttl`; with a store shared by replicas, a task that
    /// changes elsewhere wakes its tool here (call within a Tokio runtime).
    pub(crate) fn new(store: Arc<dyn TaskStore>, ttl: Duration) -> Arc<Self> {
        let tasks = Arc::new(Self {
            store,
            ttl,
            local: Mutex::default(),
        });
        if let Some(mut changes) = tasks.store.changes() {
            let weak = Arc::downgrade(&tasks);
            tokio::spawn(async move {
                while let Some(id) = changes.recv().await {
                    let Some(tasks) = weak.upgrade() else { return };
                    tasks.changed(&id).await;
                }
            });
        }
        tasks
    }

    /// Task `id` changed on another replica: if its tool runs here, it gets the answers that
    /// came in, or stops if it was cancelled.
    async fn changed(&self, id: &str) {
        let Some(local) = self.local().get(id).cloned() else {
            return;
        };
        let Ok(Some(record)) = self.store.get(id).await else {
            return;
        };
        if record.task.status() == TaskStatus::Cancelled {
            local.cancel.cancel();
            return;
        }
        let delivered: Vec<String> = {
            let mut waiting = local.waiting();
            let mut delivered = Vec::new();
            for (key, answer) in &record.answers {
                if let Some(reply) = waiting.remove(key) {
                    let _ = reply.send(answer.clone());
                    delivered.push(key.clone());
                }
            }
            delivered
        };
        if !delivered.is_empty() {
            let taken = |record: &mut TaskRecord| {
                record.answers.retain(|key, _| !delivered.contains(key));
            };
            let _ = self.store.update(id, &taken).await;
        }
    }

    /// How long a task is kept, and the longest it may run.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn local(&self) -> MutexGuard<'_, HashMap<String, Arc<Local>>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new task for `owner`, `working`, stored before this returns; `cancel` stops its tool.
    pub(crate) async fn create(
        self: &Arc<Self>,
        owner: Option<String>,
        cancel: CancellationToken,
    ) -> Result<(Task, Running), StoreError> {
        let id = new_id();
        let now = timestamp();
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let poll_ms = u64::try_from(POLL_INTERVAL.as_millis()).unwrap_or(1000);
        let task = Task::new(id.clone(), TaskStatus::Working, now.clone(), now)
            .with_ttl_ms(ttl_ms)
            .with_poll_interval_ms(poll_ms);
        let detailed = DetailedTask::new(task.clone(), TaskPayload::Working);
        let record = TaskRecord::new(detailed, owner, now_ms().saturating_add(ttl_ms));
        let local = Arc::new(Local {
            cancel,
            waiting: Mutex::default(),
            asked: AtomicUsize::new(0),
        });
        // Known here before the store has it, so that a cancel right after finds it.
        self.local().insert(id.clone(), local.clone());
        if let Err(error) = self.store.create(record).await {
            self.local().remove(&id);
            return Err(error);
        }
        let running = Running {
            tasks: self.clone(),
            id,
            local,
        };
        Ok((task, running))
    }

    /// The task `id` if `owner` may see it.
    async fn find(&self, id: &str, owner: Option<&str>) -> Result<TaskRecord, ErrorData> {
        match self.store.get(id).await {
            Ok(Some(record)) if record.owner.as_deref() == owner => Ok(record),
            Ok(_) => Err(unknown(id)),
            Err(error) => Err(store_failed(&error)),
        }
    }

    /// `tasks/get`.
    pub(crate) async fn get(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<DetailedTask, ErrorData> {
        Ok(self.find(id, owner).await?.task)
    }

    /// `tasks/update`: the answers to open requests go to the tool; other keys are ignored.
    pub(crate) async fn update(
        &self,
        id: &str,
        owner: Option<&str>,
        responses: InputResponses,
    ) -> Result<(), ErrorData> {
        let record = self.find(id, owner).await?;
        let TaskPayload::InputRequired { input_requests } = &record.task.payload else {
            return Ok(());
        };
        let answered: Vec<String> = responses
            .keys()
            .filter(|key| input_requests.contains_key(*key))
            .cloned()
            .collect();
        if answered.is_empty() {
            return Ok(());
        }
        // Answers for a tool that runs on another replica wait in the record for it.
        let here = self.local().get(id).cloned();
        let close = |record: &mut TaskRecord| {
            let TaskPayload::InputRequired { input_requests } = &record.task.payload else {
                return;
            };
            if here.is_none() {
                for key in &answered {
                    if let Some(answer) = responses.get(key) {
                        record.answers.insert(key.clone(), answer.clone());
                    }
                }
            }
            let mut open = input_requests.clone();
            open.retain(|key, _| !answered.contains(key));
            let payload = if open.is_empty() {
                TaskPayload::Working
            } else {
                TaskPayload::InputRequired {
                    input_requests: open,
                }
            };
            settle(record, payload);
        };
        self.store
            .update(id, &close)
            .await
            .map_err(|e| store_failed(&e))?;
        match here {
            Some(local) => {
                let mut waiting = local.waiting();
                for key in &answered {
                    if let (Some(reply), Some(answer)) = (waiting.remove(key), responses.get(key)) {
                        let _ = reply.send(answer.clone());
                    }
                }
            }
            None => self.store.notify(id).await.map_err(|e| store_failed(&e))?,
        }
        Ok(())
    }

    /// `tasks/cancel`: the task is `cancelled` from now on (unless it had ended) and its tool
    /// stops at its next await.
    pub(crate) async fn cancel(&self, id: &str, owner: Option<&str>) -> Result<(), ErrorData> {
        let record = self.find(id, owner).await?;
        if record.task.status().is_terminal() {
            return Ok(());
        }
        let cancel = |record: &mut TaskRecord| {
            if !record.task.status().is_terminal() {
                settle(record, TaskPayload::Cancelled);
            }
        };
        self.store
            .update(id, &cancel)
            .await
            .map_err(|e| store_failed(&e))?;
        let here = self.local().get(id).cloned();
        match here {
            Some(local) => local.cancel.cancel(),
            None => self.store.notify(id).await.map_err(|e| store_failed(&e))?,
        }
        Ok(())
    }
}

impl Running {
    /// The key of the next request: `name`, or `KIND-N` for the Nth request of the task.
    pub(crate) fn key(&self, kind: &str, name: Option<&str>) -> String {
        let n = self.local.asked.fetch_add(1, Ordering::Relaxed) + 1;
        name.map_or_else(|| format!("{kind}-{n}"), str::to_owned)
    }

    /// Asks the client `request` under `key`: the task shows `input_required` with it until
    /// the client answers with `tasks/update`. Fails when the task is cancelled or its
    /// store fails.
    pub(crate) async fn ask(&self, key: String, request: InputRequest) -> Result<Value, String> {
        let (reply, answer) = oneshot::channel();
        self.local.waiting().insert(key.clone(), reply);
        let open = |record: &mut TaskRecord| {
            if record.task.status().is_terminal() {
                return;
            }
            let mut input_requests = match &record.task.payload {
                TaskPayload::InputRequired { input_requests } => input_requests.clone(),
                _ => Default::default(),
            };
            input_requests.insert(key.clone(), request.clone());
            settle(record, TaskPayload::InputRequired { input_requests });
        };
        match self.tasks.store.update(&self.id, &open).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.local.waiting().remove(&key);
                return Err("the task expired".to_owned());
            }
            Err(error) => {
                self.local.waiting().remove(&key);
                return Err(format!("the task store failed: {error}"));
            }
        }
        tokio::select! {
            answer = answer => answer.map_err(|_| "the task ended before the client answered".to_owned()),
            () = self.local.cancel.cancelled() => Err("the task was cancelled".to_owned()),
        }
    }

    /// Ends the task with its tool's result (`completed`, also for a tool error).
    pub(crate) async fn complete(&self, result: JsonObject) {
        self.end(TaskPayload::Completed { result }).await;
    }

    /// Ends the task with a JSON-RPC error (`failed`).
    pub(crate) async fn fail(&self, error: &ErrorData) {
        let error = match serde_json::to_value(error) {
            Ok(Value::Object(error)) => error,
            _ => JsonObject::new(),
        };
        self.end(TaskPayload::Failed { error }).await;
    }

    /// Ends the task as `cancelled`.
    pub(crate) async fn cancelled(&self) {
        self.end(TaskPayload::Cancelled).await;
    }

    async fn end(&self, payload: TaskPayload) {
        let end = |record: &mut TaskRecord| {
            if !record.task.status().is_terminal() {
                settle(record, payload.clone());
            }
        };
        if let Err(error) = self.tasks.store.update(&self.id, &end).await {
            tracing::warn!(task = %self.id, "cannot record the end of a task: {error}");
        }
        self.tasks.local().remove(&self.id);
    }
}
