//! MCP 2026-07-28 clients of the bridge: sessionless requests (no `Mcp-Session-Id`, no
//! `initialize`, the revision in the `MCP-Protocol-Version` header and each request's `_meta`).
//!
//! They go to one **stateless child** per bridge, started on the first such request and
//! initialized by the bridge itself (as a 2025-11-25 client declaring sampling and
//! elicitation); its `Link` is an ordinary session's (a child of its own, or the shared child),
//! so crashes restart it and replay that `initialize`. The bridge then asks it
//! `server/discover` the 2026 way:
//!
//! - **A child that speaks 2026-07-28** (one built on mcp-expose or another SDK that serves
//!   both) gets each request as the client sent it, `_meta` and all: it answers with
//!   input-required results, tasks and `-32021` itself. The bridge checks the headers the
//!   child cannot see, `Mcp-Param-*` included (against the input schemas of its
//!   `tools/list`, kept from each listing).
//! - **A 2025 child**: `server/discover` is answered from its `initialize` result, the
//!   2026-only `_meta` keys are stripped.
//!
//! Either way the methods the revision removed are refused (404, -32601) as `serve()` refuses
//! them; the rest is forwarded under an id of the bridge's own (unguessable, never the
//! client's), and the answer goes back as the POST's JSON body with the client's id.
//!
//! A 2025 child may ask the client something during such a call (sampling, elicitation,
//! roots), which a 2026 client cannot be asked: the bridge declares those capabilities to the
//! child and turns its requests into **input-required results** ([`relay`], [`park`]). The
//! child's call stays open, its requests unanswered; the requests it sends within a moment of
//! the first are listed together (`sampling-1`, `elicitation-2`, ... per call) with a
//! `requestState` that names the parked call (128 random bits, bound to the method, name and
//! arguments). The client's retry with that state and its `inputResponses` resumes the call:
//! each answer goes to the child as the result of its request, and the retry's POST gets the
//! rest (progress, the answer, or another round). A state the retry does not match, or that
//! expired, is -32602; a call not resumed within the request timeout is dropped, its child's
//! requests answered with an error so that its tool fails rather than hangs. When the client
//! did not declare the capability a request needs, the call ends with -32021 naming it (HTTP
//! 400). A request the child sends outside any call (a `roots/list` on its own, say) is
//! answered at once with an error: no client is there to ask.

mod check;
mod park;
mod relay;

use std::sync::{Arc, Mutex};

use axum::{
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    Bridge, Link,
    child::Outlet,
    envelope::{self, Message},
    routes::Routes,
    stream::{self, STREAM_BYTES},
};
use crate::jsonrpc;

/// The revision served here.
pub(crate) const V2026: &str = "2026-07-28";

/// The revisions `server/discover` names: the 2025 ones reach the child through sessions.
const SUPPORTED: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    V2026,
];

/// Methods MCP 2026-07-28 removed: no session to initialize, ping, set a level on or
/// subscribe in.
const REMOVED: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// Results the revision gives caching hints (`ttlMs`, `cacheScope`), which a 2025 child omits.
const CACHEABLE: [&str; 5] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// How long the child has to answer the bridge's own 2026 requests (`server/discover`).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The `_meta` keys of the 2026 revision, which a 2025 child is not sent.
const META_PREFIX: &str = "io.modelcontextprotocol/";

/// The stateless child: its link, where its messages are routed, and its `initialize` result.
pub(crate) struct Stateless {
    link: Link,
    routes: Arc<Mutex<Routes>>,
    init: Value,
    /// It speaks MCP 2026-07-28 itself: requests go to it as they come.
    native: bool,
    /// Its tools' input schemas by name, from its latest `tools/list` (for `Mcp-Param-*`).
    schemas: Mutex<std::collections::HashMap<String, Value>>,
    /// Calls waiting for their clients' answers, by `requestState`.
    parked: park::Parked<relay::Held>,
    /// The child's requests that no call took, until [`refuse_strays`] takes them.
    strays: Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
}

