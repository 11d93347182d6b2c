//! One forwarded 2026-07-28 call: the child's answer as the POST's JSON body, or, when the
//! call's progress comes first, an event stream of its progress and then its answer. Progress
//! tokens are rewritten like ids (the child is shared by every 2026 client), so only the caller
//! sees its progress; what the child sends unattributed (logs, `list_changed`) is dropped. A
//! `subscriptions/listen` (of a child that speaks 2026-07-28) streams what the child tags with
//! its id until the client leaves, when the child is told to stop (`notifications/cancelled`).
//!
//! A 2025 child's requests to the client during a call (sampling, elicitation, roots) are
//! gathered for a moment ([`park::GATHER`]) and the call is parked ([`park`]): the POST gets an
//! input-required result listing them, and the client's retry ([`resume`]) answers them and
//! takes the rest of the call. A request whose capability the client did not declare ends the
//! call with -32021 naming it (HTTP 400); any other request of the child's is refused to it.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt as _;
use serde_json::Value;
use tokio::{sync::mpsc, time::Instant};

use super::{
    super::Bridge,
    CACHEABLE, META_PREFIX, Stateless, V2026, bridge_id, json_body, lock,
    park::{self, Pending},
    raw_id,
};
use crate::{
    bridge::{
        envelope::{self, Message},
        http::FIRST_WAIT,
        stream::{self, STREAM_BYTES},
    },
    jsonrpc,
};

/// The call needs a client capability the client did not declare.
const MISSING_CAPABILITY: i32 = -32021;

/// What the relay hands the POST: an event for its stream, or the call's end.
enum Out {
    Event(String),
    Final(StatusCode, String),
}

/// The client's side of a call.
pub(super) struct Call {
    /// The client's id, raw JSON (the retry's, once resumed).
    id: String,
    /// The bridge's id for it, raw JSON.
    ours: String,
    method: String,
    /// The client's progress token, raw JSON (the retry's, once resumed).
    token: Option<String>,
    /// The bridge's progress token in its place, raw JSON.
    our_token: Option<String>,
    /// The client capabilities its `_meta` declares.
    declared: Value,
    /// Its method, name and arguments, digested: a retry must repeat them.
    digest: [u8; 32],
    /// The child's requests that wait for the client's answers.
    pending: Vec<Pending>,
    /// How many requests of the child's it had so far (their keys are numbered by it).
    asked: usize,
}

/// A call parked under a `requestState`: the child's messages for it wait in `rx`.
pub(super) struct Held {
    rx: stream::Receiver,
    call: Call,
}

/// The capabilities `request` (a 2026-07-28 request) declares in its `_meta`.
fn declared(request: &Value) -> Value {
    request["params"]["_meta"][format!("{META_PREFIX}clientCapabilities")].clone()
}

/// Forwards `frame` (the client's `request`, 2026-only `_meta` gone), whose id is `id` and
/// progress token `token` (raw JSON), to the stateless child, and answers the POST.
pub(super) async fn forward(
    bridge: &Arc<Bridge>,
    child: Arc<Stateless>,
    id: &str,
    method: &str,
    token: Option<&str>,
    request: &Value,
    frame: String,
) -> Response {
    let ours = bridge_id();
    let our_token = token.map(|_| bridge_id());
    let frame = match &our_token {
        Some(our_token) => envelope::with_param(&frame, "_meta.progressToken", our_token),
        None => Some(frame),
    }
    .and_then(|frame| envelope::with_id(frame.as_bytes(), &ours));
    let Some(frame) = frame else {
        let body = jsonrpc::error(id, jsonrpc::INVALID_REQUEST, "cannot forward the request");
        return json_body(StatusCode::BAD_REQUEST, body);
    };
    let (tx, rx) = stream::channel(STREAM_BYTES.max(bridge.max_message.saturating_mul(2)));
    lock(&child.routes).open_post(&ours, our_token.as_deref(), tx);
    if !child.link.send(frame.into_bytes()).await {
        super::forget(bridge, &child).await;
        let body = jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, "the MCP server is gone");
        return json_body(StatusCode::OK, body);
    }
    let call = Call {
        id: id.to_owned(),
        ours,
        method: method.to_owned(),
        token: token.map(str::to_owned),
        our_token,
        declared: declared(request),
        digest: park::digest(method, request),
        pending: Vec::new(),
        asked: 0,
    };
    respond(bridge, child, rx, call).await
}

