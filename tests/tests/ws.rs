//! WebSocket: tokio-tungstenite against the built `bioseq` binary (HTTP and WS on one port).

use std::time::Duration;

use futures::StreamExt as _;
use mcp_expose_tests::{
    ServerProcess, Socket, assert_gc_ggccat, initialize, initialized, next_json, request, send,
};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, protocol::frame::coding::CloseCode},
};

async fn connect(url: &str) -> Socket {
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mcp".parse().expect("header"));
    let (socket, response) = connect_async(request).await.expect("websocket handshake");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("mcp")
    );
    socket
}

async fn handshake(socket: &mut Socket) -> Value {
    send(socket, initialize(0, json!({}))).await;
    let response = next_json(socket).await;
    send(socket, initialized()).await;
    response
}

fn gc_call(id: u64, seq: &str) -> String {
    request(
        id,
        "tools/call",
        json!({ "name": "gc_content", "arguments": { "seq": seq } }),
    )
}

fn gc_result(response: &Value) -> f64 {
    response["result"]["structuredContent"]["result"]
        .as_f64()
        .unwrap_or_else(|| panic!("no result: {response}"))
}

#[tokio::test]
async fn initialize_list_and_call_over_websocket_on_the_shared_port() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--ws", "0"]).await;
    assert_eq!(
        server.http().replace("http://", "").replace("/mcp", ""),
        server.ws().replace("ws://", "").replace("/ws", "")
    );
    let mut socket = connect(server.ws()).await;
    let init = handshake(&mut socket).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "bioseq");

    send(&mut socket, request(1, "tools/list", json!({}))).await;
    let list = next_json(&mut socket).await;
    let tools = list["result"]["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 5);
    assert!(tools.iter().all(|t| t["description"].is_string()
        && t["inputSchema"].is_object()
        && t["outputSchema"].is_object()));

    send(&mut socket, gc_call(2, "GGCCAT")).await;
    assert_gc_ggccat(gc_result(&next_json(&mut socket).await));

    // The root path upgrades too.
    let root = server.ws().trim_end_matches("/ws").to_owned() + "/";
    let mut socket = connect(&root).await;
    handshake(&mut socket).await;
    send(&mut socket, gc_call(1, "GGCCAT")).await;
    assert_gc_ggccat(gc_result(&next_json(&mut socket).await));
}

#[tokio::test]
async fn malformed_frame_gets_parse_error_and_socket_stays_up() {
    let server = ServerProcess::start("bioseq", &["--ws", "0"]).await;
    let mut socket = connect(server.ws()).await;
    handshake(&mut socket).await;
    send(
        &mut socket,
        "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".to_owned(),
    )
    .await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["error"]["code"], -32700, "{error}");
    assert_eq!(error["id"], Value::Null);
    send(&mut socket, r#"{"jsonrpc":"2.0","id":2}"#.to_owned()).await;
    assert_eq!(next_json(&mut socket).await["error"]["code"], -32600);
    send(&mut socket, gc_call(3, "GGCCAT")).await;
    let response = next_json(&mut socket).await;
    assert_eq!(response["id"], 3);
    assert_gc_ggccat(gc_result(&response));
}

#[tokio::test]
async fn oversized_message_is_closed_with_1009_and_other_sockets_keep_working() {
    let server = ServerProcess::start("bioseq", &["--ws", "0", "--max-message-size", "4096"]).await;
    let mut other = connect(server.ws()).await;
    handshake(&mut other).await;
    let mut socket = connect(server.ws()).await;
    handshake(&mut socket).await;
    send(&mut socket, gc_call(1, &"A".repeat(8192))).await;
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("close within 10 s")
    .expect("close frame with a code");
    assert_eq!(close.code, CloseCode::Size);
    assert!(
        close.reason.contains("exceeds the limit of 4096 bytes"),
        "{}",
        close.reason
    );
    send(&mut other, gc_call(2, "GGCCAT")).await;
    assert_gc_ggccat(gc_result(&next_json(&mut other).await));
}

#[tokio::test]
async fn thirty_two_concurrent_calls_on_one_socket() {
    let server = ServerProcess::start("bioseq", &["--ws", "0"]).await;
    let mut socket = connect(server.ws()).await;
    handshake(&mut socket).await;
    // Sequence i has i G/C bases out of 32, so each response can be checked against its id.
    let seq = |i: usize| "G".repeat(i) + &"A".repeat(32 - i);
    for i in 0..32 {
        send(&mut socket, gc_call(100 + i as u64, &seq(i))).await;
    }
    let mut seen = [false; 32];
    for _ in 0..32 {
        let response = next_json(&mut socket).await;
        let i = usize::try_from(response["id"].as_u64().expect("id") - 100).expect("index");
        assert!(!seen[i], "duplicate response {i}");
        seen[i] = true;
        assert!(
            (gc_result(&response) - i as f64 / 32.0).abs() < 1e-12,
            "{response}"
        );
    }
    assert!(seen.iter().all(|s| *s));
}

