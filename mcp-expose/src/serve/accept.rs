//! Accepting connections: caps on how many are open (in all, below the file-descriptor limit,
//! and per client address), and a deadline for each request head that also ends idle
//! keep-alive connections, and one for each write a client does not take (a client that stops
//! reading has its connection closed, and what was waiting for it freed), so that idle,
//! trickling (slowloris), non-reading or too many connections cannot deny service to everyone
//! else. A WebSocket counts for as long as it is open.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future as _,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{extract::ConnectInfo, http::Request, response::Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// How many connections a listener holds, and how long a request head may take.
#[derive(Debug)]
pub(crate) struct Limits {
    /// A connection that has not sent a whole request head this long after it opened (or
    /// after its previous response) is closed.
    pub(crate) header_read: Duration,
    /// A connection whose client has taken none of a pending write this long is closed.
    pub(crate) write: Duration,
    /// Connections open at once on all listeners together.
    pub(crate) max: usize,
    /// Connections open at once from one client address (0: no limit).
    pub(crate) per_client: usize,
    /// Peers that speak for many clients and are not counted per address: 127.0.0.1 and ::1
    /// (cloudflared, a local proxy) and the trusted proxies.
    pub(crate) shared_peers: Vec<ipnet::IpNet>,
    book: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    open: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Limits {
    pub(crate) fn new(
        header_read: Duration,
        write: Duration,
        max: usize,
        per_client: usize,
        trusted_proxies: &[ipnet::IpNet],
    ) -> Arc<Self> {
        let mut shared_peers: Vec<ipnet::IpNet> = vec![
            IpAddr::from([127, 0, 0, 1]).into(),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST).into(),
        ];
        shared_peers.extend_from_slice(trusted_proxies);
        Arc::new(Self {
            header_read,
            write,
            max: max.max(1),
            per_client,
            shared_peers,
            book: Mutex::default(),
        })
    }

    /// A slot for a connection from `peer`, or why there is none.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, &'static str> {
        let peer = crate::web::canonical(peer);
        let counted = self.per_client > 0 && !self.shared_peers.iter().any(|n| n.contains(&peer));
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        if book.open >= self.max {
            return Err("503 Service Unavailable\r\nRetry-After: 5");
        }
        if counted {
            let count = book.per_client.entry(peer).or_default();
            if *count >= self.per_client {
                return Err("429 Too Many Requests\r\nRetry-After: 5");
            }
            *count += 1;
        }
        book.open += 1;
        Ok(Slot {
            limits: self.clone(),
            peer: counted.then_some(peer),
        })
    }
}

/// One open connection's place in the book, given back when the connection (or the WebSocket
/// it became) closes.
#[derive(Debug)]
struct Slot {
    limits: Arc<Limits>,
    peer: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut book = self.limits.book.lock().unwrap_or_else(|e| e.into_inner());
        book.open = book.open.saturating_sub(1);
        if let Some(peer) = self.peer
            && let Some(count) = book.per_client.get_mut(&peer)
        {
            *count -= 1;
            if *count == 0 {
                book.per_client.remove(&peer);
            }
        }
    }
}

/// The connections a process may hold: its file-descriptor limit, raised first from the soft
/// to the hard limit, less room for everything else it opens (listeners, children's pipes,
/// cloudflared, log files).
pub(crate) fn connection_budget() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let reserve = (limit / 8).max(64);
    limit.saturating_sub(reserve).max(16)
}

/// Serves `app` on `listener` until `stop`, each connection under `limits`. Connections open
/// at `stop` are shut down gracefully (in-flight requests finish).
pub(crate) async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Arc<Limits>,
    stop: CancellationToken,
) where
    S: tower::Service<Request<axum::body::Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        () = stop.cancelled() => return,
                    }
                }
            },
            () = stop.cancelled() => return,
        };
        // Small SSE writes must not wait for delayed ACKs (Nagle): without this a keep-alive
        // client sees ~40 ms per request.
        let _ = tcp.set_nodelay(true);
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(status) => {
                refuse(&tcp, status);
                continue;
            }
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let (parts, body) = request.into_parts();
            let (body, unread) = super::unread::watch(body);
            let mut request = Request::from_parts(parts, body);
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = tower::ServiceExt::oneshot(app.clone(), request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(super::unread::settle(unread, response).await)
            }
        });
        let (header_read, write) = (limits.header_read, limits.write);
        let stop = stop.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(Counted {
                tcp,
                _slot: slot,
                write_timeout: write,
                stalled: None,
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read)
                .serve_connection(io, service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::trace!(error = %e, "connection ended");
                    }
                }
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

/// Answers a connection over a cap at once, without reading it, and closes it.
fn refuse(tcp: &TcpStream, status: &str) {
    let reason = if status.starts_with("503") {
        "this server holds its maximum of connections (see --max-connections); retry later"
    } else {
        "too many connections from this address (see --max-connections-per-client); retry later"
    };
    let body = crate::jsonrpc::error(
        "null",
        crate::jsonrpc::SERVER_UNAVAILABLE,
        &format!("Service Unavailable: {reason}"),
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    crate::observe::metrics::rejected("connections");
    let _ = tcp.try_write(response.as_bytes());
}

/// A connection holding its slot (an upgraded WebSocket keeps it until it closes), whose
/// writes fail once its client has taken nothing for `write_timeout`.
struct Counted {
    tcp: TcpStream,
    _slot: Slot,
    write_timeout: Duration,
    /// Armed while a write waits for the client; only then is there a timer.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Counted {
    /// `polled`, a write's outcome; a write still pending past `write_timeout` becomes an
    /// error, which ends the connection.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!(
                    ?timeout,
                    "closing a connection whose client stopped reading"
                );
                crate::observe::metrics::rejected("write_timeout");
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client took nothing within the write timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.bounded(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.bounded(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_flush(cx);
        this.bounded(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_client_and_in_all_and_free_on_close() {
        let limits = Limits::new(Duration::from_secs(1), Duration::from_secs(1), 3, 2, &[]);
        let stranger: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let a = limits.admit(stranger).expect("first");
        let _b = limits.admit(stranger).expect("second");
        assert!(limits.admit(stranger).is_err_and(|s| s.starts_with("429")));
        let _c = limits
            .admit(local)
            .expect("loopback is not counted per address");
        assert!(limits.admit(other).is_err_and(|s| s.starts_with("503")));
        drop(a);
        assert!(limits.admit(other).is_ok());
    }
}
