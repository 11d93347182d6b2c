#[derive(Debug)]
struct NoDisplay;
/// Doc.
#[mcp_expose::tool]
fn fails(x: String) -> Result<String, NoDisplay> { let _ = x; Err(NoDisplay) }
fn main() {}