/// Resumes the call parked under the retry's `requestState`: the child gets the answers in
/// its `inputResponses`, and the call is relayed on to this POST. -32602 (with the id) when
/// the state is unknown, expired or another call's, or an answer is not an object.
pub(super) async fn resume(
    bridge: &Arc<Bridge>,
    child: Arc<Stateless>,
    id: &str,
    method: &str,
    token: Option<&str>,
    request: &Value,
) -> Response {
    let invalid = |text: &str| {
        json_body(
            StatusCode::OK,
            jsonrpc::error(id, jsonrpc::INVALID_PARAMS, text),
        )
    };
    let Some(state) = request["params"]["requestState"].as_str() else {
        return invalid("Invalid params: requestState is not a string");
    };
    let responses = match park::responses(request) {
        Ok(responses) => responses,
        Err(why) => return invalid(&why),
    };
    let digest = park::digest(method, request);
    let held = {
        let mut parked = lock(&child.parked);
        let theirs = parked.get(state).map(|held| held.call.digest == digest);
        match theirs {
            Some(true) => parked.remove(state),
            Some(false) => None,
            None => {
                drop(parked);
                return invalid(
                    "Invalid params: requestState is unknown or expired (a call waits for its answers only for the request timeout); call again without it",
                );
            }
        }
    };
    let Some(Held { rx, mut call }) = held else {
        return invalid(
            "Invalid params: requestState belongs to another call (the method, name or arguments differ)",
        );
    };
    let mut unanswered = Vec::new();
    for pending in std::mem::take(&mut call.pending) {
        match responses.get(&pending.key) {
            Some(result) => park::answer(&child, &pending.id, result).await,
            None => unanswered.push(pending),
        }
    }
    call.pending = unanswered;
    id.clone_into(&mut call.id);
    call.token = token.map(str::to_owned);
    call.declared = declared(request);
    respond(bridge, child, rx, call).await
}

/// Relays `call` (the child's messages for it coming in `rx`) and answers the POST: a JSON
/// body when its end comes first, else an event stream.
async fn respond(
    bridge: &Arc<Bridge>,
    child: Arc<Stateless>,
    rx: stream::Receiver,
    call: Call,
) -> Response {
    let (out_tx, mut out) = mpsc::channel(16);
    tokio::spawn(relay(bridge.clone(), child, rx, call, out_tx));
    let first = tokio::select! {
        first = out.recv() => first,
        () = tokio::time::sleep(FIRST_WAIT) => None,
    };
    match first {
        Some(Out::Final(status, body)) => json_body(status, body),
        first => event_stream(first, out),
    }
}

/// An event stream of `first` (when there is one) and what `out` brings after it.
fn event_stream(first: Option<Out>, out: mpsc::Receiver<Out>) -> Response {
    let event = |out: Out| {
        let (Out::Event(line) | Out::Final(_, line)) = out;
        Ok::<_, Infallible>(Event::default().event("message").data(line))
    };
    let rest = futures::stream::unfold(out, move |mut out| async move {
        let next = out.recv().await?;
        Some((event(next), out))
    });
    let stream = futures::stream::iter(first.map(event)).chain(rest);
    let keep_alive = KeepAlive::new()
        .interval(Duration::from_secs(15))
        .text("keepalive");
    let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    response
}

/// Answers the child's requests still waiting in `call` with an error saying `why`.
async fn refuse_pending(child: &Stateless, call: &mut Call, why: &str) {
    for pending in std::mem::take(&mut call.pending) {
        park::refuse(child, &pending.id, why).await;
    }
}

