//! Pure nucleotide-sequence analysis for the `bioseq` example.
//!
//! This module deliberately knows nothing about MCP: it is plain std plus
//! `serde`/`schemars` derives, so every function can be unit-tested directly
//! and the server layer only has to wrap it.
//!
//! Conventions shared by all functions:
//! * Input may use upper- or lower-case IUPAC nucleotide codes
//!   (`A C G T U R Y S W K M B D H V N`). Whitespace is ignored, so pasted
//!   multi-line sequences work. Anything else, including `-` gaps, is rejected
//!   with an error that says where the bad character is.
//! * Coordinates are 1-based and inclusive, counted on the forward strand
//!   after whitespace has been removed.

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;

const IUPAC_CODES: &str = "A C G T U R Y S W K M B D H V N";
const IUPAC_BASES: &[u8; 16] = b"ACGTURYSWKMBDHVN";
/// Complement of each base in `IUPAC_BASES`. Output is DNA, so U pairs with
/// A but A pairs with T; S, W and N are their own complements.
const IUPAC_COMPLEMENTS: &[u8; 16] = b"TGCAAYRSWMKVHDBN";

/// NCBI translation table 1 (standard code), indexed by
/// `16 * first + 4 * second + third` with bases ordered T, C, A, G.
const STANDARD_CODE: &[u8; 64] =
    b"FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG";

/// Everything that can go wrong when analysing a sequence.
///
/// The `Display` text is meant to be shown to a user (or a model) as is, so
/// it always says where the problem is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BioError {
    /// A character that is neither an IUPAC nucleotide code nor whitespace.
    InvalidNucleotide {
        /// 1-based character position in the original input, whitespace included.
        position: usize,
        /// The offending character.
        character: char,
    },
    /// An invalid character inside FASTA input.
    InvalidFastaCharacter {
        /// 1-based line number in the FASTA text.
        line: usize,
        /// 1-based column (in characters) within that line.
        column: usize,
        /// The offending character.
        character: char,
    },
    /// The sequence contains no bases once whitespace is removed.
    EmptySequence,
    /// The FASTA input contains no sequence at all.
    EmptyFasta,
    /// A FASTA header that is not followed by any sequence.
    EmptyContig {
        /// Header text without the leading `>`.
        header: String,
        /// 1-based line number of the header.
        line: usize,
    },
    /// A reading frame outside `1..=3`.
    InvalidFrame(u8),
}

impl fmt::Display for BioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let invalid = |f: &mut fmt::Formatter<'_>, c: &char, at: fmt::Arguments<'_>| {
            let c = c.escape_debug();
            write!(
                f,
                "invalid nucleotide '{c}' at {at} (expected IUPAC codes {IUPAC_CODES})"
            )
        };
        match self {
            Self::InvalidNucleotide {
                position,
                character,
            } => invalid(f, character, format_args!("position {position}")),
            Self::InvalidFastaCharacter {
                line,
                column,
                character,
            } => invalid(f, character, format_args!("line {line}, column {column}")),
            Self::EmptySequence => f.write_str("empty sequence"),
            Self::EmptyFasta => f.write_str("empty FASTA input: no sequences found"),
            Self::EmptyContig { header, line } => {
                write!(f, "FASTA record '{header}' (line {line}) has no sequence")
            }
            Self::InvalidFrame(frame) => {
                write!(f, "invalid reading frame {frame} (expected 1, 2 or 3)")
            }
        }
    }
}

impl std::error::Error for BioError {}

/// A nucleotide sequence translated to protein in one reading frame.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Translation {
    /// Protein in one-letter amino-acid codes; `*` marks a stop codon and `X`
    /// a codon containing an ambiguous base.
    pub protein: String,
    /// Reading frame that was translated (1, 2 or 3).
    pub frame: u8,
    /// Number of complete codons translated; trailing partial codons are ignored.
    pub codons: usize,
}

/// DNA strand on which an open reading frame lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum Strand {
    /// Forward strand, as given.
    #[serde(rename = "+")]
    Plus,
    /// Reverse-complement strand.
    #[serde(rename = "-")]
    Minus,
}

impl fmt::Display for Strand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plus => "+",
            Self::Minus => "-",
        })
    }
}

