//! Prometheus metrics (the `metrics` facade with its Prometheus exporter), served at
//! `GET /metrics`: requests, tool calls and their latency, sessions, bytes, rejections; and
//! the [`gauge`] and [`total`] the bridge and the tunnel report what they read at a scrape with.

use std::{cell::RefCell, collections::HashMap, sync::OnceLock};

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
                Ok(handle) => {
                    // Histogram samples pile up until drained: without this (or a scrape) memory
                    // grows with every tool call.
                    // A thread of its own: the server's runtime may have no timers (or end
                    // before the process does).
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            loop {
                                std::thread::sleep(std::time::Duration::from_secs(5));
                                upkeep.run_upkeep();
                            }
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "metrics upkeep thread not started");
                    }
                    Some(handle)
                }
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

/// A transport, as the `transport` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    Stdio,
    Http,
    Ws,
    /// Legacy HTTP+SSE (protocol revision 2024-11-05).
    Sse,
    /// A bridged child's stdio.
    Bridge,
    /// No transport (a handler made for a test or a probe).
    None,
}

impl TransportKind {
    const ALL: [TransportKind; 5] = [Self::Stdio, Self::Ws, Self::Http, Self::Sse, Self::Bridge];

    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Ws => "ws",
            Self::Sse => "sse",
            Self::Bridge => "bridge",
            Self::None => "none",
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How a tool call ended, as the `outcome` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// The tool answered with `isError`.
    Error,
    Timeout,
    Cancelled,
    Panic,
    /// Refused before it ran (a limit, shutting down).
    Refused,
    /// No such tool.
    Unknown,
}

impl Outcome {
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Panic => "panic",
            Self::Refused => "refused",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    In,
    Out,
}

/// A finished tool call.
///
/// Called for every call: each worker thread looks the handles of a tool up once and keeps
/// them, so a call costs two atomic updates: no label allocations, registry lookup or lock
/// shared with the other workers.
pub(crate) fn tool_call(tool: &str, transport: TransportKind, outcome: Outcome, seconds: f64) {
    type Handles = (metrics::Counter, metrics::Histogram);
    type Cache = HashMap<String, Vec<(TransportKind, Outcome, Handles)>>;
    /// Unknown tool names come from clients: only so many are kept.
    const MAX_CACHED: usize = 4096;
    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::default();
    }
    CACHE.with_borrow_mut(|cache| {
        let cached = cache.get(tool).and_then(|handles| {
            handles
                .iter()
                .find(|(t, o, _)| *t == transport && *o == outcome)
        });
        if let Some((_, _, (counter, histogram))) = cached {
            counter.increment(1);
            histogram.record(seconds);
            return;
        }
        // A handle taken before the recorder exists would count into nothing.
        let _ = handle();
        let labels = [
            ("tool", tool.to_owned()),
            ("transport", transport.label().to_owned()),
            ("outcome", outcome.label().to_owned()),
        ];
        let counter = metrics::counter!("mcp_tool_calls_total", &labels);
        let histogram = metrics::histogram!("mcp_tool_duration_seconds", "tool" => tool.to_owned());
        counter.increment(1);
        histogram.record(seconds);
        if cache.len() < MAX_CACHED {
            let entry = cache.entry(tool.to_owned()).or_default();
            entry.push((transport, outcome, (counter, histogram)));
        }
    });
}

/// A request handled, by transport and method.
///
/// Called for every request: each worker thread keeps the counters it used.
pub(crate) fn request(transport: TransportKind, method: &'static str) {
    /// Methods are the protocol's (a known set): this bounds the list all the same.
    const MAX_CACHED: usize = 256;
    thread_local! {
        static COUNTERS: RefCell<Vec<(TransportKind, &'static str, metrics::Counter)>> =
            const { RefCell::new(Vec::new()) };
    }
    COUNTERS.with_borrow_mut(|counters| {
        if let Some((_, _, counter)) = counters
            .iter()
            .find(|(t, m, _)| *t == transport && *m == method)
        {
            counter.increment(1);
            return;
        }
        let _ = handle();
        let counter =
            metrics::counter!("mcp_requests_total", "transport" => transport.label(), "method" => method);
        counter.increment(1);
        if counters.len() < MAX_CACHED {
            counters.push((transport, method, counter));
        }
    });
}

/// A session opened (`delta` 1) or closed (-1).
pub(crate) fn session(transport: TransportKind, delta: f64) {
    metrics::gauge!("mcp_sessions", "transport" => transport.label()).increment(delta);
}

/// A request refused before it reached the server, by reason (auth, host, limit, rate).
pub(crate) fn rejected(reason: &'static str) {
    metrics::counter!("mcp_rejected_total", "reason" => reason).increment(1);
}

/// Bytes received or sent on a transport, counted per message.
///
/// Called for every message: the counters of the known transports are looked up once and kept.
pub(crate) fn bytes(transport: TransportKind, direction: Direction, n: usize) {
    static COUNTERS: OnceLock<Vec<[metrics::Counter; 2]>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        // A handle taken before the recorder exists would count into nothing.
        let _ = handle();
        TransportKind::ALL
            .iter()
            .map(|t| {
                let counter = |direction: &'static str| metrics::counter!("mcp_bytes_total", "transport" => t.label(), "direction" => direction);
                [counter("in"), counter("out")]
            })
            .collect()
    });
    let Some(slot) = TransportKind::ALL.iter().position(|t| *t == transport) else {
        return;
    };
    counters[slot][direction as usize].increment(n as u64);
}

/// Sets a gauge to what was read when `/metrics` is scraped (a bridge's children, the tunnel).
#[cfg(any(feature = "bridge", feature = "tunnel"))]
pub(crate) fn gauge(name: &'static str, labels: &[(&'static str, String)], value: f64) {
    metrics::gauge!(name, labels).set(value);
}

/// Sets a counter kept elsewhere (a bridge's restarts, the tunnel's) to its total, read when
/// `/metrics` is scraped.
#[cfg(any(feature = "bridge", feature = "tunnel"))]
pub(crate) fn total(name: &'static str, labels: &[(&'static str, String)], value: u64) {
    metrics::counter!(name, labels).absolute(value);
}
