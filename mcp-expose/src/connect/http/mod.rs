//! The streamable HTTP side (MCP 2025-03-26 through 2025-11-25, client rules): one POST per
//! message, answers as JSON or an event stream, a GET stream for server-initiated messages,
//! and a transparent new session when the server forgets ours (404).

mod listen;
mod post;
mod session;
mod stateless;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use reqwest::{Method, Response, StatusCode, Url, header::HeaderMap};
use serde_json::value::RawValue;
use tokio::{
    sync::{OwnedRwLockReadGuard, RwLock, oneshot, watch},
    task::{AbortHandle, JoinHandle, JoinSet},
};

use super::{
    Revision,
    legacy::LegacyRemote,
    message::{self, Kind, Message, from_server},
    oauth::OAuth,
    output::Output,
    retry::DRAIN,
    revision::ToolHeaders,
    stream::{Messages, bounded_text},
};
use crate::{
    error::describe,
    jsonrpc::{IdKey, SERVER_UNAVAILABLE},
};

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
/// A notification waits at most this long for earlier requests to reach the server, so that a
/// `notifications/cancelled` does not overtake the request it cancels.
const ORDER_WAIT: Duration = Duration::from_secs(2);
/// How long delivering a notification or a response may take (its POST's answer included).
const NON_REQUEST_WAIT: Duration = Duration::from_secs(60);
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
    /// Sessionless calls by the host's id, to stop one the host cancels.
    calls: HashMap<IdKey, AbortHandle>,
    listener: JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    revision: Revision,
    /// OAuth sign-in, unless the user turned it off or sends their own `Authorization`.
    auth: Option<Arc<OAuth>>,
    out: Output,
    state: Mutex<State>,
    /// One re-initialization at a time; the others find the session already replaced.
    recovering: tokio::sync::Mutex<()>,
    /// Bumped when the session changes or is initialized: the GET stream follows it.
    generation: watch::Sender<u64>,
    internal_ids: AtomicU64,
    /// Set when the server speaks only MCP 2026-07-28 and the client a 2025 revision.
    mode: Mutex<Option<Arc<stateless::Stateless>>>,
    /// The server's `x-mcp-header` annotations, from its 2026-07-28 `tools/list` answers.
    tools: Mutex<ToolHeaders>,
    /// Whether the server refused the client's `initialize` with 404 or 405 (no streamable
    /// HTTP here: perhaps HTTP+SSE).
    refused: AtomicBool,
    /// Whether the `server/discover` probe never reached the server (unreachable for the whole
    /// retry window, TLS refused, sign-in failed): the host's `initialize` would fare no better.
    undelivered: AtomicBool,
    /// Requests to the client on the server's behalf, waiting for its answer.
    host_requests: Mutex<HashMap<IdKey, oneshot::Sender<String>>>,
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
    pub(crate) fn new(
        url: Url,
        headers: HeaderMap,
        revision: Revision,
        auth: Option<Arc<OAuth>>,
        client: reqwest::Client,
        out: Output,
    ) -> Self {
        let inner = Arc::new(Inner {
            client,
            url,
            headers,
            revision,
            auth,
            out,
            state: Mutex::default(),
            recovering: tokio::sync::Mutex::new(()),
            generation: watch::Sender::new(0),
            internal_ids: AtomicU64::new(1),
            mode: Mutex::default(),
            tools: Mutex::default(),
            refused: AtomicBool::new(false),
            undelivered: AtomicBool::new(false),
            host_requests: Mutex::default(),
        });
        let listener = tokio::spawn(inner.clone().listen());
        Self {
            inner,
            order: Arc::new(RwLock::new(())),
            requests: JoinSet::new(),
            calls: HashMap::new(),
            listener,
        }
    }

    /// Sends one client message. Requests run concurrently; `initialize` (which decides the
    /// session), notifications and responses are delivered in order before the next message.
    /// Returns the client's `initialize` (and the answer it got) when the server refused
    /// streamable HTTP altogether (404 or 405), for the caller to try HTTP+SSE instead.
    pub(crate) async fn send(&mut self, message: Message) -> Option<(Message, Option<String>)> {
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
                let answer = match self.inner.revision {
                    Revision::Auto | Revision::Latest => self.inner.negotiate(&message).await,
                    Revision::Sessions => Ok(None),
                };
                let answer = match answer {
                    // Not reached at all: one retry window is all the host waits.
                    Err(reason) => message.failure(SERVER_UNAVAILABLE, &reason),
                    Ok(Some(answer)) => Some(answer),
                    Ok(None) if self.inner.revision == Revision::Latest => message.failure(
                        SERVER_UNAVAILABLE,
                        &format!("{} does not answer server/discover for MCP {}; leave out --protocol to use an older revision", self.inner.url, stateless::REVISION),
                    ),
                    Ok(None) => {
                        let answer = self.inner.exchange(&message, None).await;
                        if self.inner.refused.swap(false, Ordering::Relaxed) {
                            return Some((message, answer));
                        }
                        answer
                    }
                };
                if let Some(answer) = answer {
                    self.inner.out.send(answer).await;
                }
            }
            Kind::Request { .. } => {
                let turn = self.order.clone().read_owned().await;
                let inner = self.inner.clone();
                match inner.stateless() {
                    Some(mode) => {
                        let key = message.id().map(|id| id.key().clone());
                        let call = self.requests.spawn(async move {
                            let out = inner.out.clone();
                            if let Some(answer) = inner.call(mode, message, turn).await {
                                out.send(answer).await;
                            }
                        });
                        self.calls.retain(|_, call| !call.is_finished());
                        if let Some(key) = key {
                            self.calls.insert(key, call);
                        }
                    }
                    None => {
                        self.requests
                            .spawn(async move { inner.deliver(&message, Some(turn)).await });
                    }
                }
            }
            Kind::Notification { method }
                if method == "notifications/cancelled" && self.inner.stateless().is_some() =>
            {
                // Without a session the server stops a request when its connection closes:
                // dropping the call's task closes it (and the host expects no answer).
                if let Some(call) =
                    stateless::cancelled(&message).and_then(|key| self.calls.remove(&key))
                {
                    call.abort();
                }
            }
            Kind::Notification { .. } if self.inner.stateless().is_some() => {
                let _turn = tokio::time::timeout(ORDER_WAIT, self.order.write()).await;
                if let Some(mode) = self.inner.stateless() {
                    self.inner.notify(&mode, &message).await;
                }
            }
            Kind::Response { .. } if self.inner.answer_host_request(&message) => {}
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
        None
    }

    /// The legacy HTTP+SSE transport at the same URL, with the same headers and sign-in.
    pub(crate) async fn legacy(&self) -> Result<LegacyRemote, String> {
        LegacyRemote::connect(
            &self.inner.url,
            self.inner.client.clone(),
            self.inner.headers.clone(),
            self.inner.auth.clone(),
            self.inner.out.clone(),
        )
        .await
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
        if let Some(mode) = self.inner.stateless() {
            mode.stop();
        }
        let _ = (&mut self.listener).await;
        let (session, version) = self.inner.session();
        if let Some(session) = session {
            let delete = self
                .inner
                .request(Method::DELETE, Some(&session), version.as_deref())
                .await
                .0
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

    fn tools(&self) -> MutexGuard<'_, ToolHeaders> {
        self.tools.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn host_requests(&self) -> MutexGuard<'_, HashMap<IdKey, oneshot::Sender<String>>> {
        self.host_requests.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn session(&self) -> (Option<String>, Option<String>) {
        let state = self.state();
        (state.session.clone(), state.version.clone())
    }

    /// Delivers one client message and forwards to the client what the server sends with
    /// its answer, then the answer.
    async fn deliver(&self, message: &Message, turn: Option<OwnedRwLockReadGuard<()>>) {
        if let Some(answer) = self.exchange(message, turn).await {
            self.out.send(answer).await;
        }
    }

    /// Delivers one client message, forwards what the server sends before the answer, and
    /// returns the answer (for a request): the server's, or an error reply for a failure. A
    /// failure to deliver anything else is logged. A 2026-07-28 tool list is read for its
    /// `x-mcp-header` annotations, and loses the tools whose annotations are invalid.
    async fn exchange(
        &self,
        message: &Message,
        turn: Option<OwnedRwLockReadGuard<()>>,
    ) -> Option<String> {
        // Notifications and responses are delivered in line with stdin: a server that holds
        // one (no headers, or a stream where 202 belongs) must not stop the client's messages.
        let answer = if message.is_request() {
            self.exchange_raw(message, turn).await?
        } else {
            match tokio::time::timeout(NON_REQUEST_WAIT, self.exchange_raw(message, turn)).await {
                Ok(answer) => answer?,
                Err(_) => {
                    tracing::warn!(
                        method = message.method().unwrap_or("response"),
                        "the server held a message for {} s; going on without its answer",
                        NON_REQUEST_WAIT.as_secs()
                    );
                    return None;
                }
            }
        };
        if message.method() == Some("tools/list") && super::revision::is_versioned(&message.line) {
            return Some(self.tools().learn(&answer).unwrap_or(answer));
        }
        Some(answer)
    }

    async fn exchange_raw(
        &self,
        message: &Message,
        mut turn: Option<OwnedRwLockReadGuard<()>>,
    ) -> Option<String> {
        let mut recovered = false;
        loop {
            let sent = self.post(&message.line, true).await;
            // The server has the message (or never will): later messages may go.
            drop(turn.take());
            let (response, session) = match sent {
                Ok(sent) => sent,
                Err(reason) => {
                    if message.method() == Some("server/discover") {
                        self.undelivered.store(true, Ordering::Relaxed);
                    }
                    return self.fail(message, &reason).await;
                }
            };
            let status = response.status();
            if status == StatusCode::NOT_FOUND && session.is_some() && !recovered {
                let body = bounded_text(response).await;
                // A JSON-RPC answer to this very request (say -32601 sent as 404) is not a lost session.
                if !is_reply_to(&body, message) {
                    if matches!(message.kind, Kind::Response { .. }) {
                        tracing::warn!("dropped a response: the session that asked for it is gone");
                        return None;
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

    /// Forwards the messages of a successful POST; for a request, until its response, which
    /// is returned.
    async fn receive(
        &self,
        message: &Message,
        response: Response,
        session: Option<String>,
    ) -> Option<String> {
        let status = response.status();
        if !status.is_success() {
            let body = bounded_text(response).await;
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
            return None;
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
                    if done {
                        return Some(reply.line);
                    }
                    self.out.send(reply.line).await;
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

    /// Writes one server message to stdout (dropping what is not JSON-RPC).
    async fn forward(&self, text: &str) {
        if let Some(message) = from_server(text) {
            self.out.send(message.line).await;
        }
    }

    /// The error reply to `message` (a request) that could not be delivered; for anything
    /// else, a log line.
    async fn fail(&self, message: &Message, reason: &str) -> Option<String> {
        let reply = message.failure(SERVER_UNAVAILABLE, reason);
        if reply.is_none() {
            tracing::warn!(method = message.method().unwrap_or("response"), %reason, "message not delivered");
        }
        reply
    }

    /// An HTTP error status, as the JSON-RPC reply the client is waiting for.
    async fn http_error(
        &self,
        message: &Message,
        status: StatusCode,
        body: &str,
    ) -> Option<String> {
        if is_reply_to(body, message) {
            return from_server(body).map(|reply| reply.line);
        }
        if message.method() == Some("initialize")
            && matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            )
        {
            self.refused.store(true, Ordering::Relaxed);
        }
        let reason = format!("HTTP {status} from {}: {}", self.url, error_detail(body));
        self.fail(message, &reason).await
    }
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
