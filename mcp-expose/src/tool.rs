//! Tools: [`ToolDef`] (a tool's metadata plus its handler) and how return values become results.
//!
//! `#[tool]` builds a `ToolDef` from a plain function; [`ToolDef::new`] builds one by hand
//! (for tools defined at run time).
//!
//! A tool's return value becomes a result this way:
//! - a type implementing [`IntoContents`](crate::content::IntoContents) (strings, images,
//!   audio, resources, `Vec<Content>`) gives exactly those content blocks;
//! - any other `T: Serialize + JsonSchema` gives `structuredContent`, a text copy of it, and an
//!   `outputSchema` in `tools/list`. A `T` whose schema is not an object (a number, a list) is
//!   wrapped as `{"result": value}`, because MCP requires object-typed structured output;
//! - `Result<T, E: Display>`: `Ok` as above, `Err(e)` an `isError: true` result with `e`'s text
//!   as `{:#}` prints it (an [`Error`](crate::Error)'s cause and hint included).

use std::{borrow::Cow, fmt, sync::Arc};

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::{JsonSchema, Schema, generate::SchemaSettings, transform::RecursiveTransform};
use serde::Serialize;

use crate::{
    context::Context,
    task::{TaskStart, TaskSupport},
};

pub(crate) type ToolFn =
    dyn Fn(Context, JsonObject) -> BoxFuture<'static, CallToolResult> + Send + Sync;

/// A tool: what `tools/list` shows of it and the function `tools/call` runs.
#[derive(Clone)]
#[must_use = "a ToolDef does nothing until given to `Server::tool`"]
pub struct ToolDef {
    pub(crate) tool: Tool,
    pub(crate) handler: Arc<ToolFn>,
    /// Whether its calls run as tasks, and when they become one.
    pub(crate) tasks: (TaskSupport, TaskStart),
}

impl fmt::Debug for ToolDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolDef")
            .field("name", &self.tool.name)
            .finish_non_exhaustive()
    }
}

impl ToolDef {
    /// A tool named `name` whose arguments follow `input_schema` (a JSON Schema object) and
    /// whose calls run `handler` with the request's [`Context`] and its arguments.
    pub fn new<F, Fut>(
        name: impl Into<Cow<'static, str>>,
        input_schema: Arc<JsonObject>,
        handler: F,
    ) -> Self
    where
        F: Fn(Context, JsonObject) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = CallToolResult> + Send + 'static,
    {
        let tool = Tool::new_with_raw(name.into(), None, input_schema);
        Self {
            tool,
            handler: Arc::new(move |ctx, args| Box::pin(handler(ctx, args))),
            tasks: (TaskSupport::Never, TaskStart::AtOnce),
        }
    }

    /// The description shown to the model.
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.tool.description = Some(description.into());
        self
    }

    /// A human-readable title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.tool.title = Some(title.into());
        self
    }

    /// Behaviour hints (read-only, destructive, idempotent, open-world).
    pub fn with_annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.tool.annotations = Some(annotations);
        self
    }

    /// The JSON Schema of `structuredContent`.
    pub fn with_output_schema(mut self, schema: Option<Arc<JsonObject>>) -> Self {
        self.tool.output_schema = schema;
        self
    }

    /// Whether its calls run as tasks (the tasks extension; see [`crate::task`]).
    pub fn with_task_support(mut self, support: TaskSupport) -> Self {
        self.tasks.0 = support;
        self
    }

    /// When a call of a task-supporting tool becomes a task: as it starts (the default), or
    /// when the tool calls [`Context::start_task`].
    pub fn with_task_start(mut self, start: TaskStart) -> Self {
        self.tasks.1 = start;
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.tool.name
    }

    /// The metadata `tools/list` shows.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }
}

/// How a structured return type is shaped on the wire: computed once when the tool is built.
#[derive(Debug, Clone)]
#[doc(hidden)]
pub struct OutputSpec {
    schema: Option<Arc<JsonObject>>,
    wrapped: bool,
}