impl std::fmt::Debug for Stateless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stateless").finish_non_exhaustive()
    }
}

/// Whether a sessionless request speaks MCP 2026-07-28: the header says so, or its `_meta` does.
pub(crate) fn is_2026(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = headers
        .get("mcp-protocol-version")
        .is_some_and(|v| v.as_bytes() == V2026.as_bytes());
    header || {
        let text = std::str::from_utf8(body).unwrap_or("");
        envelope::member(text, "params")
            .and_then(|params| envelope::member(params, "_meta"))
            .and_then(|meta| envelope::member(meta, "io.modelcontextprotocol/protocolVersion"))
            .is_some()
    }
}

/// An id of the bridge's own, raw JSON: a client cannot guess it to reach another's answer.
fn bridge_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"sl-{hex}\"")
}

fn json_body(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Answers one sessionless 2026-07-28 message (`body`, whose envelope is `message`).
pub(crate) async fn post(
    bridge: &Arc<Bridge>,
    headers: &HeaderMap,
    body: &[u8],
    message: Message<'_>,
) -> Response {
    let Message::Request {
        id,
        method,
        progress_token,
    } = message
    else {
        // A notification or an answer belongs to no call here: nothing waits for it.
        return StatusCode::ACCEPTED.into_response();
    };
    if REMOVED.contains(&method.as_ref()) {
        let text = format!("Method not found: {method} (removed in MCP {V2026})");
        let body = jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, &text);
        return json_body(StatusCode::NOT_FOUND, body);
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Err(why) = check::check(headers, &request) {
        return json_body(StatusCode::BAD_REQUEST, check::refusal(id, why));
    }
    let child = match child(bridge).await {
        Ok(child) => child,
        Err(why) => {
            let body = jsonrpc::error(id, jsonrpc::SERVER_UNAVAILABLE, &why);
            return json_body(StatusCode::OK, body);
        }
    };
    if method == "tools/call"
        && let Some(schema) = request["params"]["name"]
            .as_str()
            .and_then(|name| lock(&child.schemas).get(name).cloned())
        && let Err(why) = check::params(headers, &request, &schema)
    {
        return json_body(StatusCode::BAD_REQUEST, check::refusal(id, why));
    }
    if method == "server/discover" && !child.native {
        return json_body(StatusCode::OK, reply(id, discover(&child.init)));
    }
    if !child.native && !request["params"]["requestState"].is_null() {
        // The retry of a call parked on the child's requests to the client.
        return relay::resume(bridge, child, id, &method, progress_token, &request).await;
    }
    let frame = if child.native {
        request.is_object().then(|| request.to_string())
    } else {
        for_child(body)
    };
    let Some(frame) = frame else {
        let text = "Invalid request: not a JSON-RPC request object";
        let body = jsonrpc::error(id, jsonrpc::INVALID_REQUEST, text);
        return json_body(StatusCode::BAD_REQUEST, body);
    };
    relay::forward(bridge, child, id, &method, progress_token, &request, frame).await
}

/// The client's id, as a value (it parsed as part of the request).
fn raw_id(id: &str) -> Value {
    serde_json::from_str(id).unwrap_or(Value::Null)
}

fn reply(id: &str, result: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": raw_id(id), "result": result }).to_string()
}

/// `server/discover`'s result, from the child's `initialize` result.
fn discover(init: &Value) -> Value {
    let mut result = Map::new();
    result.insert("resultType".into(), "complete".into());
    result.insert("supportedVersions".into(), json!(SUPPORTED));
    let capabilities = init.get("capabilities").cloned().unwrap_or(json!({}));
    result.insert("capabilities".into(), capabilities);
    if let Some(instructions) = init.get("instructions").filter(|v| v.is_string()) {
        result.insert("instructions".into(), instructions.clone());
    }
    result.insert("ttlMs".into(), 0.into());
    result.insert("cacheScope".into(), "private".into());
    let info = init.get("serverInfo").cloned().unwrap_or(json!({}));
    result.insert(
        "_meta".into(),
        json!({ "io.modelcontextprotocol/serverInfo": info }),
    );
    Value::Object(result)
}

/// The request as a 2025 child takes it: its 2026-only `_meta` keys gone (an empty `_meta`
/// with them), and `inputResponses` (answers to no round of the bridge's). `None` when it is
/// not an object.
fn for_child(body: &[u8]) -> Option<String> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    if let Some(params) = request.get_mut("params").and_then(Value::as_object_mut) {
        params.remove("inputResponses");
        if let Some(Value::Object(meta)) = params.get_mut("_meta") {
            meta.retain(|key, _| !key.starts_with(META_PREFIX));
            if meta.is_empty() {
                params.remove("_meta");
            }
        }
    }
    request.is_object().then(|| request.to_string())
}

