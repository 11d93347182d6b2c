struct S;
impl S {
    /// Doc.
    #[mcp_expose::tool]
    fn method(&self, x: String) -> String { x }
}
fn main() {}
