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
//! Keys expire ([`SESSION_TTL`] after the last use of a session, [`EVENTS_TTL`] after a
//! stream's last event) and a stream keeps its last [`EVENTS_KEPT`] events: nothing grows
//! without bound.

use std::{sync::Arc, time::Duration};

use rmcp::{
    model::ServerJsonRpcMessage,
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::session::store::{
            EventId, EventStore, EventStoreError, EventStream, SessionState, SessionStore,
            SessionStoreError,
        },
    },
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use super::http::{Service, ServiceResponse, Services, build};
use crate::{
    handler::Handler,
    store::{Failure, Redis},
};

/// How long a session is kept in Redis after it was created or last restored.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a stream's events are kept after its last event.
pub(crate) const EVENTS_TTL: Duration = Duration::from_secs(3600);
/// How many of a stream's last events are kept (about: Redis trims whole nodes).
pub(crate) const EVENTS_KEPT: usize = 1000;

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Sessions' `initialize` in Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisSessions(pub(crate) Redis);

impl RedisSessions {
    fn key(&self, id: &str) -> String {
        self.0.key(&format!("session:{id}"))
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let mut get = redis::cmd("GETEX");
        get.arg(self.key(session_id)).arg("PX").arg(ms(SESSION_TTL));
        let Some(text) = self.0.query::<Option<String>>(&get).await? else {
            return Ok(None);
        };
        let state = serde_json::from_str(&text).map_err(|e| {
            Failure(format!(
                "session {session_id} in Redis is not a session: {e}"
            ))
        })?;
        Ok(Some(state))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let text = serde_json::to_string(state)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(session_id))
            .arg(text)
            .arg("PX")
            .arg(ms(SESSION_TTL));
        Ok(self.0.query::<()>(&set).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(session_id));
        self.0.query::<i64>(&del).await?;
        Ok(())
    }
}

/// Sessions' event streams in Redis streams: an event's id is `{redis id}@{stream}`; each
/// entry names the replica that stored it (`o`).
#[derive(Debug, Clone)]
pub(crate) struct RedisEvents {
    redis: Redis,
    /// This replica, in the entries it stores.
    origin: Arc<str>,
}

impl RedisEvents {
    pub(crate) fn new(redis: Redis) -> Self {
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        Self {
            redis,
            origin: u64::from_le_bytes(random).to_string().into(),
        }
    }

    fn key(&self, stream: &str) -> String {
        self.redis.key(&format!("events:{stream}"))
    }

