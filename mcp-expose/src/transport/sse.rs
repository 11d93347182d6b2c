//! Legacy HTTP+SSE (protocol revision 2024-11-05), for clients that predate streamable HTTP:
//! `GET /sse` opens an event stream whose first event (`endpoint`) names where to POST,
//! `/messages?sessionId=ID`; each POST carries one JSON-RPC message and is answered `202`,
//! and everything the server says goes on the stream as `message` events. The session ends
//! when its stream does (the client left).
//!
//! The session map, the endpoint and the event stream are shared with the bridge
//! (`bridge::sse`); [`routes`] serves the server's own handler, through [`framed`](super::framed)
//! with a byte budget on what the client has not read, as WebSocket does.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::Request,
    http::{StatusCode, header, request::Parts},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt as _};
use rmcp::ServiceExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    decode::{Decoded, decode},
    framed::{Backlog, Framed, Inbound, Outbound},
    ws::{SEND_TIMEOUT, owned, token_expiry},
};
use crate::{
    handler::Handler,
    observe::metrics::{Direction, TransportKind},
    security::principal::Authenticated,
    session::Caller,
    web::{json_error, read_body},
};

/// The query parameter that names a session in a POST's URL.
const SESSION_PARAM: &str = "sessionId";

/// Messages queued each way for one session.
const QUEUE: usize = 256;

/// Open sessions by id, each with what a POST reaches it by and the principal that opened it
/// (`None` without auth). A POST from another principal finds nothing (404), as a streamable
/// HTTP session is refused to anyone but its opener.
pub(crate) struct Sessions<T> {
    map: Mutex<HashMap<String, Entry<T>>>,
}

/// What a POST reaches a session by, and the principal that opened it.
struct Entry<T> {
    value: T,
    owner: Option<Arc<str>>,
}

/// Why a POST found no session.
#[derive(Debug)]
pub(crate) enum Unknown {
    /// Its URL names none: 400.
    Unnamed,
    /// None by that id for this caller: 404.
    NotFound,
}

impl IntoResponse for Unknown {
    fn into_response(self) -> Response {
        match self {
            Self::Unnamed => json_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: missing sessionId (open the event stream at /sse first)",
            ),
            Self::NotFound => json_error(
                StatusCode::NOT_FOUND,
                "Not Found: session not found (it ended, or was never opened: open /sse again)",
            ),
        }
    }
}

impl<T> Default for Sessions<T> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<T> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.lock().len())
            .finish()
    }
}

impl<T> Sessions<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone> Sessions<T> {
    /// Opens a session reached by `value` for the caller of `request`: its id, and the
    /// registration that ends it when dropped (with the stream).
    pub(crate) fn open(self: &Arc<Self>, value: T, request: &Parts) -> Registration<T> {
        let id = session_id();
        let owner = principal(&request.extensions);
        self.lock().insert(id.clone(), Entry { value, owner });
        Registration {
            id,
            sessions: self.clone(),
        }
    }

    /// The session a POST names, when its caller opened it: else 404 (400 without a
    /// `sessionId`).
    pub(crate) fn find(&self, request: &Parts) -> Result<T, Unknown> {
        let id = request
            .uri
            .query()
            .and_then(session_param)
            .ok_or(Unknown::Unnamed)?;
        let caller = principal(&request.extensions);
        match self.lock().get(id) {
            Some(entry) if entry.owner == caller => Ok(entry.value.clone()),
            Some(_) => {
                tracing::debug!("refused a session to a caller other than the one that opened it");
                Err(Unknown::NotFound)
            }
            None => Err(Unknown::NotFound),
        }
    }
}

/// One open session; dropping it (its stream ended) forgets the session.
pub(crate) struct Registration<T> {
    id: String,
    sessions: Arc<Sessions<T>>,
}

impl<T> Registration<T> {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

/// A new session id: 128 random bits in hex.
fn session_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn session_param(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(SESSION_PARAM)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}

/// Who opened or posts to a session (with auth on).
fn principal(extensions: &http::Extensions) -> Option<Arc<str>> {
    extensions.get::<Authenticated>().map(|a| a.0.clone())
}

/// The event stream of a session: the `endpoint` event (the POST path beside this stream's
/// own, so `/NAME/sse` announces `/NAME/messages`), then each of `messages` as a `message`
/// event, with keep-alive comments; it ends when `messages` does, or when the token the
/// stream was opened with expires. Its anti-buffering headers come from the router's
/// [`Normalize`](super::http::Normalize) layer, as every response's do.
pub(crate) fn event_stream<S>(
    request: &Parts,
    id: &str,
    messages: S,
    keep_alive: Duration,
) -> Response
where
    S: Stream<Item = String> + Send + 'static,
{
    let path = request
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(request.uri.path(), |original| original.path());
    let base = path.strip_suffix("sse").unwrap_or("/");
    let endpoint = format!("{base}messages?{SESSION_PARAM}={id}");
    let caller = request.extensions.get::<Arc<Caller>>().cloned();
    let first = Event::default().event("endpoint").data(endpoint);
    let rest = messages
        .take_until(Box::pin(token_expiry(caller)))
        .map(|line| Ok::<_, Infallible>(Event::default().event("message").data(line)));
    let stream = futures::stream::iter([Ok(first)]).chain(rest);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keepalive"))
        .into_response()
}

/// A POST's answer for a message that reached its session (`Ok`) or did not.
pub(crate) fn accepted(delivered: Result<bool, tokio::time::error::Elapsed>) -> Response {
    match delivered {
        Ok(true) => StatusCode::ACCEPTED.into_response(),
        Ok(false) => json_error(StatusCode::NOT_FOUND, "Not Found: the session ended"),
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the session takes no more messages now; retry later",
        ),
    }
}

