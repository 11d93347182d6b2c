//! stdout: the client's JSON-RPC stream. One writer task owns it, so messages produced by
//! concurrent requests never interleave within a line.

use tokio::{
    io::{AsyncWrite, AsyncWriteExt as _},
    sync::mpsc,
    task::JoinHandle,
};

/// Messages waiting for stdout; when the client reads slowly, producers wait instead of
/// buffering without bound.
const QUEUE: usize = 1024;

/// A handle for writing one JSON-RPC message per line to the client.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    tx: mpsc::Sender<String>,
}

impl Output {
    /// Starts the writer task over `sink`; it ends when every handle is dropped, after
    /// writing what was queued.
    pub(crate) fn spawn<W>(sink: W) -> (Self, JoinHandle<()>)
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, tokio::spawn(write_lines(sink, rx)))
    }

    /// Queues one message (already on one line). Returns `false` once stdout is gone.
    pub(crate) async fn send(&self, line: String) -> bool {
        self.tx.send(line).await.is_ok()
    }

    /// Whether the writer stopped (the client closed stdout).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut sink: W, mut rx: mpsc::Receiver<String>) {
    while let Some(line) = rx.recv().await {
        let mut written = write_line(&mut sink, &line).await;
        // Flush only when the queue is drained: a burst of messages costs one flush.
        while written.is_ok() {
            match rx.try_recv() {
                Ok(line) => written = write_line(&mut sink, &line).await,
                Err(_) => {
                    written = sink.flush().await;
                    break;
                }
            }
        }
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write to stdout; the client is gone");
            return;
        }
    }
    let _ = sink.flush().await;
}

async fn write_line<W: AsyncWrite + Unpin>(sink: &mut W, line: &str) -> std::io::Result<()> {
    sink.write_all(line.as_bytes()).await?;
    sink.write_all(b"\n").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_written_whole_and_in_order() {
        let (reader, writer) = tokio::io::duplex(64);
        let (output, task) = Output::spawn(writer);
        let producers: Vec<_> = (0..4)
            .map(|n| {
                let output = output.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        output.send(format!("{{\"n\":{n},\"i\":{i}}}")).await;
                    }
                })
            })
            .collect();
        drop(output);
        let read = tokio::spawn(async move {
            let mut text = String::new();
            let mut reader = reader;
            tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut text)
                .await
                .expect("read");
            text
        });
        for p in producers {
            p.await.expect("producer");
        }
        task.await.expect("writer");
        let text = read.await.expect("reader");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        for line in lines {
            serde_json::from_str::<serde_json::Value>(line).expect("whole JSON line");
        }
    }
}
