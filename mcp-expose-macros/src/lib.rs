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
