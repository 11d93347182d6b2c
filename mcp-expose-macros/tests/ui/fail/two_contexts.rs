use mcp_expose::Context;
/// Doc.
#[mcp_expose::tool]
fn two(a: Context, b: &Context) -> String { let _ = (a, b); String::new() }
fn main() {}
