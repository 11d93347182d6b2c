//! `--tunnel`: a public URL through Cloudflare for the local listener, with cloudflared
//! launched and supervised (restarts with backoff, readiness from its metrics server, clean stop).
//!
//! Quick tunnels (`--tunnel`) get a random `https://<words>.trycloudflare.com`; named tunnels
//! (`--tunnel-token-file F` or `TUNNEL_TOKEN`, plus `--public-hostname H`) serve your own
//! hostname, routed to the listener in the tunnel's settings.
//!
//! From the command line, any server that calls [`Server::serve`](crate::Server::serve):
//! `my-server --http 8000 --tunnel`. From code, with [`Server::tunnel`](crate::Server::tunnel)
//! and the handle [`Running::tunnel`](crate::Running::tunnel) gives:
//!
//! ```rust,no_run
//! use mcp_expose::{Server, tunnel::TunnelConfig};
//!
//! # async fn run() -> mcp_expose::Result<()> {
//! let running = Server::new("bioseq", "1.0")
//!     .tunnel(TunnelConfig::quick()) // HTTP and WebSocket on one free local port
//!     .start()
//!     .await?;
//! if let Some(tunnel) = running.tunnel() {
//!     match tunnel.ready().await {
//!         Ok(status) => eprintln!("serving at {:?}", status.mcp_url()),
//!         Err(reason) => eprintln!("no tunnel ({reason}); still serving locally"),
//!     }
//! }
//! running.finished().await;
//! # Ok(()) }
//! ```
//!
//! Without cloudflared on the `PATH` (or at [`TunnelConfig::cloudflared`]) the server keeps
//! serving locally and the handle reports why.

mod announce;
mod cli;
mod deploy;
mod metrics;
mod output;
mod process;
mod supervisor;
mod tools;

use std::{
    fmt,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use announce::client_configs;
pub(crate) use announce::{Access, banner};
pub use cli::TunnelOptions;
pub(crate) use deploy::{Deployment, print_requested};
pub use metrics::TunnelMetrics;
pub(crate) use tools::{TunnelControl, definitions as tool_definitions};

/// Which tunnel.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelKind {
    /// A quick tunnel on trycloudflare.com: no account, a new random hostname each start.
    Quick,
    /// A named tunnel run with its token; `hostname` is the public hostname routed to it.
    Named {
        /// The tunnel token (reaches cloudflared through its environment, never its argv).
        token: String,
        /// The public hostname, for example `mcp.example.com`.
        hostname: String,
    },
}

impl fmt::Debug for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelKind::Quick => f.write_str("Quick"),
            TunnelKind::Named { hostname, .. } => f
                .debug_struct("Named")
                .field("token", &"<redacted>")
                .field("hostname", hostname)
                .finish(),
        }
    }
}

/// cloudflared's transport to the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelProtocol {
    /// cloudflared's choice (QUIC; quick tunnels never fall back).
    #[default]
    Auto,
    /// QUIC over UDP 7844.
    Quic,
    /// HTTP/2 over TCP 443, for networks that block UDP.
    Http2,
}

/// How to run the tunnel.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use = "a TunnelConfig does nothing until given to `Server::tunnel`"]
pub struct TunnelConfig {
    /// Quick or named.
    pub kind: TunnelKind,
    /// The cloudflared executable (default `cloudflared`, found on PATH).
    pub cloudflared: PathBuf,
    /// Edge transport.
    pub protocol: TunnelProtocol,
    /// How long a start may take to become ready before it counts as failed.
    pub ready_timeout: Duration,
    /// How long cloudflared gets to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// First restart delay; doubles per consecutive failure, with jitter.
    pub backoff_initial: Duration,
    /// Largest restart delay.
    pub backoff_max: Duration,
    /// Delay after quick-tunnel creation was rate limited (429 / error 1015).
    pub rate_limited_backoff: Duration,
    /// A run ready at least this long resets the backoff.
    pub stable_after: Duration,
}

impl TunnelConfig {
    /// A quick tunnel with default settings.
    pub fn quick() -> Self {
        Self::new(TunnelKind::Quick)
    }

    /// A named tunnel serving `hostname`.
    pub fn named(token: impl Into<String>, hostname: impl Into<String>) -> Self {
        Self::new(TunnelKind::Named {
            token: token.into(),
            hostname: hostname.into(),
        })
    }

    fn new(kind: TunnelKind) -> Self {
        Self {
            kind,
            cloudflared: PathBuf::from("cloudflared"),
            protocol: TunnelProtocol::Auto,
            ready_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            rate_limited_backoff: Duration::from_secs(300),
            stable_after: Duration::from_secs(60),
        }
    }

