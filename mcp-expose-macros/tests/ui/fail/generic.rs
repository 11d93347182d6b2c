/// Doc.
#[mcp_expose::tool]
fn generic<T: Into<String>>(x: String) -> String { x }
fn main() {}
