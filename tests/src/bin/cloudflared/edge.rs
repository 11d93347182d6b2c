//! Edge connections: registration, the dial failures of an unreachable edge, the origin check.

use std::{
    sync::{Arc, atomic::Ordering::SeqCst},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    time::sleep,
};

use crate::{
    log::{ERR, INF, ascii_box, env_ms, fail, uuid_v4},
    metrics::Shared,
    quick::resolver,
};

pub(crate) const QUIC_TIMEOUT: &str =
    "failed to dial to edge with quic: timeout: no recent network activity";
/// Edge address and location of connection i (quick tunnels register 1, named ones 4).
pub(crate) const EDGES: [(&str, &str); 4] = [
    ("198.41.200.13", "ams01"),
    ("198.41.192.107", "fra08"),
    ("198.41.200.233", "ams16"),
    ("198.41.192.37", "fra13"),
];

/// One plain HTTP/1.1 `GET <service>/health`; returns the status code.
pub(crate) async fn origin_check(service: &str) -> Result<u16, String> {
    let rest = service
        .strip_prefix("http://")
        .ok_or("only http:// origins are checked")?;
    let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
    let path = format!("/{}/health", base.trim_matches('/')).replace("//", "/");
    let addr = match authority.contains(':') {
        true => authority.to_string(),
        false => format!("{authority}:80"),
    };
    let exchange = async {
        let mut stream = TcpStream::connect(&addr).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut buf = vec![0; 1024];
        let n = stream.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "timeout awaiting response headers".to_string())?
        .map_err(|e| match e.kind() {
            // Go's wording, as in cloudflared's own origin errors.
            std::io::ErrorKind::ConnectionRefused => {
                format!("dial tcp {addr}: connect: connection refused")
            }
            _ => format!("dial tcp {addr}: {e}"),
        })?;
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    code.ok_or_else(|| format!("malformed response {head:?}"))
}

/// Edge connections: register (or, with the edge unreachable, re-dial forever), then the
/// origin check. `edge` is `--edge`/`TUNNEL_EDGE`: the double has no edge there to reach.
pub(crate) async fn connect(
    st: Arc<Shared>,
    mode: String,
    protocol: &'static str,
    conns: usize,
    edge: Option<String>,
) {
    st.ha.store(conns as u32, SeqCst);
    if edge.is_some() || mode == "edge-unreachable" {
        redial(edge, protocol).await;
    }
    sleep(env_ms("FAKE_CLOUDFLARED_READY_DELAY_MS", 300)).await;
    if mode == "never-ready" {
        // As with the edge unreachable: dials time out, backoff 2,4,..,64 s, /ready stays 503.
        let ip = EDGES[0].0;
        let (msg, error) = dial_failure(protocol, ip);
        for backoff in [2, 4, 8, 16, 32].into_iter().chain(std::iter::repeat(64)) {
            log!(ERR, msg, "connIndex" => 0, "error" => error, "event" => 0, "ip" => ip);
            log!(INF, "Retrying connection in up to {backoff}s", "connIndex" => 0, "event" => 0,
                "ip" => ip);
            sleep(Duration::from_secs(backoff)).await;
        }
    }
    for (i, (ip, location)) in EDGES.iter().take(conns).enumerate() {
        if i > 0 {
            sleep(Duration::from_millis(50)).await;
        }
        log!(INF, "Registered tunnel connection", "connIndex" => i, "connection" => uuid_v4(),
            "event" => 0, "ip" => ip, "location" => location, "protocol" => protocol);
        st.ready.fetch_add(1, SeqCst);
    }
    if st.service.is_empty() {
        return;
    }
    // Not real cloudflared behaviour: lets tests see that the double reached the origin. It is
    // counted like a proxied request so that the request metrics move.
    let url = format!("{}/health", st.service.trim_end_matches('/'));
    st.requests.fetch_add(1, SeqCst);
    match origin_check(&st.service).await {
        Ok(code) => {
            if let Ok(mut codes) = st.codes.lock() {
                *codes.entry(code).or_default() += 1;
            }
            log!(INF, "origin check", "status" => code, "url" => url);
        }
        Err(e) => {
            st.errors.fetch_add(1, SeqCst);
            log!(ERR, "origin check failed", "error" => e, "url" => url);
        }
    }
}

