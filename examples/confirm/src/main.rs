//! Tools that ask the user before they act. The same `async fn` serves every client:
//!
//! - MCP 2025 sessions: `ctx.elicit` sends `elicitation/create` and waits for the answer.
//! - MCP 2026-07-28: the call is answered with an input-required result; the client's retry
//!   carries the answer and the tool runs again, this time to its end.
//! - A task (`archive`, for clients with the tasks extension): the call is answered at once
//!   with a task; the question shows on the task and waits for the client's `tasks/update`.
//!
//! Run: `cargo run -p confirm -- --http 8000`.

use std::time::Duration;

use mcp_expose::{Context, Error, tool};
use serde_json::{Value, json};

/// The user's yes or no, as an elicitation form.
fn yes_or_no() -> Value {
    json!({
        "type": "object",
        "properties": { "confirm": { "type": "boolean", "title": "Go ahead?" } },
        "required": ["confirm"],
    })
}

/// Whether the user accepted and said yes.
fn confirmed(answer: &mcp_expose::model::ElicitResult) -> bool {
    let content = answer.content.as_ref();
    content
        .and_then(|c| c.get("confirm"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// Sends `amount` euros to `to`, once the user confirms.
#[tool]
async fn transfer(amount: u32, to: String, ctx: Context) -> Result<String, Error> {
    let question = format!("Send {amount} EUR to {to}?");
    let answer = ctx.elicit(question, yes_or_no()).await?;
    // On 2026-07-28 this line runs only in the run that has the answer: side effects go here.
    Ok(if confirmed(&answer) {
        format!("sent {amount} EUR to {to}")
    } else {
        "nothing sent".to_owned()
    })
}

/// Archives `rows` rows, a slow job run as a task when the client supports tasks; asks the
/// user to confirm first.
#[tool(task = "optional")]
async fn archive(rows: u32, ctx: Context) -> Result<String, Error> {
    let answer = ctx
        .elicit(format!("Archive {rows} rows?"), yes_or_no())
        .await?;
    if !confirmed(&answer) {
        return Ok("nothing archived".to_owned());
    }
    for done in (0..=rows).step_by(1000.max(rows as usize / 10)) {
        if ctx.is_cancelled() {
            return Ok(format!("stopped after {done} rows"));
        }
        ctx.progress(f64::from(done), Some(f64::from(rows)), None)
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(format!("archived {rows} rows"))
}

#[tokio::main]
async fn main() -> mcp_expose::Result<()> {
    mcp_expose::server!().serve().await
}
