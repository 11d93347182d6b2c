//! The machine floor for the load bench's WebSocket rows: the least a server can do and still
//! pass `mcp-load` (initialize, `tools/list`, `tools/call echo`), so BENCHMARKS.md can show the
//! lowest WebSocket round trip this machine allows next to mcp-expose's own. No MCP library, no
//! sessions, no schemas: one thread (a current-thread runtime), one task per socket, each text
//! frame parsed as a `serde_json::Value` and answered with a hand-built reply in one text frame.
//! `gc_content` is answered too, because the harness' probe calls it before every run.
//! Bench-only: not part of the library, not an MCP server anyone should use.
//!
//! `ws-floor PORT` serves ws://127.0.0.1:PORT/ (any path); selects subprotocol `mcp` when offered.

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{ErrorResponse, Request, Response},
    http::HeaderValue,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: ws-floor PORT")?
        .parse()?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("ws-floor listening on ws://{}/ws", listener.local_addr()?);
    let (mut int, mut term) = (
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    );
    // Runs until SIGINT or SIGTERM; returning drops the runtime and every socket task with it.
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => drop(tokio::spawn(serve(tcp))),
                Err(e) => {
                    eprintln!("ws-floor: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = int.recv() => return Ok(()),
            _ = term.recv() => return Ok(()),
        }
    }
}

/// Handshake callback: select `mcp` when the client offers it (tungstenite refuses a handshake
/// whose offered subprotocol was not selected).
#[allow(clippy::result_large_err)] // the signature is tungstenite's `Callback`
fn select_mcp(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "mcp"));
    if offered {
        resp.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    }
    Ok(resp)
}

/// One socket until it closes or fails: a reply per request frame, written and flushed.
async fn serve(tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, select_mcp).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(t) => answer(t.as_bytes()),
            Message::Binary(b) => answer(&b),
            _ => None, // ping/pong/close: tungstenite answers them; the stream ends after close
        };
        if let Some(reply) = reply
            && ws.send(Message::text(reply)).await.is_err()
        {
            break;
        }
    }
}

/// The reply to one JSON-RPC message; None for notifications, responses and junk.
fn answer(frame: &[u8]) -> Option<String> {
    let mut req: Value = serde_json::from_slice(frame).ok()?;
    let id = req.get_mut("id")?.take();
    let method = req.get("method")?.as_str()?.to_owned();
    let params = &mut req["params"];
    let tool = |name: &str, arg: &str| {
        json!({"name": name, "inputSchema": {"type": "object",
            "properties": {arg: {"type": "string"}}, "required": [arg]}})
    };
    let text = |t: Value| json!({"content": [{"type": "text", "text": t}]});
    let result = match (method.as_str(), params["name"].as_str()) {
        ("initialize", _) => {
            let version = match params["protocolVersion"].take() {
                Value::Null => json!("2025-06-18"),
                v => v,
            };
            json!({"protocolVersion": version, "capabilities": {"tools": {}},
                "serverInfo": {"name": "ws-floor", "version": "0"}})
        }
        ("tools/list", _) => json!({"tools": [tool("echo", "text"), tool("gc_content", "seq")]}),
        ("tools/call", Some("echo")) => text(params["arguments"]["text"].take()),
        ("tools/call", Some("gc_content")) => {
            let seq = params["arguments"]["seq"].as_str().unwrap_or("");
            let letters = seq.bytes().filter(u8::is_ascii_alphabetic);
            let gc = letters.clone().filter(|b| b"GCgcSs".contains(b)).count();
            let frac = gc as f64 / letters.count().max(1) as f64;
            text(json!(format!("{frac:.6}")))
        }
        ("ping", _) => json!({}),
        _ => {
            let what = format!("{method} {}", params["name"].as_str().unwrap_or(""));
            let error =
                json!({"code": -32601, "message": format!("not found: {}", what.trim_end())});
            return Some(json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string());
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
}
