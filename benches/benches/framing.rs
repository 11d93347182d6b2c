//! Per-message framing throughput at about 100 B, 1 KiB, 64 KiB and 1 MiB: rmcp's own paths
//! against the raw-forwarding paths of mcp-expose's bridge, measured in the same run on the same
//! messages (realistic `tools/call` requests for decoding, `tools/call` results for encoding).
//!
//! - `framing_decode`: newline-delimited bytes to messages. rmcp's `AsyncRwTransport` reader and
//!   its `JsonRpcMessageCodec` parse into the typed `RxJsonRpcMessage<RoleServer>`; the bridge
//!   splits with memchr and reads only the envelope (`&RawValue` for the rest).
//! - `framing_encode`: one message to one line. rmcp's codec serialises the typed message; the
//!   bridge forwards the child's line as it is (a copy and a newline).
//! - `ws_encode`: one message to one WebSocket text frame (tungstenite's frame writer, server
//!   side, unmasked), from a typed message or from an already-serialised line.
//! - `sse_encode`: one message to one SSE event: rmcp's streamable HTTP path (typed message,
//!   `sse-stream`), axum's `Event` through an `Sse` body (the bridge's path), and a hand-written
//!   `event: message\ndata: <line>\n\n`.
//!
//! Every iteration handles a batch of messages of about `BATCH_BYTES`; the throughput is set in
//! bytes and the batch sizes are written to `$CARGO_TARGET_TMPDIR/framing-batches.json`, from
//! which `scripts/bench_report.py` derives messages per second.
//!
//! The mcp-expose rows call the library's own code through `mcp_expose::__bench` (its line
//! reader and the bridge's envelope parser), not copies of it.

use std::{convert::Infallible, hint::black_box, sync::Arc};

use axum::response::{
    IntoResponse as _,
    sse::{Event, Sse},
};
use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt as _;
use mcp_expose::__bench::{Line, LineReader, envelope};
use memchr::memchr;
use rmcp::{
    RoleServer,
    model::{CallToolResult, ContentBlock, NumberOrString, ServerJsonRpcMessage, ServerResult},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{
        Transport as _,
        async_rw::{AsyncRwTransport, JsonRpcMessageCodec},
    },
};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::{
    Frame,
    coding::{Data, OpCode},
};
use tokio_util::codec::{Decoder as _, Encoder as _};

/// Bytes of messages handled per iteration (at least one message).
const BATCH_BYTES: usize = 256 * 1024;
const SIZES: [(&str, usize); 4] = [
    ("100B", 100),
    ("1KiB", 1024),
    ("64KiB", 64 * 1024),
    ("1MiB", 1024 * 1024),
];
const FILLER: &[u8] = b"ACGTTGCA the quick brown fox jumps over the lazy dog 0123456789, ";

fn filler(len: usize) -> String {
    FILLER
        .iter()
        .cycle()
        .take(len)
        .map(|&b| char::from(b))
        .collect()
}

/// A `tools/call` request of exactly `size` bytes (no newline).
fn request(id: usize, size: usize) -> String {
    let frame = |text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}})
        .to_string()
    };
    let bare = frame("").len();
    frame(&filler(size.saturating_sub(bare)))
}

/// A typed `tools/call` result whose serialisation is exactly `size` bytes.
fn response(id: usize, size: usize) -> TxJsonRpcMessage<RoleServer> {
    let message = |text: String| {
        ServerJsonRpcMessage::response(
            ServerResult::CallToolResult(CallToolResult::success(vec![ContentBlock::text(text)])),
            NumberOrString::Number(id as i64),
        )
    };
    let bare = serde_json::to_string(&message(String::new()))
        .expect("serialize")
        .len();
    message(filler(size.saturating_sub(bare)))
}

struct Batch {
    /// Newline-terminated requests, back to back (what a stdio reader sees).
    requests: Vec<u8>,
    /// Typed responses, and the same serialised as lines (no newline).
    typed: Vec<TxJsonRpcMessage<RoleServer>>,
    lines: Arc<Vec<String>>,
    count: usize,
    request_bytes: usize,
    response_bytes: usize,
}

