//! `tunneling.rs`'s interface in a build without the `tunnel` feature: no tunnel starts, and
//! `--tunnel` says which feature is missing.

use std::{net::SocketAddr, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::Options;
use crate::{
    error::{Error, ErrorKind, Result},
    resource::ResourceDef,
    security::policy::HostPolicy,
    tool::ToolDef,
};

/// No tunnel can be configured in this build.
pub(crate) type TunnelConfig = std::convert::Infallible;

/// `--tunnel` is an error here, with what to do; there is nothing to print.
pub(super) fn print_requested(options: &Options, _name: &str) -> Option<Result<()>> {
    options.tunnel.tunnel.then(|| {
        Err(Error::new(
            ErrorKind::Config,
            "--tunnel needs mcp-expose's `tunnel` feature, which this build leaves out",
        )
        .hint("enable it (`cargo add mcp-expose --features tunnel`), rebuild, and install cloudflared"))
    })
}

pub(super) fn public_hostname(_options: &Options) -> Option<String> {
    None
}

#[derive(Debug, Clone)]
pub(super) struct Tunneling;

// The interface of `tunneling.rs`: built by `run`, read by nothing without a tunnel.
#[allow(dead_code)]
pub(super) struct Start<'a> {
    pub(super) http_addr: Option<SocketAddr>,
    pub(super) ws_addr: Option<SocketAddr>,
    pub(super) policy: &'a HostPolicy,
    pub(super) access: Access,
    pub(super) servers: Vec<(String, String)>,
    pub(super) finished: &'a CancellationToken,
    pub(super) fatal: &'a Arc<std::sync::Mutex<Option<Error>>>,
}

/// Whether clients need a token (printed configs only exist with the feature).
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(super) struct Access {
    pub(super) enabled: bool,
    pub(super) token: Option<String>,
}

impl Tunneling {
    pub(super) fn new(config: Option<TunnelConfig>, _options: &Options) -> Result<Self> {
        match config {
            Some(never) => match never {},
            None => Ok(Self),
        }
    }

    pub(super) fn requested(&self) -> bool {
        false
    }

    pub(super) fn definitions(&self, _options: &Options) -> (Vec<ToolDef>, Vec<ResourceDef>) {
        (Vec::new(), Vec::new())
    }

    pub(super) fn hostname(&self) -> Option<String> {
        None
    }

    pub(super) fn start(&self, _start: Start<'_>) -> Result<()> {
        Ok(())
    }

    pub(super) async fn stop(&self) {}

    pub(super) async fn record_metrics(&self) {}

    pub(super) fn readiness(&self, _detailed: bool) -> Option<serde_json::Value> {
        None
    }
}
