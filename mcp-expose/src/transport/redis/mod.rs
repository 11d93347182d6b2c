//! Streamable HTTP sessions that any replica can serve (feature `redis`, `--state redis://..`):
//!
//! - [`RedisSessions`], rmcp's `SessionStore`: a session's `initialize` is kept in Redis, and
//!   a replica that never saw the session restores it by replaying that `initialize`.
//! - [`RedisEvents`], rmcp's `EventStore`: every event of a session's streams is kept in a
//!   Redis stream, so that `Last-Event-ID` resumes on any replica, from that event on, with
//!   nothing lost and nothing repeated.
//! - [`Answers`]: a client's answer to a request of ours (sampling, elicitation, roots) may
//!   land on another replica than the tool that waits for it; that replica publishes it and
//!   the one whose tool waits takes it.
//!
//! Keys expire ([`SESSION_TTL`](sessions::SESSION_TTL) after the last use of a session, [`EVENTS_TTL`](events::EVENTS_TTL) after a
//! stream's last event) and a stream keeps its last [`EVENTS_KEPT`](events::EVENTS_KEPT) events: nothing grows
//! without bound.

mod events;
mod sessions;
mod writer;

use std::{sync::Arc, time::Duration};

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, session::local::LocalSessionManager,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use self::{
    events::RedisEvents,
    sessions::{RedisSessions, Renewals},
};
use super::http::{Service, ServiceResponse, Services, build};
use crate::{
    handler::Handler,
    store::{Failure, Redis},
};

/// A client's answer, on its way to the replica whose tool waits for it.
#[derive(Serialize, Deserialize)]
struct Routed<'a> {
    session: &'a str,
    version: Option<&'a str>,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// Clients' answers to requests of ours, between replicas.
#[derive(Debug, Clone)]
pub(crate) struct Answers(pub(crate) Redis);

const ANSWERS: &str = "answers";

impl Answers {
    /// Hands `body` (one JSON-RPC response) on to the replica whose tool, in `session`,
    /// waits for it.
    pub(crate) async fn publish(
        &self,
        session: &str,
        version: Option<&str>,
        body: &[u8],
    ) -> Result<(), Failure> {
        let body: &RawValue = serde_json::from_slice(body)
            .map_err(|e| Failure(format!("the answer is not JSON: {e}")))?;
        let routed = serde_json::to_string(&Routed {
            session,
            version,
            body,
        })
        .map_err(|e| Failure(format!("cannot encode an answer: {e}")))?;
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.0.key(ANSWERS)).arg(routed);
        self.0.query::<i64>(&publish).await.map(drop)
    }

    /// Takes the answers other replicas publish for sessions whose tools wait here, and
    /// hands each to `deliver(session, version, body)`, until `stop`.
    pub(crate) fn listen<F>(&self, deliver: F, stop: tokio_util::sync::CancellationToken)
    where
        F: Fn(String, Option<String>, Vec<u8>) + Send + Sync + 'static,
    {
        let mut answers = self.0.subscribe(ANSWERS, "answers to requests");
        let deliver = Arc::new(deliver);
        tokio::spawn(async move {
            loop {
                let payload = tokio::select! {
                    payload = answers.recv() => payload,
                    () = stop.cancelled() => None,
                };
                let Some(payload) = payload else {
                    return;
                };
                let Ok(routed) = serde_json::from_slice::<Routed<'_>>(&payload) else {
                    continue;
                };
                if crate::session::asking(routed.session) {
                    deliver(
                        routed.session.to_owned(),
                        routed.version.map(str::to_owned),
                        routed.body.get().as_bytes().to_vec(),
                    );
                }
            }
        });
    }
}

