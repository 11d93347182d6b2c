//! The tunnel as `serve` runs it (feature `tunnel`; `no_tunnel.rs` is the same interface
//! without it): the print flags, starting one (for `--tunnel` and the `start_tunnel` tool),
//! announcing its URLs when it is ready, what a failed one means, and its part of `/ready` and
//! `/metrics`.

use std::{net::SocketAddr, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::Options;
use crate::{
    error::{Error, ErrorKind, Result},
    resource::ResourceDef,
    security::policy::HostPolicy,
    tool::ToolDef,
    tunnel::{TunnelControl, TunnelHandle, TunnelState},
};

pub(super) use crate::tunnel::Access;

pub(crate) type TunnelConfig = crate::tunnel::TunnelConfig;

/// Prints what a print flag (`--print-cloudflared-config`, `--print-systemd-unit`) asks for
/// and returns `Some`, or `None` when none was given.
pub(super) fn print_requested(options: &Options, name: &str) -> Option<Result<()>> {
    crate::tunnel::print_requested(
        &options.tunnel,
        &crate::tunnel::Deployment {
            name,
            prefixes: vec![String::new()],
            by_subdomain: false,
            http: options.http,
            ws: options.ws,
            bind: options.bind,
        },
    )
}

/// The hostname a named tunnel or proxy run by someone else serves this server at.
pub(super) fn public_hostname(options: &Options) -> Option<String> {
    options
        .tunnel
        .public_hostname
        .as_deref()
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
}

/// The server's tunnel: the one to start, and the control the `start_tunnel` tool and the
/// routes share.
#[derive(Debug, Clone)]
pub(super) struct Tunneling {
    control: Arc<TunnelControl>,
    config: Option<TunnelConfig>,
    /// `--tunnel-required`: readiness (and the server's life) depend on it.
    required: bool,
}

/// What a started tunnel's follower needs: where it forwards, and what to print and allow.
pub(super) struct Start<'a> {
    pub(super) http_addr: Option<SocketAddr>,
    pub(super) ws_addr: Option<SocketAddr>,
    pub(super) policy: &'a HostPolicy,
    pub(super) access: Access,
    /// Each server's name and path prefix.
    pub(super) servers: Vec<(String, String)>,
    pub(super) finished: &'a CancellationToken,
    pub(super) fatal: &'a Arc<std::sync::Mutex<Option<Error>>>,
}

impl Tunneling {
    /// The tunnel `config` asks for, else the one the options do (`--tunnel`, a token).
    pub(super) fn new(config: Option<TunnelConfig>, options: &Options) -> Result<Self> {
        let config = match config {
            Some(config) => Some(config),
            None => options.tunnel.config()?,
        };
        Ok(Self {
            control: Arc::default(),
            config,
            required: options.tunnel.tunnel_required,
        })
    }

    /// Whether a tunnel starts with the server.
    pub(super) fn requested(&self) -> bool {
        self.config.is_some()
    }

    /// The tunnel tools (`start_tunnel`, `stop_tunnel`, `tunnel_status`) and resource, with
    /// `--tunnel-tools`.
    pub(super) fn definitions(&self, options: &Options) -> (Vec<ToolDef>, Vec<ResourceDef>) {
        if options.tunnel.tunnel_tools {
            crate::tunnel::tool_definitions(&self.control)
        } else {
            (Vec::new(), Vec::new())
        }
    }

    /// The running tunnel, if there is one.
    pub(super) fn handle(&self) -> Option<TunnelHandle> {
        self.control.handle()
    }

    /// Its public hostname while it runs.
    pub(super) fn hostname(&self) -> Option<String> {
        self.handle().and_then(|t| t.status().hostname)
    }

