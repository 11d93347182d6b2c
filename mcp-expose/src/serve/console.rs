//! What serve prints for the person at the terminal, and where logs go: stderr, as text or
//! as JSON lines (stdout belongs to JSON-RPC in stdio mode).

use super::LogFormat;

/// Installs a stderr `tracing` subscriber unless one is already set.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints a notice for the person at the terminal on stderr; with `--log-format json`, as one
/// JSON log event instead, so that every stderr line stays a JSON object.
pub(crate) fn announce(text: &str) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(target: "mcp_expose::announce", "{}", text.trim());
    } else {
        eprintln!("{text}");
    }
}

pub(super) fn init_tracing(default_filter: &str, format: LogFormat) {
    JSON_LOGS.store(
        format == LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
