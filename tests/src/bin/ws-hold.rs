//! `ws-hold URL COUNT SECS [PID]`: opens COUNT WebSocket MCP sessions to URL (each initialized),
//! holds them SECS seconds, and prints how many connected and, with PID, that process's
//! resident memory before and after. A bounded load tool for loopback servers.

#![allow(clippy::print_stdout)] // a command-line tool: its report is its output

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(count), Some(secs)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: ws-hold URL COUNT SECS [PID]");
        std::process::exit(2);
    };
    let count: usize = count.parse::<usize>().expect("COUNT").min(20_000);
    let secs: u64 = secs.parse::<u64>().expect("SECS").min(600);
    let pid = args.get(4);
    let before = pid.and_then(|p| rss_kib(p));
    let start = Instant::now();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"ws-hold","version":"0"}}}"#;
    let mut sockets = Vec::with_capacity(count);
    let mut failed = 0;
    // Connect in batches of 200 so the accept queue never overflows.
    for batch in (0..count).collect::<Vec<_>>().chunks(200) {
        let handshakes = batch.iter().map(|_| async {
            let (mut socket, _) = connect_async(url.as_str()).await.ok()?;
            socket.send(Message::text(init)).await.ok()?;
            tokio::time::timeout(Duration::from_secs(30), socket.next())
                .await
                .ok()??
                .ok()?;
            socket
                .send(Message::text(
                    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                ))
                .await
                .ok()?;
            Some(socket)
        });
        for socket in futures::future::join_all(handshakes).await {
            match socket {
                Some(socket) => sockets.push(socket),
                None => failed += 1,
            }
        }
    }
    let connected = sockets.len();
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after = pid.and_then(|p| rss_kib(p));
    println!(
        "connected {connected} sessions ({failed} failed) in {:.1} s",
        took.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after.saturating_sub(before)) as f64 / connected.max(1) as f64;
        println!(
            "server RSS: {:.1} MiB before, {:.1} MiB with {connected} sessions ({per:.1} KiB per session)",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
    }
    drop(sockets);
}
