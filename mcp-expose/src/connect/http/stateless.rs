//! MCP 2026-07-28 servers for hosts that speak a 2025 revision: when a server refuses
//! `initialize` (it serves only the sessionless revision), the connector asks it
//! `server/discover` instead and answers the host's `initialize` itself. From then on every
//! request carries the `_meta` the revision requires (protocol version, client info and
//! capabilities, log level), and an input-required result becomes requests to the host
//! (sampling, elicitation, roots), whose answers go back to the server in a retry, and the
//! notifications a 2025 client expects unasked (list changes, subscribed resources) come from
//! a `subscriptions/listen` stream kept open.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde_json::{Map, Value, json};
use tokio::{
    sync::{OwnedRwLockReadGuard, oneshot},
    task::JoinHandle,
};

use super::Inner;
use crate::{
    connect::{
        message::{Id, Kind, Message, from_server},
        retry,
        stream::Messages,
    },
    jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, IdKey},
};

/// The revision spoken to such servers.
pub(super) const REVISION: &str = "2026-07-28";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// The server does not support the version sent; `data.supported` lists those it does.
const UNSUPPORTED_VERSION: i64 = -32022;
/// Input-required rounds one request may take before the connector gives up.
const MAX_ROUNDS: u32 = 16;
/// How long the host has to answer a request the server needs answered.
const HOST_WAIT: Duration = Duration::from_secs(300);

