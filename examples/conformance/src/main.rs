//! `conformance-server`: every tool, resource and prompt that the official MCP conformance
//! suite (`@modelcontextprotocol/conformance`, server mode) calls, written with mcp-expose's
//! own macros. Names and texts are fixed by the suite; see `.ci/conformance.sh`.
//!
//! ```text
//! conformance-server --http 3001   # the suite only speaks streamable HTTP, at /mcp
//! ```

use std::{sync::Arc, time::Duration};

mod input_required;
mod tasks;

use mcp_expose::{
    Audio, Content, Context, Image, Resource, ToolDef,
    model::{CallToolResult, ElicitResult, JsonObject, PromptMessage, Role},
    prompt, resource, tool,
};
use serde_json::json;

/// A 1x1 PNG, base64 (the suite checks the MIME type, not the pixels).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A one-sample 16-bit mono WAV, base64.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";

/// The pause between the notifications of the logging and progress tools: the suite expects
/// them spread over the call, not in one burst.
const STEP: Duration = Duration::from_millis(50);

fn png() -> Image {
    Image::from_base64(PNG, "image/png")
}

// ---- tools: content types -------------------------------------------------------------------

/// Returns a simple text response.
#[tool]
fn test_simple_text() -> String {
    "This is a simple text response for testing.".into()
}

/// Returns a 1x1 PNG image.
#[tool]
fn test_image_content() -> Image {
    png()
}

/// Returns a short WAV clip.
#[tool]
fn test_audio_content() -> Audio {
    Audio::from_base64(WAV, "audio/wav")
}

/// Returns an embedded text resource.
#[tool]
fn test_embedded_resource() -> Resource {
    Resource::text(
        "test://embedded-resource",
        "text/plain",
        "This is an embedded resource content.",
    )
}

/// Returns text, an image and an embedded resource in one result.
#[tool]
fn test_multiple_content_types() -> Vec<Content> {
    vec![
        Content::text("Multiple content types test:"),
        png().into(),
        Resource::text(
            "test://mixed-content-resource",
            "application/json",
            r#"{"test":"data","value":123}"#,
        )
        .into(),
    ]
}

/// Always fails, as a tool result with `isError: true` (not a JSON-RPC error).
#[tool]
fn test_error_handling() -> Result<String, String> {
    Err("This tool intentionally returns an error for testing".into())
}

// ---- tools: notifications during a call -----------------------------------------------------

/// Sends three info log messages while it runs.
#[tool]
async fn test_tool_with_logging(ctx: Context) -> String {
    for (i, message) in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.info(message).await;
    }
    "Tool with logging executed successfully".into()
}

/// Reports progress 0, 50 and 100 (of 100) while it runs.
#[tool]
async fn test_tool_with_progress(ctx: Context) -> String {
    for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.progress(progress, Some(100.0), None).await;
    }
    "Tool with progress executed successfully".into()
}

/// Reports progress 1 to `steps` (at most 100), one every `every_ms` milliseconds (10 to
/// 1000), then says it is done. Not one of the suite's: a long call for the replicas tests.
#[tool]
async fn slow_progress(steps: u32, every_ms: u64, ctx: Context) -> String {
    let steps = steps.min(100);
    let every = Duration::from_millis(every_ms.clamp(10, 1000));
    for step in 1..=steps {
        tokio::time::sleep(every).await;
        ctx.progress(f64::from(step), Some(f64::from(steps)), None)
            .await;
    }
    format!("counted to {steps}")
}

/// Tests SSE stream reconnection with `Last-Event-ID` (SEP-1699).
// The suite wants the POST stream closed mid-call (SEP-1699). mcp-expose cannot close a call's
// stream yet (rmcp keeps the HTTP request id of a call private), so this tool answers on the
// open stream after a pause; the suite reports that as INFO, not as a failure.
#[tool]
async fn test_reconnection() -> String {
    tokio::time::sleep(STEP).await;
    "Reconnection test completed successfully".into()
}

// ---- tools: requests to the client ----------------------------------------------------------

