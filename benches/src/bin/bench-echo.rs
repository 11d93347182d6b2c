//! The load harness' tool set (`echo`, `gc_content`, as in `shared/bench/child`) written with
//! mcp-expose, for the native mcp-expose columns of the load bench:
//! `bench-echo --http PORT`, `bench-echo --ws PORT`, `bench-echo --http PORT --stateless`, or
//! stdio with no flag. `bench-echo --stdio-pipes` serves stdio through rmcp's non-blocking pipe
//! handles (`rmcp::transport::io::stdio_pipes`) instead of tokio's blocking-pool
//! `stdin()`/`stdout()`, to measure that change. Bench-only: not part of the library.

use mcp_expose::tool;

/// Return the given text unchanged
#[tool]
fn echo(
    /// text to return unchanged
    text: String,
) -> String {
    text
}

/// Fraction of G/C bases in a nucleotide sequence
#[tool]
fn gc_content(
    /// nucleotide sequence (A/C/G/T/N, any case)
    seq: String,
) -> String {
    format!("{:.6}", gc_fraction(&seq))
}

/// GC fraction of the alphabetic characters of `seq` (0 when there are none), as the harness'
/// child computes it.
fn gc_fraction(seq: &str) -> f64 {
    let (mut gc, mut total) = (0u64, 0u64);
    for b in seq.bytes().filter(u8::is_ascii_alphabetic) {
        total += 1;
        if matches!(b, b'G' | b'C' | b'g' | b'c' | b'S' | b's') {
            gc += 1;
        }
    }
    if total == 0 {
        0.0
    } else {
        gc as f64 / total as f64
    }
}

#[tokio::main]
async fn main() -> mcp_expose::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--stdio-pipes") {
        let (input, output) = rmcp::transport::io::stdio_pipes();
        mcp_expose::server!().serve_stream(input, output).await;
        return Ok(());
    }
    mcp_expose::server!().serve().await
}
