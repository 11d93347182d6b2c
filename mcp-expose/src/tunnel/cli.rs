//! The tunnel's command-line flags.

use std::{path::PathBuf, time::Duration};

use super::{TunnelConfig, TunnelProtocol};
use crate::error::{Error, ErrorKind, Result};

/// Tunnel flags (feature `tunnel`).
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct TunnelOptions {
    /// Expose the server through a Cloudflare tunnel: a quick tunnel
    /// (`https://<random>.trycloudflare.com`), or a named one when a token is given.
    #[arg(long)]
    pub tunnel: bool,

    /// Named tunnel: a file holding the tunnel token (TUNNEL_TOKEN in the environment also works).
    #[arg(long, value_name = "FILE")]
    pub tunnel_token_file: Option<PathBuf>,

    /// Named tunnel: the token (read from the environment only, so it never shows in `ps`).
    #[arg(skip = std::env::var("TUNNEL_TOKEN").ok())]
    pub tunnel_token: Option<String>,

    /// The public hostname routed to this server by the named tunnel (mcp.example.com).
    #[arg(long, value_name = "HOST")]
    pub public_hostname: Option<String>,

    /// The cloudflared executable.
    #[arg(long, value_name = "PATH", default_value = "cloudflared")]
    pub cloudflared: PathBuf,

    /// cloudflared's transport to Cloudflare's edge (http2 where UDP is blocked).
    #[arg(long, value_enum, value_name = "PROTOCOL", default_value_t)]
    pub tunnel_protocol: TunnelProtocol,

    /// Exit when the tunnel cannot run (instead of serving locally only).
    #[arg(long)]
    pub tunnel_required: bool,

    /// Offer the tunnel as MCP tools (start_tunnel, stop_tunnel, get_tunnel_status) and
    /// resources (tunnel://status, tunnel://url, tunnel://config, tunnel://metrics).
    #[arg(long)]
    pub tunnel_tools: bool,

    /// Print a cloudflared config.yml for a named tunnel serving --public-hostname, and exit.
    #[arg(long)]
    pub print_cloudflared_config: bool,

    /// The named tunnel's id, for --print-cloudflared-config.
    #[arg(long, value_name = "UUID")]
    pub tunnel_id: Option<String>,

    /// The named tunnel's credentials file, for --print-cloudflared-config.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Print a systemd unit running this server with the other flags given, and exit.
    #[arg(long)]
    pub print_systemd_unit: bool,

    /// How long a tunnel start may take to become ready (seconds, or a unit: 90s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::flags::duration)]
    pub tunnel_ready_timeout: Duration,
}

impl TunnelOptions {
    /// Whether a tunnel was asked for.
    pub fn requested(&self) -> bool {
        self.tunnel || self.tunnel_token_file.is_some()
    }

    /// The tunnel configuration, when one was asked for.
    pub fn config(&self) -> Result<Option<TunnelConfig>> {
        if !self.requested() {
            return Ok(None);
        }
        let token = match &self.tunnel_token_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| {
                        Error::with_source(
                            ErrorKind::Config,
                            format!("cannot read {}", file.display()),
                            e,
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => self.tunnel_token.clone().filter(|t| !t.trim().is_empty()),
        };
        let config = match (token, &self.public_hostname) {
            (Some(token), Some(hostname)) => TunnelConfig::named(token, hostname.trim()),
            (Some(_), None) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "a named tunnel needs --public-hostname (the hostname routed to this server)",
                ));
            }
            (None, _) => TunnelConfig::quick(),
        };
        Ok(Some(
            config
                .cloudflared(self.cloudflared.clone())
                .protocol(self.tunnel_protocol)
                .ready_timeout(match self.tunnel_ready_timeout {
                    // Options built with `Default` rather than parsed: the flag's default.
                    Duration::ZERO => Duration::from_secs(60),
                    timeout => timeout.max(Duration::from_secs(1)),
                }),
        ))
    }
}
