//! What `mcp-expose connect` costs per call, by the revision it speaks to the server: the
//! connector as a child process (stdio in front, as a desktop host drives it; `bench-echo
//! --http` behind), a warm-up, then CALLS sequential `tools/call echo`, and the connector's own
//! CPU time (utime + stime from /proc) and the wall time per call.
//!
//! `connect-cost CONNECTOR URL CALLS PROTOCOL...` prints one JSON line per protocol (each a
//! `--protocol` value of `connect`: `2025-11-25` forwards the host's messages as they are,
//! `2026-07-28` rewrites each request with `_meta` and answers `initialize` itself). Linux only
//! (/proc); every read is bounded by the connector's exit, every loop by CALLS.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Command, Stdio},
    time::Instant,
};

const WARM_UP: u32 = 200;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, connector, url, calls, protocols @ ..] = args.as_slice() else {
        eprintln!("usage: connect-cost CONNECTOR URL CALLS PROTOCOL...");
        std::process::exit(2);
    };
    let calls: u32 = calls.parse().expect("CALLS is a number");
    for protocol in protocols {
        let (cpu, wall) = measure(connector, url, calls, protocol);
        // The report is this tool's output (stdout), one JSON line per protocol.
        writeln!(
            std::io::stdout().lock(),
            "{{\"protocol\":\"{protocol}\",\"calls\":{calls},\"cpu_us_per_call\":{:.1},\"wall_us_per_call\":{:.1}}}",
            cpu * 1e6 / f64::from(calls),
            wall * 1e6 / f64::from(calls)
        )
        .expect("stdout");
    }
}

/// The connector's CPU seconds and the wall seconds of `calls` calls.
fn measure(connector: &str, url: &str, calls: u32, protocol: &str) -> (f64, f64) {
    let mut child = Command::new(connector)
        .args(["connect", url, "--protocol", protocol, "--no-oauth"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the connector");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let mut call = |id: u64, method: &str, params: &str| {
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        )
        .expect("write");
        stdin.flush().expect("flush");
        let want = format!(r#""id":{id}"#);
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).expect("read");
            assert!(read > 0, "the connector exited");
            if line.contains(&want) {
                assert!(!line.contains(r#""error""#), "{line}");
                return;
            }
        }
    };
    call(
        0,
        "initialize",
        r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"connect-cost","version":"1"}}"#,
    );
    let echo = r#"{"name":"echo","arguments":{"text":"a hundred bytes of text, more or less, as the load bench sends them to echo back .."}}"#;
    for id in 1..=u64::from(WARM_UP) {
        call(id, "tools/call", echo);
    }
    let (cpu0, wall0) = (cpu_seconds(pid), Instant::now());
    for id in 0..u64::from(calls) {
        call(1000 + id, "tools/call", echo);
    }
    let (cpu, wall) = (cpu_seconds(pid) - cpu0, wall0.elapsed().as_secs_f64());
    drop(stdin);
    let _ = child.wait();
    (cpu, wall)
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the parenthesized command name: state is field 3; utime and stime are 14, 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // CLK_TCK is 100 on Linux.
    ticks as f64 / 100.0
}
