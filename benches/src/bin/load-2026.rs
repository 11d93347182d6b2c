//! Sessionless load: MCP 2026-07-28 `tools/call echo` requests on a loopback streamable HTTP
//! endpoint, with no `initialize` and no session, for the replicas bench. Bench-only.
//!
//! `load-2026 --url http://127.0.0.1:PORT/mcp [--concurrency 32] [--payload 100]
//!            [--duration 5] [--warmup 1] [--json FILE] [--label L]`
//!
//! Each of C workers loops one POST at a time and checks the answer (JSON or SSE: the message
//! with the request's id, whose first text content equals the payload). The summary has the
//! field names of `mcp-load run` (shared/bench), so `bench_report.py` reads both alike, plus
//! `requests_sent`: every request of the run, warm-up included, to divide Redis's command count by.
//! Bounded: loopback URLs only, 120 s in all, 5,000,000 requests, 10 s per request.

#[allow(dead_code, reason = "rss_kb is for the bins that measure memory")]
mod common;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const PROTOCOL: &str = "2026-07-28";
const MAX_SECONDS: f64 = 120.0;
const MAX_REQUESTS: u64 = 5_000_000;
const MAX_CONCURRENCY: usize = 1024;
const MAX_PAYLOAD: usize = 1 << 20;
const STEP: Duration = Duration::from_secs(10);
/// How long the rest of an SSE answer may take after its message, before it counts as left open.
const DRAIN: Duration = Duration::from_secs(2);

struct Args {
    url: String,
    concurrency: usize,
    payload: usize,
    duration: f64,
    warmup: f64,
    json: Option<String>,
    label: String,
}

fn args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        url: String::new(),
        concurrency: 32,
        payload: 100,
        duration: 5.0,
        warmup: 1.0,
        json: None,
        label: String::new(),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--concurrency" => a.concurrency = parse(&flag, value()?)?,
            "--payload" => a.payload = parse(&flag, value()?)?,
            "--duration" => a.duration = parse(&flag, value()?)?,
            "--warmup" => a.warmup = parse(&flag, value()?)?,
            "--json" => a.json = Some(value()?),
            "--label" => a.label = value()?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    common::loopback(&a.url, "http://")?;
    if !(1..=MAX_CONCURRENCY).contains(&a.concurrency) || a.payload > MAX_PAYLOAD {
        return Err(format!(
            "--concurrency must be 1..={MAX_CONCURRENCY}, --payload at most {MAX_PAYLOAD}"
        ));
    }
    if !(a.duration > 0.0 && a.warmup >= 0.0 && a.duration + a.warmup <= MAX_SECONDS) {
        return Err(format!(
            "--duration + --warmup must be in (0, {MAX_SECONDS}] s"
        ));
    }
    Ok(a)
}

fn parse<T: std::str::FromStr<Err: std::fmt::Display>>(
    flag: &str,
    value: String,
) -> Result<T, String> {
    value.parse().map_err(|e| format!("{flag}: {e}"))
}

/// Why a request did not count, with `mcp-load`'s names for the kinds.
enum Failure {
    Connect(String),
    Http(u16),
    Timeout,
    NoResponse,
    Rpc(String),
    BadResult,
    Body(String),
}

impl Failure {
    fn kind(&self) -> String {
        match self {
            Self::Connect(_) => "connect".into(),
            Self::Http(status) => format!("http_{status}"),
            Self::Timeout => "timeout".into(),
            Self::NoResponse => "no_response".into(),
            Self::Rpc(_) => "rpc_error".into(),
            Self::BadResult => "bad_result".into(),
            Self::Body(_) => "body".into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) | Self::Rpc(e) | Self::Body(e) => write!(f, "{}: {e}", self.kind()),
            _ => f.write_str(&self.kind()),
        }
    }
}

/// An answer: when its message arrived, its content type, and whether an SSE stream stayed open.
struct Answer {
    at: Instant,
    content_type: String,
    left_open: bool,
}

fn body(id: u64, text: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{PROTOCOL}","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    )
}

/// `None` when `json` is not the answer to `id`; otherwise whether it echoes `want`.
fn check(json: &[u8], id: u64, want: &str) -> Option<Result<(), Failure>> {
    let message: Value = serde_json::from_slice(json).ok()?;
    if message.get("method").is_some() || message.get("id").and_then(Value::as_u64) != Some(id) {
        return None;
    }
    if let Some(error) = message.get("error") {
        return Some(Err(Failure::Rpc(error.to_string())));
    }
    let result = message.get("result");
    let echoed = result
        .and_then(|r| r.pointer("/content/0/text"))
        .and_then(Value::as_str);
    let is_error = result
        .and_then(|r| r.get("isError"))
        .and_then(Value::as_bool);
    Some(if echoed == Some(want) && is_error != Some(true) {
        Ok(())
    } else {
        Err(Failure::BadResult)
    })
}

/// The first complete SSE event in `buf` that answers `id`, consuming the events before it.
fn sse_event(buf: &mut Vec<u8>, id: u64, want: &str) -> Option<Result<(), Failure>> {
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let data: Vec<&[u8]> = buf[..end]
            .split(|&c| c == b'\n')
            .filter_map(|line| line.strip_prefix(b"data:"))
            .map(|line| line.strip_prefix(b" ").unwrap_or(line))
            .collect();
        let found = check(&data.join(&b'\n'), id, want);
        buf.drain(..end + 2);
        if found.is_some() {
            return found;
        }
    }
    None
}