fn dial_failure(protocol: &str, ip: &str) -> (&'static str, String) {
    match protocol {
        "quic" => ("Failed to dial a quic connection", QUIC_TIMEOUT.to_owned()),
        _ => (
            "Unable to establish connection with Cloudflare edge",
            format!("DialContext error: dial tcp {ip}:443: i/o timeout"),
        ),
    }
}

/// The host of `--edge host:port`, or the first edge's address.
pub(crate) fn edge_host(edge: Option<&str>) -> String {
    let Some(edge) = edge else {
        return EDGES[0].0.to_owned();
    };
    let host = edge.rsplit_once(':').map_or(edge, |(h, _)| h);
    host.trim_matches(['[', ']']).to_owned()
}

/// As seen with the edge unreachable: each dial times out after about 5 s
/// (`FAKE_CLOUDFLARED_REDIAL_MS`) and is tried again at once, without `Retrying connection`
/// lines; nothing registers.
async fn redial(edge: Option<String>, protocol: &str) -> ! {
    let ip = edge_host(edge.as_deref());
    let (msg, error) = dial_failure(protocol, &ip);
    loop {
        sleep(env_ms("FAKE_CLOUDFLARED_REDIAL_MS", 5000)).await;
        log!(ERR, msg, "connIndex" => 0, "error" => error, "event" => 0, "ip" => ip);
    }
}

/// Edge discovery without DNS: the 8-line block, then the bare final error, exit 1 (about 0.6 s
/// after start).
pub(crate) async fn dns_failure() -> ! {
    sleep(Duration::from_millis(550)).await;
    let srv = "_v2-origintunneld._tcp.argotunnel.com";
    let resolver = resolver();
    let udp = resolver.trim_end_matches(":53");
    let error =
        format!("lookup {srv} on {resolver}: dial udp {udp}:53: connect: network is unreachable");
    log!(ERR, "Error looking up Cloudflare edge IPs: the DNS query failed", "error" => error);
    for line in DNS_HELP {
        log!(ERR, line);
    }
    fail(
        &format!("Could not lookup srv records on {srv}: {error}"),
        1,
    )
}

const DNS_HELP: [&str; 7] = [
    "Please try the following things to diagnose this issue:",
    "  1. ensure that argotunnel.com is returning \"origintunneld\" service records.",
    "     Run your system's equivalent of: dig srv _origintunneld._tcp.argotunnel.com",
    "  2. ensure that your DNS resolver is not returning compressed SRV records.",
    "     See GitHub issue https://github.com/golang/go/issues/27546",
    "     For example, you could use Cloudflare's 1.1.1.1 as your resolver:",
    "     https://developers.cloudflare.com/1.1.1.1/setting-up-1.1.1.1/",
];

/// The connectivity pre-check some time after start (`FAKE_CLOUDFLARED_PRECHECK_MS`, default
/// 10 s): a second ASCII box, which a supervisor must not take for the URL banner.
pub(crate) async fn precheck(edge: Option<String>) {
    sleep(env_ms("FAKE_CLOUDFLARED_PRECHECK_MS", 10_000)).await;
    let target = format!("{}:7844", edge_host(edge.as_deref()));
    let error = "no recent network activity";
    log!(ERR, "precheck", "component" => "udp", "error" => error, "result" => "FAIL",
        "target" => target);
    log!(INF, "precheck", "component" => "tcp", "result" => "PASS", "target" => target);
    let udp = format!("UDP Connectivity {target}  FAIL  {error}");
    let tcp = format!("TCP Connectivity {target}  PASS");
    ascii_box(&[
        "Connectivity pre-check",
        "---",
        &udp,
        &tcp,
        "---",
        "ERROR: Allow outbound QUIC traffic on port 7844 or use HTTP2.",
    ]);
}
