/// Doc.
#[mcp_expose::tool]
fn pattern((a, b): (u32, u32)) -> u32 { a + b }
fn main() {}
