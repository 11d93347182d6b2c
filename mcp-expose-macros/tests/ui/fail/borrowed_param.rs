/// Doc.
#[mcp_expose::tool]
fn borrowed(x: &str) -> String { x.to_owned() }
fn main() {}