    /// The cloudflared executable.
    pub fn cloudflared(mut self, path: impl Into<PathBuf>) -> Self {
        self.cloudflared = path.into();
        self
    }

    /// Edge transport.
    pub fn protocol(mut self, protocol: TunnelProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Ready timeout.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }
}

/// Where the tunnel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TunnelState {
    /// cloudflared is starting; not reachable yet.
    Starting,
    /// Reachable at `url`.
    Ready,
    /// cloudflared exited and will be started again.
    Restarting,
    /// cloudflared cannot run (not installed, bad configuration); see `last_error`.
    Failed,
    /// Stopped on request.
    Stopped,
}

/// A snapshot of the tunnel.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TunnelStatus {
    /// Where it is in its life.
    pub state: TunnelState,
    /// `quick` or `named`.
    pub kind: &'static str,
    /// The public base URL (`https://host`), once known.
    pub url: Option<String>,
    /// The public hostname, once known.
    pub hostname: Option<String>,
    /// The local origin cloudflared forwards to.
    pub local_url: String,
    /// cloudflared's process id while it runs.
    pub pid: Option<u32>,
    /// `cloudflared --version`, when it could be read.
    pub cloudflared_version: Option<String>,
    /// How many times cloudflared was restarted.
    pub restarts: u32,
    /// When the current run became ready.
    pub ready_since: Option<SystemTime>,
    /// Port of cloudflared's metrics server on 127.0.0.1.
    pub metrics_port: Option<u16>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl TunnelStatus {
    /// Seconds since the current run became ready.
    pub fn uptime_seconds(&self) -> Option<u64> {
        self.ready_since
            .and_then(|t| t.elapsed().ok())
            .map(|d| d.as_secs())
    }

    /// `https://host/mcp`, when ready.
    pub fn mcp_url(&self) -> Option<String> {
        self.url.as_ref().map(|u| format!("{u}/mcp"))
    }

    /// `wss://host/ws`, when ready.
    pub fn ws_url(&self) -> Option<String> {
        self.hostname.as_ref().map(|h| format!("wss://{h}/ws"))
    }
}

/// A running tunnel supervisor: status, metrics, stop.
#[derive(Debug, Clone)]
pub struct TunnelHandle {
    status: watch::Receiver<TunnelStatus>,
    stop: CancellationToken,
    done: CancellationToken,
}

impl TunnelHandle {
    /// Starts supervising cloudflared for the origin at `local_url` (`http://127.0.0.1:PORT`).
    pub fn start(config: TunnelConfig, local_url: String) -> Self {
        let kind = match config.kind {
            TunnelKind::Quick => "quick",
            TunnelKind::Named { .. } => "named",
        };
        let initial = TunnelStatus {
            state: TunnelState::Starting,
            kind,
            url: None,
            hostname: None,
            local_url: local_url.clone(),
            pid: None,
            cloudflared_version: None,
            restarts: 0,
            ready_since: None,
            metrics_port: None,
            last_error: None,
        };
        let (tx, rx) = watch::channel(initial);
        let stop = CancellationToken::new();
        let done = CancellationToken::new();
        let supervisor = supervisor::Supervisor::new(config, local_url, tx, stop.clone());
        let finished = done.clone();
        tokio::spawn(async move {
            supervisor.run().await;
            finished.cancel();
        });
        Self {
            status: rx,
            stop,
            done,
        }
    }

    /// The current status.
    pub fn status(&self) -> TunnelStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<TunnelStatus> {
        self.status.clone()
    }

    /// Waits until the tunnel is ready (returns its status) or has failed (returns the error).
    pub async fn ready(&self) -> Result<TunnelStatus, String> {
        let mut status = self.status.clone();
        let result = status
            .wait_for(|s| {
                matches!(
                    s.state,
                    TunnelState::Ready | TunnelState::Failed | TunnelState::Stopped
                )
            })
            .await;
        match result {
            Ok(s) if s.state == TunnelState::Ready => Ok(s.clone()),
            Ok(s) => Err(s
                .last_error
                .clone()
                .unwrap_or_else(|| "tunnel stopped".to_owned())),
            Err(_) => Err("tunnel supervisor ended".to_owned()),
        }
    }

    /// Request counters and ready connections from cloudflared's metrics server.
    pub async fn metrics(&self) -> Option<TunnelMetrics> {
        let port = self.status.borrow().metrics_port?;
        metrics::scrape(port).await
    }

    /// Stops cloudflared (SIGTERM, grace period, SIGKILL) and waits for it.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.done.cancelled().await;
    }
}