    /// Prepares `start_tunnel`, and starts the tunnel when one was asked for.
    pub(super) fn start(&self, start: Start<'_>) -> Result<()> {
        let Some(origin) = start.http_addr.or(start.ws_addr) else {
            return match self.config {
                Some(_) => Err(Error::new(
                    ErrorKind::Config,
                    "a tunnel needs --http or --ws",
                )),
                None => Ok(()),
            };
        };
        let serves_ws = start.ws_addr == Some(origin);
        if start.ws_addr.is_some() && !serves_ws {
            tracing::warn!(
                "WebSocket is on another port than HTTP: only HTTP goes through a tunnel (give --ws the same port)"
            );
        }
        let ip = if origin.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            origin.ip()
        };
        let local_url = format!("http://{}", SocketAddr::new(ip, origin.port()));
        let follower = Arc::new(Follower {
            policy: start.policy.clone(),
            serves_ws,
            access: start.access,
            servers: start.servers,
            required: self.required,
            finished: start.finished.clone(),
            fatal: start.fatal.clone(),
        });
        let starter = {
            let follower = follower.clone();
            Box::new(move |config: TunnelConfig, local_url: String| {
                if !follower.access.enabled {
                    tracing::warn!(
                        "the tunnel exposes this server without authentication (--no-auth)"
                    );
                }
                let handle = TunnelHandle::start(config.clone(), local_url);
                follower.follow(&handle, &config);
                Ok(handle)
            })
        };
        self.control
            .install(local_url.clone(), self.config.clone(), starter);
        if let Some(config) = &self.config {
            let handle = TunnelHandle::start(config.clone(), local_url);
            follower.follow(&handle, config);
            self.control.set_handle(Some(handle));
        }
        Ok(())
    }

    /// Stops the tunnel, if one runs.
    pub(super) async fn stop(&self) {
        if let Some(tunnel) = self.handle() {
            tunnel.stop().await;
        }
    }

    /// Records its state and cloudflared's own metrics (read within 2 s) for `/metrics`.
    pub(super) async fn record_metrics(&self) {
        if let Some(tunnel) = self.handle() {
            let scraped = tokio::time::timeout(std::time::Duration::from_secs(2), tunnel.metrics())
                .await
                .ok()
                .flatten();
            tunnel.status().record_metrics(scraped.as_ref());
        }
    }

    /// Its component of `/ready` with `--tunnel-required`; `detailed` shows its URL.
    pub(super) fn readiness(&self, detailed: bool) -> Option<serde_json::Value> {
        let tunnel = self.handle().filter(|_| self.required)?;
        let status = tunnel.status();
        let ready = status.state == TunnelState::Ready;
        let url = status.url.filter(|_| detailed);
        Some(serde_json::json!({ "ready": ready, "state": status.state, "url": url }))
    }
}

/// Follows a tunnel: a ready tunnel's hostname joins the allowed hosts and its URLs are
/// printed; a failed one is reported (and ends the server with `--tunnel-required`).
struct Follower {
    policy: HostPolicy,
    serves_ws: bool,
    access: Access,
    servers: Vec<(String, String)>,
    required: bool,
    finished: CancellationToken,
    fatal: Arc<std::sync::Mutex<Option<Error>>>,
}

impl Follower {
    fn follow(&self, handle: &TunnelHandle, config: &TunnelConfig) {
        let (access, kind, required, serves_ws) = (
            self.access.clone(),
            config.kind.clone(),
            self.required,
            self.serves_ws,
        );
        let (policy, finished, fatal) = (
            self.policy.clone(),
            self.finished.clone(),
            self.fatal.clone(),
        );
        let servers = self.servers.clone();
        let mut status = handle.watch();
        tokio::spawn(async move {
            let mut announced: Option<(Option<String>, u32)> = None;
            loop {
                let current = status.borrow_and_update().clone();
                match current.state {
                    TunnelState::Ready => {
                        let key = (current.hostname.clone(), current.restarts);
                        if announced.as_ref() != Some(&key) {
                            policy.set_tunnel_host(current.hostname.clone(), true);
                            super::console::announce(&crate::tunnel::banner(
                                &servers, &current, &kind, serves_ws, &access,
                            ));
                            announced = Some(key);
                        }
                    }
                    TunnelState::Failed => {
                        // Gone for good: its hostname is no longer ours, nor is cloudflared on loopback.
                        policy.set_tunnel_host(None, false);
                        let message = current
                            .last_error
                            .unwrap_or_else(|| "tunnel failed".to_owned());
                        if required {
                            // Not announced: the server ends with this error, which its caller
                            // reports (announcing it too printed it twice).
                            let message =
                                format!("the tunnel is required and cannot run: {message}");
                            *fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(Error::new(ErrorKind::Tunnel, message));
                            finished.cancel();
                        } else {
                            super::console::announce(&format!(
                                "mcp-expose: tunnel unavailable, serving locally only: {message}"
                            ));
                        }
                        return;
                    }
                    TunnelState::Stopped => {
                        policy.set_tunnel_host(None, false);
                        return;
                    }
                    _ => {}
                }
                if status.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}
