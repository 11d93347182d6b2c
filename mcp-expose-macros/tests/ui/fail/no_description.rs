#[mcp_expose::tool]
fn undocumented(x: String) -> String { x }
fn main() {}
