//! The tools of the suite's `tasks-*` scenarios (the `io.modelcontextprotocol/tasks`
//! extension, SEP-2663) and its custom-header scenario (SEP-2243). A task-supporting tool is
//! an ordinary `#[tool]` with `task = ..`; what it asks the client inside a task waits for the
//! client's `tasks/update`.

use std::time::Duration;

use mcp_expose::{Context, Error, ToolError, tool};
use serde_json::{Value, json};

/// An elicitation form with one required boolean field.
fn confirm_form() -> Value {
    json!({
        "type": "object",
        "properties": { "confirm": { "type": "boolean" } },
        "required": ["confirm"],
    })
}

/// Greets `name` at once (never a task).
#[tool]
fn greet(name: String) -> String {
    format!("Hello, {name}!")
}

/// Sleeps `seconds`, then says it is done (a task when the client supports tasks).
#[tool(task = "optional")]
async fn slow_compute(seconds: f64, label: Option<String>) -> String {
    let seconds = seconds.clamp(0.0, 3600.0);
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let label = label.unwrap_or_default();
    format!("computed {label} in {seconds} s")
}

/// Fails after about a second with a tool error (always a task).
#[tool(task = "required")]
async fn failing_job() -> Result<String, ToolError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Err("the job failed, as it always does".into())
}

/// Panics: its task fails with an internal error.
#[tool(task = "optional")]
async fn protocol_error_job() -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    panic!("protocol_error_job breaks on purpose")
}

/// Asks the user to confirm deleting `filename`, then says what it did.
#[tool(task = "optional")]
async fn confirm_delete(filename: String, ctx: Context) -> Result<String, Error> {
    let message = format!("Delete {filename}?");
    let answer = ctx.elicit(message, confirm_form()).await?;
    let confirmed = answer
        .content
        .as_ref()
        .and_then(|c| c.get("confirm"))
        .and_then(Value::as_bool)
        == Some(true);
    Ok(if confirmed {
        format!("deleted {filename}")
    } else {
        format!("kept {filename}")
    })
}

/// Asks two questions at once and reports both answers.
#[tool(task = "optional")]
async fn multi_input(ctx: Context) -> Result<String, Error> {
    let form = json!({
        "type": "object",
        "properties": { "name": { "type": "string" }, "confirm": { "type": "boolean" } },
    });
    let (first, second) = tokio::join!(
        ctx.elicit("First question", form.clone()),
        ctx.elicit("Second question", form),
    );
    let (first, second) = (first?, second?);
    Ok(format!(
        "first: {}, second: {}",
        json!(first.content),
        json!(second.content)
    ))
}

/// Asks the user's name with an input-required result, then runs on as a task that greets
/// them (`task_start = "explicit"`: the call becomes a task at `start_task`).
#[tool(task = "required", task_start = "explicit")]
async fn test_tool_with_task(ctx: Context) -> Result<String, Error> {
    let form = json!({
        "type": "object",
        "properties": { "name": { "type": "string" } },
        "required": ["name"],
    });
    let answer = ctx
        .elicit_as("user_name", "What is your name?", form)
        .await?;
    let name = answer
        .content
        .as_ref()
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(no name)")
        .to_owned();
    ctx.start_task().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(format!("Hello, {name}! (from a task)"))
}

/// Echoes `region`, which clients also send in the `Mcp-Param-Region` header (SEP-2243).
#[tool]
fn test_header_param(#[header("Region")] region: String) -> String {
    format!("region: {region}")
}
