//! The tools of the suite's `input-required-result-*` scenarios (MCP 2026-07-28, multi-round-trip
//! requests). Each asks the client through [`Context`] as any tool would: on 2026-07-28 the call
//! is answered with an input-required result, and the retry runs the tool again with the answers.

// Sampling is deprecated by the 2026-07-28 revision, but input-required results still carry it.
#![allow(deprecated)]

use mcp_expose::{
    Context, Error,
    model::{CreateMessageRequestParams, CreateMessageResult, SamplingMessage},
    prompt, tool,
};
use serde_json::{Value, json};

/// An elicitation form with one required string field.
fn form(field: &str) -> Value {
    json!({
        "type": "object",
        "properties": { field: { "type": "string" } },
        "required": [field],
    })
}

fn ask_model(text: &str, max_tokens: u32) -> CreateMessageRequestParams {
    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(text)], max_tokens)
}

fn reply_text(result: &CreateMessageResult) -> String {
    result
        .message
        .content
        .iter()
        .filter_map(|block| block.as_text())
        .map(|text| text.text.as_str())
        .collect()
}

/// Asks the user's name (elicitation, input request `user_name`) and greets them.
#[tool]
async fn test_input_required_result_elicitation(ctx: Context) -> Result<String, Error> {
    let answer = ctx
        .elicit_as("user_name", "What is your name?", form("name"))
        .await?;
    let name = answer.content.as_ref().and_then(|c| c.get("name").cloned());
    Ok(format!("Hello, {}!", name.unwrap_or(Value::Null)))
}

/// Asks the client's model a question (sampling) and returns its answer.
#[tool]
async fn test_input_required_result_sampling(ctx: Context) -> Result<String, Error> {
    let params = ask_model("What is the capital of France?", 100);
    let reply = ctx.sample(params).await?;
    Ok(format!("LLM response: {}", reply_text(&reply)))
}

/// Asks the client for its roots (`roots/list`) and lists them.
#[tool]
async fn test_input_required_result_list_roots(ctx: Context) -> Result<String, Error> {
    let roots = ctx.list_roots().await?;
    let uris: Vec<&str> = roots.roots.iter().map(|root| root.uri.as_str()).collect();
    Ok(format!("Client roots: {}", uris.join(", ")))
}

/// Asks for a confirmation; its answer only completes the call with the signed `requestState`
/// intact ("state-ok").
#[tool]
async fn test_input_required_result_request_state(ctx: Context) -> Result<String, Error> {
    let schema = json!({ "type": "object", "properties": { "ok": { "type": "boolean" } } });
    let answer = ctx.elicit("Please confirm", schema).await?;
    Ok(format!("state-ok: action={:?}", answer.action))
}

/// Asks three things in one round: a name (elicitation), a greeting (sampling), the roots.
#[tool]
async fn test_input_required_result_multiple_inputs(ctx: Context) -> Result<String, Error> {
    let (name, greeting, roots) = tokio::join!(
        ctx.elicit_as("user_name", "What is your name?", form("name")),
        ctx.sample(ask_model("Generate a greeting", 50)),
        ctx.list_roots(),
    );
    let (name, greeting, roots) = (name?, greeting?, roots?);
    Ok(format!(
        "name={}, greeting={}, roots={}",
        name.content.unwrap_or_default(),
        reply_text(&greeting),
        roots.roots.len()
    ))
}

/// Asks a name, then (next round) a favourite colour.
#[tool]
async fn test_input_required_result_multi_round(ctx: Context) -> Result<String, Error> {
    let name = ctx
        .elicit("Step 1: What is your name?", form("name"))
        .await?;
    let color = ctx
        .elicit("Step 2: What is your favorite color?", form("color"))
        .await?;
    let field = |answer: &mcp_expose::model::ElicitResult, key: &str| {
        let value = answer.content.as_ref().and_then(|c| c.get(key).cloned());
        value.unwrap_or(Value::Null)
    };
    Ok(format!(
        "name={}, color={}",
        field(&name, "name"),
        field(&color, "color")
    ))
}

/// Asks for a confirmation; a retry with an altered `requestState` is refused.
#[tool]
async fn test_input_required_result_tampered_state(ctx: Context) -> Result<String, Error> {
    let schema = json!({ "type": "object", "properties": { "ok": { "type": "boolean" } } });
    ctx.elicit("Please confirm", schema).await?;
    Ok("confirmed".into())
}

/// Asks only what the client declared it can answer (sampling, elicitation).
#[tool]
async fn test_input_required_result_capabilities(ctx: Context) -> Result<String, Error> {
    let declared = ctx.client_capabilities().cloned().unwrap_or_default();
    let mut asked = Vec::new();
    if declared.sampling.is_some() {
        ctx.sample(ask_model("Say hello", 20)).await?;
        asked.push("sampling");
    }
    if declared.elicitation.is_some() {
        ctx.elicit("What is your name?", form("name")).await?;
        asked.push("elicitation");
    }
    Ok(format!("asked: {}", asked.join(", ")))
}

/// Asks the user for context (elicitation) before rendering: input-required results are not
/// only for tools.
#[prompt]
async fn test_input_required_result_prompt(ctx: Context) -> String {
    // A prompt cannot return the error; on 2026-07-28 its text is not used while a request
    // waits for its answer.
    match ctx
        .elicit("What context should the prompt use?", form("context"))
        .await
    {
        Ok(answer) => {
            let context = answer
                .content
                .as_ref()
                .and_then(|c| c.get("context").cloned());
            format!(
                "Answer with this context: {}",
                context.unwrap_or(Value::Null)
            )
        }
        Err(error) => format!("No context: {error}"),
    }
}
