use mcp_expose::{Context, Image, ToolError, prompt, resource, tool};

/// Fraction of G and C bases.
#[tool]
async fn gc_content(
    /// The sequence.
    seq: String,
    /// Minimum length.
    min_len: Option<usize>,
) -> Result<f64, ToolError> {
    let _ = min_len;
    Ok(seq.len() as f64)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Stats {
    length: usize,
}

/// Sync tool with a context and a structured result.
#[tool(name = "stats", title = "Stats", read_only, destructive = false, idempotent, open_world = false)]
fn stats(ctx: &Context, seq: String) -> Stats {
    let _ = ctx.is_cancelled();
    Stats { length: seq.len() }
}

/// A tool naming the crate path explicitly (for renamed dependencies).
#[tool(crate = "::mcp_expose", description = "Explicit crate path")]
fn explicit_crate() -> String {
    String::new()
}

/// Optional parameters listed as unions with `null`.
#[tool(nullable_union)]
fn union(min_len: Option<usize>) -> String {
    format!("{min_len:?}")
}

/// The default, spelled out.
#[tool(nullable_union = false)]
fn portable(min_len: Option<usize>) -> String {
    format!("{min_len:?}")
}

/// A tool with no parameters returning content.
#[tool]
fn picture() -> Vec<mcp_expose::Content> {
    vec![Image::png([1, 2, 3]).into(), mcp_expose::Content::text("a picture")]
}

#[resource(uri = "test://items/{id}", mime_type = "application/json")]
fn item(id: u32) -> String {
    format!("{{\"id\":{id}}}")
}

/// A prompt.
#[prompt(complete = complete)]
fn greet(name: String, style: Option<String>) -> String {
    format!("Hello {name} {style:?}")
}

fn complete(_argument: &str, value: &str) -> Vec<String> {
    vec![value.to_owned()]
}

fn main() {
    let _ = mcp_expose::tools![gc_content, stats, picture, explicit_crate, union, portable];
    let _ = item(1);
}