/// An open reading frame: an ATG start codon through the next in-frame stop.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Orf {
    /// Strand the ORF lies on: "+" (forward) or "-" (reverse complement).
    pub strand: Strand,
    /// Reading frame (1-3) on that strand; on "-" it is counted from the
    /// start of the reverse complement, i.e. the 3' end of the input.
    pub frame: u8,
    /// First base (1-based, forward-strand coordinates). On "-" this is the
    /// last base of the stop codon, because the ORF runs right to left.
    pub start: usize,
    /// Last base (1-based, inclusive, forward-strand coordinates), including
    /// the stop codon. On "-" this is the first base of the ATG.
    pub end: usize,
    /// Protein length in amino acids, excluding the stop codon.
    pub length_aa: usize,
    /// Translated protein, starting with M, without the terminal `*`.
    pub protein: String,
}

/// Summary statistics of a (draft) genome assembly.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AssemblyStats {
    /// Number of contigs (FASTA records).
    pub contigs: usize,
    /// Sum of all contig lengths in bases.
    pub total_length: usize,
    /// Length of the longest contig.
    pub longest: usize,
    /// Length of the shortest contig.
    pub shortest: usize,
    /// N50: the contig length such that contigs at least this long hold at
    /// least half of the total length.
    pub n50: usize,
    /// L50: the smallest number of contigs whose combined length reaches half
    /// of the total length.
    pub l50: usize,
    /// Fraction (0-1) of all bases that are G, C or S.
    pub gc: f64,
}

fn is_nucleotide(c: char) -> bool {
    c.is_ascii() && IUPAC_BASES.contains(&(c.to_ascii_uppercase() as u8))
}

/// S (strong) is always G or C, so it counts; other ambiguity codes do not.
fn is_gc(b: u8) -> bool {
    matches!(b.to_ascii_uppercase(), b'G' | b'C' | b'S')
}

/// Validated bases as ASCII bytes, case preserved, whitespace removed.
fn clean(seq: &str) -> Result<Vec<u8>, BioError> {
    let mut bases = Vec::with_capacity(seq.len());
    for (i, c) in seq.chars().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if !is_nucleotide(c) {
            return Err(BioError::InvalidNucleotide {
                position: i + 1,
                character: c,
            });
        }
        // is_nucleotide only accepts ASCII letters, so this cast is lossless.
        bases.push(c as u8);
    }
    if bases.is_empty() {
        return Err(BioError::EmptySequence);
    }
    Ok(bases)
}

fn bytes_to_string(bases: impl IntoIterator<Item = u8>) -> String {
    bases.into_iter().map(char::from).collect()
}

/// Checks that `seq` is a nucleotide sequence and returns it with all
/// whitespace removed (case is preserved).
///
/// Accepts upper- or lower-case IUPAC codes `A C G T U R Y S W K M B D H V N`.
/// Gaps (`-`), digits and anything else are rejected with
/// [`BioError::InvalidNucleotide`], giving the 1-based character position in
/// the original input. A sequence with no bases is [`BioError::EmptySequence`].
#[allow(dead_code)] // kept public for library-style reuse of bio.rs
pub fn validate_sequence(seq: &str) -> Result<String, BioError> {
    clean(seq).map(bytes_to_string)
}

/// GC content: the fraction of bases that are G, C or S (strong, G-or-C).
///
/// The denominator is every base, ambiguity codes such as N included, so
/// `GGCCAT` gives 4/6 and `GCNN` gives 0.5.
pub fn gc_content(seq: &str) -> Result<f64, BioError> {
    let bases = clean(seq)?;
    let gc = bases.iter().filter(|&&b| is_gc(b)).count();
    Ok(gc as f64 / bases.len() as f64)
}

