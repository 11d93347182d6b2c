#[mcp_expose::resource(uri = "test://items/{id}")]
fn item(key: String) -> String { key }
#[mcp_expose::resource(name = "x")]
fn no_uri() -> String { String::new() }
fn main() {}