/// The services of a server whose sessions any replica can serve: sessions and their event
/// streams in Redis, MCP 2026-07-28 requests (sessionless) on a service that keeps nothing,
/// and clients' answers handed on to the replica that waits for them.
pub(crate) fn services(
    handler: &Handler,
    config: StreamableHttpServerConfig,
    redis: &Redis,
    max_body: usize,
    stop: CancellationToken,
) -> Arc<Services> {
    let mut stored = config.clone();
    let sessions = RedisSessions(redis.clone());
    stored.session_store = Some(Arc::new(sessions.clone()));
    let events = RedisEvents::new(redis.clone(), stop.clone());
    let manager =
        Arc::new(LocalSessionManager::default().with_event_store(Arc::new(events.clone())));
    let answers = Answers(redis.clone());
    let services = Arc::new(Services {
        sessions: build(handler, false, stored, Arc::clone(&manager)),
        replicas: Some(Replicas {
            sessionless: build(handler, false, config, Arc::default()),
            answers: answers.clone(),
            events,
            max_body,
            manager: Arc::clone(&manager),
            restoring: std::sync::Mutex::default(),
            sessions,
            renewals: Renewals::default(),
        }),
    });
    close_ended(redis, manager, stop.clone());
    redis.watch(stop.clone());
    let weak = Arc::downgrade(&services);
    answers.listen(
        move |session, version, body| {
            let Some(services) = weak.upgrade() else {
                return;
            };
            tokio::spawn(async move {
                let request = answer_request(&session, version.as_deref(), body);
                let response = services.sessions.handle(request).await;
                if !response.status().is_success() {
                    tracing::warn!(
                        status = %response.status(),
                        "an answer handed on by another replica was refused"
                    );
                }
            });
        },
        stop,
    );
    services
}

/// Where a replica that ended a session (`DELETE`) says so.
const ENDED: &str = "sessions-ended";

/// Closes this replica's copy of each session another replica ended, until `stop`, so that
/// the session is gone on every replica.
fn close_ended(redis: &Redis, manager: Arc<LocalSessionManager>, stop: CancellationToken) {
    use rmcp::transport::streamable_http_server::session::SessionManager as _;
    let mut ended = redis.subscribe(ENDED, "ended sessions");
    tokio::spawn(async move {
        loop {
            let id = tokio::select! {
                id = ended.recv() => id,
                () = stop.cancelled() => None,
            };
            let Some(id) = id else {
                return;
            };
            let Ok(id) = String::from_utf8(id) else {
                continue;
            };
            let id: rmcp::transport::common::server_side_http::SessionId = id.into();
            if manager.has_session(&id).await.unwrap_or(false) {
                let _ = manager.close_session(&id).await;
            }
        }
    });
}

/// A POST of `body` to this replica's own copy of `session`: a client's answer handed on by
/// another replica, or the `ping` that restores the session.
fn answer_request(session: &str, version: Option<&str>, body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = axum::http::Uri::from_static("/mcp");
    let headers = request.headers_mut();
    headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(session) {
        headers.insert("mcp-session-id", value);
    }
    if let Some(value) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert("mcp-protocol-version", value);
    }
    request
}

/// Where a request goes when replicas share the sessions.
pub(crate) struct Replicas {
    sessionless: Service,
    answers: Answers,
    events: RedisEvents,
    max_body: usize,
    manager: Arc<LocalSessionManager>,
    /// Sessions being restored here, so that their concurrent requests wait for it.
    restoring: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The sessions in Redis, whose expiry their use renews.
    sessions: RedisSessions,
    renewals: Renewals,
}

