//! A bounded hostile soak: beside 32 honest sessions, a slow reader, a ping flood, idle
//! connections and a frame smuggler attack one shared-child bridge (`bioseq` behind
//! `mcp-expose bridge --child shared`) at once. Every honest call must be answered, and
//! answered right; the bridge's memory must stay bounded. Bounded in time (about 20 s) and
//! count; everything on 127.0.0.1.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use mcp_expose_tests::{ServerProcess, bin, initialize, initialized, request, rss_kib};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::{connect_async, tungstenite::Message};

const HONEST: usize = 32;
const CALLS: usize = 20;

/// A sequence of `n` bases with exactly `gc` G/C, so every answer can be checked.
fn seq(n: usize, gc: usize) -> String {
    "G".repeat(gc) + &"A".repeat(n - gc)
}

/// One honest WebSocket session: initialize, then `CALLS` gc_content calls, each answered right.
async fn honest(url: String, who: usize) -> Result<(), String> {
    let (mut socket, _) = connect_async(&url)
        .await
        .map_err(|e| format!("{who}: connect: {e}"))?;
    let next = async |socket: &mut mcp_expose_tests::Socket| -> Result<Value, String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str(&text).map_err(|e| e.to_string());
                }
                Ok(Some(Ok(_))) => continue,
                other => return Err(format!("{who}: no answer: {other:?}")),
            }
        }
    };
    let send = async |socket: &mut mcp_expose_tests::Socket, text: String| {
        socket
            .send(Message::text(text))
            .await
            .map_err(|e| format!("{who}: send: {e}"))
    };
    send(&mut socket, initialize(0, json!({}))).await?;
    next(&mut socket).await?;
    send(&mut socket, initialized()).await?;
    for i in 0..CALLS {
        let gc = (who * CALLS + i) % 100;
        let call = request(
            i as u64 + 1,
            "tools/call",
            json!({ "name": "gc_content", "arguments": { "seq": seq(100, gc) } }),
        );
        send(&mut socket, call).await?;
        let answer = next(&mut socket).await?;
        let value = answer["result"]["structuredContent"]["result"].as_f64();
        if answer["id"] != json!(i + 1) || value != Some(gc as f64 / 100.0) {
            return Err(format!("{who}: call {i} (gc {gc}) answered {answer}"));
        }
    }
    Ok(())
}

/// A WebSocket client that asks for big answers and never reads them.
async fn slow_reader(url: String, stop: tokio_util::sync::CancellationToken) {
    let Ok((mut socket, _)) = connect_async(&url).await else {
        return;
    };
    let _ = socket.send(Message::text(initialize(0, json!({})))).await;
    let _ = socket.send(Message::text(initialized())).await;
    let big = "ACGT".repeat(16 * 1024);
    for i in 0..2_000u64 {
        let call = request(
            i + 1,
            "tools/call",
            json!({ "name": "reverse_complement", "arguments": { "seq": big } }),
        );
        tokio::select! {
            sent = socket.send(Message::text(call)) => if sent.is_err() { return },
            () = stop.cancelled() => return,
        }
    }
    stop.cancelled().await;
}

/// Raw pings (125-byte payloads) that ask for pongs the client never reads.
async fn ping_flood(addr: String, stop: tokio_util::sync::CancellationToken) {
    let mut tcp = mcp_expose_tests::raw_websocket(&format!("ws://{addr}/ws")).await;
    let batch = mcp_expose_tests::ping_frames(1000);
    for _ in 0..200 {
        tokio::select! {
            sent = tcp.write_all(&batch) => if sent.is_err() { return },
            () = stop.cancelled() => return,
        }
    }
    stop.cancelled().await;
}

/// A client that smuggles requests across lines, with ids in the bridge's old namespace.
async fn smuggler(url: String, stop: tokio_util::sync::CancellationToken) {
    let Ok((mut socket, _)) = connect_async(&url).await else {
        return;
    };
    let _ = socket.send(Message::text(initialize(0, json!({})))).await;
    let _ = socket.send(Message::text(initialized())).await;
    for n in 0..500u64 {
        let smuggled = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":{{\"a\":[\n\
             {{\"jsonrpc\":\"2.0\",\"id\":\"mx{n}\",\"method\":\"tools/call\",\"params\":{{\"name\":\"gc_content\",\"arguments\":{{\"seq\":\"AAAA\"}}}}}}\n,\n1]}}}}"
        );
        tokio::select! {
            sent = socket.send(Message::text(smuggled)) => if sent.is_err() { return },
            () = stop.cancelled() => return,
        }
        // Drain what comes back (errors), so this one is not also a slow reader.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), socket.next()).await
        {
        }
    }
    stop.cancelled().await;
}

#[tokio::test]
async fn honest_sessions_are_served_beside_every_attack_at_once() {
    let bioseq = bin("bioseq").display().to_string();
    let server = ServerProcess::start(
        "mcp-expose",
        &[
            "bridge",
            "--child",
            "shared",
            "--http",
            "0",
            "--ws",
            "0",
            "--header-read-timeout",
            "3",
            "--max-message-size",
            "1048576",
            "--",
            &bioseq,
        ],
    )
    .await;
    let pid = server.child.id().expect("pid");
    let url = server.ws().to_owned();
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let baseline = rss_kib(pid);
    let stop = tokio_util::sync::CancellationToken::new();

    let mut attacks = tokio::task::JoinSet::new();
    attacks.spawn(slow_reader(url.clone(), stop.clone()));
    attacks.spawn(ping_flood(addr.clone(), stop.clone()));
    attacks.spawn(smuggler(url.clone(), stop.clone()));
    let idle: Vec<tokio::net::TcpStream> = {
        let mut idle = Vec::new();
        for _ in 0..64 {
            if let Ok(tcp) = tokio::net::TcpStream::connect(&addr).await {
                idle.push(tcp);
            }
        }
        idle
    };
    // Let the attacks get going before the honest sessions start.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.is_cancelled() {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let mut honest_sessions = tokio::task::JoinSet::new();
    for who in 0..HONEST {
        honest_sessions.spawn(honest(url.clone(), who));
    }
    let mut failures = Vec::new();
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(done) = honest_sessions.join_next().await {
            if let Err(e) = done.expect("join") {
                failures.push(e);
            }
        }
    })
    .await;
    stop.cancel();
    let peak = sampler.await.expect("sampler");
    drop(idle);
    attacks.shutdown().await;

    assert!(
        all.is_ok(),
        "the honest sessions did not finish within 60 s"
    );
    assert!(
        failures.is_empty(),
        "{} of {HONEST} honest sessions failed: {failures:#?}",
        failures.len()
    );
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < 256 * 1024,
        "the bridge grew {grown} KiB over {baseline} KiB under attack"
    );
    eprintln!(
        "hostile soak: {HONEST} x {CALLS} honest calls, 0 errors; bridge RSS {baseline} KiB -> peak {peak} KiB"
    );
}
