//! The WebSocket side: subprotocol `mcp`, one message per text frame, and a reconnect with
//! backoff that replays the client's handshake so the client never notices. With OAuth, each
//! upgrade carries the token (refreshed when about to expire), and an upgrade refused with
//! `401` (or `403 insufficient_scope`) signs in first, as a request over HTTP does.
//!
//! Requests in flight when the socket dies get an error reply instead of being resent: the
//! server may have run them already, and `tools/call` is not idempotent in general.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{
    Url,
    header::{AUTHORIZATION, HeaderMap, HeaderValue, SEC_WEBSOCKET_PROTOCOL},
};
use serde_json::value::RawValue;
use tokio::{net::TcpStream, sync::mpsc, task::JoinHandle, time::Instant};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message as Frame, client::IntoClientRequest as _},
};

use super::{
    message::{self, Id, Kind, Message, error_reply, from_server},
    oauth::OAuth,
    output::Output,
    retry::{self, CONNECT_TIMEOUT, DRAIN, GIVE_UP_AFTER, is_transient},
};
use crate::{
    error::describe,
    jsonrpc::{IdKey, SERVER_UNAVAILABLE},
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Messages from stdin waiting for the connection task.
const QUEUE: usize = 256;
/// A connection that lived this long was healthy: the next reconnect starts fast again.
const HEALTHY: Duration = Duration::from_secs(5);

/// The WebSocket connection to one MCP endpoint, run by a task that owns the socket.
#[derive(Debug)]
pub(crate) struct WsRemote {
    tx: mpsc::Sender<Message>,
    task: JoinHandle<()>,
}

impl WsRemote {
    pub(crate) fn spawn(
        url: Url,
        headers: HeaderMap,
        auth: Option<Arc<OAuth>>,
        out: Output,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let connection = Connection {
            url,
            headers,
            auth,
            out,
            rx,
            stdin_open: true,
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            init_params: None,
            client_init: None,
            init_done: false,
            initialized: false,
            internal_ids: 1,
        };
        Self {
            tx,
            task: tokio::spawn(connection.run()),
        }
    }

    pub(crate) async fn send(&mut self, message: Message) {
        if self.tx.send(message).await.is_err() {
            tracing::error!("the WebSocket connection task ended");
        }
    }

    /// Lets requests in flight finish (briefly), then closes the socket.
    pub(crate) async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Why a connection ended.
enum Ended {
    StdinClosed,
    Lost(String),
}

struct Connection {
    url: Url,
    headers: HeaderMap,
    /// OAuth sign-in: its token on every upgrade, a sign-in when the upgrade is refused.
    auth: Option<Arc<OAuth>>,
    out: Output,
    rx: mpsc::Receiver<Message>,
    stdin_open: bool,
    /// Messages read while disconnected, with when they were read.
    queue: VecDeque<(Instant, Message)>,
    /// Client requests sent and not answered yet, by id key.
    in_flight: HashMap<IdKey, Id>,
    /// The client's `initialize` params, replayed verbatim on a new connection.
    init_params: Option<Box<RawValue>>,
    /// The client's `initialize` while it waits for its answer.
    client_init: Option<Id>,
    init_done: bool,
    initialized: bool,
    internal_ids: u64,
}

impl Connection {
    async fn run(mut self) {
        let mut backoff = retry::backoff();
        // Only the first failure in a row is a warning: a server down for an hour would
        // otherwise fill the log every 5 s.
        let mut failures = 0u32;
        loop {
            if !self.stdin_open && self.queue.is_empty() {
                return;
            }
            let socket = match self.connect().await {
                Ok(socket) => {
                    failures = 0;
                    socket
                }
                Err((reason, rejected)) => {
                    if failures == 0 {
                        tracing::warn!(%reason, "cannot connect to {}; retrying", self.url);
                    } else {
                        tracing::debug!(%reason, failures, "cannot connect to {}", self.url);
                    }
                    failures += 1;
                    self.expire(&reason, rejected).await;
                    if !self.stdin_open {
                        return self
                            .fail_queue("stdin closed before the server was reachable")
                            .await;
                    }
                    self.wait_queueing(backoff.next_delay()).await;
                    continue;
                }
            };
            let started = Instant::now();
            match self.serve(socket).await {
                Ended::StdinClosed => return,
                Ended::Lost(reason) => {
                    tracing::warn!(%reason, "WebSocket connection lost; reconnecting");
                    let reply = format!(
                        "the connection to the server was lost before the response arrived ({reason}); the request may or may not have run"
                    );
                    for (_, id) in self.in_flight.drain() {
                        self.out
                            .send(error_reply(Some(&id), SERVER_UNAVAILABLE, &reply))
                            .await;
                    }
                    self.client_init = None;
                    if !self.stdin_open {
                        return;
                    }
                }
            }
            if started.elapsed() >= HEALTHY {
                backoff.reset();
            }
            if self.stdin_open {
                self.wait_queueing(backoff.next_delay()).await;
            }
        }
    }

    /// Opens a socket and, when the client had initialized, replays its handshake on it.
    /// `Err` carries the reason and whether retrying cannot help soon (a 4xx answer to the
    /// upgrade other than 429, a TLS error): then queued requests are answered at once.
    async fn connect(&mut self) -> Result<Socket, (String, bool)> {
        let mut sign_ins = 0;
        let mut socket = loop {
            let authorization = match &self.auth {
                Some(auth) => auth.authorization().await,
                None => None,
            };
            let mut request = self
                .url
                .as_str()
                .into_client_request()
                .map_err(|e| (describe(&e), true))?;
            let headers = request.headers_mut();
            for (name, value) in &self.headers {
                headers.append(name, value.clone());
            }
            if let Some(value) = authorization
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(AUTHORIZATION, value);
            }
            headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("mcp"));
            let connected =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
                    .await
                    .map_err(|_| ("connecting timed out".to_owned(), false))?;
            match connected {
                Ok((socket, _)) => break socket,
                Err(tungstenite::Error::Http(response)) => {
                    if let Some(auth) = &self.auth
                        && let Some(signed_in) = auth
                            .answer(
                                response.status(),
                                response.headers(),
                                authorization.as_deref(),
                                &mut sign_ins,
                            )
                            .await
                    {
                        signed_in.map_err(|e| (e.sentence(), true))?;
                        continue;
                    }
                    let body = response
                        .body()
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    let detail: String = body.trim().chars().take(300).collect();
                    let status = response.status();
                    // 429 (too many requests, or too many failed tokens): later may work.
                    return Err((
                        format!("HTTP {status} on the WebSocket upgrade: {detail}"),
                        status.is_client_error() && status != http::StatusCode::TOO_MANY_REQUESTS,
                    ));
                }
                Err(e) => return Err((describe(&e), !is_transient(&e))),
            }
        };
        if self.init_done {
            self.replay(&mut socket)
                .await
                .map_err(|reason| (reason, false))?;
        }
        Ok(socket)
    }

    /// `initialize` with the client's params under an internal id (its answer swallowed), then
    /// `notifications/initialized` if the client had sent it.
    async fn replay(&mut self, socket: &mut Socket) -> Result<(), String> {
        let id = Id::internal(self.internal_ids);
        self.internal_ids += 1;
        let Some(params) = &self.init_params else {
            return Ok(());
        };
        let request = message::initialize_request(&id, params);
        socket
            .send(Frame::text(request))
            .await
            .map_err(|e| describe(&e))?;
        let answer = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                match socket.next().await {
                    Some(Ok(frame)) => {
                        let Some(reply) = frame_text(&frame).and_then(from_server) else {
                            continue;
                        };
                        if reply.answers(&id) {
                            return message::initialize_outcome(&reply.line).map(drop);
                        }
                        self.out.send(reply.line).await;
                    }
                    Some(Err(e)) => return Err(describe(&e)),
                    None => return Err("closed during initialize".to_owned()),
                }
            }
        })
        .await
        .map_err(|_| "no answer to initialize".to_owned())?;
        answer?;
        if self.initialized {
            socket
                .send(Frame::text(message::INITIALIZED))
                .await
                .map_err(|e| describe(&e))?;
        }
        tracing::info!("reconnected to {} and re-initialized", self.url);
        Ok(())
    }

    /// Carries messages both ways until the socket or stdin closes.
    async fn serve(&mut self, socket: Socket) -> Ended {
        let (mut sink, mut stream) = socket.split();
        while let Some((_, message)) = self.queue.pop_front() {
            self.track(&message);
            if let Err(e) = sink.send(Frame::text(message.line)).await {
                return Ended::Lost(describe(&e));
            }
        }
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_some() && self.in_flight.is_empty() {
                break;
            }
            let deadline = drain_until.unwrap_or_else(|| Instant::now() + GIVE_UP_AFTER);
            tokio::select! {
                message = self.rx.recv(), if self.stdin_open => match message {
                    Some(message) => {
                        self.track(&message);
                        if let Err(e) = sink.send(Frame::text(message.line)).await {
                            return Ended::Lost(describe(&e));
                        }
                    }
                    None => {
                        self.stdin_open = false;
                        drain_until = Some(Instant::now() + DRAIN);
                    }
                },
                frame = stream.next() => match frame {
                    Some(Ok(Frame::Close(close))) => {
                        let why = close.map(|c| format!(": {} {}", u16::from(c.code), c.reason)).unwrap_or_default();
                        return Ended::Lost(format!("the server closed the connection{why}"));
                    }
                    Some(Ok(frame)) => {
                        if let Some(text) = frame_text(&frame) {
                            self.receive(text).await;
                        }
                    }
                    Some(Err(e)) => return Ended::Lost(describe(&e)),
                    None => return Ended::Lost("the connection closed".to_owned()),
                },
                () = tokio::time::sleep_until(deadline), if drain_until.is_some() => {
                    tracing::warn!("stdin closed; abandoning requests still waiting for the server");
                    break;
                }
            }
        }
        let _ = sink.send(Frame::Close(None)).await;
        Ended::StdinClosed
    }

    /// Notes what a client message means for the session before it is sent.
    fn track(&mut self, message: &Message) {
        match &message.kind {
            Kind::Request { id, method } => {
                self.in_flight.insert(id.key().clone(), id.clone());
                if method == "initialize" {
                    self.init_params = message.init_params.clone();
                    self.client_init = Some(id.clone());
                    self.init_done = false;
                    self.initialized = false;
                }
            }
            Kind::Notification { method } if method == "notifications/initialized" => {
                self.initialized = true;
            }
            _ => {}
        }
    }

    async fn receive(&mut self, text: &str) {
        let Some(reply) = from_server(text) else {
            return;
        };
        if let Kind::Response { id: Some(id) } = &reply.kind {
            self.in_flight.remove(id.key());
            if self.client_init.as_ref() == Some(id) {
                self.client_init = None;
                self.init_done = message::initialize_outcome(&reply.line).is_ok();
            }
        }
        self.out.send(reply.line).await;
    }

    /// Waits `delay`, queueing what the client sends meanwhile; returns early when stdin closes.
    async fn wait_queueing(&mut self, delay: Duration) {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return,
                message = self.rx.recv(), if self.stdin_open => match message {
                    Some(message) => self.queue.push_back((Instant::now(), message)),
                    None => {
                        self.stdin_open = false;
                        return;
                    }
                },
            }
        }
    }

    /// Answers queued requests that waited too long, or all of them when the server refused
    /// the connection (retrying will not change a 401).
    async fn expire(&mut self, reason: &str, all: bool) {
        let now = Instant::now();
        let mut kept = VecDeque::new();
        for (since, message) in std::mem::take(&mut self.queue) {
            if all || now.duration_since(since) >= GIVE_UP_AFTER {
                self.give_up(&message, reason).await;
            } else {
                kept.push_back((since, message));
            }
        }
        self.queue = kept;
    }

    async fn fail_queue(&mut self, reason: &str) {
        for (_, message) in std::mem::take(&mut self.queue) {
            self.give_up(&message, reason).await;
        }
    }

    async fn give_up(&self, message: &Message, reason: &str) {
        let reason = format!("cannot reach {}: {reason}", self.url);
        match message.failure(SERVER_UNAVAILABLE, &reason) {
            Some(reply) => {
                self.out.send(reply).await;
            }
            None => {
                tracing::warn!(method = message.method().unwrap_or("response"), %reason, "message dropped")
            }
        }
    }
}

/// The text of a data frame (binary frames are read as UTF-8 too).
fn frame_text(frame: &Frame) -> Option<&str> {
    match frame {
        Frame::Text(text) => Some(text.as_str()),
        Frame::Binary(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}
