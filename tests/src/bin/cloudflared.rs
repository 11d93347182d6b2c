//! A test double of `cloudflared` (see /work/shared/facts/cloudflared.md) for the supervisor's
//! integration tests: same CLI, log formats, metrics endpoints, signals and exit codes as the real
//! binary, but no edge and no proxying. `FAKE_CLOUDFLARED_MODE` picks a behaviour: normal, offline,
//! rate-limited, api-hang, never-ready, crash, ignore-sigterm, bad-token. Other knobs (env):
//! `FAKE_CLOUDFLARED_{READY_DELAY_MS,HANG_MS,CRASH_MS,SHUTDOWN_MS,PIDFILE}`.

use std::{
    collections::{BTreeMap, hash_map::RandomState},
    hash::BuildHasher as _,
    io::{IsTerminal as _, Write as _},
    process::exit,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering::SeqCst},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, Uri, header},
};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    signal::unix::{Signal, SignalKind, signal},
    time::sleep,
};

const VERSION: &str = "2026.8.2";
const BUILT: &str = "2026-08-20-1200 UTC";
const MODES: &str =
    "normal offline rate-limited api-hang never-ready crash ignore-sigterm bad-token";
const DISCLAIMER: &str = "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/get-started";
const CREATED: &str =
    "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):";
const OFFLINE: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: connect: network is unreachable";
const API_TIMEOUT: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": net/http: timeout awaiting response headers (Client.Timeout exceeded while awaiting headers)";
const NOT_JSON: &str = "invalid character 'e' looking for beginning of value";
const BAD_TOKEN: &str = "Provided Tunnel token is not valid.";
const NO_TUNNEL: &str = "\"cloudflared tunnel run\" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.";
const PROTOCOLS: &str = "Available protocols: 'auto' - automatically chooses the best protocol over time (the default; and also the recommended one); 'quic' - based on QUIC, relying on UDP egress to Cloudflare edge; 'http2' - using Go's HTTP2 library, relying on TCP egress to Cloudflare edge";
const QUIC_TIMEOUT: &str = "failed to dial to edge with quic: timeout: no recent network activity";
const HELP: &str = "NAME:
   cloudflared tunnel - Use Cloudflare Tunnel to expose private services to the Internet or to Cloudflare connected private users.

USAGE:
   cloudflared tunnel [tunnel command options] [subcommand options]

OPTIONS:
   --url value      Connect to the local webserver at URL. (default: \"http://localhost:8080\")
   --metrics value  Listen address for metrics reporting.
";
/// Edge address and location of connection i (quick tunnels register 1, named ones 4).
const EDGES: [(&str, &str); 4] = [
    ("198.41.200.13", "ams01"),
    ("198.41.192.107", "fra08"),
    ("198.41.200.233", "ams16"),
    ("198.41.192.37", "fra13"),
];
const WORDS: &str = "seasonal reviewer mixer latest fluffy bunny granted silver harbor velvet \
    quantum meadow pencil orbit canyon lemon tribune atlas cedar pixel summit garden rocket timber \
    violin basin copper delta ember falcon glacier horizon island jungle kernel lagoon marble";
/// zerolog's level names (console, JSON), by level index.
const LEVELS: [&str; 5] = ["DBG", "INF", "WRN", "ERR", "FTL"];
const LEVEL_NAMES: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];
const INF: usize = 1;
const ERR: usize = 3;

/// (json output, minimum level), set once from the flags.
static LOG: OnceLock<(bool, usize)> = OnceLock::new();

/// `log!(LEVEL, "message {inline_arg}", "key" => value, ...)`: one stderr line. A message that
/// is not a literal (a const) is used as is.
macro_rules! log {
    ($lvl:expr, $msg:literal $(, $k:literal => $v:expr)* $(,)?) => {
        emit($lvl, &format!($msg), &[$(($k, json!($v))),*])
    };
    ($lvl:expr, $msg:expr $(, $k:literal => $v:expr)* $(,)?) => {
        emit($lvl, &$msg, &[$(($k, json!($v))),*])
    };
}