/// Reads what the child sends for one call until its answer, bounded by the request timeout:
/// hands on the call's progress, gathers the child's requests to the client (a 2025 child's,
/// for a capability the client declared) and parks the call with them, refuses its other
/// requests, and ends with the answer.
async fn relay(
    bridge: Arc<Bridge>,
    child: Arc<Stateless>,
    mut rx: stream::Receiver,
    mut call: Call,
    out: mpsc::Sender<Out>,
) {
    // A listen lasts as long as its client; a call, no longer than the request timeout.
    let listen = call.method == "subscriptions/listen";
    let timeout = bridge.request_timeout + Duration::from_secs(1);
    let deadline = Instant::now() + if listen { LISTEN_LIMIT } else { timeout };
    // Requests left unanswered by a retry are listed again when this window ends.
    let mut window = (!call.pending.is_empty()).then(|| Instant::now() + park::GATHER);
    loop {
        let until = window.map_or(deadline, |window| window.min(deadline));
        let next = tokio::select! {
            next = tokio::time::timeout_at(until, rx.recv()) => next,
            () = out.closed() => {
                // The client left (a listen's end, or a call given up): the child stops too.
                cancel(&child, &call).await;
                return;
            }
        };
        let why = match next {
            Ok(Some(routed)) if routed.last => {
                if call.method == "tools/list" && child.native {
                    let answer: Value = serde_json::from_str(&routed.line).unwrap_or_default();
                    if let Some(tools) = answer["result"]["tools"].as_array() {
                        child.keep_schemas(tools);
                    }
                }
                refuse_pending(
                    &child,
                    &mut call,
                    "the call ended before the client answered",
                )
                .await;
                let _ = out.send(finish(&routed.line, &call)).await;
                return;
            }
            Ok(Some(routed)) => {
                match envelope::parse(routed.line.as_bytes()) {
                    Ok(Message::Request { id, method, .. }) => {
                        let needed = super::check::capability(&method);
                        if let Some(needed) = needed.filter(|n| !call.declared[*n].is_object()) {
                            // The call needs what the client did not declare: it ends here.
                            let text = format!("the MCP client did not declare {needed}");
                            park::refuse(&child, id, &text).await;
                            refuse_pending(&child, &mut call, &text).await;
                            let data =
                                serde_json::json!({ "requiredCapabilities": { needed: {} } });
                            let why = (
                                MISSING_CAPABILITY,
                                "Missing required client capability".to_owned(),
                                Some(data),
                            );
                            let body = super::check::refusal(&call.id, why);
                            let _ = out.send(Out::Final(StatusCode::BAD_REQUEST, body)).await;
                            return;
                        }
                        if needed.is_some() && !child.native {
                            // The client answers it, in an input-required result.
                            call.asked += 1;
                            let pending = Pending::new(&routed.line, id, &method, call.asked);
                            call.pending.push(pending);
                            window.get_or_insert_with(|| Instant::now() + park::GATHER);
                        } else {
                            let text = format!("{method} cannot reach MCP {V2026} clients");
                            let refusal = jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, &text);
                            child.link.send(refusal.into_bytes()).await;
                        }
                    }
                    Ok(Message::Notification {
                        progress_token: Some(token),
                        ..
                    }) => {
                        let (Some(theirs), Some(ours)) = (&call.token, &call.our_token) else {
                            continue;
                        };
                        if token != ours {
                            continue;
                        }
                        let line = envelope::with_param(&routed.line, "progressToken", theirs);
                        if let Some(line) = line
                            && out.send(Out::Event(line)).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(Message::Notification { .. }) if listen => {
                        let Some(line) = retag(&routed.line, &call) else {
                            continue;
                        };
                        if out.send(Out::Event(line)).await.is_err() {
                            cancel(&child, &call).await;
                            return;
                        }
                    }
                    _ => {}
                }
                continue;
            }
            Ok(None) => "the MCP server did not answer",
            Err(_) if window.is_some_and(|window| window <= Instant::now()) => {
                if lock(&child.parked).len() >= park::MAX_PARKED {
                    let why = "too many calls wait for their MCP clients' answers";
                    tracing::warn!("{why}: the MCP server's requests are refused");
                    refuse_pending(&child, &mut call, why).await;
                    window = None;
                    continue;
                }
                park_call(&bridge, &child, rx, call, &out).await;
                return;
            }
            Err(_) => "the MCP server did not answer in time",
        };
        refuse_pending(&child, &mut call, why).await;
        let body = jsonrpc::error(&call.id, jsonrpc::INTERNAL_ERROR, why);
        let _ = out.send(Out::Final(StatusCode::OK, body)).await;
        return;
    }
}

