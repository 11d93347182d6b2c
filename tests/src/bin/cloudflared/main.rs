//! A test double of `cloudflared` (see /work/shared/facts/cloudflared.md) for the supervisor's
//! integration tests: same CLI, log formats, metrics endpoints, signals and exit codes as the real
//! binary, but no edge and no proxying. `FAKE_CLOUDFLARED_MODE` picks a behaviour: normal, offline
//! (no network: the quick-tunnel API call fails; a named tunnel finds no edge in DNS), no-dns
//! (the same), edge-unreachable (DNS and API work, the edge does not: re-dials forever; also
//! whenever `--edge`/`TUNNEL_EDGE` is given), rate-limited, api-hang, never-ready, crash,
//! ignore-sigterm, bad-token. Other knobs (env): `FAKE_CLOUDFLARED_{READY_DELAY_MS,HANG_MS,
//! CRASH_MS,SHUTDOWN_MS,REDIAL_MS,PRECHECK_MS,PIDFILE}`. Without `--config` it reads
//! `$HOME/.cloudflared/config.yml` as the real one does.

#[macro_use]
mod log;
mod cli;
mod edge;
mod metrics;
mod quick;
mod startup;

use std::{
    io::IsTerminal as _,
    process::exit,
    sync::{Arc, atomic::Ordering::SeqCst},
    time::Duration,
};

use axum::Router;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    time::sleep,
};

use crate::{
    cli::{PROTOCOLS, apply_config_file, parse_cli, tunnel_id},
    edge::{EDGES, connect, dns_failure, precheck},
    log::{ERR, INF, LEVEL_NAMES, LOG, env_ms, fail, uuid_v4},
    metrics::{Shared, bind_metrics, metrics_handler},
    quick::request_quick_tunnel,
};

const MODES: &str = "normal offline no-dns edge-unreachable rate-limited api-hang never-ready \
    crash ignore-sigterm bad-token";
const BAD_TOKEN: &str = "Provided Tunnel token is not valid.\nSee 'cloudflared tunnel run --help'.";
const NO_TUNNEL: &str = "\"cloudflared tunnel run\" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.";

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
    let mut cli = parse_cli(&std::env::args().skip(1).collect::<Vec<_>>());
    apply_config_file(&mut cli);
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
    let edge = cli.get("edge").or(std::env::var("TUNNEL_EDGE").ok());
    let offline = ["offline", "no-dns", "edge-unreachable"].contains(&mode.as_str());

    let (hostname, service, conns) = if cli.run {
        let token = cli.get("token").or(std::env::var("TUNNEL_TOKEN").ok());
        let token = token.or_else(|| std::fs::read_to_string(cli.get("token-file")?).ok());
        let token = token.unwrap_or_else(|| fail(NO_TUNNEL, 255));
        let id = tunnel_id(&token).unwrap_or_else(|| fail(BAD_TOKEN, 255));
        log!(INF, "Starting tunnel", "tunnelID" => id);
        (String::new(), String::new(), 4)
    } else {
        let hostname = request_quick_tunnel(&mode, cli.get("quick-service")).await;
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
    let connector_id = uuid_v4();
    startup::chatter(&cli, &connector_id, offline);

    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let listener = bind_metrics(cli.get("metrics")).await;
    let port = listener.local_addr().map_or(0, |a| a.port());
    log!(INF, "Starting metrics server on 127.0.0.1:{port}/metrics");
    let shared = Arc::new(Shared {
        connector_id,
        hostname,
        service,
        ..Shared::default()
    });
    let app = Router::new()
        .fallback(metrics_handler)
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // Without --edge a named tunnel looks its edge up in DNS first.
    if cli.run && edge.is_none() && ["offline", "no-dns"].contains(&mode.as_str()) {
        dns_failure().await;
    }
    tokio::spawn(precheck(edge.clone()));
    let conn = tokio::spawn(connect(shared.clone(), mode.clone(), protocol, conns, edge));

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