fn complement(b: u8) -> u8 {
    let upper = b.to_ascii_uppercase();
    let c = IUPAC_BASES
        .iter()
        .position(|&x| x == upper)
        .map_or(b'N', |i| IUPAC_COMPLEMENTS[i]);
    if b.is_ascii_lowercase() {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// Reverse complement, aware of IUPAC ambiguity codes.
///
/// A↔T, C↔G, R↔Y, K↔M, B↔V, D↔H; S, W and N map to themselves. U (RNA)
/// complements to A, and A always complements to T, so the result is DNA.
/// The case of each base is preserved (soft-masked regions stay lower-case);
/// whitespace is dropped.
pub fn reverse_complement(seq: &str) -> Result<String, BioError> {
    let bases = clean(seq)?;
    Ok(bytes_to_string(bases.into_iter().rev().map(complement)))
}

/// Index of a base in the T, C, A, G order used by `STANDARD_CODE`.
fn base_index(b: u8) -> Option<usize> {
    let b = match b.to_ascii_uppercase() {
        b'U' => b'T',
        other => other,
    };
    b"TCAG".iter().position(|&x| x == b)
}

/// Translates one three-base codon. Any ambiguity code makes the codon `X`,
/// even where all expansions agree (e.g. `GGN`), to keep the rule simple.
fn translate_codon(codon: &[u8]) -> u8 {
    codon
        .iter()
        .try_fold(0, |index, &b| Some(4 * index + base_index(b)?))
        .map_or(b'X', |index| STANDARD_CODE[index])
}

/// Complete codons of `bases` starting at 0-based `offset`.
fn codons(bases: &[u8], offset: usize) -> std::slice::ChunksExact<'_, u8> {
    bases.get(offset..).unwrap_or_default().chunks_exact(3)
}

/// Translates a nucleotide sequence with the standard genetic code (NCBI
/// table 1).
///
/// `frame` is 1, 2 or 3 (translation starts at that base) and anything else
/// is [`BioError::InvalidFrame`]. U is read as T. Stop codons become `*` and
/// translation continues past them; codons with an ambiguous base become `X`;
/// an incomplete trailing codon is ignored.
pub fn translate(seq: &str, frame: u8) -> Result<Translation, BioError> {
    if !(1..=3).contains(&frame) {
        return Err(BioError::InvalidFrame(frame));
    }
    let bases = clean(seq)?;
    let protein = bytes_to_string(codons(&bases, usize::from(frame - 1)).map(translate_codon));
    Ok(Translation {
        codons: protein.len(),
        protein,
        frame,
    })
}

/// Classic single-frame scan: from each ATG read to the next in-frame stop,
/// then resume searching after that stop, so ORFs in one frame never overlap
/// and nested in-frame ATGs are not reported separately. Returns the 0-based
/// half-open range on this strand (stop codon included) and the protein.
fn scan_frame(bases: &[u8], offset: usize, min_len: usize) -> Vec<(usize, usize, String)> {
    let aa: Vec<u8> = codons(bases, offset).map(translate_codon).collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < aa.len() {
        // ATG is the only codon that translates to M in table 1.
        if aa[i] != b'M' {
            i += 1;
            continue;
        }
        // No stop downstream means none for any later ATG either.
        let Some(stop) = aa[i..].iter().position(|&a| a == b'*').map(|p| i + p) else {
            break;
        };
        if stop - i >= min_len {
            let protein = bytes_to_string(aa[i..stop].iter().copied());
            found.push((offset + 3 * i, offset + 3 * (stop + 1), protein));
        }
        i = stop + 1;
    }
    found
}

/// Finds open reading frames (ATG … stop) in all three frames of both strands.
///
/// `min_len` is the minimum protein length in amino acids, not counting the
/// stop. Only ORFs that end in a stop codon are reported. Within a frame ORFs
/// do not overlap: after a stop the search resumes with the next ATG. ORFs
/// in different frames or strands may overlap.
///
/// Coordinates are 1-based, inclusive of the stop codon and always on the
/// forward strand, so `start <= end` even for "-" ORFs. Results are sorted by
/// start, then strand ("+" first), then frame.
pub fn find_orfs(seq: &str, min_len: usize) -> Result<Vec<Orf>, BioError> {
    let forward = clean(seq)?;
    let reverse: Vec<u8> = forward.iter().rev().map(|&b| complement(b)).collect();
    let len = forward.len();

    let mut orfs = Vec::new();
    for (strand, bases) in [(Strand::Plus, &forward), (Strand::Minus, &reverse)] {
        for frame in 1..=3u8 {
            for (begin, end, protein) in scan_frame(bases, usize::from(frame - 1), min_len) {
                let (start, end) = match strand {
                    Strand::Plus => (begin + 1, end),
                    // Mirror the half-open range [begin, end) onto the forward strand.
                    Strand::Minus => (len - end + 1, len - begin),
                };
                orfs.push(Orf {
                    strand,
                    frame,
                    start,
                    end,
                    length_aa: protein.len(),
                    protein,
                });
            }
        }
    }
    orfs.sort_by_key(|o| (o.start, o.strand, o.frame));
    Ok(orfs)
}

struct Record {
    header: String,
    line: usize,
    length: usize,
}

impl Record {
    fn new(header: &str, line: usize) -> Self {
        let header = header.trim().to_owned();
        Self {
            header,
            line,
            length: 0,
        }
    }

    /// The record's length, or an error if the header had no sequence.
    fn finish(self) -> Result<usize, BioError> {
        match self.length {
            0 => Err(BioError::EmptyContig {
                header: self.header,
                line: self.line,
            }),
            n => Ok(n),
        }
    }
}

/// Assembly statistics (contig count, lengths, N50/L50, GC) for FASTA text.
///
/// Lines starting with `>` are headers; the lines after one, up to the next
/// header, are that contig's sequence. Sequence before any header (e.g. a
/// bare sequence with no header at all) counts as one unnamed contig. Blank
/// lines and whitespace are ignored and `\r\n` line endings are accepted.
///
/// Errors: [`BioError::EmptyFasta`] if there is no sequence at all,
/// [`BioError::EmptyContig`] for a header without sequence, and
/// [`BioError::InvalidFastaCharacter`] (with line and column) for anything
/// that is not an IUPAC code.
pub fn assembly_stats(fasta: &str) -> Result<AssemblyStats, BioError> {
    let mut lengths = Vec::new();
    let mut gc = 0usize;
    let mut current: Option<Record> = None;

    for (idx, raw) in fasta.lines().enumerate() {
        let line = idx + 1;
        if let Some(header) = raw.trim_start().strip_prefix('>') {
            if let Some(done) = current.replace(Record::new(header, line)) {
                lengths.push(done.finish()?);
            }
            continue;
        }
        for (col, c) in raw.chars().enumerate() {
            if c.is_ascii_whitespace() {
                continue;
            }
            if !is_nucleotide(c) {
                return Err(BioError::InvalidFastaCharacter {
                    line,
                    column: col + 1,
                    character: c,
                });
            }
            let record = current.get_or_insert_with(|| Record::new("", line));
            record.length += 1;
            if is_gc(c as u8) {
                gc += 1;
            }
        }
    }
    if let Some(done) = current {
        lengths.push(done.finish()?);
    }

    if lengths.is_empty() {
        return Err(BioError::EmptyFasta);
    }
    lengths.sort_unstable_by(|a, b| b.cmp(a));
    let total_length: usize = lengths.iter().sum();
    let mut acc = 0;
    // `position` always succeeds: the running sum ends at total_length.
    let l50 = lengths
        .iter()
        .position(|&l| {
            acc += l;
            2 * acc >= total_length
        })
        .map_or(lengths.len(), |i| i + 1);

    Ok(AssemblyStats {
        contigs: lengths.len(),
        total_length,
        longest: lengths[0],
        shortest: lengths[lengths.len() - 1],
        n50: lengths[l50 - 1],
        l50,
        gc: gc as f64 / total_length as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::Strand::{Minus, Plus};
    use super::*;

    type TestResult = Result<(), BioError>;

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// The user-facing error message, or "" if there was no error.
    fn msg<T>(result: Result<T, BioError>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn validate_strips_whitespace_and_locates_errors() -> TestResult {
        assert_eq!(validate_sequence(" ac G\tT\r\nun ")?, "acGTun");
        assert_eq!(validate_sequence("RYSWKMBDHVN")?, "RYSWKMBDHVN");

        assert_eq!(
            msg(validate_sequence("AC GX")),
            "invalid nucleotide 'X' at position 5 (expected IUPAC codes A C G T U R Y S W K M B D H V N)"
        );
        let at = |position, character| {
            Some(BioError::InvalidNucleotide {
                position,
                character,
            })
        };
        // Gaps are rejected; positions count characters (not bytes) and
        // include whitespace.
        assert_eq!(validate_sequence("AC-GT").err(), at(3, '-'));
        assert_eq!(validate_sequence("Aé").err(), at(2, 'é'));
        assert_eq!(validate_sequence("AC\nGT5").err(), at(6, '5'));
        Ok(())
    }

    #[test]
    fn empty_input_is_an_error() {
        let empty = Some(BioError::EmptySequence);
        assert_eq!(validate_sequence(" \n\t").err(), empty);
        assert_eq!(gc_content("").err(), empty);
        assert_eq!(reverse_complement("\n").err(), empty);
        assert_eq!(translate("", 1).err(), empty);
        assert_eq!(find_orfs(" ", 0).err(), empty);
        assert_eq!(msg(gc_content("")), "empty sequence");
    }

    #[test]
    fn gc_content_known_values() -> TestResult {
        assert!(approx(gc_content("GGCCAT")?, 4.0 / 6.0));
        assert!(approx(gc_content("ggcc at")?, 4.0 / 6.0));
        assert!(approx(gc_content("ATAT")?, 0.0));
        assert!(approx(gc_content("GCGC")?, 1.0));
        assert!(approx(gc_content("SSAA")?, 0.5));
        assert!(approx(gc_content("GCNN")?, 0.5));
        Ok(())
    }

    #[test]
    fn reverse_complement_known_values() -> TestResult {
        assert_eq!(reverse_complement("GATTACA")?, "TGTAATC");
        assert_eq!(reverse_complement("AT\nGC")?, "GCAT");
        assert_eq!(reverse_complement("AaCcGgTt")?, "aAcCgGtT");
        assert_eq!(reverse_complement("RYKMSWBDHVN")?, "NBDHVWSKMRY");
        assert_eq!(reverse_complement("AUG")?, "CAT");
        let seq = "ACGTRYKMSWBDHVNacgtrykmswbdhvn";
        assert_eq!(reverse_complement(&reverse_complement(seq)?)?, seq);
        Ok(())
    }

    #[test]
    fn translate_known_values() -> TestResult {
        let t = translate("ATGGCCATTGTAATGGGCCGCTGAAAGGGTGCCCGATAG", 1)?;
        assert_eq!(
            (t.protein.as_str(), t.frame, t.codons),
            ("MAIVMGR*KGAR*", 1, 13)
        );
        assert_eq!(translate("AATGGCC", 2)?.protein, "MA");
        assert_eq!(translate("AATGGCC", 3)?.protein, "W");
        assert_eq!(translate("AUGUUUUAA", 1)?.protein, "MF*");
        // GCN is always Ala and TRA always a stop, but ambiguity is X by design.
        assert_eq!(translate("atgNNNgcnTRA", 1)?.protein, "MXXX");
        let short = translate("AT", 1)?;
        assert_eq!((short.protein.as_str(), short.codons), ("", 0));
        assert_eq!(translate("A", 3)?.codons, 0);
        // Spot checks against the NCBI table 1 codon list.
        let codons = "TTT TTA AGA AGT TGA TAG TAA ATA GGG CAT TGG CGN";
        assert_eq!(translate(codons, 1)?.protein, "FLRS***IGHWX");
        assert_eq!(translate("ATG", 0).err(), Some(BioError::InvalidFrame(0)));
        let expected = "invalid reading frame 4 (expected 1, 2 or 3)";
        assert_eq!(msg(translate("ATG", 4)), expected);

        let count = |aa: u8| STANDARD_CODE.iter().filter(|&&a| a == aa).count();
        let counts: Vec<usize> = "*MWLRSFK".bytes().map(count).collect();
        assert_eq!(counts, [3, 1, 1, 6, 6, 6, 2, 2]);
        Ok(())
    }

    fn orf(strand: Strand, frame: u8, start: usize, end: usize, protein: &str) -> Orf {
        let protein = protein.to_owned();
        let length_aa = protein.len();
        Orf {
            strand,
            frame,
            start,
            end,
            length_aa,
            protein,
        }
    }

    #[test]
    fn orf_examples_checked_by_hand() -> TestResult {
        // Frame 3: CC|ATG AAA TTT TAG|CC -> M K F, bases 3..=14. The reverse
        // complement GGCTAAAATTTCATGG has an ATG at 13 but no stop after it.
        assert_eq!(
            find_orfs("CCATGAAATTTTAGCC", 0)?,
            [orf(Plus, 3, 3, 14, "MKF")]
        );

        // Reverse complement GGATGCCCTAAG: frame 3 reads ATG CCC TAA at
        // 3..=11, i.e. forward bases 12-11+1=2 ..= 12-3+1=10 (TTAGGGCAT).
        assert_eq!(find_orfs("CTTAGGGCATCC", 1)?, [orf(Minus, 3, 2, 10, "MP")]);

        // ATG AAA TAG on "+" at 1..=9, then TTAGGGCAT = revcomp(ATG CCC TAA)
        // on "-" at 10..=18; the reverse complement ATGCCCTAACTATTTCAT has
        // that ORF in its frame 1 and no other ATG.
        let both = [orf(Plus, 1, 1, 9, "MK"), orf(Minus, 1, 10, 18, "MP")];
        assert_eq!(find_orfs("ATGAAATAGTTAGGGCAT", 0)?, both);
        Ok(())
    }

    #[test]
    fn orfs_do_not_nest_and_respect_min_len() -> TestResult {
        // The inner ATG at 4 is part of the first ORF, not a second one.
        assert_eq!(find_orfs("ATGATGAAATAA", 0)?, [orf(Plus, 1, 1, 12, "MMK")]);
        assert!(find_orfs("ATGATGAAATAA", 4)?.is_empty());

        // ATG TAA | ATG AAA CCC TAA: the 1-aa ORF is dropped by min_len, but
        // the scan still resumes after its stop and finds the second one.
        let seq = "ATGTAAATGAAACCCTAA";
        let long = orf(Plus, 1, 7, 18, "MKP");
        assert_eq!(find_orfs(seq, 0)?, [orf(Plus, 1, 1, 6, "M"), long.clone()]);
        assert_eq!(find_orfs(seq, 2)?, [long]);

        // Ambiguous codons are X and do not end an ORF; no stop means no ORF.
        assert_eq!(find_orfs("ATGNNNTAA", 0)?, [orf(Plus, 1, 1, 9, "MX")]);
        assert!(find_orfs("ATGAAACCC", 0)?.is_empty());
        Ok(())
    }

    fn fasta_of_lengths(lengths: &[usize]) -> String {
        let record = |(i, &n): (usize, &usize)| format!(">contig{i}\n{}\n", "A".repeat(n));
        lengths.iter().enumerate().map(record).collect()
    }

    #[test]
    fn assembly_stats_n50_known_value() -> TestResult {
        let s = assembly_stats(&fasta_of_lengths(&[2, 3, 4, 5, 6, 7, 8, 9, 10]))?;
        assert_eq!(
            (s.contigs, s.total_length, s.longest, s.shortest),
            (9, 54, 10, 2)
        );
        assert_eq!((s.n50, s.l50), (8, 3));
        assert!(approx(s.gc, 0.0));
        // One dominant contig is its own N50.
        let one = assembly_stats(&fasta_of_lengths(&[1, 1, 100]))?;
        assert_eq!((one.n50, one.l50), (100, 1));
        Ok(())
    }

    #[test]
    fn assembly_stats_parsing() -> TestResult {
        let s = assembly_stats(">a desc\r\nGG\r\ncc\r\n\r\n>b\nAT AT\n")?;
        assert_eq!((s.contigs, s.total_length, s.n50, s.l50), (2, 8, 4, 1));
        assert!(approx(s.gc, 0.5));

        let bare = assembly_stats("ACGT\nACGTNN\n")?;
        assert_eq!((bare.contigs, bare.total_length), (1, 10));
        assert!(approx(bare.gc, 0.4));
        Ok(())
    }

    #[test]
    fn assembly_stats_errors() {
        assert_eq!(assembly_stats("").err(), Some(BioError::EmptyFasta));
        assert_eq!(assembly_stats(" \n\n").err(), Some(BioError::EmptyFasta));
        let first_empty = msg(assembly_stats(">a\n>b\nACGT"));
        assert_eq!(first_empty, "FASTA record 'a' (line 1) has no sequence");
        let last_empty = msg(assembly_stats(">a\nAC\n> b x \n\n"));
        assert_eq!(last_empty, "FASTA record 'b x' (line 3) has no sequence");
        assert_eq!(
            msg(assembly_stats(">a\nACGT\nAC-T\n")),
            "invalid nucleotide '-' at line 3, column 3 (expected IUPAC codes A C G T U R Y S W K M B D H V N)"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(BioError::EmptyFasta);
        assert_eq!(boxed.to_string(), "empty FASTA input: no sequences found");
    }

    #[test]
    fn schemas_carry_strand_symbols_and_docs() {
        let strand = schemars::schema_for!(Strand).as_value().to_string();
        let has = |symbol| strand.contains(&format!("\"{symbol}\""));
        assert!(has('+') && has('-'), "{strand}");
        let orf = schemars::schema_for!(Orf).as_value().to_string();
        assert!(orf.contains("excluding the stop codon"), "{orf}");
        assert_eq!(Minus.to_string(), "-");
    }
}
