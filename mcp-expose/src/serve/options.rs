//! Command-line and environment options of `serve()`.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The MCP revisions a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum Revisions {
    /// Every revision from 2024-11-05 on: 2025 clients open sessions with `initialize`, MCP
    /// 2026-07-28 clients send each request on its own.
    #[default]
    All,
    /// MCP 2026-07-28 only: `initialize` is refused (-32601), so no 2025 session starts and
    /// the server keeps no session state.
    #[value(name = "2026-07-28", alias = "2026")]
    Latest,
}

/// How and where to serve. Parsed from the command line by [`Server::serve`](crate::Server::serve);
/// set from code with the [`Server`](crate::Server) builder methods.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct Options {
    /// Serve MCP over stdin/stdout (the default when no transport is given).
    #[arg(long)]
    pub stdio: bool,

    /// Serve streamable HTTP on this port, at /mcp (0 picks a free port).
    #[arg(long, value_name = "PORT", env = "MCP_EXPOSE_HTTP_PORT")]
    pub http: Option<u16>,

    /// Serve WebSocket on this port, at /ws and / (the same port as --http shares one listener).
    #[arg(long, value_name = "PORT", env = "MCP_EXPOSE_WS_PORT")]
    pub ws: Option<u16>,

    /// Address to bind. Loopback by default; anything else exposes the server to the network.
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), env = "MCP_EXPOSE_BIND")]
    pub bind: IpAddr,

    /// Host names accepted in the Host header besides localhost/127.0.0.1/::1 (repeatable;
    /// `*` accepts any host).
    #[arg(
        long = "allowed-host",
        value_name = "HOST",
        value_delimiter = ',',
        env = "MCP_EXPOSE_ALLOWED_HOSTS"
    )]
    pub allowed_hosts: Vec<String>,

    /// Origins accepted from browsers besides those on an allowed host (repeatable).
    #[arg(
        long = "allowed-origin",
        value_name = "ORIGIN",
        value_delimiter = ',',
        env = "MCP_EXPOSE_ALLOWED_ORIGINS"
    )]
    pub allowed_origins: Vec<String>,

    /// Trust `X-Forwarded-Host` (and `X-Forwarded-Proto`) only from these proxy addresses or
    /// networks, e.g. `127.0.0.1` or `10.0.0.0/8` (repeatable). From anyone else they are ignored.
    #[arg(
        long = "trusted-proxy",
        value_name = "ADDR[/BITS]",
        value_delimiter = ',',
        value_parser = parse_net,
        env = "MCP_EXPOSE_TRUSTED_PROXIES"
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Answer CORS requests from these browser origins (repeatable; `*` for any): allows and
    /// exposes `Mcp-Session-Id`, `Mcp-Protocol-Version`, `Authorization`, `Last-Event-ID`.
    /// Each origin is also accepted by the Origin check.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        value_delimiter = ',',
        env = "MCP_EXPOSE_CORS_ORIGINS"
    )]
    pub cors_origins: Vec<String>,

    /// Streamable HTTP without sessions: every POST is answered on its own, in JSON when possible.
    #[arg(long)]
    pub stateless: bool,

    /// The MCP revisions to speak: `all`, or `2026-07-28` alone (`initialize` refused).
    #[arg(long, value_enum, value_name = "REVISIONS", default_value_t = Revisions::All)]
    pub protocol: Revisions,

    /// Largest accepted message in bytes: a stdio line, a WebSocket message, an HTTP body.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_size: usize,

    /// Time between WebSocket pings (seconds, or a unit: 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "25s", value_parser = crate::flags::duration)]
    pub ws_ping_interval: Duration,

    /// Time between SSE keep-alive comments (seconds, or a unit).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = crate::flags::duration)]
    pub sse_keep_alive: Duration,

    /// Cancel a tool call running longer than this (seconds, or a unit: 90s, 5m), answering
    /// with an error [default: never].
    #[arg(long, value_name = "DURATION", value_parser = crate::flags::duration)]
    pub tool_timeout: Option<Duration>,

    /// The key that signs the `requestState` of input-required results (MCP 2026-07-28), so
    /// that any replica holding it can continue a call: a file of at least 32 bytes
    /// [default: a random key per process].
    #[arg(long, value_name = "FILE", env = "MCP_EXPOSE_STATE_KEY_FILE")]
    pub state_key_file: Option<std::path::PathBuf>,

    /// How long the `requestState` of an input-required result is accepted (seconds, or a
    /// unit).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::flags::duration)]
    pub input_state_ttl: Duration,

    /// Where state shared by replicas is kept: `redis://HOST:PORT/DB` (sessions, event streams,
    /// clients' answers, tasks, resource updates; build with the `redis` feature), or `memory`
    /// [default: memory, this process only].
    #[arg(long, value_name = "URL", env = "MCP_EXPOSE_STATE")]
    pub state: Option<String>,

    /// How long a task (the tasks extension) is kept after it was created, and the longest
    /// its tool may run (seconds, or a unit).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::flags::duration)]
    pub task_ttl: Duration,

    /// Tool calls one session may have in flight; more are refused with an error.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_inflight_per_session: usize,

    /// Tool calls all sessions together may have in flight.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_inflight: usize,

    /// Sessions (HTTP sessions, WebSocket connections, legacy SSE streams) held at once; more
    /// are refused with 503 and Retry-After [default: 10000; 256 for a per-session bridge, a
    /// process each].
    #[arg(long, value_name = "N", env = "MCP_EXPOSE_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,

    /// How long a connection may take to send a whole request head; also how long an idle
    /// keep-alive connection stays open (seconds, or a unit).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::flags::duration)]
    pub header_read_timeout: Duration,

    /// How long a response may wait for a client that takes none of it before the connection
    /// is closed (a client that stopped reading; seconds, or a unit).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::flags::duration)]
    pub write_timeout: Duration,

    /// Connections (WebSockets included) held at once; more are answered 503 and closed
    /// [default: the file-descriptor limit, raised to its maximum, less room for the rest].
    #[arg(long, value_name = "N", env = "MCP_EXPOSE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Connections held at once from one client address (not counting 127.0.0.1, ::1 and
    /// --trusted-proxy peers, which speak for many clients); more are answered 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections_per_client: usize,

    /// Requests per second allowed per client (per bearer token, or per address without one);
    /// more get 429 with Retry-After (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rate_limit: u32,

    /// How long in-flight tool calls get to finish on shutdown (seconds, or a unit).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::flags::duration)]
    pub shutdown_grace: Duration,

    /// Log filter for stderr (RUST_LOG syntax; RUST_LOG itself wins when set).
    #[arg(long, value_name = "FILTER", default_value = "info,rmcp=warn")]
    pub log_level: String,

    /// Also serve `GET /metrics` on this address (keep it on loopback: it is never behind the
    /// tunnel). On the main listener /metrics needs the token like everything else.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_bind: Option<std::net::SocketAddr>,

    /// Log line format on stderr.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Authentication flags.
    #[command(flatten)]
    pub auth: crate::security::AuthOptions,

    /// Tunnel flags (feature `tunnel`; without it, `--tunnel` says which feature is missing).
    #[command(flatten)]
    pub tunnel: TunnelOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stdio: false,
            http: None,
            ws: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            stateless: false,
            protocol: Revisions::All,
            max_message_size: 16 * 1024 * 1024,
            ws_ping_interval: Duration::from_secs(25),
            sse_keep_alive: Duration::from_secs(15),
            tool_timeout: None,
            state_key_file: None,
            input_state_ttl: Duration::from_secs(600),
            task_ttl: Duration::from_secs(3600),
            state: None,
            max_inflight_per_session: 64,
            max_inflight: 1024,
            max_sessions: None,
            header_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: None,
            max_connections_per_client: 256,
            rate_limit: 0,
            shutdown_grace: Duration::from_secs(10),
            log_level: "info,rmcp=warn".to_owned(),
            metrics_bind: None,
            log_format: LogFormat::Text,
            auth: crate::security::AuthOptions::default(),
            tunnel: TunnelOptions::default(),
        }
    }
}

impl Options {
    /// stdio when no transport was asked for.
    pub(crate) fn stdio_selected(&self) -> bool {
        self.stdio || (self.http.is_none() && self.ws.is_none())
    }
}

/// `10.0.0.0/8`, or a single address `127.0.0.1` / `::1`.
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("expected an address or network like 10.0.0.0/8, got `{text}`"))
}

// The command line of `serve()`: the options plus `--help` and `--version`, in the server's
// own name (set when parsing, with its description as the help's first line).
#[derive(Debug, clap::Parser)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) options: Options,

    #[command(flatten)]
    pub(crate) nginx: super::nginx::NginxFlags,
}

#[cfg(feature = "tunnel")]
use crate::tunnel::TunnelOptions;

#[cfg(not(feature = "tunnel"))]
/// Tunnel flags in a build without the `tunnel` feature: `--tunnel` is accepted (hidden) to
/// say which feature is missing.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct TunnelOptions {
    #[arg(long = "tunnel", hide = true)]
    pub(crate) tunnel: bool,
}