/// Tells the child the client gave up `call` (`notifications/cancelled`).
async fn cancel(child: &Stateless, call: &Call) {
    lock(&child.routes).close_post(&call.ours);
    let cancel = serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": { "requestId": raw_id(&call.ours), "reason": "the client left" },
    });
    child.link.send(cancel.to_string().into_bytes()).await;
}

/// Parks `call` under a fresh `requestState`, answers the POST with the input-required
/// result listing its pending requests, and drops the call when no retry resumes it in time.
async fn park_call(
    bridge: &Bridge,
    child: &Arc<Stateless>,
    rx: stream::Receiver,
    call: Call,
    out: &mpsc::Sender<Out>,
) {
    let state = park::new_state();
    let result = park::input_required(&call.pending, &state);
    let body = super::reply(&call.id, result);
    lock(&child.parked).insert(state.clone(), Held { rx, call });
    let (child, ttl) = (child.clone(), bridge.request_timeout);
    tokio::spawn(async move {
        tokio::time::sleep(ttl).await;
        let held = lock(&child.parked).remove(&state);
        if let Some(Held { rx, call }) = held {
            park::expire(&child, &call.ours, &call.pending, rx).await;
        }
    });
    let _ = out.send(Out::Final(StatusCode::OK, body)).await;
}

/// The longest a `subscriptions/listen` stream is held; the client listens again after it.
const LISTEN_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// A notification of a listen stream, tagged with the client's id in place of the bridge's;
/// `None` when it is not tagged with this call's.
fn retag(line: &str, call: &Call) -> Option<String> {
    const KEY: &str = "io.modelcontextprotocol/subscriptionId";
    let mut notification: Value = serde_json::from_str(line).ok()?;
    let tag = notification.pointer_mut("/params/_meta")?.get_mut(KEY)?;
    if *tag != raw_id(&call.ours) {
        return None;
    }
    *tag = raw_id(&call.id);
    Some(notification.to_string())
}

/// The child's answer as the client wants it: its id, and the revision's result fields.
fn finish(line: &str, call: &Call) -> Out {
    let Ok(Value::Object(mut answer)) = serde_json::from_str::<Value>(line) else {
        let text = "the MCP server's answer is not a JSON-RPC object";
        let body = jsonrpc::error(&call.id, jsonrpc::INTERNAL_ERROR, text);
        return Out::Final(StatusCode::OK, body);
    };
    if let Some(Value::Object(result)) = answer.get_mut("result") {
        result
            .entry("resultType")
            .or_insert_with(|| Value::from("complete"));
        if CACHEABLE.contains(&call.method.as_str()) {
            result.entry("ttlMs").or_insert_with(|| Value::from(0));
            result
                .entry("cacheScope")
                .or_insert_with(|| Value::from("private"));
        }
    }
    // The revision's transport answers an unknown method with 404, and a missing capability,
    // a header mismatch or an unsupported revision with 400.
    let code = answer
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64);
    let status = match code {
        Some(code) if code == i64::from(jsonrpc::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(-32022..=-32020) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    answer.insert("id".to_owned(), raw_id(&call.id));
    Out::Final(status, Value::Object(answer).to_string())
}
