//! cloudflared's local metrics server (`/ready`, `/quicktunnel`, `/metrics`), and the tunnel's
//! own metrics, read when our `/metrics` is scraped.

use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::{TunnelState, TunnelStatus};
use crate::observe::metrics::{gauge, total};

/// `GET http://127.0.0.1:PORT{path}` -> (status, body), with a short timeout.
pub(crate) async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let request = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
            .body(Empty::<Bytes>::new())
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), request)
        .await
        .ok()
        .flatten()
}

/// The hostname `/quicktunnel` reports (empty for named tunnels).
pub(crate) async fn quick_tunnel_hostname(port: u16) -> Option<String> {
    let (status, body) = get(port, "/quicktunnel").await?;
    if status != 200 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    value.get("hostname")?.as_str().map(str::to_owned)
}

/// `readyConnections` when `/ready` answers 200.
pub(crate) async fn ready_connections(port: u16) -> Option<u64> {
    let (status, body) = get(port, "/ready").await?;
    if status != 200 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(
        value
            .get("readyConnections")
            .and_then(|n| n.as_u64())
            .unwrap_or(1),
    )
}

/// Request counters from `/metrics` (Prometheus text).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TunnelMetrics {
    /// `cloudflared_tunnel_total_requests`.
    pub total_requests: f64,
    /// `cloudflared_tunnel_request_errors`.
    pub request_errors: f64,
    /// `cloudflared_tunnel_concurrent_requests_per_tunnel`.
    pub concurrent_requests: f64,
    /// `readyConnections` from `/ready`.
    pub ready_connections: u64,
}

pub(crate) async fn scrape(port: u16) -> Option<TunnelMetrics> {
    let (status, body) = get(port, "/metrics").await?;
    if status != 200 {
        return None;
    }
    let sum = |name: &str| {
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split([' ', '{']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    Some(TunnelMetrics {
        total_requests: sum("cloudflared_tunnel_total_requests"),
        request_errors: sum("cloudflared_tunnel_request_errors"),
        concurrent_requests: sum("cloudflared_tunnel_concurrent_requests_per_tunnel"),
        ready_connections: ready_connections(port).await.unwrap_or(0),
    })
}

impl TunnelStatus {
    /// Reports the tunnel: one `mcp_tunnel_state` series per state (1 for the current one),
    /// restarts, and cloudflared's ready connections to the edge.
    pub(crate) fn record_metrics(&self, scraped: Option<&TunnelMetrics>) {
        for (state, name) in [
            (TunnelState::Starting, "starting"),
            (TunnelState::Ready, "ready"),
            (TunnelState::Restarting, "restarting"),
            (TunnelState::Failed, "failed"),
            (TunnelState::Stopped, "stopped"),
        ] {
            let current = if self.state == state { 1.0 } else { 0.0 };
            gauge("mcp_tunnel_state", &[("state", name.to_owned())], current);
        }
        total("mcp_tunnel_restarts_total", &[], u64::from(self.restarts));
        let ready = scraped.map_or(0, |m| m.ready_connections);
        gauge("mcp_tunnel_ready_connections", &[], ready as f64);
    }
}
