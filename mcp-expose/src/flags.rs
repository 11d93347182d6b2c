//! Value parsers for command-line flags that every module's options share, and the output of
//! the print-only flags (`--print-nginx-config`, `--print-systemd-unit`, ..).

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// Writes what a print-only flag asked for to stdout: not serving, stdout is the user's, for
/// redirecting into a file.
pub(crate) fn print(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::with_source(ErrorKind::Io, "cannot write to stdout", e))
}

/// A duration flag: whole seconds (`30`) or a unit (`500ms`, `90s`, `5m`, `1h 30m`).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}): give seconds (30) or a unit (500ms, 90s, 5m)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_or_units() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("soon").is_err_and(|e| e.contains("not a duration")));
        assert!(duration("-1").is_err());
    }
}
