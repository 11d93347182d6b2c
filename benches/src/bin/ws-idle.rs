//! Memory per idle WebSocket session: opens N initialized MCP sessions to a loopback server,
//! holds them idle, and reads the server's resident memory (`VmRSS` of `--pid`) before, after a
//! first few sessions, and after all of them. Bench-only.
//!
//! `ws-idle --url ws://127.0.0.1:PORT/ws --pid PID [--sessions 1000] [--json FILE]`
//!
//! Bounded: loopback URLs only, at most 10,000 sessions, 10 s per handshake, 120 s in all.

mod common;

use std::time::{Duration, Instant};

use common::rss_kb;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue},
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const MAX_SESSIONS: usize = 10_000;
const WARM_SESSIONS: usize = 10;
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    url: String,
    pid: u32,
    sessions: usize,
    json: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut pid, mut sessions, mut json) = (None, None, 1000, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--pid" => pid = Some(value()?.parse().map_err(|e| format!("--pid: {e}"))?),
            "--sessions" => sessions = value()?.parse().map_err(|e| format!("--sessions: {e}"))?,
            "--json" => json = Some(value()?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    common::loopback(&url, "ws://")?;
    Ok(Args {
        url,
        pid: pid.ok_or("--pid is required")?,
        sessions: sessions.clamp(1, MAX_SESSIONS),
        json,
    })
}

async fn open(url: &str, n: usize) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    let (mut socket, _) = connect_async(request).await.map_err(|e| e.to_string())?;
    let init = json!({"jsonrpc": "2.0", "id": n, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "ws-idle", "version": "0"}}});
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"result\"") => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed during initialize".into()),
        }
    }
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    socket
        .send(Message::Text(initialized.into()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

async fn run(args: &Args) -> Result<serde_json::Value, String> {
    let idle_kb = rss_kb(args.pid)?;
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(args.sessions);
    let mut warm_kb = idle_kb;
    for n in 0..args.sessions {
        if started.elapsed() > TOTAL_TIMEOUT {
            return Err(format!("gave up after {n} sessions"));
        }
        let socket = tokio::time::timeout(STEP_TIMEOUT, open(&args.url, n))
            .await
            .map_err(|_| format!("session {n}: timed out"))?
            .map_err(|e| format!("session {n}: {e}"))?;
        sockets.push(socket);
        if n + 1 == WARM_SESSIONS {
            tokio::time::sleep(Duration::from_millis(200)).await;
            warm_kb = rss_kb(args.pid)?;
        }
    }
    // Let the server settle (its per-session tasks run their first steps).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_kb = rss_kb(args.pid)?;
    let n = sockets.len();
    let marginal = n.saturating_sub(WARM_SESSIONS).max(1) as f64;
    let result = json!({
        "url": args.url,
        "sessions": n,
        "idle_rss_kb": idle_kb,
        "rss_after_warm_kb": warm_kb,
        "rss_after_kb": after_kb,
        "kb_per_session": (after_kb.saturating_sub(idle_kb)) as f64 / n as f64,
        "kb_per_session_marginal": (after_kb.saturating_sub(warm_kb)) as f64 / marginal,
        "open_s": started.elapsed().as_secs_f64(),
    });
    drop(sockets);
    Ok(result)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match args() {
        Ok(args) => common::finish("ws-idle", Ok(run(&args).await), args.json.as_deref()),
        Err(usage) => common::finish("ws-idle", Err(usage), None),
    }
}
