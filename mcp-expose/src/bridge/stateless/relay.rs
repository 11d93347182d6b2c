//! One forwarded 2026-07-28 call: the child's answer as the POST's JSON body, or, when the
//! call's progress comes first, an event stream of its progress and then its answer. Progress
//! tokens are rewritten like ids (the child is shared by every 2026 client), so only the caller
//! sees its progress; what the child sends unattributed (logs, `list_changed`) is dropped. A
//! `subscriptions/listen` (of a child that speaks 2026-07-28) streams what the child tags with
//! its id until the client leaves, when the child is told to stop (`notifications/cancelled`).

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
use tokio::sync::mpsc;

use super::{super::Bridge, CACHEABLE, Stateless, V2026, bridge_id, json_body, lock, raw_id};
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
struct Call {
    /// The client's id, raw JSON.
    id: String,
    /// The bridge's id for it, raw JSON.
    ours: String,
    method: String,
    /// The client's progress token, raw JSON, and the bridge's in its place.
    token: Option<(String, String)>,
    /// The client capabilities its `_meta` declares.
    declared: Value,
}

/// Forwards `frame` (the client's request, 2026-only `_meta` gone), whose id is `id` and
/// progress token `token` (raw JSON), to the stateless child, and answers the POST.
pub(super) async fn forward(
    bridge: &Arc<Bridge>,
    child: Arc<Stateless>,
    id: &str,
    method: &str,
    token: Option<&str>,
    declared: &Value,
    frame: String,
) -> Response {
    let ours = bridge_id();
    let token = token.map(|token| (token.to_owned(), bridge_id()));
    let frame = match &token {
        Some((_, our_token)) => envelope::with_param(&frame, "_meta.progressToken", our_token),
        None => Some(frame),
    }
    .and_then(|frame| envelope::with_id(frame.as_bytes(), &ours));
    let Some(frame) = frame else {
        let body = jsonrpc::error(id, jsonrpc::INVALID_REQUEST, "cannot forward the request");
        return json_body(StatusCode::BAD_REQUEST, body);
    };
    let (tx, rx) = stream::channel(STREAM_BYTES.max(bridge.max_message.saturating_mul(2)));
    let our_token = token.as_ref().map(|(_, ours)| ours.as_str());
    lock(&child.routes).open_post(&ours, our_token, tx);
    if !child.link.send(frame.into_bytes()).await {
        super::forget(bridge, &child).await;
        let body = jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, "the MCP server is gone");
        return json_body(StatusCode::OK, body);
    }
    let call = Call {
        id: id.to_owned(),
        ours: ours.clone(),
        method: method.to_owned(),
        token,
        declared: declared.clone(),
    };
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

/// Reads what the child sends for one call until its answer, bounded by the request timeout:
/// refuses its requests, hands on the call's progress, and ends with the answer.
async fn relay(
    bridge: Arc<Bridge>,
    child: Arc<Stateless>,
    mut rx: stream::Receiver,
    call: Call,
    out: mpsc::Sender<Out>,
) {
    // A listen lasts as long as its client; a call, no longer than the request timeout.
    let listen = call.method == "subscriptions/listen";
    let timeout = bridge.request_timeout + Duration::from_secs(1);
    let deadline = tokio::time::Instant::now() + if listen { LISTEN_LIMIT } else { timeout };
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, rx.recv()) => next,
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
                let _ = out.send(finish(&routed.line, &call)).await;
                return;
            }
            Ok(Some(routed)) => {
                match envelope::parse(routed.line.as_bytes()) {
                    Ok(Message::Request { id, method, .. }) => {
                        // TODO(issue 17, item 5): an input-required result in place of this.
                        let text = format!("{method} is not available to MCP {V2026} clients yet");
                        let refusal = jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, &text);
                        let missing = super::check::capability(&method)
                            .filter(|needed| !call.declared[*needed].is_object());
                        child.link.send(refusal.into_bytes()).await;
                        if let Some(needed) = missing {
                            // The call needs what the client did not declare: it ends here.
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
                    }
                    Ok(Message::Notification {
                        progress_token: Some(token),
                        ..
                    }) => {
                        let Some((theirs, ours)) = &call.token else {
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
            Err(_) => "the MCP server did not answer in time",
        };
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