/// The close code a server sends after a frame that breaks the protocol (an unmasked client
/// frame).
async fn close_code_after_an_unmasked_frame(url: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = mcp_expose_tests::raw_websocket(url).await;
    tcp.write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .expect("unmasked frame");
    let mut frames = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut frames)).await;
    // The first frame the server sent: a close (0x88) whose payload starts with its code.
    match frames.as_slice() {
        [0x88, len, code @ ..] if *len >= 2 => Some(u16::from_be_bytes([code[0], code[1]])),
        _ => None,
    }
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_never_reads_keeps_memory_bounded() {
    use tokio::io::AsyncWriteExt as _;
    let bioseq = mcp_expose_tests::bin("bioseq").display().to_string();
    let args = ["--ws", "0", "--max-message-size", "65536"];
    let direct = ServerProcess::start("bioseq", &args).await;
    let bridged = ServerProcess::start(
        "mcp-expose",
        &[&["bridge"][..], &args, &["--", &bioseq]].concat(),
    )
    .await;
    for server in [&direct, &bridged] {
        let pid = server.child.id().expect("pid");
        let before = mcp_expose_tests::rss_kib(pid);
        let mut tcp = mcp_expose_tests::raw_websocket(server.ws()).await;
        // Masked pings with the largest control payload (125 bytes): each asks for a pong of
        // as many bytes, which the server must hold or drop while we never read.
        let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
        ping.extend((0..125u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i % 4)]));
        let batch: Vec<u8> = ping
            .iter()
            .copied()
            .cycle()
            .take(ping.len() * 1000)
            .collect();
        for _ in 0..300 {
            // 300,000 pings in all: ~38 MB of pongs asked for.
            match tokio::time::timeout(Duration::from_secs(5), tcp.write_all(&batch)).await {
                Ok(Ok(())) => {}
                // Closed on us: fine, that bounds it too.
                Ok(Err(_)) => break,
                Err(_) => panic!(
                    "{}: the server stopped reading but kept the socket",
                    server.ws()
                ),
            }
        }
        // Let the server read what the kernel holds for it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let grown = mcp_expose_tests::rss_kib(pid).saturating_sub(before);
        // Before the write buffer was bounded: ~122 bytes kept per ping (35 MiB here).
        assert!(
            grown < 8 * 1024,
            "{}: RSS grew {grown} KiB over 300,000 pings",
            server.ws()
        );
        // The server serves others.
        let (mut socket, _) = connect_async(server.ws()).await.expect("another client");
        send(&mut socket, initialize(1, json!({}))).await;
        assert!(next_json(&mut socket).await["result"].is_object());
    }
}

#[tokio::test]
async fn a_protocol_violation_closes_with_1002_directly_and_behind_the_bridge() {
    let direct = ServerProcess::start("bioseq", &["--ws", "0"]).await;
    let bioseq = mcp_expose_tests::bin("bioseq").display().to_string();
    let bridged = ServerProcess::start("mcp-expose", &["bridge", "--ws", "0", "--", &bioseq]).await;
    for server in [&direct, &bridged] {
        assert_eq!(
            close_code_after_an_unmasked_frame(server.ws()).await,
            Some(1002),
            "{}",
            server.ws()
        );
    }
}

#[tokio::test]
async fn a_client_that_asks_for_big_answers_and_never_reads_keeps_memory_bounded() {
    use tokio::io::AsyncWriteExt as _;
    let server = ServerProcess::start("bioseq", &["--ws", "0"]).await;
    let pid = server.child.id().expect("pid");
    let before = mcp_expose_tests::rss_kib(pid);
    let mut tcp = mcp_expose_tests::raw_websocket(server.ws()).await;
    // Masked text frames: initialize, initialized, then calls whose answers are ~256 KiB each.
    let frame = |text: String| {
        let bytes = text.into_bytes();
        let mut frame = vec![0x81u8];
        match bytes.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        frame.extend([0, 0, 0, 0]); // a zero mask leaves the payload as it is
        frame.extend(bytes);
        frame
    };
    tcp.write_all(&frame(initialize(0, json!({}))))
        .await
        .expect("initialize");
    tcp.write_all(&frame(mcp_expose_tests::initialized()))
        .await
        .expect("initialized");
    let seq = "ACGT".repeat(16 * 1024);
    let mut peak = before;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for id in 1..=3000u64 {
        let call = request(
            id,
            "tools/call",
            json!({ "name": "reverse_complement", "arguments": { "seq": seq } }),
        );
        match tokio::time::timeout_at(deadline, tcp.write_all(&frame(call))).await {
            Ok(Ok(())) => {}
            // Closed on us, or the server stopped reading (its own backpressure): both bound it.
            Ok(Err(_)) | Err(_) => break,
        }
        if id % 100 == 0 {
            peak = peak.max(mcp_expose_tests::rss_kib(pid));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    peak = peak.max(mcp_expose_tests::rss_kib(pid));
    let grown = peak.saturating_sub(before);
    eprintln!("non-reading client: RSS {before} KiB -> peak {peak} KiB");
    assert!(
        grown < 192 * 1024,
        "RSS grew {grown} KiB for a client that never reads"
    );
    // Others are served meanwhile.
    let (mut socket, _) = connect_async(server.ws()).await.expect("another client");
    send(&mut socket, initialize(1, json!({}))).await;
    assert!(next_json(&mut socket).await["result"].is_object());
}