impl OutputSpec {
    /// The `outputSchema` to advertise, if any.
    pub fn schema(&self) -> Option<Arc<JsonObject>> {
        self.schema.clone()
    }
}

/// Draft 2020-12 schema of `T` under `settings`, as a JSON object, with schemars' root title
/// removed.
fn schema_object<T: JsonSchema>(settings: SchemaSettings) -> JsonObject {
    let schema = settings.into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(mut object)) => {
            object.remove("title");
            object
        }
        // `true` / `false` schemas: accept anything.
        _ => JsonObject::new(),
    }
}

/// The input schema for an arguments struct, in the portable form: an `Option<T>` field is not
/// required and has `T`'s schema, with no `null` union (several model providers reject union
/// types in tool schemas). Always an object with `properties`.
#[doc(hidden)]
pub fn input_schema<T: JsonSchema>() -> Arc<JsonObject> {
    let settings = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with_transform(RecursiveTransform(drop_null));
    input_object(schema_object::<T>(settings))
}

/// [`input_schema`] with an `Option<T>` field's schema left as schemars writes it: `T` or
/// `null` (`"type": ["integer", "null"]`, or `anyOf` with a `{"type": "null"}` branch).
#[doc(hidden)]
pub fn input_schema_with_null<T: JsonSchema>() -> Arc<JsonObject> {
    let settings = SchemaSettings::draft2020_12().for_deserialize();
    input_object(schema_object::<T>(settings))
}

fn input_object(mut object: JsonObject) -> Arc<JsonObject> {
    object.insert("type".into(), "object".into());
    object
        .entry("properties")
        .or_insert_with(|| serde_json::Value::Object(JsonObject::new()));
    Arc::new(object)
}

/// Undoes, on one schema, what schemars adds for an `Option`: `"null"` among several types, a
/// `null` among several `enum` values, a `{"type": "null"}` branch beside others in `anyOf` or
/// `oneOf` (a lone remaining branch is merged into the schema when no keyword clashes).
fn drop_null(schema: &mut Schema) {
    use serde_json::Value;
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type")
        && types.len() > 1
    {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = object.get_mut("enum")
        && values.iter().any(|v| !v.is_null())
    {
        values.retain(|v| !v.is_null());
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = object.get_mut(key) else {
            continue;
        };
        let is_null = |b: &Value| {
            b.as_object()
                .is_some_and(|b| b.len() == 1 && b.get("type").is_some_and(|t| t == "null"))
        };
        if branches.len() < 2 || !branches.iter().any(is_null) {
            continue;
        }
        branches.retain(|b| !is_null(b));
        let only = match branches.as_slice() {
            [Value::Object(only)] => only.clone(),
            _ => continue,
        };
        if only.keys().all(|k| !object.contains_key(k)) {
            object.remove(key);
            object.extend(only);
        }
    }
}

/// Output schemas keep schemars' `null` unions: a `None` is serialized as `null`, and clients
/// check `structuredContent` against this schema.
fn output_spec<T: JsonSchema>() -> OutputSpec {
    let object = schema_object::<T>(SchemaSettings::draft2020_12().for_serialize());
    if object.get("type").and_then(|t| t.as_str()) == Some("object") {
        return OutputSpec {
            schema: Some(Arc::new(object)),
            wrapped: false,
        };
    }
    // Definitions must stay at the root for `$ref`s to resolve.
    let mut inner = object;
    let defs = inner.remove("$defs");
    let dialect = inner.remove("$schema");
    let mut wrapper = JsonObject::new();
    if let Some(dialect) = dialect {
        wrapper.insert("$schema".into(), dialect);
    }
    wrapper.insert("type".into(), "object".into());
    wrapper.insert("properties".into(), serde_json::json!({ "result": inner }));
    wrapper.insert("required".into(), serde_json::json!(["result"]));
    if let Some(defs) = defs {
        wrapper.insert("$defs".into(), defs);
    }
    OutputSpec {
        schema: Some(Arc::new(wrapper)),
        wrapped: true,
    }
}

/// The result for a tool's `Err(e)`: its alternate text, which for [`crate::Error`] holds the
/// cause and what to do (its plain `{}` is the message alone).
#[doc(hidden)]
pub fn error_result(error: &dyn fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("{error:#}"))])
}

