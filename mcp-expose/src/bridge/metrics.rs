//! The bridge's metrics, read when `/metrics` is scraped.

use std::sync::atomic::Ordering;

use super::BridgeHealth;
use crate::observe::metrics::{gauge, total};

impl BridgeHealth {
    /// Reports a bridged server's children: sessions, children down, restarts, and whether the
    /// bridge is healthy (not crash-looping). `server` is its gateway prefix (empty alone).
    pub(crate) fn record_metrics(&self, server: &str) {
        let server = if server.is_empty() {
            "bridge".to_owned()
        } else {
            server.trim_start_matches('/').to_owned()
        };
        let labels = [("server", server)];
        gauge(
            "mcp_bridge_sessions",
            &labels,
            self.sessions.load(Ordering::Relaxed) as f64,
        );
        gauge(
            "mcp_bridge_children_down",
            &labels,
            self.down.load(Ordering::Relaxed) as f64,
        );
        let healthy = if self.healthy() { 1.0 } else { 0.0 };
        gauge("mcp_bridge_healthy", &labels, healthy);
        total(
            "mcp_bridge_child_restarts_total",
            &labels,
            self.restarts.load(Ordering::Relaxed),
        );
    }
}
