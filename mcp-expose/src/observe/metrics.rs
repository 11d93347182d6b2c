//! Prometheus metrics (the `metrics` facade with its Prometheus exporter), served at
//! `GET /metrics`: requests, tool calls and their latency, sessions, bytes, rejections.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder, installed on first use (one per process, shared by servers).
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics unavailable: another recorder is installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition.
pub(crate) fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// A finished tool call.
pub(crate) fn tool_call(tool: &str, transport: &'static str, outcome: &'static str, seconds: f64) {
    let labels = [
        ("tool", tool.to_owned()),
        ("transport", transport.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!("mcp_tool_calls_total", &labels).increment(1);
    metrics::histogram!("mcp_tool_duration_seconds", "tool" => tool.to_owned()).record(seconds);
}

/// A request handled, by transport and method.
pub(crate) fn request(transport: &'static str, method: &'static str) {
    metrics::counter!("mcp_requests_total", "transport" => transport, "method" => method)
        .increment(1);
}

/// A session opened (`delta` 1) or closed (-1).
pub(crate) fn session(transport: &'static str, delta: f64) {
    metrics::gauge!("mcp_sessions", "transport" => transport).increment(delta);
}

/// A request refused before it reached the server, by reason (auth, host, limit, rate).
pub(crate) fn rejected(reason: &'static str) {
    metrics::counter!("mcp_rejected_total", "reason" => reason).increment(1);
}

/// Bytes received (`direction` "in") or sent ("out") on a transport, counted per message.
#[allow(dead_code)]
pub(crate) fn bytes(transport: &'static str, direction: &'static str, n: usize) {
    metrics::counter!("mcp_bytes_total", "transport" => transport, "direction" => direction)
        .increment(n as u64);
}
