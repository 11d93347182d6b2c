//! What cloudflared's log lines mean: the quick-tunnel URL, the metrics port, registered
//! connections, and the failures that decide whether to restart.

use std::sync::LazyLock;

use regex::Regex;

/// Something a log line told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The quick-tunnel banner's URL line: the hostname (`<words>.trycloudflare.com`).
    Hostname(String),
    /// `Starting metrics server on 127.0.0.1:PORT/metrics`.
    MetricsPort(u16),
    /// `Registered tunnel connection ...`.
    Registered,
    /// Quick-tunnel creation was rate limited (HTTP 429 / error 1015).
    RateLimited,
    /// cloudflared rejected its arguments or token: restarting cannot help.
    ConfigError(String),
}

// Anchored on the whole banner line: the offline error line also contains a trycloudflare URL
// (`https://api.trycloudflare.com/tunnel`), which must never be taken for the tunnel's.
static BANNER_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\S+ INF \|\s+https://([a-z0-9-]+\.trycloudflare\.com)\s+\|$")
        .expect("valid regex")
});
static JSON_BANNER_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\|\s+https://([a-z0-9-]+\.trycloudflare\.com)\s+\|$").expect("valid regex")
});
static METRICS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Starting metrics server on 127\.0\.0\.1:(\d+)/metrics").expect("valid regex")
});

/// The message of a line in `--output json` form, or the line itself.
fn message(line: &str) -> (&str, Option<String>) {
    if line.starts_with('{')
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(line)
        && let Some(message) = value.get("message").and_then(|m| m.as_str())
    {
        return (line, Some(message.to_owned()));
    }
    (line, None)
}

/// Parses one line of cloudflared's stdout or stderr.
pub(crate) fn parse(line: &str) -> Option<Event> {
    let line = line.trim_end();
    let (line, json_message) = message(line);
    if let Some(message) = &json_message
        && let Some(captures) = JSON_BANNER_URL.captures(message.trim())
    {
        return Some(Event::Hostname(captures[1].to_owned()));
    }
    if let Some(captures) = BANNER_URL.captures(line) {
        return Some(Event::Hostname(captures[1].to_owned()));
    }
    if let Some(captures) = METRICS.captures(line) {
        return captures[1].parse().ok().map(Event::MetricsPort);
    }
    if line.contains("Registered tunnel connection") {
        return Some(Event::Registered);
    }
    if line.contains("error code: 1015") || line.contains("429 Too Many Requests") {
        return Some(Event::RateLimited);
    }
    if line.starts_with("Incorrect Usage") {
        return Some(Event::ConfigError(format!(
            "cloudflared rejected its arguments ({line}); it may be too old or too new for mcp-expose"
        )));
    }
    if line.contains("Provided Tunnel token is not valid") {
        return Some(Event::ConfigError(
            "the tunnel token is not valid (check --tunnel-token-file / TUNNEL_TOKEN)".into(),
        ));
    }
    if line.contains("unknown protocol") {
        return Some(Event::ConfigError(format!(
            "cloudflared rejected the protocol: {line}"
        )));
    }
    None
}

/// The `tracing` level of a line (`INF`, `WRN`, `ERR`, `FTL`, `DBG` or the JSON `level`).
pub(crate) fn level(line: &str) -> tracing::Level {
    let upper = |s: &str| {
        if s.contains(" ERR ")
            || s.contains(" FTL ")
            || s.contains("\"level\":\"error\"")
            || s.contains("\"level\":\"fatal\"")
        {
            tracing::Level::ERROR
        } else if s.contains(" WRN ") || s.contains("\"level\":\"warn\"") {
            tracing::Level::WARN
        } else if s.contains(" DBG ") || s.contains("\"level\":\"debug\"") {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        }
    };
    upper(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_url_is_anchored() {
        let line = "2026-11-21T11:28:26Z INF |  https://fluffy-bunny-test-words.trycloudflare.com                                         |";
        assert_eq!(
            parse(line),
            Some(Event::Hostname(
                "fluffy-bunny-test-words.trycloudflare.com".into()
            ))
        );
        let offline = r#"failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: connect: network is unreachable"#;
        assert_eq!(parse(offline), None);
        let json = r#"{"level":"info","message":"|  https://a-b-c.trycloudflare.com  |","time":"2026-11-21T11:28:26Z"}"#;
        assert_eq!(
            parse(json),
            Some(Event::Hostname("a-b-c.trycloudflare.com".into()))
        );
    }

    #[test]
    fn metrics_failures_and_levels() {
        assert_eq!(
            parse("2026-11-21T11:28:26Z INF Starting metrics server on 127.0.0.1:41235/metrics"),
            Some(Event::MetricsPort(41235))
        );
        let rate = r#"2026-11-21T11:28:26Z ERR Error unmarshaling QuickTunnel response: error code: 1015 status_code="429 Too Many Requests""#;
        assert_eq!(parse(rate), Some(Event::RateLimited));
        assert!(matches!(
            parse("Incorrect Usage. flag provided but not defined: -X"),
            Some(Event::ConfigError(_))
        ));
        assert_eq!(level(rate), tracing::Level::ERROR);
        assert_eq!(level("2026-11-21T11:28:26Z WRN x"), tracing::Level::WARN);
    }
}
