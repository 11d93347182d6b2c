struct Opaque;
/// Doc.
#[mcp_expose::tool]
fn takes(x: Opaque) -> String { let _ = x; String::new() }
fn main() {}
