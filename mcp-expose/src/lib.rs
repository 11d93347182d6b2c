#![doc = include_str!("../README.md")]
#![deny(clippy::print_stdout)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "bridge")]
pub mod bridge;
#[cfg(feature = "connect")]
pub mod connect;
pub mod content;
mod context;
pub mod error;
#[cfg(test)]
mod fuzz;
mod handler;
mod observe;
#[cfg(any(feature = "tunnel", feature = "bridge"))]
mod process;
pub mod prompt;
mod registry;
pub mod resource;
pub mod security;
pub mod serve;
pub mod tool;
mod transport;
#[cfg(feature = "tunnel")]
pub mod tunnel;

#[doc(inline)]
pub use content::{Audio, Content, Image, Resource};
#[doc(inline)]
pub use context::{Caller, Context, LogLevel};
#[doc(inline)]
pub use error::{Error, ErrorKind, Result, ToolError};
#[cfg(feature = "macros")]
#[doc(inline)]
pub use mcp_expose_macros::{prompt, resource, tool};
#[doc(inline)]
pub use prompt::PromptDef;
#[doc(inline)]
pub use resource::ResourceDef;
#[doc(inline)]
pub use serve::{Running, Server};
#[doc(inline)]
pub use tool::ToolDef;

/// MCP protocol types (rmcp's `model`), for results and requests the simple types do not cover.
pub mod model {
    pub use rmcp::model::*;
}

/// A [`Server`] named and versioned after the calling crate (`CARGO_PKG_NAME`,
/// `CARGO_PKG_VERSION`), holding every `#[tool]`, `#[resource]` and `#[prompt]` in the binary.
#[macro_export]
macro_rules! server {
    () => {
        $crate::Server::new(
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        )
    };
}

/// The [`ToolDef`]s of `#[tool]` functions, for explicit registration:
/// `Server::new("s", "1").without_collected().tools(tools![gc_content, translate])`.
#[macro_export]
macro_rules! tools {
    ($($tool:path),* $(,)?) => {
        ::std::vec![$(<$tool as $crate::__private::ToolFactory>::tool_def()),*]
    };
}

/// The framing internals the criterion benches (`benches/benches/framing.rs`) measure, so that
/// they time the library's own code rather than a copy. Not public API.
#[doc(hidden)]
pub mod __bench {
    #[cfg(feature = "bridge")]
    pub use crate::bridge::envelope::{Message, parse as envelope, with_id};
    pub use crate::transport::lines::{Line, LineReader};
}

/// Used by the code the macros generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::prompt::{IntoPromptMessages, argument, parse_prompt_args};
    pub use crate::registry::{
        PromptRegistration, ResourceRegistration, ToolFactory, ToolRegistration,
    };
    pub use crate::resource::{IntoResourceContents, UriVars, parse_var, read_error};
    pub use crate::tool::{
        OutputSpec, Probe, ViaContent, ViaStructured, error_result, input_schema,
        input_schema_with_null, parse_args,
    };
    pub use crate::{Context, PromptDef, ResourceDef, ToolDef};
    pub use inventory;
    pub use rmcp;
    pub use rmcp::ErrorData;
    pub use rmcp::model::{
        CallToolResult, JsonObject, PromptMessage, ResourceContents, ToolAnnotations,
    };
    pub use schemars;
    pub use serde;
    pub use serde_json;

    /// `Box::pin` for generated handlers.
    pub fn boxed<F: ::core::future::Future + Send + 'static>(
        future: F,
    ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = F::Output> + Send>> {
        Box::pin(future)
    }
}