fn batch(size: usize) -> Batch {
    let count = (BATCH_BYTES / size).max(1);
    let mut requests = Vec::new();
    for id in 1..=count {
        requests.extend_from_slice(request(id, size).as_bytes());
        requests.push(b'\n');
    }
    let typed: Vec<_> = (1..=count).map(|id| response(id, size)).collect();
    let lines: Vec<String> = typed
        .iter()
        .map(|m| serde_json::to_string(m).expect("serialize"))
        .collect();
    Batch {
        request_bytes: requests.len() - count,
        response_bytes: lines.iter().map(String::len).sum(),
        requests,
        typed,
        lines: Arc::new(lines),
        count,
    }
}

/// Calls `f` with every line of `input` (newline-terminated), without copying.
fn for_each_line(input: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = input;
    while let Some(i) = memchr(b'\n', rest) {
        f(&rest[..i]);
        rest = &rest[i + 1..];
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn decode(c: &mut Criterion, label: &str, b: &Batch) {
    let mut group = c.benchmark_group("framing_decode");
    group.throughput(Throughput::Bytes(b.request_bytes as u64));
    let input = &b.requests[..];
    let count = b.count;
    let rt = runtime();

    // rmcp's stdio reader, as `serve((stdin, stdout))` uses it: bounded line reads into a
    // reused buffer, then a typed parse.
    group.bench_function(BenchmarkId::new("rmcp_transport", label), |bench| {
        bench.iter(|| {
            rt.block_on(async {
                let mut transport =
                    AsyncRwTransport::<RoleServer, _, _>::new(input, tokio::io::sink());
                for _ in 0..count {
                    black_box(transport.receive().await.expect("message"));
                }
            })
        })
    });
    // rmcp's codec (`FramedRead` with `JsonRpcMessageCodec`): the same typed parse.
    group.bench_function(BenchmarkId::new("rmcp_codec", label), |bench| {
        let mut codec = JsonRpcMessageCodec::<RxJsonRpcMessage<RoleServer>>::new();
        bench.iter_batched_ref(
            || BytesMut::from(input),
            |buf| {
                for _ in 0..count {
                    black_box(codec.decode(buf).expect("decode").expect("message"));
                }
            },
            BatchSize::LargeInput,
        )
    });
    // mcp-expose's `serve()` over stdio: its line reader, a copy per frame, rmcp's typed parse.
    group.bench_function(BenchmarkId::new("mcp_expose_serve_typed", label), |bench| {
        bench.iter(|| {
            rt.block_on(async {
                let mut lines = LineReader::new(input, 64 * 1024, usize::MAX);
                while let Some(Line::Frame(line)) = lines.next().await.expect("line") {
                    let frame = line.to_vec();
                    black_box(
                        serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(&frame)
                            .expect("typed"),
                    );
                }
            })
        })
    });
    // The bridge's child-output reader: the line reader, the line copied out as a `String`
    // (it goes to another task), and the envelope.
    group.bench_function(BenchmarkId::new("bridge_child_reader", label), |bench| {
        bench.iter(|| {
            rt.block_on(async {
                let mut lines = LineReader::new(input, 32 * 1024, usize::MAX);
                while let Some(Line::Frame(line)) = lines.next().await.expect("line") {
                    let text = std::str::from_utf8(line).expect("UTF-8").to_owned();
                    black_box(envelope(text.as_bytes()).expect("envelope"));
                }
            })
        })
    });
    // Split + envelope: the line reader and the bridge's one-pass envelope on the lent line.
    group.bench_function(BenchmarkId::new("envelope", label), |bench| {
        bench.iter(|| {
            rt.block_on(async {
                let mut lines = LineReader::new(input, 64 * 1024, usize::MAX);
                while let Some(Line::Frame(line)) = lines.next().await.expect("line") {
                    black_box(envelope(line).expect("envelope"));
                }
            })
        })
    });
    // The floor: finding the newlines.
    group.bench_function(BenchmarkId::new("memchr_split", label), |bench| {
        bench.iter(|| {
            let mut n = 0;
            for_each_line(input, |line| n += black_box(line).len());
            n
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion, label: &str, b: &Batch) {
    let mut group = c.benchmark_group("framing_encode");
    group.throughput(Throughput::Bytes(b.response_bytes as u64));
    // rmcp's codec, as its `FramedWrite` uses it for every outgoing message.
    group.bench_function(BenchmarkId::new("rmcp_codec", label), |bench| {
        let mut codec = JsonRpcMessageCodec::<&TxJsonRpcMessage<RoleServer>>::new();
        let mut buf = BytesMut::new();
        bench.iter(|| {
            buf.clear();
            for message in &b.typed {
                codec.encode(message, &mut buf).expect("encode");
            }
            black_box(buf.len())
        })
    });
    // mcp-expose's `serve()` today: `serde_json::to_string`, then the line into the writer.
    group.bench_function(BenchmarkId::new("mcp_expose_serve_typed", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            for message in &b.typed {
                let text = serde_json::to_string(message).expect("serialize");
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    // The bridge: the child's line forwarded as it is, into a reused buffer.
    group.bench_function(BenchmarkId::new("forward", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            for line in b.lines.iter() {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    group.finish();
}

fn ws_encode(c: &mut Criterion, label: &str, b: &Batch) {
    let mut group = c.benchmark_group("ws_encode");
    group.throughput(Throughput::Bytes(b.response_bytes as u64));
    let text = |payload: Bytes| Frame::message(payload, OpCode::Data(Data::Text), true);
    // A typed message serialised, then framed (a WebSocket adapter over rmcp's service loop,
    // and mcp-expose's `serve()` over WebSocket today).
    group.bench_function(BenchmarkId::new("typed", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            for message in &b.typed {
                let line = serde_json::to_string(message).expect("serialize");
                text(Bytes::from(line)).format(&mut out).expect("frame");
            }
            black_box(out.len())
        })
    });
    // An already-serialised line framed (the bridge).
    let payloads: Vec<Bytes> = b.lines.iter().map(|l| Bytes::from(l.clone())).collect();
    group.bench_function(BenchmarkId::new("forward", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            for payload in &payloads {
                text(payload.clone()).format(&mut out).expect("frame");
            }
            black_box(out.len())
        })
    });
    group.finish();
}

fn sse_encode(c: &mut Criterion, label: &str, b: &Batch) {
    let mut group = c.benchmark_group("sse_encode");
    group.throughput(Throughput::Bytes(b.response_bytes as u64));
    // rmcp's streamable HTTP server: the typed message serialised into an `sse-stream` event.
    group.bench_function(BenchmarkId::new("rmcp", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            for message in &b.typed {
                let data = serde_json::to_string(message).expect("serialize");
                let event = Bytes::from(sse_stream::Sse::default().data(data));
                out.extend_from_slice(&event);
            }
            black_box(out.len())
        })
    });
    // The bridge: axum `Event`s through an `Sse` response body.
    let rt = runtime();
    group.bench_function(BenchmarkId::new("axum_event", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            let lines = Arc::clone(&b.lines);
            let events = futures::stream::iter((0..lines.len()).map(move |i| {
                Ok::<_, Infallible>(Event::default().event("message").data(lines[i].as_str()))
            }));
            let mut body = Sse::new(events)
                .into_response()
                .into_body()
                .into_data_stream();
            rt.block_on(async {
                while let Some(chunk) = body.next().await {
                    out.extend_from_slice(&chunk.expect("chunk"));
                }
            });
            black_box(out.len())
        })
    });
    // The floor: a JSON line has no raw newline, so an event is two fixed strings around it.
    group.bench_function(BenchmarkId::new("forward", label), |bench| {
        let mut out = Vec::new();
        bench.iter(|| {
            out.clear();
            for line in b.lines.iter() {
                out.extend_from_slice(b"event: message\ndata: ");
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\n\n");
            }
            black_box(out.len())
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let batches: Vec<(&str, Batch)> = SIZES.iter().map(|&(l, size)| (l, batch(size))).collect();
    let sizes: serde_json::Map<_, _> = batches
        .iter()
        .zip(SIZES)
        .map(|((label, b), (_, size))| {
            let sizes = json!({"message_bytes": size, "messages": b.count,
                "request_bytes": b.request_bytes, "response_bytes": b.response_bytes});
            ((*label).to_owned(), sizes)
        })
        .collect();
    let meta = json!({"batch_bytes": BATCH_BYTES, "sizes": sizes});
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/framing-batches.json");
    if let Err(e) = std::fs::write(path, meta.to_string()) {
        eprintln!("cannot write {path}: {e}");
    }
    for (label, b) in &batches {
        decode(c, label, b);
        encode(c, label, b);
        ws_encode(c, label, b);
        sse_encode(c, label, b);
    }
}

fn config() -> Criterion {
    Criterion::default().sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
