//! A call that becomes a task ([`crate::task`]): [`Context::start_task`], and a tool's
//! requests to the client once it is one.

use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::{InputRequest, Task};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Context, Via, input::decode};
use crate::{
    error::{Error, ErrorKind},
    task::run::{Running, Tasks},
};

/// How a call of a task-supporting tool becomes a task: where tasks are kept, for whom, what
/// stops its tool, and whom to tell (the `tools/call` waiting to answer with the handle).
#[derive(Debug)]
pub(crate) struct Launch {
    tasks: Arc<Tasks>,
    owner: Option<String>,
    cancel: CancellationToken,
    started: Mutex<Option<oneshot::Sender<Task>>>,
    running: OnceLock<Running>,
}

impl Launch {
    /// A launch for `owner`'s call; `cancel` stops the tool (before and after it is a task),
    /// and `started` hears of the task once there is one.
    pub(crate) fn new(
        tasks: Arc<Tasks>,
        owner: Option<String>,
        cancel: CancellationToken,
        started: oneshot::Sender<Task>,
    ) -> Self {
        Self {
            tasks,
            owner,
            cancel,
            started: Mutex::new(Some(started)),
            running: OnceLock::new(),
        }
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl Context {
    /// Makes this call a task, if it can be one: the client gets the task's handle now, and
    /// the tool runs on, its result kept for `tasks/get`. True when the call is a task (now or
    /// already); false when it cannot be one (the tool was not declared with
    /// `#[tool(task = ..)]`, or the client lacks the tasks extension), and the tool goes on
    /// as an ordinary call.
    ///
    /// Tools declared with `task_start = "explicit"` call it where their long part starts,
    /// typically after gathering input with input-required results (MCP 2026-07-28): what
    /// they ask before it is asked with the call's input-required results, what they ask
    /// after it on the task.
    ///
    /// # Errors
    ///
    /// When the task cannot be kept (the task store failed or is full).
    pub async fn start_task(&self) -> Result<bool, Error> {
        let Some(launch) = &self.inner.launch else {
            return Ok(false);
        };
        if launch.running.get().is_some() {
            return Ok(true);
        }
        let (task, running) = launch
            .tasks
            .create(launch.owner.clone(), launch.cancel.clone())
            .await
            .map_err(|e| Error::with_source(ErrorKind::Internal, "cannot create the task", e))?;
        let _ = launch.running.set(running);
        let started = launch
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(started) = started {
            let _ = started.send(task);
        }
        Ok(true)
    }

    /// The task this call became, if it did.
    pub(crate) fn running(&self) -> Option<&Running> {
        self.inner.launch.as_ref()?.running.get()
    }

    /// A request to the client through `via` (the round of an input-required result, or the
    /// task), under `name` or `KIND-N`; its answer as `T` (`wanted` says what that is).
    pub(super) async fn ask<T: DeserializeOwned>(
        &self,
        via: Via<'_>,
        kind: &str,
        name: Option<&str>,
        request: InputRequest,
        wanted: &str,
    ) -> Result<T, Error> {
        let round = self.inner.input.as_deref();
        match via {
            Via::Round(round) => round.answer(round.key(kind, name), request, wanted),
            Via::Task(task) => {
                // Keys continue those of the input-required rounds before the task started,
                // and what those rounds answered is answered still.
                let key = match round {
                    Some(round) => round.key(kind, name),
                    None => task.key(kind, name),
                };
                if let Some(answer) = round.and_then(|round| round.answered(&key)) {
                    return decode(&key, answer.clone(), wanted);
                }
                let answer = task
                    .ask(key.clone(), request)
                    .await
                    .map_err(|message| Error::new(ErrorKind::Peer, message))?;
                decode(&key, answer, wanted)
            }
            Via::Client => Err(Error::new(
                ErrorKind::Internal,
                "a request to the client was routed nowhere",
            )),
        }
    }
}