/// Asks the client's model to answer `prompt` (sampling) and returns the reply.
// Sampling is deprecated by the 2026-07-28 revision, but the suite's client still offers it.
#[allow(deprecated)]
#[tool]
async fn test_sampling(
    /// The prompt to send to the client's model.
    prompt: String,
    ctx: Context,
) -> Result<String, mcp_expose::Error> {
    use mcp_expose::model::{CreateMessageRequestParams, SamplingMessage};
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    let result = ctx.sample(params).await?;
    let reply = result
        .message
        .content
        .iter()
        .filter_map(|block| block.as_text())
        .map(|text| text.text.as_str())
        .collect::<Vec<_>>()
        .join("");
    Ok(format!("LLM response: {reply}"))
}

// ---- tools: MCP 2026-07-28 diagnostics (scenario server-stateless) -------------------------

/// Needs the client's `sampling` capability: a client that did not declare it gets a `-32021`
/// error naming it (on MCP 2026-07-28), and no request.
#[allow(deprecated)]
#[tool]
async fn test_missing_capability(ctx: Context) -> Result<String, mcp_expose::Error> {
    use mcp_expose::model::{CreateMessageRequestParams, SamplingMessage};
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text("ping")], 10);
    ctx.sample(params).await?;
    Ok("the client declared sampling".into())
}

/// Logs at info: on MCP 2026-07-28 only when the request's `_meta` names a log level.
#[tool]
async fn test_logging_tool(ctx: Context) -> String {
    ctx.info("test_logging_tool called").await;
    "Logging tool executed".into()
}

/// Elicits while the call is open: on MCP 2026-07-28 the call's stream never carries a request
/// to the client (the call is answered with an input-required result instead).
#[tool]
async fn test_streaming_elicitation(ctx: Context) -> Result<String, mcp_expose::Error> {
    let schema = json!({ "type": "object", "properties": { "answer": { "type": "string" } } });
    let answer = ctx.elicit("Streaming elicitation test", schema).await?;
    Ok(format!("User response: {}", describe(&answer)))
}

/// `action=<a>, content=<json>`, the way the suite's reference server reports an answer.
fn describe(answer: &ElicitResult) -> String {
    let action = serde_json::to_value(&answer.action).unwrap_or_default();
    let content = answer.content.clone().unwrap_or_else(|| json!({}));
    format!(
        "action={}, content={content}",
        action.as_str().unwrap_or("?")
    )
}

/// Asks the user for a username and an email address (elicitation).
#[tool]
async fn test_elicitation(
    /// The message shown to the user.
    message: String,
    ctx: Context,
) -> Result<String, mcp_expose::Error> {
    let schema = json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" },
        },
        "required": ["username", "email"],
    });
    let answer = ctx.elicit(message, schema).await?;
    Ok(format!("User response: {}", describe(&answer)))
}

/// Elicits a form whose fields all have default values (SEP-1034).
#[tool]
async fn test_elicitation_sep1034_defaults(ctx: Context) -> Result<String, mcp_expose::Error> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "default": "John Doe" },
            "age": { "type": "integer", "default": 30 },
            "score": { "type": "number", "default": 95.5 },
            "status": {
                "type": "string",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": { "type": "boolean", "default": true },
        },
    });
    let answer = ctx
        .elicit(
            "Please review and update the form fields with defaults",
            schema,
        )
        .await?;
    Ok(format!("Elicitation completed: {}", describe(&answer)))
}

/// `[{const, title}, ...]` for titled enum options.
fn titled(options: [(&str, &str); 3]) -> serde_json::Value {
    options
        .iter()
        .map(|(value, title)| json!({ "const": value, "title": title }))
        .collect()
}

/// Elicits a form with every enum variant of SEP-1330: untitled, titled and legacy
/// single-select, untitled and titled multi-select.
#[tool]
async fn test_elicitation_sep1330_enums(ctx: Context) -> Result<String, mcp_expose::Error> {
    let options = ["option1", "option2", "option3"];
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": { "type": "string", "enum": options },
            "titledSingle": {
                "type": "string",
                "oneOf": titled([
                    ("value1", "First Option"),
                    ("value2", "Second Option"),
                    ("value3", "Third Option"),
                ]),
            },
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "items": { "type": "string", "enum": options },
            },
            "titledMulti": {
                "type": "array",
                "items": {
                    "anyOf": titled([
                        ("value1", "First Choice"),
                        ("value2", "Second Choice"),
                        ("value3", "Third Choice"),
                    ]),
                },
            },
        },
    });
    let answer = ctx
        .elicit("Please select options from the enum fields", schema)
        .await?;
    Ok(format!("Elicitation completed: {}", describe(&answer)))
}

