//! Procedural macros for [mcp-expose](https://docs.rs/mcp-expose). Use them through that crate:
//! `use mcp_expose::tool;`.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns a plain function into an MCP tool: its doc comment is the description, its
/// parameters the input schema (parameter doc comments describe properties), its return type
/// the result (and the output schema for structured returns).
///
/// ```
/// use mcp_expose::{Context, ToolError, tool};
///
/// #[derive(serde::Serialize, schemars::JsonSchema)]
/// struct Counts {
///     gc: usize,
///     at: usize,
/// }
///
/// /// Counts G/C and A/T bases in a DNA sequence.
/// #[tool(read_only, idempotent)]
/// async fn count_bases(
///     /// The sequence (A, C, G, T).
///     seq: String,
///     /// Count only this many leading bases.
///     limit: Option<usize>,
///     ctx: &Context,
/// ) -> Result<Counts, ToolError> {
///     ctx.info("counting").await;
///     let seq = &seq.as_bytes()[..limit.unwrap_or(seq.len()).min(seq.len())];
///     if let Some(bad) = seq.iter().find(|b| !b"ACGT".contains(b)) {
///         return Err(ToolError::new(format!("not a base: {}", *bad as char)));
///     }
///     let gc = seq.iter().filter(|b| matches!(b, b'G' | b'C')).count();
///     Ok(Counts { gc, at: seq.len() - gc })
/// }
/// # let _ = mcp_expose::tools![count_bases];
/// ```
///
/// - **Parameters**: any `T: Deserialize + JsonSchema`, owned (`String`, not `&str`); a `///`
///   comment describes the property, `#[serde(..)]` and `#[schemars(..)]` on a parameter are
///   kept. A `Context` or `&Context` parameter is not part of the schema.
/// - **Results**: `String` and content types (`Image`, `Vec<Content>`, ...) become content
///   blocks; any other `T: Serialize + JsonSchema` becomes `structuredContent` with an
///   `outputSchema`; `Err(e)` of a `Result<T, E: Display>` is an `isError` result with `e`'s
///   message.
///
/// An `Option<T>` parameter is optional: not in the schema's `required`, and `null` or absent
/// in a call is `None`. Its schema is `T`'s, without a `null` union (`"type": "integer"`, not
/// `["integer", "null"]`), and so are `Option` fields of the structs parameters take: several
/// model providers reject union types in tool schemas. `nullable_union` lists them as unions
/// with `null` instead, as schemars writes them.
///
/// Options: `name = ".."`, `title = ".."`, `description = ".."`, `read_only`, `destructive`,
/// `idempotent`, `open_world`, `nullable_union` (each also `= bool`),
/// `crate = "path::to::mcp_expose"`.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(parse::Kind::Tool, attr.into(), item.into()).into()
}

/// Turns a function into an MCP resource (or resource template, when `uri` has `{vars}`;
/// parameters named like the variables receive them).
///
/// Options: `uri = ".."` (required), `name = ".."`, `title = ".."`, `description = ".."`,
/// `mime_type = ".."`, `crate = ".."`.
#[proc_macro_attribute]
pub fn resource(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(parse::Kind::Resource, attr.into(), item.into()).into()
}

/// Turns a function into an MCP prompt; its parameters are the prompt's arguments
/// (`Option<..>` ones are optional).
///
/// Options: `name = ".."`, `title = ".."`, `description = ".."`,
/// `complete = path::to::fn` (a `fn(argument: &str, value: &str) -> Vec<String>`), `crate = ".."`.
#[proc_macro_attribute]
pub fn prompt(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(parse::Kind::Prompt, attr.into(), item.into()).into()
}
