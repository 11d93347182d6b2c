//! The metrics server: `/ready`, `/healthcheck`, `/quicktunnel`, `/config`, `/metrics`.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering::SeqCst},
    },
};

use axum::{
    extract::State,
    http::{StatusCode, Uri, header},
};
use serde_json::json;
use tokio::net::TcpListener;

use crate::{
    cli::{BUILT, VERSION},
    edge::EDGES,
    log::fail,
};

/// State behind the metrics server.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) connector_id: String,
    pub(crate) hostname: String,
    pub(crate) service: String,
    pub(crate) ready: AtomicU32,
    pub(crate) ha: AtomicU32,
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) codes: Mutex<BTreeMap<u16, u64>>,
}

pub(crate) type Reply = (StatusCode, [(header::HeaderName, &'static str); 1], String);

pub(crate) async fn metrics_handler(State(st): State<Arc<Shared>>, uri: Uri) -> Reply {
    let ready = st.ready.load(SeqCst);
    let (code, body) = match uri.path() {
        // Written by hand: these keep Go's struct field order, not serde_json's sorted keys.
        "/ready" => {
            let (status, id) = (if ready > 0 { 200 } else { 503 }, &st.connector_id);
            let body =
                format!(r#"{{"status":{status},"readyConnections":{ready},"connectorId":"{id}"}}"#);
            (status, body)
        }
        "/healthcheck" => (200, "OK\n".to_string()),
        "/quicktunnel" => (200, json!({"hostname": st.hostname}).to_string()),
        "/config" => {
            let ingress = match st.service.as_str() {
                "" => json!([]),
                service => json!([{ "service": service }]),
            };
            let config =
                format!(r#"{{"ingress":{ingress},"warp-routing":{{}},"originRequest":{{}}}}"#);
            (200, format!(r#"{{"version":-1,"config":{config}}}"#))
        }
        "/metrics" => (200, prometheus(&st, ready)),
        _ => (404, "404 page not found\n".to_string()),
    };
    let ctype = match uri.path() {
        "/metrics" => "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
        _ => "text/plain; charset=utf-8",
    };
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, ctype)], body)
}

pub(crate) fn prometheus(st: &Shared, ready: u32) -> String {
    let codes = st.codes.lock().map(|c| c.clone()).unwrap_or_default();
    let codes: String = codes
        .iter()
        .map(|(c, n)| format!("cloudflared_tunnel_response_by_code{{status_code=\"{c}\"}} {n}\n"))
        .collect();
    let name = "cloudflared_tunnel_server_locations";
    // Like response_by_code, absent until a request went through.
    let served = if st.requests.load(SeqCst) > 0 {
        ready
    } else {
        0
    };
    let locations: String = (EDGES.iter().take(served as usize).enumerate())
        .map(|(i, (_, l))| format!("{name}{{connection_id=\"{i}\",edge_location=\"{l}\"}} 1\n"))
        .collect();
    let hosts = match st.hostname.as_str() {
        "" => String::new(),
        h => {
            format!("cloudflared_tunnel_user_hostnames_counts{{userHostname=\"https://{h}\"}} 1\n")
        }
    };
    let (ha, errors) = (st.ha.load(SeqCst), st.errors.load(SeqCst));
    let requests = st.requests.load(SeqCst);
    format!(
        r#"# HELP build_info Build and version information
# TYPE build_info gauge
build_info{{goversion="go1.24.6",revision="{BUILT}",type="",version="{VERSION}"}} 1
# HELP cloudflared_tunnel_concurrent_requests_per_tunnel Concurrent requests proxied through each tunnel
# TYPE cloudflared_tunnel_concurrent_requests_per_tunnel gauge
cloudflared_tunnel_concurrent_requests_per_tunnel 0
# HELP cloudflared_tunnel_ha_connections Number of active ha connections
# TYPE cloudflared_tunnel_ha_connections gauge
cloudflared_tunnel_ha_connections {ha}
# HELP cloudflared_tunnel_request_errors Amount of errors due to proxying request
# TYPE cloudflared_tunnel_request_errors counter
cloudflared_tunnel_request_errors {errors}
# HELP cloudflared_tunnel_response_by_code Count of responses by HTTP status code
# TYPE cloudflared_tunnel_response_by_code counter
{codes}# HELP cloudflared_tunnel_server_locations Where each tunnel is connected to. 1 means current location, 0 means previous locations.
# TYPE cloudflared_tunnel_server_locations gauge
{locations}# HELP cloudflared_tunnel_total_requests Amount of requests proxied through all the tunnels
# TYPE cloudflared_tunnel_total_requests counter
cloudflared_tunnel_total_requests {requests}
# HELP cloudflared_tunnel_user_hostnames_counts Which user hostnames cloudflared is serving
# TYPE cloudflared_tunnel_user_hostnames_counts counter
{hosts}"#
    )
}

/// Binds the metrics listener; without `--metrics` tries 127.0.0.1:20241..20245, then any port.
pub(crate) async fn bind_metrics(flag: Option<String>) -> TcpListener {
    let defaults = (20241..=20245).map(|p| format!("127.0.0.1:{p}"));
    let candidates: Vec<String> = match flag {
        Some(addr) => vec![addr],
        None => defaults.chain(["127.0.0.1:0".to_string()]).collect(),
    };
    let mut last_error = None;
    for addr in &candidates {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) => last_error = Some((addr, e)),
        }
    }
    let (addr, e) = last_error.expect("at least one candidate address");
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use".to_string(),
        _ => e.to_string(),
    };
    let at = format!("failed to bind to address ({addr}): listen tcp {addr}: bind: {why}");
    fail(&format!("Error opening metrics server listener: {at}"), 1)
}
