use mcp_expose::{ToolError, tool};

/// Fraction of G and C bases in a DNA sequence.
#[tool]
async fn gc_content(seq: String) -> Result<f64, ToolError> {
    let gc = seq
        .chars()
        .filter(|c| matches!(c, 'G' | 'C' | 'g' | 'c'))
        .count();
    Ok(gc as f64 / seq.len().max(1) as f64)
}

#[tokio::main]
async fn main() -> mcp_expose::Result<()> {
    mcp_expose::server!().serve().await
}