/// What every request to a sessionless server carries, from the host's `initialize`, and
/// the notifications the host gets.
#[derive(Debug)]
pub(super) struct Stateless {
    meta: Mutex<Map<String, Value>>,
    /// The server's capabilities (from `server/discover`).
    capabilities: Value,
    /// Resources the host subscribed to (`resources/subscribe`).
    subscriptions: Mutex<Vec<String>>,
    /// The `subscriptions/listen` stream's task.
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Stateless {
    fn meta(&self) -> Map<String, Value> {
        lock(&self.meta).clone()
    }

    /// Stops the `subscriptions/listen` stream.
    pub(super) fn stop(&self) {
        if let Some(task) = lock(&self.listener).take() {
            task.abort();
        }
    }

    /// What to listen for: the list changes the server announces, and the subscribed resources.
    fn filter(&self) -> Map<String, Value> {
        let mut filter = Map::new();
        for (capability, key) in [
            ("tools", "toolsListChanged"),
            ("prompts", "promptsListChanged"),
            ("resources", "resourcesListChanged"),
        ] {
            if self.capabilities[capability]["listChanged"] == true {
                filter.insert(key.into(), true.into());
            }
        }
        let uris = lock(&self.subscriptions).clone();
        if !uris.is_empty() {
            filter.insert("resourceSubscriptions".into(), uris.into());
        }
        filter
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// The sessionless mode, once `initialize` chose it.
    pub(super) fn stateless(&self) -> Option<Arc<Stateless>> {
        lock(&self.mode).clone()
    }

    /// Asks the server `server/discover` for [`REVISION`] on the host's `initialize`: when it
    /// answers, the connector speaks that revision to it and answers `initialize` itself (and
    /// keeps a `subscriptions/listen` stream for the host's notifications); `None` when the
    /// server does not speak it (the host's `initialize` then goes to the server); the reason
    /// when the probe never reached the server.
    pub(super) async fn negotiate(
        self: &Arc<Self>,
        init: &Message,
    ) -> Result<Option<String>, String> {
        if let Some(old) = lock(&self.mode).take() {
            old.stop();
        }
        let params: Value = init
            .init_params
            .as_deref()
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let mut meta = Map::new();
        meta.insert(META_VERSION.into(), REVISION.into());
        meta.insert(META_CLIENT_INFO.into(), params["clientInfo"].clone());
        meta.insert(
            META_CAPABILITIES.into(),
            params.get("capabilities").cloned().unwrap_or(json!({})),
        );
        let probe = Stateless {
            meta: Mutex::new(meta),
            capabilities: Value::Null,
            subscriptions: Mutex::default(),
            listener: Mutex::default(),
        };
        let discovered = self.run(&probe, "server/discover", Map::new(), None).await;
        if self
            .undelivered
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let reason = discovered["error"]["message"].as_str();
            return Err(reason.unwrap_or("the server cannot be reached").to_owned());
        }
        let result = &discovered["result"];
        let speaks = result["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == REVISION));
        if !speaks {
            tracing::debug!(answer = %discovered, "the server does not speak MCP {REVISION}");
            return Ok(None);
        }
        tracing::info!("the server speaks MCP {REVISION}; translating for the client");
        let server_info = result["_meta"][META_SERVER_INFO]
            .as_object()
            .or_else(|| result["_meta"]["serverInfo"].as_object())
            .or_else(|| result["serverInfo"].as_object())
            .cloned()
            .map(Value::Object)
            .unwrap_or_else(|| json!({ "name": "mcp-server", "version": "unknown" }));
        let capabilities = result.get("capabilities").cloned().unwrap_or(json!({}));
        let mut reply = json!({
            "protocolVersion": params["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": capabilities,
            "serverInfo": server_info,
        });
        if let Some(instructions) = result.get("instructions") {
            reply["instructions"] = instructions.clone();
        }
        let mode = Arc::new(Stateless {
            capabilities,
            ..probe
        });
        self.relisten(&mode);
        *lock(&self.mode) = Some(mode);
        Ok(init.id().map(|id| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{reply}}}"#,
                id.raw().get()
            )
        }))
    }

    /// (Re)starts the `subscriptions/listen` stream with the current filter.
    fn relisten(self: &Arc<Self>, mode: &Arc<Stateless>) {
        let task = tokio::spawn(self.clone().subscriptions(mode.clone()));
        if let Some(old) = lock(&mode.listener).replace(task) {
            old.abort();
        }
    }

    /// Keeps a `subscriptions/listen` stream open and forwards its notifications to the host;
    /// reopens it with backoff; stops when there is nothing to listen for or the server has no
    /// such stream.
    async fn subscriptions(self: Arc<Self>, mode: Arc<Stateless>) {
        let mut backoff = retry::backoff();
        loop {
            let filter = mode.filter();
            if filter.is_empty() {
                return;
            }
            let mut params = Map::new();
            params.insert("notifications".into(), Value::Object(filter));
            add_meta(&mut params, &mode.meta());
            let id = self.internal_id();
            let line = json!({ "jsonrpc": "2.0", "id": id.raw(), "method": "subscriptions/listen", "params": params });
            match self.post(&line.to_string(), false).await {
                Ok((response, _)) if response.status().is_success() => {
                    let mut stream = Messages::new(response);
                    while let Ok(Some(text)) = stream.next().await {
                        let Some(message) = from_server(&text) else {
                            continue;
                        };
                        match &message.kind {
                            Kind::Notification { method }
                                if method == "notifications/subscriptions/acknowledged" =>
                            {
                                backoff.reset();
                            }
                            Kind::Notification { .. } => {
                                self.out.send(message.line).await;
                            }
                            // The stream's own answer: the server ended it.
                            _ => break,
                        }
                    }
                    tracing::debug!("the subscriptions/listen stream ended; reopening");
                }
                Ok((response, _)) => {
                    tracing::info!(status = %response.status(), "the server keeps no subscriptions/listen stream; list changes will not reach the client");
                    return;
                }
                Err(reason) => tracing::debug!(%reason, "subscriptions/listen failed"),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// A host request to the sessionless server: its answer, under the host's id.
    pub(super) async fn call(
        self: Arc<Self>,
        mode: Arc<Stateless>,
        request: Message,
        turn: OwnedRwLockReadGuard<()>,
    ) -> Option<String> {
        let id = request.id()?.clone();
        let method = request.method()?.to_owned();
        let Ok(mut value) = serde_json::from_str::<Value>(&request.line) else {
            // An envelope that parsed, with params that do not (a number out of range).
            return request.failure(
                INVALID_PARAMS,
                "Invalid params: the request's params cannot be read as JSON values",
            );
        };
        let params = match value.get_mut("params").map(Value::take) {
            Some(Value::Object(params)) => params,
            _ => Map::new(),
        };
        let local = match method.as_str() {
            // Removed in 2026-07-28: answered here.
            "ping" => Some(json!({ "result": {} })),
            "logging/setLevel" => {
                let level = params.get("level").cloned().unwrap_or(Value::Null);
                lock(&mode.meta).insert(META_LOG_LEVEL.into(), level);
                Some(json!({ "result": {} }))
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let uri = params
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                {
                    let mut subscribed = lock(&mode.subscriptions);
                    subscribed.retain(|u| u != uri);
                    if method == "resources/subscribe" {
                        subscribed.push(uri.to_owned());
                    }
                }
                self.relisten(&mode);
                Some(json!({ "result": {} }))
            }
            "tools/call" => {
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                self.refusal(name).await.map(|reason| {
                    json!({ "error": { "code": INVALID_PARAMS, "message": format!("tool {name:?} cannot be called: {reason}") } })
                })
            }
            _ => None,
        };
        let mut reply = match local {
            Some(reply) => reply,
            None => self.run(&mode, &method, params, Some(turn)).await,
        };
        reply["jsonrpc"] = "2.0".into();
        reply["id"] = serde_json::from_str(id.raw().get()).unwrap_or(Value::Null);
        Some(reply.to_string())
    }

    /// Why `tool` may not be called (invalid `x-mcp-header` annotations); reads the tool
    /// list first when none was read yet, so the call can carry its `Mcp-Param-*` headers.
    async fn refusal(self: &Arc<Self>, tool: &str) -> Option<String> {
        if !self.tools().listed()
            && let Some(mode) = self.stateless()
        {
            let reply = self.run(&mode, "tools/list", Map::new(), None).await;
            if reply.get("error").is_some() {
                tracing::debug!("could not read the tool list before a call");
            }
        }
        self.tools().refusal(tool).map(str::to_owned)
    }

    /// A host notification to the sessionless server: `notifications/initialized` ends
    /// here (there is no session); the rest carry the `_meta`.
    pub(super) async fn notify(&self, mode: &Stateless, notification: &Message) {
        if notification.method() == Some("notifications/initialized") {
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&notification.line) else {
            return;
        };
        let mut params = match value.get_mut("params").map(Value::take) {
            Some(Value::Object(params)) => params,
            _ => Map::new(),
        };
        add_meta(&mut params, &mode.meta());
        value["params"] = Value::Object(params);
        if let Ok(message) = Message::parse(&value.to_string()) {
            self.exchange(&message, None).await;
        }
    }

    /// Sends `method` with `params` (and the mode's `_meta`) until it has a final answer: a
    /// refused version is retried once, an input-required result is answered by the host and
    /// retried with `inputResponses` (and the server's `requestState`), each time under a new
    /// id. Returns the reply object (`result` or `error`).
    async fn run(
        &self,
        mode: &Stateless,
        method: &str,
        mut params: Map<String, Value>,
        mut turn: Option<OwnedRwLockReadGuard<()>>,
    ) -> Value {
        let mut rounds = 0;
        let mut retried_version = false;
        loop {
            add_meta(&mut params, &mode.meta());
            let id = self.internal_id();
            let line =
                json!({ "jsonrpc": "2.0", "id": id.raw(), "method": method, "params": params });
            let Ok(request) = Message::parse(&line.to_string()) else {
                return error(INTERNAL_ERROR, "cannot encode the request");
            };
            let answer = self.exchange(&request, turn.take()).await;
            let Some(reply) = answer.and_then(|a| serde_json::from_str::<Value>(&a).ok()) else {
                return error(INTERNAL_ERROR, "the server's answer is not JSON");
            };
            if reply["error"]["code"] == UNSUPPORTED_VERSION && !retried_version {
                let supported = &reply["error"]["data"]["supported"];
                if supported
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v == REVISION))
                {
                    retried_version = true;
                    continue;
                }
            }
            let result = &reply["result"];
            // `server/discover` runs before the host can answer anything: no rounds there.
            if result["resultType"] != "input_required" || method == "server/discover" {
                return reply;
            }
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return error(
                    INTERNAL_ERROR,
                    &format!("the server still needs input after {MAX_ROUNDS} rounds; giving up"),
                );
            }
            let requests = result["inputRequests"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let state = result.get("requestState").cloned();
            match self.ask_host(requests).await {
                Ok(responses) => {
                    params.insert("inputResponses".into(), Value::Object(responses));
                }
                Err(refused) => return refused,
            }
            match state {
                Some(state) => params.insert("requestState".into(), state),
                None => params.remove("requestState"),
            };
        }
    }

    /// Sends each of the server's input requests to the host, concurrently; their results by
    /// key, or the reply that ends the call when the host fails one.
    async fn ask_host(&self, requests: Map<String, Value>) -> Result<Map<String, Value>, Value> {
        let asks = requests.into_iter().map(|(key, request)| async move {
            let method = request["method"].as_str().unwrap_or_default().to_owned();
            let id = self.internal_id();
            let (tx, rx) = oneshot::channel();
            self.host_requests().insert(id.key().clone(), tx);
            // Unregistered however this ends, the others failing first included.
            let _waiting = Waiting { inner: self, id: id.key().clone() };
            let line = json!({ "jsonrpc": "2.0", "id": id.raw(), "method": method, "params": request["params"] });
            self.out.send(line.to_string()).await;
            let answer = tokio::time::timeout(HOST_WAIT, rx).await;
            let reply: Value = match answer {
                Ok(Ok(text)) => serde_json::from_str(&text).unwrap_or_default(),
                _ => {
                    return Err(error(
                        INTERNAL_ERROR,
                        &format!("the client did not answer the server's {method} within {} s", HOST_WAIT.as_secs()),
                    ));
                }
            };
            match reply.get("result") {
                Some(result) => Ok((key, result.clone())),
                None => {
                    let detail = reply["error"]["message"].as_str().unwrap_or("no result");
                    Err(error(
                        reply["error"]["code"].as_i64().map_or(INTERNAL_ERROR, |c| c as i32),
                        &format!("the client refused the server's {method}: {detail}"),
                    ))
                }
            }
        });
        // The first refusal ends the call; the other questions are not waited for.
        futures::future::try_join_all(asks)
            .await
            .map(|answers| answers.into_iter().collect())
    }

    /// Hands a host response to the input request waiting for it; `false` when none is.
    pub(super) fn answer_host_request(&self, response: &Message) -> bool {
        let Some(id) = response.id() else {
            return false;
        };
        match self.host_requests().remove(id.key()) {
            Some(waiter) => {
                let _ = waiter.send(response.line.clone());
                true
            }
            None => false,
        }
    }

    fn internal_id(&self) -> Id {
        Id::internal(
            self.internal_ids
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// The host request a `notifications/cancelled` names.
pub(super) fn cancelled(notification: &Message) -> Option<IdKey> {
    let value: Value = serde_json::from_str(&notification.line).ok()?;
    let id = value["params"].get("requestId")?;
    Some(IdKey::of(&id.to_string()))
}

/// An input request waiting for the host's answer; unregistered when dropped.
struct Waiting<'a> {
    inner: &'a Inner,
    id: IdKey,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.inner.host_requests().remove(&self.id);
    }
}

/// Adds the mode's `_meta` entries the request does not set itself.
fn add_meta(params: &mut Map<String, Value>, meta: &Map<String, Value>) {
    let entry = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Some(own) = entry.as_object_mut() {
        for (key, value) in meta {
            if !value.is_null() && !own.contains_key(key) {
                own.insert(key.clone(), value.clone());
            }
        }
    }
}

fn error(code: i32, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}
