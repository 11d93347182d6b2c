//! Value parsers for command-line flags that every module's options share.

use std::time::Duration;

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