fn emit(level: usize, msg: &str, fields: &[(&str, Value)]) {
    let &(json, min_level) = LOG.get().unwrap_or(&(false, INF));
    if level < min_level {
        return;
    }
    let mut map: BTreeMap<&str, Value> = fields.iter().cloned().collect();
    let line = if json {
        // A BTreeMap serialises in key order, as zerolog's JSON does.
        map.insert("level", LEVEL_NAMES[level].into());
        map.insert("message", msg.into());
        map.insert("time", now_rfc3339().into());
        serde_json::to_string(&map).unwrap_or_default()
    } else {
        let mut line = format!("{} {} {msg}", now_rfc3339(), LEVELS[level]);
        for (k, v) in map {
            let v = match v {
                // zerolog quotes strings holding spaces, quotes or control characters.
                Value::String(s) if s.chars().any(|c| c <= ' ' || c == '"' || c == '\\') => {
                    Value::String(s).to_string()
                }
                Value::String(s) => s,
                other => other.to_string(),
            };
            line.push_str(&format!(" {k}={v}"));
        }
        line
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runtime and usage failures end with the bare error (no timestamp, no level) on stderr.
fn fail(msg: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
    exit(code)
}

/// `--version` and usage errors go to stdout with exit 0, as the real binary does.
#[allow(clippy::print_stdout)]
fn stdout_and_exit(text: &str) -> ! {
    print!("{text}");
    let _ = std::io::stdout().flush();
    exit(0)
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since the epoch to a civil date (Howard Hinnant's algorithm), to avoid a chrono dep.
    let z = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (day, month) = (
        doy - (153 * mp + 2) / 5 + 1,
        if mp < 10 { mp + 3 } else { mp - 9 },
    );
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// A fresh random u64: RandomState is seeded from the OS once per process and differs per call.
fn rand_u64() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

fn uuid_v4() -> String {
    let (a, b) = (rand_u64(), rand_u64());
    let h = format!("{a:016x}{b:016x}");
    let variant = ["8", "9", "a", "b"][(b >> 62) as usize];
    let (p1, p2, p3, p4, p5) = (&h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..]);
    format!("{p1}-{p2}-4{p3}-{variant}{p4}-{p5}")
}

fn env_ms(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name).ok().and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(default))
}

/// The flags of `cloudflared [tunnel] [run]` a supervisor may pass.
#[derive(Default)]
struct Cli {
    values: BTreeMap<String, String>,
    no_autoupdate: bool,
    run: bool,
}

impl Cli {
    fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

const VALUE_FLAGS: &str = "url metrics config protocol loglevel output grace-period logfile \
    edge-ip-version token token-file autoupdate-freq";

/// Parses like Go's flag package (`-f v`, `--f v`, `--f=v`); exits for version, help and usage.
fn parse_cli(args: &[String]) -> Cli {
    let (mut cli, mut positional, mut it) = (Cli::default(), Vec::new(), args.iter());
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            positional.push(arg.as_str());
            continue;
        };
        let (name, inline) = flag
            .split_once('=')
            .map_or((flag, None), |(n, v)| (n, Some(v)));
        match name {
            "version" | "v" | "V" => stdout_and_exit(&version_line()),
            "help" | "h" => stdout_and_exit(HELP),
            "no-autoupdate" => cli.no_autoupdate = inline.is_none_or(|v| v != "false"),
            n if VALUE_FLAGS.split_whitespace().any(|f| f == n) => {
                let Some(v) = inline.map(str::to_string).or_else(|| it.next().cloned()) else {
                    stdout_and_exit(&format!(
                        "Incorrect Usage. flag needs an argument: -{n}\n\n{HELP}"
                    ))
                };
                cli.values.insert(n.to_string(), v);
            }
            n => stdout_and_exit(&format!(
                "Incorrect Usage. flag provided but not defined: -{n}\n\n{HELP}"
            )),
        }
    }
    match positional.as_slice() {
        ["version", ..] => stdout_and_exit(&version_line()),
        ["tunnel", "run", ..] => cli.run = true,
        _ => {}
    }
    cli
}

fn version_line() -> String {
    format!("cloudflared version {VERSION} (built {BUILT})\n")
}

/// Decodes a named-tunnel token (base64 of `{"a":..,"t":<uuid>,"s":<base64>}`) to its tunnel id.
fn tunnel_id(token: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let v: Value = serde_json::from_slice(&b64.decode(token.trim()).ok()?).ok()?;
    let (_, t, s) = (v["a"].as_str()?, v["t"].as_str()?, v["s"].as_str()?);
    let uuid_shape = t.split('-').map(str::len).eq([8, 4, 4, 4, 12]);
    let uuid_ok = uuid_shape && t.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
    (uuid_ok && b64.decode(s).is_ok()).then(|| t.to_ascii_lowercase())
}

