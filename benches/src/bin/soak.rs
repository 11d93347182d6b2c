//! Soak: sustained `tools/call` load on a loopback server for minutes, over streamable HTTP and
//! WebSocket at once, with session churn, while the server's resident memory is sampled.
//! Bench-only (memory is measured here, never in a timed test).
//!
//! `soak --http http://127.0.0.1:PORT/mcp --ws ws://127.0.0.1:PORT/ws --pid PID
//!       [--secs 300] [--workers 8] [--json FILE]`
//!
//! Half the workers call over HTTP, half over WebSocket; each opens a fresh session every
//! `CHURN` calls (HTTP: DELETE the old one; WS: close the socket). Every reply is checked.
//! Bounded: loopback URLs only, at most 900 s and 64 workers; every request times out after 10 s.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::rss_kb;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue},
};

const MAX_SECS: u64 = 900;
const MAX_WORKERS: usize = 64;
const CHURN: u64 = 200;
const STEP: Duration = Duration::from_secs(10);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Memory measured from here on: the first minute warms caches and allocator arenas.
const WARMUP: Duration = Duration::from_secs(60);

struct Args {
    http: String,
    ws: String,
    pid: u32,
    secs: u64,
    workers: usize,
    json: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut http, mut ws, mut pid, mut secs, mut workers, mut json) =
        (None, None, None, 300, 8, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--http" => http = Some(value()?),
            "--ws" => ws = Some(value()?),
            "--pid" => pid = Some(value()?.parse().map_err(|e| format!("--pid: {e}"))?),
            "--secs" => secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--workers" => workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--json" => json = Some(value()?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let http = http.ok_or("--http is required")?;
    let ws = ws.ok_or("--ws is required")?;
    common::loopback(&http, "http://")?;
    common::loopback(&ws, "ws://")?;
    Ok(Args {
        http,
        ws,
        pid: pid.ok_or("--pid is required")?,
        secs: secs.clamp(10, MAX_SECS),
        workers: workers.clamp(2, MAX_WORKERS),
        json,
    })
}

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    errors: AtomicU64,
    sessions: AtomicU64,
}

fn initialize(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "soak", "version": "0"}}})
    .to_string()
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// A `gc_content` call whose answer is known: `GC` repeated `n` times then `AT` repeated `n`.
fn call(id: u64) -> (String, f64) {
    let n = (id % 50 + 1) as usize;
    let seq = format!("{}{}", "GC".repeat(n), "AT".repeat(n));
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "gc_content", "arguments": {"seq": seq}}});
    (body.to_string(), 0.5)
}

/// Whether a reply to `id` carries the expected GC fraction.
fn correct(reply: &Value, id: u64, expected: f64) -> bool {
    reply["id"] == id
        && reply["result"]["structuredContent"]["result"]
            .as_f64()
            .is_some_and(|v| (v - expected).abs() < 1e-9)
}

/// The JSON-RPC message in a response body: plain JSON, or the `data:` of an SSE event.
fn message_in(body: &str) -> Option<Value> {
    serde_json::from_str(body).ok().or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(|d| {
                serde_json::from_str::<Value>(d.trim())
                    .ok()
                    .filter(|v| v.get("id").is_some())
            })
    })
}

async fn http_post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: String,
) -> Result<(Option<String>, String), String> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = tokio::time::timeout(STEP, request.send())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = tokio::time::timeout(STEP, response.text())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok((id, text))
}

async fn http_session(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let (id, _) = http_post(client, url, None, initialize(0)).await?;
    let id = id.ok_or("no Mcp-Session-Id")?;
    http_post(client, url, Some(&id), INITIALIZED.to_owned()).await?;
    Ok(id)
}