/// Legacy SSE settings.
#[derive(Debug, Clone)]
pub(crate) struct SseSettings {
    pub(crate) max_message: usize,
    pub(crate) keep_alive: Duration,
}

/// The server's own legacy SSE endpoints.
struct Legacy {
    handler: Handler,
    settings: SseSettings,
    sessions: Arc<Sessions<mpsc::Sender<Inbound>>>,
    /// Ends every session (shutdown).
    ct: CancellationToken,
}

/// `GET /sse` and `POST /messages`, serving `handler`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    handler: &Handler,
    settings: &SseSettings,
    ct: CancellationToken,
) -> Router<S> {
    let legacy = Arc::new(Legacy {
        handler: handler.clone(),
        settings: settings.clone(),
        sessions: Arc::default(),
        ct,
    });
    let opener = legacy.clone();
    Router::new()
        .route("/sse", get(move |request: Request| open(opener, request)))
        .route(
            "/messages",
            post(move |request: Request| message(legacy, request)),
        )
}

/// What the stream holds while it lasts: dropped (the client left), the session ends.
struct Outgoing {
    rx: mpsc::Receiver<Outbound>,
    backlog: Arc<Backlog>,
    /// Cancelled once the session ended.
    ended: CancellationToken,
    _registration: Registration<mpsc::Sender<Inbound>>,
    _session: tokio_util::sync::DropGuard,
}

async fn open(legacy: Arc<Legacy>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let handler = legacy.handler.session(
        TransportKind::Sse,
        Some(owned(&parts.headers)),
        parts.extensions.get::<Arc<Caller>>().cloned(),
        crate::web::client_of(&parts.extensions),
    );
    let (inbound_tx, inbound_rx) = mpsc::channel(QUEUE);
    let (outbound_tx, outbound_rx) = mpsc::channel(QUEUE);
    // Answers the client has not read: its largest message and 16 MiB more, then it is let go.
    let backlog = Backlog::new(legacy.settings.max_message.saturating_add(16 * 1024 * 1024));
    let transport =
        Framed::new(TransportKind::Sse, inbound_rx, outbound_tx).with_backlog(backlog.clone());
    let registration = legacy.sessions.open(inbound_tx, &parts);
    let id = registration.id().to_owned();
    let ct = legacy.ct.child_token();
    let ended = CancellationToken::new();
    tokio::spawn(run_session(
        handler,
        transport,
        ct.clone(),
        backlog.exceeded.clone(),
        ended.clone(),
    ));
    let outgoing = Outgoing {
        rx: outbound_rx,
        backlog,
        ended,
        _session: ct.drop_guard(),
        _registration: registration,
    };
    let messages = futures::stream::unfold(outgoing, |mut out| async move {
        let next = tokio::select! {
            biased;
            () = out.backlog.exceeded.cancelled() => None,
            next = out.rx.recv() => next,
            () = out.ended.cancelled() => None,
        };
        match next? {
            Outbound::Message(text) => {
                out.backlog.written(text.len());
                crate::observe::metrics::bytes(TransportKind::Sse, Direction::Out, text.len());
                Some((text, out))
            }
            Outbound::Close(..) => None,
        }
    });
    event_stream(&parts, &id, messages, legacy.settings.keep_alive)
}

/// Runs one session until it ends, the client leaves (`ct`), or falls too far behind.
async fn run_session(
    handler: Handler,
    transport: Framed,
    ct: CancellationToken,
    exceeded: CancellationToken,
    ended: CancellationToken,
) {
    let serve = async {
        let running = match Box::pin(handler.serve_with_ct(transport, ct.clone())).await {
            Ok(running) => running,
            Err(e) => {
                tracing::debug!(error = %e, "SSE session did not initialize");
                return;
            }
        };
        let reason = Box::pin(running.waiting()).await;
        tracing::debug!(?reason, "SSE session ended");
    };
    tokio::select! {
        () = serve => {}
        () = ct.cancelled() => {}
        () = exceeded.cancelled() => {}
    }
    ended.cancel();
}

/// `POST /messages?sessionId=ID`: one message for the session, answered 202; its answer goes
/// on the session's stream.
async fn message(legacy: Arc<Legacy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let inbound = match legacy.sessions.find(&parts) {
        Ok(inbound) => inbound,
        Err(unknown) => return unknown.into_response(),
    };
    let body = match read_body(body, legacy.settings.max_message).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    crate::observe::metrics::bytes(TransportKind::Sse, Direction::In, body.len());
    let message = match decode(&body) {
        Decoded::Message(message) => message,
        Decoded::Reply(reply) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                reply,
            )
                .into_response();
        }
        Decoded::Ignore => return StatusCode::ACCEPTED.into_response(),
    };
    let sent = tokio::time::timeout(SEND_TIMEOUT, inbound.send(Inbound::Message(message))).await;
    accepted(sent.map(|sent| sent.is_ok()))
}
