//! `tools/call`: a tool run for its answer, or as a task ([`crate::task`]).

use std::{any::Any, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::FutureExt as _;
use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities,
        CreateTaskResult, JsonObject,
    },
    service::RequestContext,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Handler, panic_message};
use crate::{
    context::{Launch, input::Round},
    observe::metrics::Outcome,
    state::CallSlot,
    task::{TaskStart, TaskSupport, run::Running},
    tool::{ToolFn, error_result},
};

/// How a tool's run ended.
enum Ran {
    /// It returned, or panicked.
    Done(Result<CallToolResult, Box<dyn Any + Send>>),
    /// Its request (or task) was cancelled.
    Cancelled,
    /// It ran out of time.
    TimedOut(Duration),
}

impl Handler {
    /// Runs a tool call; also says how it ended, for metrics and the log.
    pub(super) async fn run_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> (Result<CallToolResponse, ErrorData>, Outcome) {
        let Some(tool) = self.state.registry.tool(&request.name) else {
            let error = ErrorData::invalid_params(format!("unknown tool: {}", request.name), None);
            return (Err(error), Outcome::Unknown);
        };
        let handler = tool.handler.clone();
        let (support, start) = tool.tasks;
        let tasks_declared = support != TaskSupport::Never
            && context
                .client_capabilities()
                .is_some_and(|caps| caps.supports_tasks());
        if support == TaskSupport::Required && !tasks_declared {
            let required = ClientCapabilities::builder().enable_tasks().build();
            let error = ErrorData::missing_required_client_capability(required);
            return (Err(error), Outcome::Refused);
        }
        let slot = match self.state.admit(&self.session) {
            Ok(slot) => slot,
            Err(message) => {
                let busy = rmcp::model::ErrorCode(crate::jsonrpc::SERVER_UNAVAILABLE);
                let error = ErrorData::new(busy, message, None);
                return (Err(error), Outcome::Refused);
            }
        };
        let args = request.arguments.take().unwrap_or_default();
        let sealer = &self.state.sealer;
        let caller = super::owner(&context, &self.session).map(str::to_owned);
        let input = match Round::for_call(sealer, &mut request, &context, &args, caller.as_deref())
        {
            Ok(input) => input,
            Err(error) => return (Err(error), Outcome::Error),
        };
        if tasks_declared {
            let run = Run {
                name: request.name.to_string(),
                handler,
                args,
                input,
                owner: caller,
                start,
                slot,
            };
            return self.run_task(run, context).await;
        }
        let _slot = slot;
        let cancelled = context.ct.clone();
        let ctx = self.context(context, input, None);
        let probe = ctx.clone();
        // The tool runs in this task (not spawned) so that requests it sends to the client
        // travel on this call's response stream.
        let call = AssertUnwindSafe(handler(ctx, args)).catch_unwind();
        // A cancelled request (notifications/cancelled, or its client gone) drops the tool's
        // future: the tool stops at its next await.
        let call = async {
            tokio::select! {
                outcome = call => Ran::Done(outcome),
                () = cancelled.cancelled() => Ran::Cancelled,
            }
        };
        let ran = match self.state.limits.tool_timeout {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Ran::TimedOut(limit)),
            None => call.await,
        };
        settle(&request.name, ran, &probe, cancelled.is_cancelled())
    }

    /// A call of a task-supporting tool from a client with the tasks extension: the tool runs
    /// in a task of its own, and the call is answered with the task's handle once the call is
    /// a task (at once, or when the tool starts it), or as an ordinary call should the tool
    /// end before that.
    async fn run_task(
        &self,
        run: Run,
        context: RequestContext<RoleServer>,
    ) -> (Result<CallToolResponse, ErrorData>, Outcome) {
        let request_cancelled = context.ct.clone();
        let cancel = CancellationToken::new();
        let (started, task) = oneshot::channel();
        let launch = Launch::new(self.state.tasks.clone(), run.owner, cancel.clone(), started);
        let ctx = self.context(context, run.input, Some(launch));
        let probe = ctx.clone();
        let name = run.name.clone();
        let limit = self.state.tasks.ttl();
        let Run {
            handler,
            args,
            start,
            slot,
            ..
        } = run;
        let cancel_run = cancel.clone();
        let mut running = tokio::spawn(async move {
            let _slot = slot;
            if start == TaskStart::AtOnce
                && let Err(error) = ctx.start_task().await
            {
                let message = format!("tool `{name}` could not start as a task: {error:#}");
                return Ran::Done(Ok(error_result(&message)));
            }
            let call = AssertUnwindSafe(handler(ctx.clone(), args)).catch_unwind();
            let ran = tokio::select! {
                outcome = call => Ran::Done(outcome),
                () = cancel_run.cancelled() => Ran::Cancelled,
                () = tokio::time::sleep(limit) => Ran::TimedOut(limit),
            };
            match ctx.running() {
                Some(task) => record(task, &name, ran).await,
                None => ran,
            }
        });
        tokio::select! {
            biased;
            Ok(task) = task => (Ok(CallToolResponse::Task(CreateTaskResult::new(task))), Outcome::Ok),
            ran = &mut running => match ran {
                Ok(ran) => settle(&run.name, ran, &probe, request_cancelled.is_cancelled()),
                Err(error) => {
                    let message = format!("tool `{}` failed: {error}", run.name);
                    (Err(ErrorData::internal_error(message, None)), Outcome::Panic)
                }
            },
            () = request_cancelled.cancelled() => {
                cancel.cancel();
                settle(&run.name, Ran::Cancelled, &probe, true)
            }
        }
    }
}

