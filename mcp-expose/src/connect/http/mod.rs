//! The streamable HTTP side (MCP 2025-03-26 through 2025-11-25, client rules): one POST per
//! message, answers as JSON or an event stream, a GET stream for server-initiated messages,
//! and a transparent new session when the server forgets ours (404).

mod listen;

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use reqwest::{
    Method, RequestBuilder, Response, StatusCode, Url,
    header::{ACCEPT, CONTENT_TYPE, HeaderMap},
};
use serde_json::value::RawValue;
use tokio::{
    sync::{OwnedRwLockReadGuard, RwLock, watch},
    task::{JoinHandle, JoinSet},
    time::Instant,
};

use super::{
    message::{self, Id, Kind, Message, from_server},
    output::Output,
    retry::{self, CONNECT_TIMEOUT, DRAIN, GIVE_UP_AFTER, is_transient},
    stream::Messages,
};
use crate::{
    error::{Error, ErrorKind, Result, describe},
    jsonrpc::SERVER_UNAVAILABLE,
};

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
/// A notification waits at most this long for earlier requests to reach the server, so that a
/// `notifications/cancelled` does not overtake the request it cancels.
const ORDER_WAIT: Duration = Duration::from_secs(2);
/// Attempts to resume a response stream that broke before its answer arrived.
const MAX_RESUMES: u32 = 3;

/// The HTTP connection to one MCP endpoint.
#[derive(Debug)]
pub(crate) struct HttpRemote {
    inner: Arc<Inner>,
    /// Requests hold a read guard until the server has their message; notifications take the
    /// write side, so they reach the server after the requests read before them.
    order: Arc<RwLock<()>>,
    requests: JoinSet<()>,
    listener: JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    out: Output,
    state: Mutex<State>,
    /// One re-initialization at a time; the others find the session already replaced.
    recovering: tokio::sync::Mutex<()>,
    /// Bumped when the session changes or is initialized: the GET stream follows it.
    generation: watch::Sender<u64>,
    internal_ids: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    session: Option<String>,
    version: Option<String>,
    /// The client's `initialize` params, replayed verbatim to open a new session.
    init_params: Option<Box<RawValue>>,
    /// Whether the client sent `notifications/initialized` (replayed after `initialize`).
    initialized: bool,
}

