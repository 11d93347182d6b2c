//! Pipelined `tools/call` round trips over newline-delimited JSON-RPC (the stdio framing), in
//! memory: mcp-expose's framed transport against rmcp's own async-rw transport serving an
//! equivalent hand-written handler, in the same run. 100 calls per iteration.

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock as Content,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, DuplexStream, Lines};

const CALLS: usize = 100;

struct Client {
    writer: DuplexStream,
    lines: Lines<BufReader<DuplexStream>>,
}

impl Client {
    async fn handshake(writer: DuplexStream, reader: DuplexStream) -> Self {
        let mut client = Self {
            writer,
            lines: BufReader::new(reader).lines(),
        };
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}});
        client.send(&init.to_string()).await;
        client
            .lines
            .next_line()
            .await
            .expect("read")
            .expect("initialize response");
        client
            .send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        client
    }

    async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.expect("write");
        self.writer.write_all(b"\n").await.expect("write");
    }

    /// Sends `CALLS` requests at once, then reads their responses.
    async fn round_trips(&mut self, batch: &[u8]) {
        self.writer.write_all(batch).await.expect("write");
        for _ in 0..CALLS {
            black_box(
                self.lines
                    .next_line()
                    .await
                    .expect("read")
                    .expect("response"),
            );
        }
    }
}

fn batch() -> Vec<u8> {
    let text = "x".repeat(100);
    (0..CALLS)
        .map(|i| {
            let call = json!({"jsonrpc":"2.0","id":i + 1,"method":"tools/call",
                "params":{"name":"echo","arguments":{"text":text}}});
            format!("{call}\n")
        })
        .collect::<String>()
        .into_bytes()
}

/// rmcp's baseline: a handler written against rmcp directly.
#[derive(Clone)]
struct RmcpEcho;

impl ServerHandler for RmcpEcho {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = request
            .arguments
            .and_then(|a| a.get("text").and_then(|t| t.as_str().map(str::to_owned)));
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            Content::text(text.unwrap_or_default()),
        ])))
    }
}

fn mcp_expose_echo() -> mcp_expose::ToolDef {
    let schema =
        json!({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]});
    let schema = Arc::new(schema.as_object().cloned().unwrap_or_default());
    mcp_expose::ToolDef::new("echo", schema, |_, args| async move {
        let text = args
            .get("text")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        CallToolResult::success(vec![Content::text(text)])
    })
    .with_description("Returns the text")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let batch = batch();
    let mut group = c.benchmark_group("stdio_roundtrip_100B");
    group.throughput(Throughput::Elements(CALLS as u64));

    let mut ours = runtime.block_on(async {
        let (client_w, server_r) = tokio::io::duplex(1 << 20);
        let (server_w, client_r) = tokio::io::duplex(1 << 20);
        let server = mcp_expose::Server::new("bench", "0")
            .without_collected()
            .tool(mcp_expose_echo());
        tokio::spawn(server.serve_stream(server_r, server_w));
        Client::handshake(client_w, client_r).await
    });
    group.bench_function("mcp-expose", |b| {
        b.iter(|| runtime.block_on(ours.round_trips(&batch)))
    });

    let mut theirs = runtime.block_on(async {
        let (client_w, server_r) = tokio::io::duplex(1 << 20);
        let (server_w, client_r) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            if let Ok(running) = RmcpEcho.serve((server_r, server_w)).await {
                let _ = running.waiting().await;
            }
        });
        Client::handshake(client_w, client_r).await
    });
    group.bench_function("rmcp", |b| {
        b.iter(|| runtime.block_on(theirs.round_trips(&batch)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