/// What a task-run call needs besides its request.
struct Run {
    name: String,
    handler: Arc<ToolFn>,
    args: JsonObject,
    input: Option<Arc<Round>>,
    owner: Option<String>,
    start: TaskStart,
    slot: CallSlot,
}

/// Keeps how a task's tool ended: its result (`completed`, tool errors included), a panic or
/// the time limit (`failed`), or `cancelled`.
async fn record(task: &Running, name: &str, ran: Ran) -> Ran {
    match &ran {
        Ran::Done(Ok(result)) => match serde_json::to_value(result) {
            Ok(serde_json::Value::Object(result)) => task.complete(result).await,
            _ => {
                let message = format!("tool `{name}` returned a result that cannot be encoded");
                task.fail(&ErrorData::internal_error(message, None)).await;
            }
        },
        Ran::Done(Err(panic)) => {
            let message = format!("tool `{name}` panicked: {}", panic_message(panic.as_ref()));
            tracing::error!(tool = %name, "{message}");
            let error = ErrorData::internal_error(message, None);
            task.fail(&error).await;
        }
        Ran::TimedOut(limit) => {
            let message = format!(
                "tool `{name}` ran past the task's time limit of {} s and was stopped",
                limit.as_secs_f64()
            );
            task.fail(&ErrorData::internal_error(message, None)).await;
        }
        Ran::Cancelled => task.cancelled().await,
    }
    ran
}

/// The answer to a call that ended before it was (or without being) a task.
fn settle(
    name: &str,
    ran: Ran,
    probe: &crate::Context,
    cancelled: bool,
) -> (Result<CallToolResponse, ErrorData>, Outcome) {
    let outcome = match ran {
        Ran::Done(outcome) => outcome,
        Ran::Cancelled => Ok(error_result(&format_args!("tool `{name}` was cancelled"))),
        Ran::TimedOut(limit) => {
            tracing::warn!(tool = %name, "tool call timed out after {limit:?}; cancelled");
            let message = format!(
                "tool `{name}` timed out after {} s and was cancelled",
                limit.as_secs_f64()
            );
            return (
                Ok(CallToolResponse::Complete(error_result(&message))),
                Outcome::Timeout,
            );
        }
    };
    // MCP 2026-07-28: a run that asked the client something without an answer ends with
    // the requests listed (whatever the tool returned), or with the invalid answer's error.
    if outcome.is_ok()
        && !cancelled
        && let Some(input) = probe.input_outcome()
    {
        return match input {
            Ok(result) => (Ok(CallToolResponse::InputRequired(result)), Outcome::Ok),
            Err(error) => (Err(error), Outcome::Error),
        };
    }
    let (result, how) = match outcome {
        Ok(result) if cancelled => (result, Outcome::Cancelled),
        Ok(result) if result.is_error == Some(true) => {
            // MCP 2026-07-28: a call that needed a capability the client did not declare
            // is answered with the error that names it, not with the tool's text.
            if let Some(required) = probe.refused_capability() {
                let error = ErrorData::missing_required_client_capability(required);
                return (Err(error), Outcome::Error);
            }
            (result, Outcome::Error)
        }
        Ok(result) => (result, Outcome::Ok),
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(tool = %name, panic = %message, "tool panicked");
            (
                error_result(&format_args!("tool `{name}` panicked: {message}")),
                Outcome::Panic,
            )
        }
    };
    (Ok(CallToolResponse::Complete(result)), how)
}
