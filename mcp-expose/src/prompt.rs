//! Prompts: named message templates with arguments and argument completions.

use std::{fmt, sync::Arc};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData,
    model::{JsonObject, Prompt, PromptArgument, PromptMessage, Role},
};

use crate::context::Context;

type GetFn = dyn Fn(Context, JsonObject) -> BoxFuture<'static, Result<Vec<PromptMessage>, ErrorData>>
    + Send
    + Sync;
type CompleteFn = dyn Fn(&str, &str) -> Vec<String> + Send + Sync;

/// A prompt and the function that renders it.
#[derive(Clone)]
#[must_use = "a PromptDef does nothing until given to `Server::prompt`"]
pub struct PromptDef {
    pub(crate) prompt: Prompt,
    pub(crate) get: Arc<GetFn>,
    pub(crate) complete: Option<Arc<CompleteFn>>,
}

impl fmt::Debug for PromptDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptDef")
            .field("name", &self.prompt.name)
            .finish_non_exhaustive()
    }
}

impl PromptDef {
    /// A prompt named `name` taking `arguments`, rendered by `get`.
    pub fn new<F, Fut>(name: impl Into<String>, arguments: Vec<PromptArgument>, get: F) -> Self
    where
        F: Fn(Context, JsonObject) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Vec<PromptMessage>, ErrorData>> + Send + 'static,
    {
        let arguments = (!arguments.is_empty()).then_some(arguments);
        let prompt = Prompt::new(name.into(), None::<String>, arguments);
        Self {
            prompt,
            get: Arc::new(move |ctx, args| Box::pin(get(ctx, args))),
            complete: None,
        }
    }

    /// The description shown to clients.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.prompt.description = Some(description.into());
        self
    }

    /// A human-readable title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.prompt.title = Some(title.into());
        self
    }

    /// Completions for an argument: `complete(argument_name, partial_value)` returns candidates.
    pub fn with_completions(
        mut self,
        complete: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.complete = Some(Arc::new(complete));
        self
    }

    /// The prompt's name.
    pub fn name(&self) -> &str {
        &self.prompt.name
    }
}

/// Types a `#[prompt]` function can return: a string (one user message), a [`PromptMessage`],
/// or a `Vec<PromptMessage>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a prompt",
    label = "return a String, a PromptMessage, or a Vec<PromptMessage>"
)]
pub trait IntoPromptMessages {
    /// The messages.
    fn into_prompt_messages(self) -> Vec<PromptMessage>;
}

impl IntoPromptMessages for String {
    fn into_prompt_messages(self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, self)]
    }
}

impl IntoPromptMessages for &str {
    fn into_prompt_messages(self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, self)]
    }
}

impl IntoPromptMessages for PromptMessage {
    fn into_prompt_messages(self) -> Vec<PromptMessage> {
        vec![self]
    }
}

impl IntoPromptMessages for Vec<PromptMessage> {
    fn into_prompt_messages(self) -> Vec<PromptMessage> {
        self
    }
}

/// Deserializes a prompt's arguments; a mismatch is a JSON-RPC invalid-params error.
#[doc(hidden)]
pub fn parse_prompt_args<T: serde::de::DeserializeOwned>(
    prompt: &str,
    args: JsonObject,
) -> Result<T, ErrorData> {
    serde_json::from_value(serde_json::Value::Object(args)).map_err(|e| {
        ErrorData::invalid_params(
            format!("invalid arguments for prompt `{prompt}`: {e}"),
            None,
        )
    })
}

/// A prompt argument's metadata.
#[doc(hidden)]
pub fn argument(name: &str, description: &str, required: bool) -> PromptArgument {
    let argument = PromptArgument::new(name).with_required(required);
    if description.is_empty() {
        argument
    } else {
        argument.with_description(description)
    }
}
