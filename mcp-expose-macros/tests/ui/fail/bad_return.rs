struct Opaque;
/// Doc.
#[mcp_expose::tool]
fn opaque(x: String) -> Opaque { let _ = x; Opaque }
fn main() {}
