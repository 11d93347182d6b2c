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
    /// cloudflared is exiting because it could not reach Cloudflare (the quick-tunnel API or the
    /// edge's DNS records): the reason, as cloudflared's final error gives it.
    Unreachable(String),
    /// A dial to the edge failed; cloudflared keeps running and dials again.
    EdgeUnreachable(String),
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
// `Post "https://api.trycloudflare.com/tunnel": <reason>`: the reason is what the user needs.
static QUICK_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^failed to request quick Tunnel: (?:Post "[^"]*": )?(.+)$"#).expect("valid regex")
});
static NO_SRV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Could not lookup srv records on \S+: (.+)$").expect("valid regex")
});
// The `error` field of a failed dial: zerolog writes it first (other writers may not), quoted
// when it holds spaces.
static DIAL_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:Failed to dial a quic connection|Unable to establish connection with Cloudflare edge)\s(?:.*?\s)??error=(?:"((?:[^"\\]|\\.)*)"|(\S+))"#)
        .expect("valid regex")
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
    if let Some(captures) = QUICK_REQUEST
        .captures(line)
        .or_else(|| NO_SRV.captures(line))
    {
        return Some(Event::Unreachable(captures[1].to_owned()));
    }
    let dial = json_message
        .as_deref()
        .filter(|m| m.starts_with("Failed to dial") || m.starts_with("Unable to establish"));
    if let Some(message) = dial {
        let error = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
        return Some(Event::EdgeUnreachable(
            error.unwrap_or_else(|| message.to_owned()),
        ));
    }
    if let Some(captures) = DIAL_ERROR.captures(line) {
        let error = captures
            .get(1)
            .or(captures.get(2))
            .map_or("", |m| m.as_str());
        return Some(Event::EdgeUnreachable(error.replace("\\\"", "\"")));
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
        assert!(!matches!(parse(offline), Some(Event::Hostname(_))));
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
    }

    #[test]
    fn reasons_to_summarise() {
        let offline = r#"failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com on 10.0.0.53:53: connect: network is unreachable"#;
        assert_eq!(
            parse(offline),
            Some(Event::Unreachable(
                "dial tcp: lookup api.trycloudflare.com on 10.0.0.53:53: connect: network is unreachable".into()
            ))
        );
        let srv = "Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com: lookup x on 1.2.3.4:53: no such host";
        assert_eq!(
            parse(srv),
            Some(Event::Unreachable(
                "lookup x on 1.2.3.4:53: no such host".into()
            ))
        );
        // `error=` first, as the real binary writes it, or after other fields.
        for line in [
            r#"2026-11-21T11:28:26Z ERR Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no recent network activity" connIndex=0 event=0 ip=127.0.0.1"#,
            r#"2026-11-21T11:28:26Z ERR Failed to dial a quic connection connIndex=0 error="failed to dial to edge with quic: timeout: no recent network activity" event=0"#,
            r#"{"connIndex":0,"error":"failed to dial to edge with quic: timeout: no recent network activity","level":"error","message":"Failed to dial a quic connection"}"#,
        ] {
            assert_eq!(
                parse(line),
                Some(Event::EdgeUnreachable(
                    "failed to dial to edge with quic: timeout: no recent network activity".into()
                )),
                "{line}"
            );
        }
        // The bad token's second line is not a reason of its own.
        assert_eq!(parse("See 'cloudflared tunnel run --help'."), None);
    }
}