/// Selects, at compile time, how a tool's return type `T` becomes a result (autoref
/// specialization: content types win over the structured path).
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Probe<T> {
    pub const fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[doc(hidden)]
pub trait ViaContent<T> {
    fn output_spec(&self) -> OutputSpec;
    fn convert(&self, value: T, spec: &OutputSpec) -> CallToolResult;
}

impl<T: crate::content::IntoContents> ViaContent<T> for Probe<T> {
    fn output_spec(&self) -> OutputSpec {
        OutputSpec {
            schema: None,
            wrapped: false,
        }
    }
    fn convert(&self, value: T, _: &OutputSpec) -> CallToolResult {
        value.into_call_tool_result()
    }
}

#[doc(hidden)]
pub trait ViaStructured<T> {
    fn output_spec(&self) -> OutputSpec;
    fn convert(&self, value: T, spec: &OutputSpec) -> CallToolResult;
}

impl<T: Serialize + JsonSchema> ViaStructured<T> for &Probe<T> {
    fn output_spec(&self) -> OutputSpec {
        output_spec::<T>()
    }
    fn convert(&self, value: T, spec: &OutputSpec) -> CallToolResult {
        let value = match serde_json::to_value(&value) {
            Ok(value) => value,
            Err(e) => {
                return error_result(&format_args!("cannot serialize the tool's result: {e}"));
            }
        };
        let text = value.to_string();
        let structured = if spec.wrapped {
            serde_json::json!({ "result": value })
        } else {
            value
        };
        let mut result = CallToolResult::structured(structured);
        result.content = vec![ContentBlock::text(text)];
        result
    }
}

/// Deserializes a tool's arguments; a mismatch becomes an `isError` result the model can act on.
#[doc(hidden)]
pub fn parse_args<T: serde::de::DeserializeOwned>(
    tool: &str,
    args: JsonObject,
) -> Result<T, CallToolResult> {
    serde_json::from_value(serde_json::Value::Object(args))
        .map_err(|e| error_result(&format_args!("invalid arguments for tool `{tool}`: {e}")))
}

#[cfg(test)]
mod tests {
    use schemars::Schema;
    use serde_json::json;

    fn dropped(schema: serde_json::Value) -> serde_json::Value {
        let mut schema = Schema::try_from(schema).expect("a schema");
        super::drop_null(&mut schema);
        schema.to_value()
    }

    #[test]
    fn drop_null_undoes_what_option_adds() {
        assert_eq!(
            dropped(json!({ "type": ["string", "null"], "enum": ["a", "b", null] })),
            json!({ "type": "string", "enum": ["a", "b"] })
        );
        assert_eq!(
            dropped(json!({ "type": ["string", "integer", "null"] })),
            json!({ "type": ["string", "integer"] })
        );
        assert_eq!(
            dropped(
                json!({ "description": "d", "anyOf": [{ "$ref": "#/$defs/W" }, { "type": "null" }] })
            ),
            json!({ "description": "d", "$ref": "#/$defs/W" })
        );
        // A remaining branch whose keywords clash with the schema's stays a branch.
        assert_eq!(
            dropped(
                json!({ "description": "d", "oneOf": [{ "description": "e", "type": "string" }, { "type": "null" }] })
            ),
            json!({ "description": "d", "oneOf": [{ "description": "e", "type": "string" }] })
        );
        // `()` alone, and `null` as the only value, are what the type is, not an `Option`.
        assert_eq!(
            dropped(json!({ "type": "null" })),
            json!({ "type": "null" })
        );
        assert_eq!(
            dropped(json!({ "enum": [null] })),
            json!({ "enum": [null] })
        );
    }
}