impl Replicas {
    /// MCP 2026-07-28 requests to the service that keeps nothing; a client's answer that no
    /// tool here waits for to the other replicas; everything else to the sessions.
    pub(crate) async fn handle<B>(&self, sessions: &Service, request: Request<B>) -> ServiceResponse
    where
        B: axum::body::HttpBody + Send + 'static,
        B::Error: std::fmt::Display + Into<axum::BoxError>,
        B::Data: Send + 'static,
    {
        let headers = request.headers();
        // Sessionless revisions (2026-07-28 on) carry everything in each request.
        let sessionless = rmcp::model::ProtocolVersion::NO_INITIALIZE;
        if headers
            .get("mcp-protocol-version")
            .is_some_and(|v| v.as_bytes() >= sessionless.as_str().as_bytes())
        {
            return self.sessionless.handle(request).await;
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let version = header("mcp-protocol-version");
        let session = header("mcp-session-id");
        // Sessions need Redis: refused at once while it is away, not after a timeout.
        if let Some(failure) = self.events.redis.failure() {
            return unavailable(request, &failure, self.max_body).await;
        }
        if let Some(session) = session.as_deref() {
            self.restore(sessions, session, version.as_deref()).await;
            if self.renewals.due(session, std::time::Instant::now()) {
                self.sessions.renew(session);
            }
        }
        if request.method() == Method::GET
            && let Some(session) = session.as_deref()
            && !request.headers().contains_key("last-event-id")
        {
            return match self.events.others_common(session).await {
                Ok(others) => with_others(sessions.handle(request).await, others),
                Err(failure) => unavailable(request, &failure.0, self.max_body).await,
            };
        }
        if request.method() == Method::DELETE
            && let Some(session) = session
        {
            let response = sessions.handle(request).await;
            if response.status().is_success() {
                self.renewals.forget(&session);
                let mut publish = redis::cmd("PUBLISH");
                publish.arg(self.events.redis.key(ENDED)).arg(&session);
                if let Err(failure) = self.events.redis.query::<i64>(&publish).await {
                    tracing::warn!("other replicas may keep an ended session: {failure}");
                }
            }
            return response;
        }
        let session = session.filter(|_| request.method() == Method::POST);
        let Some(session) = session.filter(|s| !crate::session::asking(s)) else {
            return sessions.handle(request).await;
        };
        let (parts, body) = request.into_parts();
        let bytes = match http_body_util::Limited::new(body, self.max_body)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                let too_large = error
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                return if too_large {
                    error_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "null",
                        &format!("the message is larger than {} bytes", self.max_body),
                    )
                } else {
                    error_response(
                        StatusCode::BAD_REQUEST,
                        "null",
                        &format!("cannot read the body: {error}"),
                    )
                };
            }
        };
        if !is_response(&bytes) {
            return sessions
                .handle(Request::from_parts(parts, Full::new(bytes)))
                .await;
        }
        match self
            .answers
            .publish(&session, version.as_deref(), &bytes)
            .await
        {
            Ok(()) => {
                let mut accepted = ServiceResponse::new(Full::new(Bytes::new()).boxed());
                *accepted.status_mut() = StatusCode::ACCEPTED;
                accepted
            }
            Err(failure) => retry_later(
                "null",
                &format!("cannot hand the answer on to the other replicas: {failure}"),
            ),
        }
    }
}

impl Replicas {
    /// Restores `session` here, if it is not here yet, before its request goes on: rmcp
    /// restores a session on its first request, and a second request that arrives while the
    /// `initialize` is replayed breaks the restored session (its worker gets the request
    /// before the replay ends). One restore per session at a time, by a `ping`; concurrent
    /// requests wait for it.
    async fn restore(&self, sessions: &Service, session: &str, version: Option<&str>) {
        use rmcp::transport::streamable_http_server::session::SessionManager as _;
        let id: rmcp::transport::common::server_side_http::SessionId = session.into();
        // A restore under way: wait for it. (rmcp lists the session before its replay ends,
        // so "here" is only true once no restore of ours is under way.)
        if let Some(underway) = self.underway(session) {
            drop(underway.lock().await);
            return;
        }
        if self.manager.has_session(&id).await.unwrap_or(false) {
            if let Some(underway) = self.underway(session) {
                drop(underway.lock().await);
            }
            return;
        }
        // Restore it here, unless another request began to meanwhile.
        let mine = Arc::new(tokio::sync::Mutex::new(()));
        let held = Arc::clone(&mine).lock_owned().await;
        let other = {
            let mut restoring = self
                .restoring
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let other = restoring.get(session).cloned();
            if other.is_none() {
                restoring.insert(session.to_owned(), Arc::clone(&mine));
            }
            other
        };
        if let Some(other) = other {
            drop(held);
            drop(other.lock().await);
            return;
        }
        if !self.manager.has_session(&id).await.unwrap_or(false) {
            let ping = br#"{"jsonrpc":"2.0","id":"mcp-expose-restore","method":"ping"}"#;
            let request = answer_request(session, version, ping.to_vec());
            let response = sessions.handle(request).await;
            // The replay is over when the ping's answer is: read it, bounded.
            let body = response.into_body().collect();
            let _ = tokio::time::timeout(Duration::from_secs(10), body).await;
        }
        self.restoring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(session);
        drop(held);
    }