/// State behind the metrics server.
#[derive(Default)]
struct Shared {
    connector_id: String,
    hostname: String,
    service: String,
    ready: AtomicU32,
    ha: AtomicU32,
    requests: AtomicU64,
    errors: AtomicU64,
    codes: Mutex<BTreeMap<u16, u64>>,
}

type Reply = (StatusCode, [(header::HeaderName, &'static str); 1], String);

async fn metrics_handler(State(st): State<Arc<Shared>>, uri: Uri) -> Reply {
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
        "/metrics" => "text/plain; version=0.0.4; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, ctype)], body)
}

fn prometheus(st: &Shared, ready: u32) -> String {
    let codes = st.codes.lock().map(|c| c.clone()).unwrap_or_default();
    let codes: String = codes
        .iter()
        .map(|(c, n)| format!("cloudflared_tunnel_response_by_code{{status_code=\"{c}\"}} {n}\n"))
        .collect();
    let name = "cloudflared_tunnel_server_locations";
    let locations: String = (EDGES.iter().take(ready as usize).enumerate())
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

/// One plain HTTP/1.1 `GET <service>/health`; returns the status code.
async fn origin_check(service: &str) -> Result<u16, String> {
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

/// Edge connections: register (or, in never-ready mode, retry forever), then the origin check.
async fn connect(st: Arc<Shared>, mode: String, protocol: &'static str, conns: usize) {
    st.ha.store(conns as u32, SeqCst);
    sleep(env_ms("FAKE_CLOUDFLARED_READY_DELAY_MS", 300)).await;
    if mode == "never-ready" {
        // As with the edge unreachable: dials time out, backoff 2,4,..,64 s, /ready stays 503.
        let ip = EDGES[0].0;
        let (msg, error) = match protocol {
            "quic" => ("Failed to dial a quic connection", QUIC_TIMEOUT.to_string()),
            _ => (
                "Unable to establish connection with Cloudflare edge",
                format!("DialContext error: dial tcp {ip}:7844: i/o timeout"),
            ),
        };
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

/// The quick-tunnel API call and the banner; returns the hostname or exits as the mode says.
async fn request_quick_tunnel(mode: &str) -> String {
    log!(INF, DISCLAIMER);
    log!(INF, "Requesting new quick Tunnel on trycloudflare.com...");
    match mode {
        "offline" => {
            sleep(Duration::from_millis(80)).await;
            fail(OFFLINE, 1)
        }
        "rate-limited" => {
            log!(ERR, "Error unmarshaling QuickTunnel response: error code: 1015",
                "error" => NOT_JSON, "status_code" => "429 Too Many Requests");
            fail(&format!("failed to unmarshal quick Tunnel: {NOT_JSON}"), 1)
        }
        "api-hang" => {
            // No signal handler is installed yet: like the real one, a signal kills it silently.
            sleep(env_ms("FAKE_CLOUDFLARED_HANG_MS", 15_000)).await;
            fail(API_TIMEOUT, 1)
        }
        _ => sleep(Duration::from_millis(30)).await,
    }
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let pick = |_| words[(rand_u64() % words.len() as u64) as usize];
    let hostname = (0..4).map(pick).collect::<Vec<_>>().join("-") + ".trycloudflare.com";
    // cloudflared's AsciiBox: border, one padded line per text, border.
    let url = format!("https://{hostname}");
    let width = CREATED.len().max(url.len());
    let border = format!("+{}+", "-".repeat(width + 4));
    log!(INF, border);
    log!(INF, "|  {CREATED:<width$}  |");
    log!(INF, "|  {url:<width$}  |");
    log!(INF, border);
    hostname
}

/// Binds the metrics listener; without `--metrics` tries 127.0.0.1:20241..20245, then any port.
async fn bind_metrics(flag: Option<String>) -> TcpListener {
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

/// What the process does once up, until it crashes, autoupdates, or a signal arrives.
async fn lifetime(conn: tokio::task::JoinHandle<()>, mode: &str, no_autoupdate: bool) {
    let _ = conn.await;
    if mode == "crash" {
        sleep(env_ms("FAKE_CLOUDFLARED_CRASH_MS", 1000)).await;
        log!(ERR, "Serve tunnel error", "connIndex" => 0, "error" => "connection with edge closed",
            "event" => 0, "ip" => EDGES[0].0);
        fail("connection with edge closed", 1);
    }
    // Autoupdate is on unless disabled or stdout is a tty; the real one replaces itself, exit 11.
    let disabled = no_autoupdate || std::env::var_os("NO_AUTOUPDATE").is_some();
    if !disabled && !std::io::stdout().is_terminal() {
        sleep(Duration::from_secs(1)).await;
        log!(
            INF,
            "cloudflared has been updated to version 2026.9.0, restarting"
        );
        exit(11);
    }
    std::future::pending::<()>().await;
}

/// Waits for SIGTERM or SIGINT; returns Go's name for it.
async fn next_signal(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "terminated",
        _ = int.recv() => "interrupt",
    }
}

#[tokio::main]
async fn main() {
    if let Ok(path) = std::env::var("FAKE_CLOUDFLARED_PIDFILE") {
        let pid = std::process::id().to_string();
        std::fs::write(&path, pid).expect("write FAKE_CLOUDFLARED_PIDFILE");
    }
    let cli = parse_cli(&std::env::args().skip(1).collect::<Vec<_>>());
    let output = cli
        .get("output")
        .or(std::env::var("TUNNEL_LOG_OUTPUT").ok());
    let level = cli.get("loglevel").unwrap_or_else(|| "info".into());
    let min_level = LEVEL_NAMES.iter().position(|l| *l == level).unwrap_or(INF);
    let _ = LOG.set((output.as_deref() == Some("json"), min_level));
    let mode = std::env::var("FAKE_CLOUDFLARED_MODE").unwrap_or_else(|_| "normal".into());
    if !MODES.split_whitespace().any(|m| m == mode) {
        let msg =
            format!("fake cloudflared: FAKE_CLOUDFLARED_MODE {mode:?} is not one of: {MODES}");
        fail(&msg, 2);
    }
    if mode == "bad-token" {
        fail(BAD_TOKEN, 255);
    }

    let (hostname, service, conns) = if cli.run {
        let token = cli.get("token").or(std::env::var("TUNNEL_TOKEN").ok());
        let token = token.or_else(|| std::fs::read_to_string(cli.get("token-file")?).ok());
        let token = token.unwrap_or_else(|| fail(NO_TUNNEL, 255));
        let id = tunnel_id(&token).unwrap_or_else(|| fail(BAD_TOKEN, 255));
        log!(INF, "Starting tunnel", "tunnelID" => id);
        (String::new(), String::new(), 4)
    } else {
        let hostname = request_quick_tunnel(&mode).await;
        let url = cli
            .get("url")
            .unwrap_or_else(|| "http://localhost:8080".into());
        (hostname, url, 1)
    };
    let protocol = cli.get("protocol").unwrap_or_else(|| "auto".into());
    if !["auto", "quic", "http2"].contains(&protocol.as_str()) {
        fail(&format!("unknown protocol {protocol}, {PROTOCOLS}"), 1);
    }
    // `auto` means quic, with no fallback to http2 for quick tunnels; an explicit http2 is used.
    let protocol = if protocol == "http2" { "http2" } else { "quic" };

    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let listener = bind_metrics(cli.get("metrics")).await;
    let port = listener.local_addr().map_or(0, |a| a.port());
    log!(INF, "Starting metrics server on 127.0.0.1:{port}/metrics");
    let shared = Arc::new(Shared {
        connector_id: uuid_v4(),
        hostname,
        service,
        codes: Mutex::new(BTreeMap::from([(200, 0)])),
        ..Shared::default()
    });
    let app = Router::new()
        .fallback(metrics_handler)
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let conn = tokio::spawn(connect(shared.clone(), mode.clone(), protocol, conns));

    let name = tokio::select! {
        () = lifetime(conn, &mode, cli.no_autoupdate) => unreachable!("lifetime exits the process"),
        name = next_signal(&mut term, &mut int) => name,
    };
    log!(INF, "Initiating graceful shutdown due to signal {name} ...");
    if mode == "ignore-sigterm" {
        // Stuck in its graceful shutdown for good: only SIGKILL ends it.
        loop {
            next_signal(&mut term, &mut int).await;
        }
    }
    let drain = async {
        sleep(env_ms("FAKE_CLOUDFLARED_SHUTDOWN_MS", 5)).await;
        for i in 0..shared.ready.load(SeqCst) {
            log!(INF, "Unregistered tunnel connection", "connIndex" => i);
        }
        log!(INF, "Metrics server stopped");
        log!(INF, "Tunnel server stopped");
    };
    tokio::select! {
        () = drain => exit(0),
        _ = next_signal(&mut term, &mut int) => {}
    }
    // The real one restores the default handler, so a second signal kills it at once. Safe Rust
    // cannot restore SIGTERM's default action, so it dies by SIGKILL instead.
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    exit(1)
}