async fn call(client: &reqwest::Client, url: &str, id: u64, want: &str) -> Result<Answer, Failure> {
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(body(id, want))
        .send()
        .await
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        // Read what is left, so the connection goes back to the pool.
        let _ = tokio::time::timeout(DRAIN, response.bytes()).await;
        return Err(Failure::Http(status.as_u16()));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if content_type != "text/event-stream" {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Body(e.to_string()))?;
        let at = Instant::now();
        check(&bytes, id, want).ok_or(Failure::NoResponse)??;
        return Ok(Answer {
            at,
            content_type,
            left_open: false,
        });
    }
    let mut buf = Vec::with_capacity(want.len() + 256);
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| Failure::Body(e.to_string()))?;
        let chunk = chunk.ok_or(Failure::NoResponse)?;
        buf.extend(chunk.iter().copied().filter(|&c| c != b'\r'));
        if let Some(outcome) = sse_event(&mut buf, id, want) {
            let at = Instant::now();
            outcome?;
            let drained = tokio::time::timeout(DRAIN, async {
                while let Ok(Some(_)) = response.chunk().await {}
            })
            .await;
            return Ok(Answer {
                at,
                content_type,
                left_open: drained.is_err(),
            });
        }
    }
}

#[derive(Default)]
struct Stats {
    latency_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    content_types: BTreeMap<String, u64>,
    left_open: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.latency_us.extend(other.latency_us);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        for (kind, n) in other.content_types {
            *self.content_types.entry(kind).or_default() += n;
        }
        self.left_open += other.left_open;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// Counts answers from `measure_from` to `end` (the warm-up is sent, not counted).
async fn worker(
    client: reqwest::Client,
    url: Arc<str>,
    text: Arc<str>,
    (measure_from, end): (Instant, Instant),
    sent: Arc<AtomicU64>,
) -> Stats {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let mut stats = Stats::default();
    while Instant::now() < end && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = tokio::time::timeout(STEP, call(&client, &url, id, &text))
            .await
            .unwrap_or(Err(Failure::Timeout));
        let measured = started >= measure_from && started < end;
        match outcome {
            Ok(answer) if measured => {
                let us = answer.at.duration_since(started).as_micros();
                stats.latency_us.push(us.min(u32::MAX as u128) as u32);
                *stats.content_types.entry(answer.content_type).or_default() += 1;
                stats.left_open += u64::from(answer.left_open);
            }
            Ok(_) => {}
            Err(failure) => {
                if measured {
                    *stats.errors.entry(failure.kind()).or_default() += 1;
                    stats.first_error.get_or_insert_with(|| failure.to_string());
                }
                // No hot spinning on a failing endpoint.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    stats
}

fn percentile(sorted: &[u32], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    ms(f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0)
}

/// Three decimals, as `mcp-load` writes them.
fn ms(x: f64) -> Value {
    json!((x * 1000.0).round() / 1000.0)
}

async fn run(a: &Args) -> Result<Value, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let text: Arc<str> = "x".repeat(a.payload).into();
    let url: Arc<str> = a.url.as_str().into();
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.duration);
    let sent = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| {
            let (client, url, text, sent) =
                (client.clone(), url.clone(), text.clone(), sent.clone());
            tokio::spawn(worker(client, url, text, (measure_from, end), sent))
        })
        .collect();
    let hard_stop = end + STEP + Duration::from_secs(5);
    let mut all = Stats::default();
    for handle in workers {
        let left = hard_stop.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, handle).await {
            Ok(Ok(stats)) => all.merge(stats),
            _ => *all.errors.entry("worker_stuck".into()).or_default() += 1,
        }
    }
    let measured_s = (Instant::now().min(end).max(measure_from) - measure_from)
        .as_secs_f64()
        .max(1e-9);
    all.latency_us.sort_unstable();
    let ok = all.latency_us.len() as u64;
    let mean = all.latency_us.iter().map(|&us| f64::from(us)).sum::<f64>() / ok.max(1) as f64;
    Ok(json!({
        "label": a.label,
        "url": a.url,
        "protocol_version": PROTOCOL,
        "concurrency": a.concurrency,
        "payload_bytes": a.payload,
        "sessions_mode": "none",
        "init_errors": {},
        "warmup_s": a.warmup,
        "measured_s": ms(measured_s),
        "requests_ok": ok,
        "requests_sent": sent.load(Ordering::Relaxed).min(MAX_REQUESTS),
        "errors_total": all.errors.values().sum::<u64>(),
        "errors": all.errors,
        "first_error": all.first_error,
        "rps": ms(ok as f64 / measured_s),
        "latency_ms": {
            "p50": percentile(&all.latency_us, 50.0),
            "p90": percentile(&all.latency_us, 90.0),
            "p99": percentile(&all.latency_us, 99.0),
            "max": percentile(&all.latency_us, 100.0),
            "mean": if ok > 0 { ms(mean / 1000.0) } else { Value::Null },
        },
        "content_types": all.content_types,
        "sse_streams_left_open": all.left_open,
    }))
}

// One client thread, as `mcp-load` runs by default: the server gets the other core.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match args() {
        Ok(a) => common::finish("load-2026", Ok(run(&a).await), a.json.as_deref()),
        Err(usage) => common::finish("load-2026", Err(usage), None),
    }
}