    /// The lock of a restore of `session` under way here, if there is one.
    fn underway(&self, session: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.restoring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(session)
            .cloned()
    }
}

/// A session's standalone stream (`GET`) with the notifications other replicas send it
/// merged in, for as long as rmcp's own stream lasts.
fn with_others(
    response: ServiceResponse,
    others: tokio::sync::mpsc::Receiver<Bytes>,
) -> ServiceResponse {
    use futures::StreamExt as _;
    let is_stream = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    let own = http_body_util::BodyStream::new(body)
        .map(Some)
        .chain(futures::stream::once(async { None }));
    let others = futures::stream::unfold(others, |mut others| async move {
        let event = others.recv().await?;
        Some((Some(Ok(hyper::body::Frame::data(event))), others))
    });
    let merged = futures::stream::select(own, others)
        .take_while(|frame| std::future::ready(frame.is_some()))
        .filter_map(std::future::ready);
    ServiceResponse::from_parts(
        parts,
        BodyExt::boxed(http_body_util::StreamBody::new(merged)),
    )
}

/// 503 with `Retry-After` for a session request while Redis is unreachable, the JSON-RPC
/// error carrying the request's id.
async fn unavailable<B>(request: Request<B>, failure: &str, max_body: usize) -> ServiceResponse
where
    B: axum::body::HttpBody + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    #[derive(Deserialize)]
    struct Id {
        id: Option<Box<RawValue>>,
    }
    let body = http_body_util::Limited::new(request.into_body(), max_body)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let id = serde_json::from_slice::<Id>(&body)
        .ok()
        .and_then(|peek| peek.id)
        .map_or_else(|| "null".to_owned(), |id| id.get().to_owned());
    let message =
        format!("the server's shared state is unavailable ({failure}); try again in a few seconds");
    retry_later(&id, &message)
}

/// 503 with `Retry-After: 2`, the JSON-RPC error to the request `id` (raw JSON) saying
/// `message`.
fn retry_later(id: &str, message: &str) -> ServiceResponse {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, id, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

/// Whether `body` is one JSON-RPC response (a result or an error, no method).
fn is_response(body: &[u8]) -> bool {
    use serde::de::IgnoredAny;
    #[derive(Deserialize)]
    struct Shape {
        method: Option<IgnoredAny>,
        result: Option<IgnoredAny>,
        error: Option<IgnoredAny>,
    }
    serde_json::from_slice::<Shape>(body)
        .is_ok_and(|s| s.method.is_none() && (s.result.is_some() || s.error.is_some()))
}

/// An HTTP error whose body is the JSON-RPC error to the request `id` (raw JSON, `null` when
/// unknown): -32000 for 503, -32600 otherwise.
fn error_response(status: StatusCode, id: &str, message: &str) -> ServiceResponse {
    let code = match status {
        StatusCode::SERVICE_UNAVAILABLE => crate::jsonrpc::SERVER_UNAVAILABLE,
        _ => crate::jsonrpc::INVALID_REQUEST,
    };
    let mut response = ServiceResponse::new(
        Full::new(Bytes::from(crate::jsonrpc::error(id, code, message))).boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