    /// The notifications other replicas send on `session`'s standalone stream (its `GET`),
    /// from now on, as SSE events, while the receiver is kept.
    fn others_common(&self, session: &str) -> tokio::sync::mpsc::Receiver<Bytes> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let events = self.clone();
        let stream = format!("{session}:common");
        tokio::spawn(async move {
            if let Err(failure) = events.tail(&stream, &tx).await {
                tracing::warn!(
                    "a GET stream misses the notifications of other replicas: {failure}"
                );
            }
        });
        rx
    }

    async fn tail(
        &self,
        stream: &str,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<(), Failure> {
        const BLOCK: Duration = Duration::from_secs(5);
        let key = self.key(stream);
        let mut latest = redis::cmd("XREVRANGE");
        latest.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
        let mut after = self
            .redis
            .query::<Vec<(String, Vec<(String, String)>)>>(&latest)
            .await?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
        let mut connection = self.redis.dedicated(BLOCK).await?;
        while !tx.is_closed() {
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(5000))
                .arg("STREAMS")
                .arg(&key)
                .arg(&after);
            type Reply = Option<Vec<(String, Vec<(String, Vec<(String, String)>)>)>>;
            let call = read.query_async::<Reply>(&mut connection);
            let reply = self.redis.bounded_by(BLOCK + COMMAND_GRACE, call).await?;
            for (_, entries) in reply.unwrap_or_default() {
                for (entry, fields) in entries {
                    after.clone_from(&entry);
                    let mut message = None;
                    let mut ours = false;
                    for (name, value) in fields {
                        match name.as_str() {
                            "m" if !value.is_empty() => message = Some(value),
                            "o" => ours = *value == *self.origin,
                            _ => {}
                        }
                    }
                    let Some(message) = message.filter(|_| !ours) else {
                        continue;
                    };
                    let event = format!("data: {message}\nid: {entry}@{stream}\n\n");
                    if tx.send(Bytes::from(event)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// How much longer than its own block a blocking Redis command may take.
const COMMAND_GRACE: Duration = Duration::from_secs(2);

/// Splits an event id into the Redis stream entry's id and the stream's.
fn split_event_id(id: &str) -> Option<(&str, &str)> {
    let (entry, stream) = id.split_once('@')?;
    let valid = !entry.is_empty()
        && entry.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && !stream.is_empty();
    valid.then_some((entry, stream))
}

#[async_trait::async_trait]
impl EventStore for RedisEvents {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
        let key = self.key(stream_id);
        let mut add = redis::cmd("XADD");
        add.arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_KEPT)
            .arg("*");
        match &event.message {
            Some(message) => add.arg("m").arg(serde_json::to_string(message.as_ref())?),
            None => add.arg("m").arg(""),
        };
        if let Some(retry) = event.retry {
            add.arg("r").arg(ms(retry));
        }
        add.arg("o").arg(&*self.origin);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(add)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ms(EVENTS_TTL))
            .ignore();
        let mut connection = self.redis.connection();
        let (entry,): (String,) = self
            .redis
            .bounded(pipe.query_async(&mut connection))
            .await?;
        Ok(format!("{entry}@{stream_id}"))
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let Some((entry, stream)) = split_event_id(last_event_id) else {
            return Err(Box::new(Failure(format!(
                "Last-Event-ID `{last_event_id}` is not an event of this server"
            ))));
        };
        let mut range = redis::cmd("XRANGE");
        range
            .arg(self.key(stream))
            .arg(format!("({entry}"))
            .arg("+");
        let entries = self
            .redis
            .query::<Vec<(String, Vec<(String, String)>)>>(&range)
            .await?;
        let mut events = Vec::with_capacity(entries.len());
        for (entry, fields) in entries {
            let id = format!("{entry}@{stream}");
            let mut message = None;
            let mut retry = None;
            for (name, value) in fields {
                match name.as_str() {
                    "m" if !value.is_empty() => {
                        message = Some(serde_json::from_str::<ServerJsonRpcMessage>(&value)?);
                    }
                    "r" => retry = value.parse::<u64>().ok().map(Duration::from_millis),
                    _ => {}
                }
            }
            let mut event = match (message, retry) {
                (Some(message), _) => ServerSseMessage::new(id.clone(), message),
                (None, Some(retry)) => ServerSseMessage::priming(id.clone(), retry),
                (None, None) => continue,
            };
            event.event_id = Some(id);
            events.push(event);
        }
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

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
    stored.session_store = Some(Arc::new(RedisSessions(redis.clone())));
    let events = RedisEvents::new(redis.clone());
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
        }),
    });
    close_ended(redis, manager, stop.clone());
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

/// The POST that carries a client's answer, handed on by another replica, to this one's
/// session.
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
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let version = header("mcp-protocol-version");
        let session = header("mcp-session-id");
        // Sessionless revisions (2026-07-28 on) carry everything in each request.
        let sessionless = rmcp::model::ProtocolVersion::NO_INITIALIZE;
        if version
            .as_deref()
            .is_some_and(|v| v >= sessionless.as_str())
        {
            return self.sessionless.handle(request).await;
        }
        if request.method() == Method::GET
            && let Some(session) = session.as_deref()
            && !request.headers().contains_key("last-event-id")
        {
            let others = self.events.others_common(session);
            return with_others(sessions.handle(request).await, others);
        }
        if request.method() == Method::DELETE
            && let Some(session) = session
        {
            let response = sessions.handle(request).await;
            if response.status().is_success() {
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
                        &format!("the message is larger than {} bytes", self.max_body),
                    )
                } else {
                    error_response(
                        StatusCode::BAD_REQUEST,
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
            Err(failure) => {
                let mut response = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("cannot hand the answer on to the other replicas: {failure}"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                response
            }
        }
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

/// An error with a JSON-RPC error body.
fn error_response(status: StatusCode, message: &str) -> ServiceResponse {
    let code = match status {
        StatusCode::SERVICE_UNAVAILABLE => crate::jsonrpc::SERVER_UNAVAILABLE,
        _ => crate::jsonrpc::INVALID_REQUEST,
    };
    let mut response = ServiceResponse::new(
        Full::new(Bytes::from(crate::jsonrpc::error("null", code, message))).boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_name_their_stream() {
        assert_eq!(
            split_event_id("1700000000000-0@3f2a:common"),
            Some(("1700000000000-0", "3f2a:common"))
        );
        assert_eq!(split_event_id("12"), None);
        assert_eq!(split_event_id("x@s"), None);
        assert_eq!(split_event_id("1-0@"), None);
    }
}