/// The stateless child, started (and initialized) when there is none.
async fn child(bridge: &Arc<Bridge>) -> Result<Arc<Stateless>, String> {
    let mut slot = bridge.stateless.lock().await;
    if let Some(child) = slot.as_ref() {
        return Ok(child.clone());
    }
    let child = Arc::new(start(bridge).await?);
    if let Some(strays) = lock(&child.strays).take() {
        tokio::spawn(refuse_strays(Arc::downgrade(&child), strays));
    }
    *slot = Some(child.clone());
    Ok(child)
}

/// Forgets `child`, whose link is closed (it crash-looped): the next request starts another.
async fn forget(bridge: &Bridge, child: &Arc<Stateless>) {
    let mut slot = bridge.stateless.lock().await;
    if slot.as_ref().is_some_and(|held| Arc::ptr_eq(held, child)) {
        tracing::warn!("the stateless child is gone; the next 2026-07-28 request starts another");
        *slot = None;
    }
}

/// Answers each request the child sends outside any call with an error, as it comes: no
/// client is there to ask (a `roots/list` of its own, say), and a child left waiting would
/// hang. Ends when the child's routes are gone.
async fn refuse_strays(
    child: std::sync::Weak<Stateless>,
    mut strays: tokio::sync::mpsc::Receiver<String>,
) {
    while let Some(line) = strays.recv().await {
        let Some(child) = child.upgrade() else {
            return;
        };
        if let Ok(Message::Request { id, method, .. }) = envelope::parse(line.as_bytes()) {
            let text = format!("{method} cannot reach an MCP client outside a call");
            let refusal = jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, &text);
            child.link.send(refusal.into_bytes()).await;
        }
    }
}

/// How many stray requests of the child may wait for [`refuse_strays`].
const STRAYS: usize = 64;

/// Starts the stateless child and initializes it; its `initialize` result, or why not.
async fn start(bridge: &Arc<Bridge>) -> Result<Stateless, String> {
    let (strays_tx, strays) = tokio::sync::mpsc::channel(STRAYS);
    let routes = Arc::new(Mutex::new(Routes::stateless(strays_tx)));
    let link = bridge.open("stateless".to_owned(), Outlet::Http(routes.clone()));
    let id = bridge_id();
    let initialize = json!({
        "jsonrpc": "2.0",
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            // Its requests of these kinds become input-required results for a 2026 client that
            // declared the capability (and -32021 for one that did not); outside a call they
            // are refused at once.
            "capabilities": { "sampling": {}, "elicitation": {}, "roots": {} },
            "clientInfo": { "name": "mcp-expose-bridge", "version": env!("CARGO_PKG_VERSION") },
        },
    });
    let frame = envelope::with_id(initialize.to_string().as_bytes(), &id)
        .ok_or("cannot build initialize")?;
    let mut child = Stateless {
        link,
        routes,
        init: Value::Null,
        native: false,
        schemas: Mutex::default(),
        parked: Mutex::default(),
        strays: Mutex::new(Some(strays)),
    };
    let answer = call(bridge, &child, &id, frame.into_bytes()).await?;
    let Some(result) = answer.get("result").filter(|r| r.is_object()) else {
        let why = answer["error"]["message"].as_str().unwrap_or("no result");
        return Err(format!("the MCP server refused initialize: {why}"));
    };
    child.init = result.clone();
    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    child.link.send(initialized.to_vec()).await;
    child.native = speaks_2026(bridge, &child).await;
    if child.native {
        let list = ask_2026(bridge, &child, "tools/list").await;
        if let Some(tools) = list
            .as_ref()
            .and_then(|answer| answer["result"]["tools"].as_array())
        {
            child.keep_schemas(tools);
        }
    }
    tracing::info!(
        native = child.native,
        "stateless child ready for MCP {V2026} clients{}",
        if child.native {
            ""
        } else {
            " (translating to 2025-11-25)"
        }
    );
    Ok(child)
}

