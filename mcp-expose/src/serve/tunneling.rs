//! The tunnel as `serve` follows it: starting one (for `--tunnel` and the `start_tunnel`
//! tool), announcing its URLs when it is ready, and what a failed one means.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Options, run::TunnelConfig};
use crate::{
    error::{Error, ErrorKind, Result},
    security::policy::HostPolicy,
};

/// Whether clients need a token, and the generated one to put in printed configs.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) enabled: bool,
    pub(crate) token: Option<String>,
}

/// How `start_tunnel` starts a tunnel: like `--tunnel`, followed the same way.
#[allow(clippy::too_many_arguments)]
pub(super) fn tunnel_starter(
    options: &Options,
    policy: &HostPolicy,
    serves_ws: bool,
    access: &Access,
    servers: &[(String, String)],
    finished: &CancellationToken,
    fatal: &Arc<std::sync::Mutex<Option<Error>>>,
) -> Box<dyn Fn(TunnelConfig, String) -> Result<crate::tunnel::TunnelHandle> + Send + Sync> {
    let (options, policy, servers) = (options.clone(), policy.clone(), servers.to_vec());
    let (finished, fatal, access) = (finished.clone(), fatal.clone(), access.clone());
    Box::new(move |config, local_url| {
        if !access.enabled {
            tracing::warn!("the tunnel exposes this server without authentication (--no-auth)");
        }
        let handle = crate::tunnel::TunnelHandle::start(config.clone(), local_url);
        follow_tunnel(
            &handle, &config, &options, &policy, serves_ws, &access, &servers, &finished, &fatal,
        );
        Ok(handle)
    })
}

/// Follows a tunnel: a ready tunnel's hostname joins the allowed hosts and its URLs are
/// printed; a failed one is reported (and ends the server with `--tunnel-required`).
#[allow(clippy::too_many_arguments)]
pub(super) fn follow_tunnel(
    handle: &crate::tunnel::TunnelHandle,
    config: &TunnelConfig,
    options: &Options,
    policy: &HostPolicy,
    serves_ws: bool,
    access: &Access,
    servers: &[(String, String)],
    finished: &CancellationToken,
    fatal: &Arc<std::sync::Mutex<Option<Error>>>,
) {
    use crate::tunnel::TunnelState;
    let access = access.clone();
    let kind = config.kind.clone();
    let required = options.tunnel.tunnel_required;
    let (policy, finished, fatal) = (policy.clone(), finished.clone(), fatal.clone());
    let servers = servers.to_vec();
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
                        super::announce(&crate::tunnel::banner(
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
                        let message = format!("the tunnel is required and cannot run: {message}");
                        *fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(Error::new(ErrorKind::Tunnel, message));
                        finished.cancel();
                    } else {
                        super::announce(&format!(
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