/// `json_schema_2020_12_tool` (SEP-1613, SEP-2106): its input schema must be listed verbatim,
/// with `$schema`, `$defs` (holding an `$anchor`), `allOf`/`anyOf`, `if`/`then`/`else` and
/// `additionalProperties: false`. A `#[tool]`'s schema is derived from its parameters and
/// cannot carry these at the root, so this one is defined by hand with [`ToolDef::new`].
fn json_schema_2020_12_tool() -> ToolDef {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": { "type": "string" },
                    "city": { "type": "string" },
                },
            },
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" },
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": {
            "properties": { "contactMethod": { "const": "phone" } },
            "required": ["contactMethod"],
        },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false,
    });
    let serde_json::Value::Object(schema) = schema else {
        unreachable!("a JSON object literal")
    };
    ToolDef::new(
        "json_schema_2020_12_tool",
        Arc::new(schema),
        |_ctx: Context, args: JsonObject| async move {
            let args = serde_json::Value::Object(args);
            CallToolResult::success(vec![Content::text(format!(
                "JSON Schema 2020-12 tool called with: {args}"
            ))])
        },
    )
    .with_description("Tool with JSON Schema 2020-12 features")
}

// ---- resources ------------------------------------------------------------------------------

/// A static text resource.
#[resource(uri = "test://static-text", mime_type = "text/plain")]
fn static_text() -> &'static str {
    "This is the content of the static text resource."
}

/// A static binary resource (a PNG image).
#[resource(uri = "test://static-binary", mime_type = "image/png")]
fn static_binary() -> Resource {
    Resource::blob_base64("test://static-binary", "image/png", PNG)
}

/// JSON data for any id, from a URI template.
#[resource(uri = "test://template/{id}/data", mime_type = "application/json")]
fn template_data(id: String) -> String {
    // Built by hand to keep the reference server's key order; `json!` sorts the keys.
    let data = json!(format!("Data for ID: {id}"));
    format!(
        r#"{{"id":{},"templateTest":true,"data":{data}}}"#,
        json!(id)
    )
}

/// A resource clients can subscribe to.
#[resource(uri = "test://watched-resource", mime_type = "text/plain")]
fn watched_resource() -> &'static str {
    "Watched resource content"
}

// ---- prompts --------------------------------------------------------------------------------

/// A simple prompt without arguments.
#[prompt]
fn test_simple_prompt() -> &'static str {
    "This is a simple prompt for testing."
}

/// A prompt with two required arguments.
#[prompt]
fn test_prompt_with_arguments(
    /// First test argument.
    arg1: String,
    /// Second test argument.
    arg2: String,
) -> String {
    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")
}

/// A prompt that embeds a resource.
// The argument name is fixed by the suite (camelCase); it is also the parameter's name.
#[allow(non_snake_case)]
#[prompt]
fn test_prompt_with_embedded_resource(
    /// URI of the resource to embed.
    resourceUri: String,
) -> Vec<PromptMessage> {
    let resource = Resource::text(
        resourceUri,
        "text/plain",
        "Embedded resource content for testing.",
    );
    vec![
        PromptMessage::new(Role::User, resource.into()),
        PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
    ]
}

/// A prompt that includes an image.
#[prompt]
fn test_prompt_with_image() -> Vec<PromptMessage> {
    vec![
        PromptMessage::new(Role::User, png().into()),
        PromptMessage::new_text(Role::User, "Please analyze the image above."),
    ]
}

#[tokio::main]
async fn main() -> mcp_expose::Result<()> {
    mcp_expose::server!()
        .title("MCP conformance test server")
        .tool(json_schema_2020_12_tool())
        .serve()
        .await
}
