/// Doc.
#[mcp_expose::tool]
struct NotAFunction;
fn main() {}
