/// Doc.
#[mcp_expose::tool]
fn regional(#[header("Region Name")] region: String) -> String { region }

/// Doc.
#[mcp_expose::tool]
fn unnamed(#[header] region: String) -> String { region }

fn main() {}
