//! stdio: one JSON-RPC message per line. stdout carries nothing else.
//!
//! Lines are split with memchr into a reused buffer; an oversized line is answered with an
//! error and skipped up to its newline; writes are batched and flushed when the queue drains.

use crate::observe::metrics::{Direction, TransportKind};
use rmcp::ServiceExt as _;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, BufWriter},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use super::{
    framed::{Framed, Inbound, Outbound},
    lines::{Line, LineReader},
};
use crate::{
    handler::Handler,
    jsonrpc::{self, INVALID_REQUEST},
};

const QUEUE: usize = 256;

/// Serves one MCP session over a byte stream pair until the input ends or `ct` is cancelled.
pub(crate) async fn serve<R, W>(
    handler: Handler,
    input: R,
    output: W,
    max_line: usize,
    ct: CancellationToken,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (inbound_tx, inbound_rx) = mpsc::channel(QUEUE);
    let (outbound_tx, outbound_rx) = mpsc::channel(QUEUE);
    let reader = tokio::spawn(read_lines(input, inbound_tx, max_line));
    let writer = tokio::spawn(write_lines(output, outbound_rx));
    let transport = Framed::new(TransportKind::Stdio, inbound_rx, outbound_tx);
    match handler
        .session(TransportKind::Stdio, None, None, None)
        .serve_with_ct(transport, ct)
        .await
    {
        Ok(running) => {
            let reason = running.waiting().await;
            tracing::debug!(?reason, "stdio session ended");
        }
        Err(e) => tracing::warn!(error = %e, "stdio session did not initialize"),
    }
    reader.abort();
    // The service dropped its sender: the writer drains what is queued and ends.
    let _ = writer.await;
}

/// Splits `input` into lines of at most `max_line` bytes and hands them over.
pub(crate) async fn read_lines<R: AsyncRead + Unpin>(
    input: R,
    tx: mpsc::Sender<Inbound>,
    max_line: usize,
) {
    let mut lines = LineReader::new(input, 64 * 1024, max_line);
    loop {
        let inbound = match lines.next().await {
            Ok(Some(Line::Frame(line))) => {
                crate::observe::metrics::bytes(TransportKind::Stdio, Direction::In, line.len() + 1);
                match trim(line) {
                    Some(frame) => Inbound::Frame(frame.to_vec()),
                    None => continue,
                }
            }
            Ok(Some(Line::TooLong)) => {
                let message =
                    format!("Invalid Request: message exceeds the limit of {max_line} bytes");
                Inbound::Reply(jsonrpc::error("null", INVALID_REQUEST, &message))
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "stdin read failed");
                break;
            }
        };
        if tx.send(inbound).await.is_err() {
            break;
        }
    }
}

/// A line without a byte order mark and trailing blanks; `None` when nothing is left.
fn trim(line: &[u8]) -> Option<&[u8]> {
    let mut frame = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    while let [rest @ .., b'\r' | b' ' | b'\t'] = frame {
        frame = rest;
    }
    (!frame.iter().all(u8::is_ascii_whitespace)).then_some(frame)
}

/// Writes each message as one line; flushes when no more messages are waiting.
pub(crate) async fn write_lines<W: AsyncWrite + Unpin>(
    output: W,
    mut rx: mpsc::Receiver<Outbound>,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, output);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            if let Outbound::Message(text) = message {
                crate::observe::metrics::bytes(
                    TransportKind::Stdio,
                    Direction::Out,
                    text.len() + 1,
                );
                let written = async {
                    writer.write_all(text.as_bytes()).await?;
                    writer.write_all(b"\n").await
                };
                if let Err(e) = written.await {
                    tracing::warn!(error = %e, "stdout write failed");
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = writer.flush().await {
            tracing::warn!(error = %e, "stdout flush failed");
            return;
        }
    }
}