impl HttpRemote {
    pub(crate) fn new(url: Url, headers: HeaderMap, out: Output) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("mcp-expose-connect/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::with_source(ErrorKind::Config, "cannot create the HTTP client", e)
            })?;
        let inner = Arc::new(Inner {
            client,
            url,
            headers,
            out,
            state: Mutex::default(),
            recovering: tokio::sync::Mutex::new(()),
            generation: watch::Sender::new(0),
            internal_ids: AtomicU64::new(1),
        });
        let listener = tokio::spawn(inner.clone().listen());
        Ok(Self {
            inner,
            order: Arc::new(RwLock::new(())),
            requests: JoinSet::new(),
            listener,
        })
    }

    /// Sends one client message. Requests run concurrently; `initialize` (which decides the
    /// session), notifications and responses are delivered in order before the next message.
    pub(crate) async fn send(&mut self, message: Message) {
        while self.requests.try_join_next().is_some() {}
        match &message.kind {
            Kind::Request { method, .. } if method == "initialize" => {
                {
                    let mut state = self.inner.state();
                    *state = State {
                        init_params: message.init_params.clone(),
                        ..State::default()
                    };
                }
                self.inner.generation.send_modify(|g| *g += 1);
                self.inner.deliver(&message, None).await;
            }
            Kind::Request { .. } => {
                let turn = self.order.clone().read_owned().await;
                let inner = self.inner.clone();
                self.requests
                    .spawn(async move { inner.deliver(&message, Some(turn)).await });
            }
            Kind::Notification { method } => {
                let initialized = method == "notifications/initialized";
                let _turn = tokio::time::timeout(ORDER_WAIT, self.order.write()).await;
                self.inner.deliver(&message, None).await;
                if initialized {
                    self.inner.state().initialized = true;
                    self.inner.generation.send_modify(|g| *g += 1);
                }
            }
            Kind::Response { .. } => self.inner.deliver(&message, None).await,
        }
    }

    /// Lets running requests finish (briefly), then ends the session (best effort).
    pub(crate) async fn close(mut self) {
        let drained = tokio::time::timeout(DRAIN, async {
            while self.requests.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("stdin closed; abandoning requests still waiting for the server");
        }
        self.requests.shutdown().await;
        self.listener.abort();
        let _ = (&mut self.listener).await;
        let (session, version) = self.inner.session();
        if let Some(session) = session {
            let delete = self
                .inner
                .request(Method::DELETE, Some(&session), version.as_deref())
                .send();
            match tokio::time::timeout(Duration::from_secs(2), delete).await {
                Ok(Ok(response)) => tracing::debug!(status = %response.status(), "session deleted"),
                Ok(Err(e)) => tracing::debug!(error = %describe(&e), "cannot delete the session"),
                Err(_) => tracing::debug!("deleting the session timed out"),
            }
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every write is one assignment.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn session(&self) -> (Option<String>, Option<String>) {
        let state = self.state();
        (state.session.clone(), state.version.clone())
    }

    fn request(
        &self,
        method: Method,
        session: Option<&str>,
        version: Option<&str>,
    ) -> RequestBuilder {
        let mut request = self
            .client
            .request(method, self.url.clone())
            .headers(self.headers.clone());
        if let Some(session) = session {
            request = request.header(SESSION_ID, session);
        }
        if let Some(version) = version {
            request = request.header(PROTOCOL_VERSION, version);
        }
        request
    }

    /// POSTs `body` (with the current session when `with_session`, unless `body` is an MCP
    /// 2026-07-28 request, which carries its own version headers), retrying while the server
    /// is unreachable, or refuses it for now (429 or 503 with `Retry-After`: it did not take the
    /// message, so sending it again runs nothing twice). Returns the response and the session it
    /// was sent under.
    async fn post(
        &self,
        body: &str,
        with_session: bool,
    ) -> Result<(Response, Option<String>), String> {
        let revision = super::revision::headers(body);
        let with_session = with_session && revision.is_empty();
        let deadline = Instant::now() + GIVE_UP_AFTER;
        let mut backoff = retry::backoff();
        let mut attempts = 0u32;
        loop {
            // Read on every attempt: another task may have re-initialized meanwhile.
            let (session, version) = if with_session {
                self.session()
            } else {
                (None, None)
            };
            let mut request = self.request(Method::POST, session.as_deref(), version.as_deref());
            for (name, value) in &revision {
                request = request.header(*name, value);
            }
            let sent = request
                .header(ACCEPT, "application/json, text/event-stream")
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let wait = retry_after(&response)
                        .map(|wait| wait.max(backoff.next_delay()))
                        .filter(|wait| Instant::now() + *wait <= deadline);
                    let Some(wait) = wait else {
                        return Ok((response, session));
                    };
                    let status = response.status();
                    if attempts == 0 {
                        tracing::warn!(%status, ?wait, "the server asks to retry later; waiting");
                    } else {
                        tracing::debug!(%status, ?wait, attempts, "the server asks to retry later");
                    }
                    attempts += 1;
                    tokio::time::sleep(wait).await;
                }
                // Nothing reached the server, so sending again cannot run anything twice.
                Err(e) if e.is_connect() && (e.is_timeout() || is_transient(&e)) => {
                    let delay = backoff.next_delay();
                    if Instant::now() + delay > deadline {
                        return Err(format!(
                            "cannot reach {} (retried for {} s): {}",
                            self.url,
                            GIVE_UP_AFTER.as_secs(),
                            describe(&e)
                        ));
                    }
                    if attempts == 0 {
                        tracing::warn!(error = %describe(&e), "server unreachable; retrying");
                    } else {
                        tracing::debug!(error = %describe(&e), ?delay, attempts, "server unreachable");
                    }
                    attempts += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(format!("request to {} failed: {}", self.url, describe(&e))),
            }
        }
    }

    /// Delivers one client message and forwards what the server answers; every failure
    /// becomes an error reply (requests) or a log line (the rest).
    async fn deliver(&self, message: &Message, mut turn: Option<OwnedRwLockReadGuard<()>>) {
        let mut recovered = false;
        loop {
            let sent = self.post(&message.line, true).await;
            // The server has the message (or never will): later messages may go.
            drop(turn.take());
            let (response, session) = match sent {
                Ok(sent) => sent,
                Err(reason) => return self.fail(message, &reason).await,
            };
            let status = response.status();
            if status == StatusCode::NOT_FOUND && session.is_some() && !recovered {
                let body = response.text().await.unwrap_or_default();
                // A JSON-RPC answer to this very request (say -32601 sent as 404) is not a lost session.
                if !is_reply_to(&body, message) {
                    if matches!(message.kind, Kind::Response { .. }) {
                        tracing::warn!("dropped a response: the session that asked for it is gone");
                        return;
                    }
                    match self.recover(session.as_deref()).await {
                        Ok(()) => {
                            recovered = true;
                            continue;
                        }
                        Err(reason) => {
                            let reason = format!(
                                "the server lost the session and re-initializing failed: {reason}"
                            );
                            return self.fail(message, &reason).await;
                        }
                    }
                }
                return self.http_error(message, status, &body).await;
            }
            return self.receive(message, response, session).await;
        }
    }

    /// Forwards the messages of a successful POST; for a request, until its response.
    async fn receive(&self, message: &Message, response: Response, session: Option<String>) {
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return self.http_error(message, status, &body).await;
        }
        let is_initialize = message.method() == Some("initialize");
        if is_initialize {
            self.state().session = header(&response, SESSION_ID);
        }
        let Some(expected) = message.id().filter(|_| message.is_request()) else {
            if status != StatusCode::ACCEPTED {
                let mut stream = Messages::new(response);
                while let Ok(Some(text)) = stream.next().await {
                    self.forward(&text).await;
                }
            }
            return;
        };
        if status == StatusCode::ACCEPTED {
            return self
                .fail(
                    message,
                    "the server accepted the request but sent no response",
                )
                .await;
        }
        let mut stream = Messages::new(response);
        let mut resumes = 0;
        // A resumed stream that delivers nothing means the server has nothing to replay.
        let mut progressed = true;
        loop {
            let broken = match stream.next().await {
                Ok(Some(text)) => {
                    progressed = true;
                    let Some(reply) = from_server(&text) else {
                        continue;
                    };
                    let done = reply.answers(expected);
                    if done && is_initialize {
                        self.state().version = message::initialize_outcome(&reply.line).ok();
                    }
                    self.out.send(reply.line).await;
                    if done {
                        return;
                    }
                    continue;
                }
                Ok(None) => "the stream ended".to_owned(),
                Err(reason) => reason,
            };
            // The server numbered its events: ask it to replay what came after the last one.
            let resumable = progressed && resumes < MAX_RESUMES;
            if let Some(last) = stream.last_event_id().filter(|_| resumable) {
                resumes += 1;
                progressed = false;
                tokio::time::sleep(
                    stream
                        .retry()
                        .unwrap_or(Duration::from_secs(1))
                        .min(Duration::from_secs(5)),
                )
                .await;
                if let Some(resumed) = self.resume(&last, session.as_deref()).await {
                    stream.resume(resumed);
                    continue;
                }
            }
            let reason = format!(
                "the connection to the server broke before the response arrived ({broken}); the request may or may not have run"
            );
            return self.fail(message, &reason).await;
        }
    }

    /// GET with `Last-Event-ID`: the rest of a broken stream, if the server kept it. Not
    /// after the session was replaced: the stream belonged to a server that is gone.
    async fn resume(&self, last_event_id: &str, session: Option<&str>) -> Option<Response> {
        let (current, version) = self.session();
        if current.as_deref() != session {
            return None;
        }
        let response = self
            .request(Method::GET, session, version.as_deref())
            .header(ACCEPT, "text/event-stream")
            .header(LAST_EVENT_ID, last_event_id)
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(response)
    }

    /// Replaces a session the server no longer knows (it restarted, or expired it): the
    /// client's own `initialize` again under an internal id, its answer swallowed, then
    /// `notifications/initialized`. The client sees nothing but its retried message.
    async fn recover(&self, stale: Option<&str>) -> Result<(), String> {
        let _one = self.recovering.lock().await;
        let params = {
            let state = self.state();
            if state.session.as_deref() != stale {
                return Ok(());
            }
            state.init_params.clone()
        };
        let params = params.ok_or("the session was lost before the client initialized it")?;
        let id = Id::internal(self.internal_ids.fetch_add(1, Ordering::Relaxed));
        let (response, _) = self
            .post(&message::initialize_request(&id, &params), false)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "initialize: HTTP {status}: {}",
                error_detail(&body)
            ));
        }
        let session = header(&response, SESSION_ID);
        let mut stream = Messages::new(response);
        let version = loop {
            let text = stream
                .next()
                .await?
                .ok_or("the server closed the stream before answering initialize")?;
            let Some(reply) = from_server(&text) else {
                continue;
            };
            if reply.answers(&id) {
                break message::initialize_outcome(&reply.line)?;
            }
            // Anything else the new session sends already is for the client.
            self.out.send(reply.line).await;
        };
        let initialized = {
            let mut state = self.state();
            state.session = session.clone();
            state.version = Some(version);
            state.initialized
        };
        if initialized {
            let (response, _) = self.post(message::INITIALIZED, true).await?;
            if !response.status().is_success() {
                return Err(format!(
                    "notifications/initialized: HTTP {}",
                    response.status()
                ));
            }
        }
        self.generation.send_modify(|g| *g += 1);
        tracing::info!(
            session = session.as_deref().unwrap_or("none"),
            "the server lost the session; re-initialized"
        );
        Ok(())
    }

    /// Writes one server message to stdout (dropping what is not JSON-RPC).
    async fn forward(&self, text: &str) {
        if let Some(message) = from_server(text) {
            self.out.send(message.line).await;
        }
    }

    async fn fail(&self, message: &Message, reason: &str) {
        match message.failure(SERVER_UNAVAILABLE, reason) {
            Some(reply) => {
                self.out.send(reply).await;
            }
            None => {
                tracing::warn!(method = message.method().unwrap_or("response"), %reason, "message not delivered")
            }
        }
    }

    /// An HTTP error status, as the JSON-RPC reply the client is waiting for.
    async fn http_error(&self, message: &Message, status: StatusCode, body: &str) {
        if is_reply_to(body, message) {
            return self.forward(body).await;
        }
        let reason = format!("HTTP {status} from {}: {}", self.url, error_detail(body));
        self.fail(message, &reason).await;
    }
}

/// How long a 429 or 503 asks to wait (`Retry-After` in seconds; an HTTP date is not honoured).
fn retry_after(response: &Response) -> Option<Duration> {
    if !matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether `body` is the JSON-RPC response to `message` (a request).
fn is_reply_to(body: &str, message: &Message) -> bool {
    let Some(id) = message.id().filter(|_| message.is_request()) else {
        return false;
    };
    Message::parse(body).is_ok_and(|reply| reply.answers(id))
}

/// The readable part of an error body: a JSON-RPC error's message, or the text itself.
fn error_detail(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        message: String,
    }
    let text = match serde_json::from_str::<Body>(body) {
        Ok(parsed) => parsed.error.message,
        Err(_) => body.trim().to_owned(),
    };
    let mut detail: String = text.chars().take(300).collect();
    if detail.is_empty() {
        detail.push_str("(no body)");
    }
    detail
}
