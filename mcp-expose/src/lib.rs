//! Write MCP tools as plain Rust functions; serve them over stdio, streamable HTTP and
//! WebSocket from one binary.
//!
//! ```sh
//! cargo add mcp-expose
//! cargo add tokio --features macros,rt-multi-thread
//! ```
//!
//! ```rust,no_run
//! use mcp_expose::{ToolError, tool};
//!
//! /// Fraction of G and C bases in a DNA sequence.
//! #[tool]
//! async fn gc_content(seq: String) -> Result<f64, ToolError> {
//!     let gc = seq.chars().filter(|c| matches!(c, 'G' | 'C')).count();
//!     Ok(gc as f64 / seq.len().max(1) as f64)
//! }
//!
//! #[tokio::main]
//! async fn main() -> mcp_expose::Result<()> {
//!     mcp_expose::server!().serve().await // stdio; `--http 8000 --ws 8000` for the network
//! }
//! ```
//!
//! That is a whole server. The doc comment is the tool's description, the parameters its input
//! schema, the return type its result (and output schema, for structured returns); every
//! [`#[tool]`](macro@tool), [`#[resource]`](macro@resource) and [`#[prompt]`](macro@prompt) in
//! the binary is collected at link time, and [`server!`] names the server after your crate.
//!
//! - [`#[tool]`](macro@tool): parameters, options, results, and [`Context`] for progress, logs,
//!   sampling, elicitation, headers and the caller.
//! - [`Server`]: the builder. [`Server::serve`] reads the command line (`--stdio`, `--http PORT`,
//!   `--ws PORT`, auth, limits, `--help`); [`Server::start`] serves from code and returns a
//!   [`Running`] to read addresses from and shut down.
//! - [`Error`]: what serving can fail with; [`ToolError`] is what tools return.
//! - [`tunnel`]: a public URL through Cloudflare, cloudflared launched and supervised.
//! - [`bridge`]: any stdio MCP server (in any language) behind the same transports: the
//!   `mcp-expose` binary's `bridge` and `gateway` commands.
//! - [`connect`]: stdio on one side, a remote server on the other, for desktop clients.
//!
//! # Features
//!
//! | feature | default | what it enables |
//! |---|---|---|
//! | `macros` | yes | [`#[tool]`](macro@tool), [`#[resource]`](macro@resource), [`#[prompt]`](macro@prompt) |
//! | `tunnel` | no | [`tunnel`]: `--tunnel`, cloudflared supervision, tunnel tools, deployment helpers |
//! | `bridge` | no | [`bridge`]: the bridge and the gateway |
//! | `connect` | no | [`connect`]: the stdio-to-remote connector |
//! | `oauth` | no | OAuth 2.1 resource server and Cloudflare Access (JWT validation, RFC 9728 metadata) |
//! | `cli` | no | the `mcp-expose` binary (`tunnel` + `bridge` + `connect` + `oauth`) |
//!
//! The [repository's README](https://github.com/mcp-expose/mcp-expose#readme) has the whole
//! tour: every command-line option, the transports' behaviour, authentication, and clients.
#![deny(clippy::print_stdout)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate docs link the feature-gated modules; a build without them has nothing to link to.
#![cfg_attr(
    not(all(feature = "tunnel", feature = "bridge", feature = "connect")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(any(
    feature = "connect",
    feature = "bridge",
    feature = "tunnel",
    feature = "redis"
))]
mod backoff;
#[cfg(feature = "bridge")]
pub mod bridge;
#[cfg(feature = "bridge")]
pub mod cli;
#[cfg(feature = "connect")]
pub mod connect;
pub mod content;
mod context;
pub mod error;
mod flags;
#[cfg(test)]
mod fuzz;
mod handler;
mod jsonrpc;
mod mount;
mod observe;
#[cfg(any(feature = "tunnel", feature = "bridge"))]
mod process;
pub mod prompt;
mod registry;
pub mod resource;
pub mod security;
pub mod serve;
mod session;
mod state;
#[cfg(feature = "redis")]
mod store;
pub mod task;
pub mod tool;
mod transport;
#[cfg(feature = "tunnel")]
pub mod tunnel;
mod web;

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

// The README's Rust blocks compile as doc tests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

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
#[cfg(feature = "bench-internals")]
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
    pub use crate::task::{TaskStart, TaskSupport};
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
