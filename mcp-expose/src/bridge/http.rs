//! The bridge over streamable HTTP: a session (and its child) per `Mcp-Session-Id`; each
//! request's answer, and the notifications that belong to it, come back on its POST: as one
//! JSON body when the answer is all there is, as an event stream when something comes first.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt as _;

use super::{
    Bridge, Link,
    child::Outlet,
    envelope::{self, Message},
    routes::Routes,
    stream::{self, Routed, STREAM_BYTES},
};
use crate::{jsonrpc, web::json_error};

const SESSION_HEADER: &str = "mcp-session-id";
/// How long a POST waits for its first message before it opens an event stream anyway (whose
/// keep-alives then hold proxies off): the same as the keep-alive interval.
pub(super) const FIRST_WAIT: Duration = Duration::from_secs(15);

struct HttpSession {
    child: Link,
    routes: Arc<Mutex<Routes>>,
    last_seen: Mutex<Instant>,
}

/// The bridge's streamable HTTP sessions.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<HttpSession>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        let session = lock(&self.map).get(id).cloned()?;
        *lock(&session.last_seen) = Instant::now();
        Some(session)
    }

    /// Ends sessions idle longer than `idle` with no stream open (their children stop). A
    /// stream whose client left (its receiver dropped) does not count as open.
    pub(crate) fn reap(&self, idle: Duration) {
        lock(&self.map).retain(|id, session| {
            let keep = lock(&session.last_seen).elapsed() < idle
                || lock(&session.routes).has_open_stream();
            if !keep {
                tracing::info!(session = %id, "ended an idle session");
            }
            keep
        });
    }
}

/// An event stream of `first` (when there is one) and what `rx` brings after it.
fn sse(first: Option<String>, rx: stream::Receiver) -> Response {
    let event = |line: String| Ok::<_, Infallible>(Event::default().event("message").data(line));
    let rest = futures::stream::unfold(rx, move |mut rx| async move {
        let routed = rx.recv().await?;
        Some((event(routed.line), rx))
    });
    let stream = futures::stream::iter(first.map(event)).chain(rest);
    let mut response = Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keepalive"),
        )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    response
}

/// The `Mcp-Session-Id` a request names.
fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
}

pub(crate) async fn post(bridge: Arc<Bridge>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = match crate::web::read_body(body, bridge.max_message).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let message = match envelope::parse(&body) {
        Ok(message) => message,
        Err((code, text)) => {
            let body = jsonrpc::error("null", code, &text);
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
    };
    if session_header(&headers).is_none() && super::stateless::is_2026(&headers, &body) {
        return super::stateless::post(&bridge, &headers, &body, message).await;
    }
    let (session, new_id) = match (session_header(&headers), &message) {
        (Some(id), _) => match bridge.http.get(id) {
            Some(session) => (session, None),
            None => {
                return json_error(StatusCode::NOT_FOUND, "Session not found: initialize again");
            }
        },
        (None, Message::Request { method, .. }) if method == "initialize" => {
            let id = bridge.new_session_id();
            // The child's messages are routed by its actor, with no task in between.
            let routes = Arc::default();
            let child = bridge.open(format!("http:{id}"), Outlet::Http(Arc::clone(&routes)));
            let session = Arc::new(HttpSession {
                child,
                routes,
                last_seen: Mutex::new(Instant::now()),
            });
            lock(&bridge.http.map).insert(id.clone(), session.clone());
            (session, Some(id))
        }
        (None, _) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: missing Mcp-Session-Id (initialize first)",
            );
        }
    };
    let Message::Request {
        id, progress_token, ..
    } = message
    else {
        session.child.send(body.to_vec()).await;
        return StatusCode::ACCEPTED.into_response();
    };
    let (tx, mut rx) = stream::channel(STREAM_BYTES.max(bridge.max_message.saturating_mul(2)));
    lock(&session.routes).open_post(id, progress_token, tx);
    session.child.send(body.to_vec()).await;
    // Most calls answer with nothing before the answer: one JSON body then, written with its
    // head in one go. Progress, logs or a request to the client first make it a stream.
    let first = tokio::select! {
        first = rx.recv() => first,
        () = tokio::time::sleep(FIRST_WAIT) => None,
    };
    let mut response = match first {
        Some(Routed { line, last: true }) => {
            ([(header::CONTENT_TYPE, "application/json")], line).into_response()
        }
        first => sse(first.map(|routed| routed.line), rx),
    };
    if let Some(id) = new_id
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

pub(crate) async fn get(bridge: Arc<Bridge>, request: Request) -> Response {
    let Some(session) = session_header(request.headers()).and_then(|id| bridge.http.get(id)) else {
        return json_error(StatusCode::NOT_FOUND, "Session not found: initialize again");
    };
    let (tx, rx) = stream::channel(STREAM_BYTES);
    lock(&session.routes).open_get(tx);
    sse(None, rx)
}

pub(crate) async fn delete(bridge: Arc<Bridge>, request: Request) -> Response {
    let removed =
        session_header(request.headers()).and_then(|id| lock(&bridge.http.map).remove(id));
    match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => json_error(StatusCode::NOT_FOUND, "Session not found"),
    }
}