impl Stateless {
    /// Keeps the input schemas of `tools` (a `tools/list` result's), replacing the last ones.
    fn keep_schemas(&self, tools: &[Value]) {
        let schemas = tools.iter().filter_map(|tool| {
            let name = tool["name"].as_str()?;
            Some((name.to_owned(), tool["inputSchema"].clone()))
        });
        *lock(&self.schemas) = schemas.collect();
    }
}

/// Asks the child `method` the 2026 way (its `_meta` naming the revision); its answer, if it
/// gave one in time.
async fn ask_2026(bridge: &Bridge, child: &Stateless, method: &str) -> Option<Value> {
    let id = bridge_id();
    let request = json!({
        "jsonrpc": "2.0",
        "method": method,
        "params": { "_meta": {
            "io.modelcontextprotocol/protocolVersion": V2026,
            "io.modelcontextprotocol/clientCapabilities": {},
        }},
    });
    let frame = envelope::with_id(request.to_string().as_bytes(), &id)?;
    // A child that ignores what it does not know must not hold up the first call for long.
    let asked = call(bridge, child, &id, frame.into_bytes());
    tokio::time::timeout(PROBE_TIMEOUT, asked).await.ok()?.ok()
}

/// Whether the child answers `server/discover` naming MCP 2026-07-28 among its versions.
async fn speaks_2026(bridge: &Bridge, child: &Stateless) -> bool {
    let answer = ask_2026(bridge, child, "server/discover").await;
    answer.is_some_and(|answer| {
        answer["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|versions| versions.iter().any(|v| v == V2026))
    })
}

/// Sends `frame` (a request whose id is `id`, raw JSON) to the child and waits, bounded by the
/// request timeout, for its answer (an object). The child's requests meanwhile are refused
/// (these are the bridge's own requests: no client is there to ask); its notifications
/// (progress, logs) are dropped.
async fn call(
    bridge: &Bridge,
    child: &Stateless,
    id: &str,
    frame: Vec<u8>,
) -> Result<Value, String> {
    let (tx, mut rx) = stream::channel(STREAM_BYTES.max(bridge.max_message.saturating_mul(2)));
    lock(&child.routes).open_post(id, None, tx);
    if !child.link.send(frame).await {
        return Err("the MCP server is gone".to_owned());
    }
    let wait = async {
        while let Some(routed) = rx.recv().await {
            if routed.last {
                return Some(routed.line);
            }
            if let Ok(Message::Request { id, method, .. }) = envelope::parse(routed.line.as_bytes())
            {
                let text = format!("{method} cannot reach an MCP client outside a call");
                let refusal = jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, &text);
                child.link.send(refusal.into_bytes()).await;
            }
        }
        None
    };
    let timeout = bridge.request_timeout + std::time::Duration::from_secs(1);
    let line = match tokio::time::timeout(timeout, wait).await {
        Ok(Some(line)) => line,
        Ok(None) => return Err("the MCP server did not answer".to_owned()),
        Err(_) => return Err("the MCP server did not answer in time".to_owned()),
    };
    match serde_json::from_str::<Value>(&line) {
        Ok(answer) if answer.is_object() => Ok(answer),
        _ => Err("the MCP server's answer is not a JSON-RPC object".to_owned()),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