async fn http_worker(url: String, until: Instant, counts: Arc<Counts>) {
    let client = reqwest::Client::new();
    let mut session: Option<String> = None;
    let mut id = 0u64;
    while Instant::now() < until {
        let current = match &session {
            Some(s) => s.clone(),
            None => match http_session(&client, &url).await {
                Ok(s) => {
                    counts.sessions.fetch_add(1, Ordering::Relaxed);
                    session = Some(s.clone());
                    s
                }
                Err(_) => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        id += 1;
        let (body, expected) = call(id);
        let ok = http_post(&client, &url, Some(&current), body)
            .await
            .ok()
            .and_then(|(_, text)| message_in(&text))
            .is_some_and(|reply| correct(&reply, id, expected));
        let counter = if ok { &counts.calls } else { &counts.errors };
        counter.fetch_add(1, Ordering::Relaxed);
        if id.is_multiple_of(CHURN) {
            let _ = client
                .delete(&url)
                .header("mcp-session-id", &current)
                .send()
                .await;
            session = None;
        }
    }
    if let Some(current) = session {
        let _ = client
            .delete(&url)
            .header("mcp-session-id", &current)
            .send()
            .await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_reply(socket: &mut Socket) -> Result<Value, String> {
    loop {
        let message = tokio::time::timeout(STEP, socket.next())
            .await
            .map_err(|_| "timed out".to_owned())?;
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if value.get("id").is_some() {
                    return Ok(value);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed".into()),
        }
    }
}

async fn ws_session(url: &str) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    let (mut socket, _) = tokio::time::timeout(STEP, connect_async(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    socket
        .send(Message::Text(initialize(0).into()))
        .await
        .map_err(|e| e.to_string())?;
    ws_reply(&mut socket).await?;
    socket
        .send(Message::Text(INITIALIZED.into()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

async fn ws_worker(url: String, until: Instant, counts: Arc<Counts>) {
    let mut socket: Option<Socket> = None;
    let mut id = 0u64;
    while Instant::now() < until {
        let current = match &mut socket {
            Some(s) => s,
            None => match ws_session(&url).await {
                Ok(s) => {
                    counts.sessions.fetch_add(1, Ordering::Relaxed);
                    socket.insert(s)
                }
                Err(_) => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        id += 1;
        let (body, expected) = call(id);
        let ok = match current.send(Message::Text(body.into())).await {
            Ok(()) => ws_reply(current)
                .await
                .is_ok_and(|reply| correct(&reply, id, expected)),
            Err(_) => false,
        };
        let counter = if ok { &counts.calls } else { &counts.errors };
        counter.fetch_add(1, Ordering::Relaxed);
        if (!ok || id.is_multiple_of(CHURN))
            && let Some(mut old) = socket.take()
        {
            let _ = old.close(None).await;
        }
    }
    if let Some(mut old) = socket {
        let _ = old.close(None).await;
    }
}

async fn run(args: &Args) -> Result<Value, String> {
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(args.secs);
    let start_kb = rss_kb(args.pid)?;
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..args.workers {
        let counts = counts.clone();
        if n % 2 == 0 {
            workers.spawn(http_worker(args.http.clone(), until, counts));
        } else {
            workers.spawn(ws_worker(args.ws.clone(), until, counts));
        }
    }
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(SAMPLE_EVERY.min(until.saturating_duration_since(Instant::now()))).await;
        let kb = rss_kb(args.pid)?;
        let t = started.elapsed().as_secs_f64();
        eprintln!(
            "soak: {t:>5.0} s  rss {:>7.1} MiB  calls {:>9}  errors {}",
            kb as f64 / 1024.0,
            counts.calls.load(Ordering::Relaxed),
            counts.errors.load(Ordering::Relaxed)
        );
        samples.push((t, kb));
    }
    // Every worker stops by itself at `until`; a stuck one is cut off.
    let _ = tokio::time::timeout(STEP * 2, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.abort_all();
    let measured: Vec<(f64, u64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= WARMUP.as_secs_f64())
        .collect();
    let measured = if measured.len() >= 2 {
        measured
    } else {
        samples.clone()
    };
    let first = measured.first().map_or(start_kb, |s| s.1);
    let last = measured.last().map_or(start_kb, |s| s.1);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(start_kb);
    // Least-squares slope of RSS over the measured window, in KiB per minute.
    let n = measured.len() as f64;
    let (mean_t, mean_kb) = (
        measured.iter().map(|s| s.0).sum::<f64>() / n,
        measured.iter().map(|s| s.1 as f64).sum::<f64>() / n,
    );
    let covariance: f64 = measured
        .iter()
        .map(|(t, kb)| (t - mean_t) * (*kb as f64 - mean_kb))
        .sum();
    let variance: f64 = measured.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let slope = if variance > 0.0 {
        covariance / variance * 60.0
    } else {
        0.0
    };
    let calls = counts.calls.load(Ordering::Relaxed);
    Ok(json!({
        "secs": args.secs,
        "workers": args.workers,
        "calls": calls,
        "errors": counts.errors.load(Ordering::Relaxed),
        "sessions_opened": counts.sessions.load(Ordering::Relaxed),
        "calls_per_s": calls as f64 / started.elapsed().as_secs_f64(),
        "rss_start_kb": start_kb,
        "rss_after_warmup_kb": first,
        "rss_end_kb": last,
        "rss_peak_kb": peak,
        "rss_slope_kb_per_min": slope,
        "samples": samples.iter().map(|(t, kb)| json!([t, kb])).collect::<Vec<_>>(),
    }))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match args() {
        Ok(args) => common::finish("soak", Ok(run(&args).await), args.json.as_deref()),
        Err(usage) => common::finish("soak", Err(usage), None),
    }
}
