//! `bioseq`: DNA sequence tools as an MCP server, the flagship example of mcp-expose.
//!
//! ```text
//! bioseq                      # stdio (for Claude Desktop and other local clients)
//! bioseq --http 8000 --ws 8000  # streamable HTTP at /mcp and WebSocket at /ws on one port
//! ```

mod bio;

use mcp_expose::tool;
use schemars::JsonSchema;
use serde::Serialize;

use bio::{AssemblyStats, BioError, Orf, Translation};

/// Fraction of G and C bases in a DNA sequence (IUPAC codes; whitespace ignored).
#[tool(read_only, idempotent, open_world = false)]
fn gc_content(
    /// Nucleotide sequence, for example "GGCCAT".
    seq: String,
) -> Result<f64, BioError> {
    bio::gc_content(&seq)
}

/// A sequence read 5'->3' on the opposite strand.
#[derive(Debug, Serialize, JsonSchema)]
struct ReverseComplement {
    /// The reverse complement, in the case of the input.
    sequence: String,
    /// Its length in bases.
    length: usize,
}

/// Reverse complement of a DNA sequence (IUPAC-aware, case preserved).
#[tool(read_only, idempotent, open_world = false)]
fn reverse_complement(
    /// Nucleotide sequence.
    seq: String,
) -> Result<ReverseComplement, BioError> {
    let sequence = bio::reverse_complement(&seq)?;
    Ok(ReverseComplement {
        length: sequence.len(),
        sequence,
    })
}

/// Translate a DNA or RNA sequence to protein with the standard genetic code.
#[tool(read_only, idempotent, open_world = false)]
fn translate(
    /// Nucleotide sequence.
    seq: String,
    /// Reading frame 1, 2 or 3 (default 1).
    frame: Option<u8>,
) -> Result<Translation, BioError> {
    bio::translate(&seq, frame.unwrap_or(1))
}

/// Open reading frames found in a sequence.
#[derive(Debug, Serialize, JsonSchema)]
struct Orfs {
    /// How many ORFs were found.
    count: usize,
    /// The ORFs, by start position.
    orfs: Vec<Orf>,
}

/// Find open reading frames (ATG to stop) on both strands, in all three frames.
#[tool(read_only, idempotent, open_world = false)]
fn find_orfs(
    /// Nucleotide sequence.
    seq: String,
    /// Minimum protein length in amino acids, stop codon excluded (default 30).
    min_len: Option<usize>,
) -> Result<Orfs, BioError> {
    let orfs = bio::find_orfs(&seq, min_len.unwrap_or(30))?;
    Ok(Orfs {
        count: orfs.len(),
        orfs,
    })
}

/// Assembly statistics of FASTA text: contigs, total length, N50, L50 and GC content.
#[tool(read_only, idempotent, open_world = false)]
fn assembly_stats(
    /// FASTA text (one or more records; a bare sequence counts as one contig).
    fasta: String,
) -> Result<AssemblyStats, BioError> {
    bio::assembly_stats(&fasta)
}

#[tokio::main]
async fn main() -> mcp_expose::Result<()> {
    mcp_expose::server!()
        .title("bioseq")
        .description("DNA sequence tools: GC content, reverse complement, translation, ORFs, assembly statistics")
        .instructions("Sequences use IUPAC nucleotide codes; whitespace is ignored. Positions are 1-based.")
        .serve()
        .await
}
