/// Doc.
#[mcp_expose::tool(nmae = "x", read_only = "yes")]
fn typo(x: String) -> String { x }
fn main() {}
