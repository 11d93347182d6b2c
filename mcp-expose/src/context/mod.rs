#![allow(deprecated)] // logging and sampling are deprecated by the 2026-07-28 revision; older clients use them
//! [`Context`]: what a tool can do besides computing its result.

use std::sync::Arc;

use rmcp::{
    RoleServer,
    model::{
        ClientCapabilities, CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationSchema, InputRequest,
        ListRootsResult, LoggingLevel, ProgressNotificationParam, ProgressToken, ProtocolVersion,
        RequestId,
    },
    service::{Peer, RequestContext},
};
use tokio_util::sync::CancellationToken;

pub(crate) mod input;
mod log;
mod task;

use self::input::Round;
pub use self::log::LogLevel;
pub(crate) use self::log::RelatedSender;
pub(crate) use self::task::Launch;
pub use crate::session::Caller;
use crate::{
    error::{Error, ErrorKind},
    session::{Session, Subscriptions},
};

/// The request a tool runs for: progress and log notifications, cancellation, requests to the
/// client (sampling, elicitation), and the HTTP headers of the request when there are any.
///
/// Add a parameter of type `Context` (or `&Context`) to a `#[tool]` function to receive it; it
/// is not part of the tool's input schema.
///
/// # Asking the client: the same code on every revision
///
/// [`elicit`](Self::elicit), [`sample`](Self::sample) and [`list_roots`](Self::list_roots)
/// work on both protocol revisions, with the same tool code:
///
/// - **MCP 2025-xx (sessions)**: a real request to the client, sent on the call's response
///   stream; the method returns the client's answer.
/// - **MCP 2026-07-28 (sessionless)**: there are no requests to the client. A request the
///   client has not answered yet fails with [`ErrorKind::InputRequired`]; return it (`?`)
///   and the call (`tools/call`, or a prompt's `prompts/get`) is answered with an *input-required result* listing every request of the
///   run that lacks an answer. The client answers them and retries the call with its
///   `inputResponses` and the `requestState`; **the tool then runs again from the start**,
///   and this time each request returns its answer at once.
///
/// So on 2026-07-28 a tool may run several times for one call: do side effects (writes,
/// payments) only after the last question, and keep the questions in the same order from run
/// to run. The Nth request of a run is matched with the Nth of the previous runs (its key is
/// `elicitation-N`, `sampling-N` or `roots-N`; [`elicit_as`](Self::elicit_as) names one).
/// To ask several questions in one round trip, make the requests together
/// (`tokio::join!`): each one without an answer is listed. `requestState` carries the answers
/// of earlier rounds, signed with the server's key (`--state-key-file`, else a random key per
/// process) and valid for 10 minutes; an altered or expired one is refused with -32602.
///
/// - **In a task** (a tool declared with `#[tool(task = ..)]`, called by a client with the
///   tasks extension): the request is shown on the task (`input_required`) and the method
///   waits for the client's `tasks/update`; the tool runs once. See [`crate::task`].
///
/// ```no_run
/// use mcp_expose::{tool, Context, ToolError};
///
/// /// Counts to `n`, reporting progress.
/// #[tool]
/// async fn count(n: u32, ctx: Context) -> Result<u32, ToolError> {
///     for i in 0..n {
///         if ctx.is_cancelled() { return Err("cancelled".into()); }
///         ctx.progress(f64::from(i), Some(f64::from(n)), None).await;
///     }
///     Ok(n)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    peer: Peer<RoleServer>,
    ct: CancellationToken,
    id: RequestId,
    progress_token: Option<ProgressToken>,
    headers: Option<http::HeaderMap>,
    caller: Option<Arc<Caller>>,
    client: Option<std::net::IpAddr>,
    session: Arc<Session>,
    /// The request's own stream, while it is open (streamable HTTP sessions): its logs go there.
    related: Option<RelatedSender>,
    /// Weak: a tool's context does not keep the server's subscriptions alive.
    subscriptions: std::sync::Weak<Subscriptions>,
    /// The request is on MCP 2026-07-28 or later: no session, no requests to the client.
    sessionless: bool,
    /// What the client declared: in this request's `_meta` (2026-07-28) or at `initialize`.
    client_capabilities: Option<ClientCapabilities>,
    /// The least severe log level this request asked for in its `_meta` (2026-07-28).
    log_level: Option<LoggingLevel>,
    /// The capability a request to the client lacked, once one was refused for it.
    refused: std::sync::Mutex<Option<ClientCapabilities>>,
    /// On MCP 2026-07-28, a `tools/call`'s answers so far and the requests still unanswered.
    input: Option<Arc<Round>>,
    /// For a task-supporting tool called by a client with the tasks extension: how the call
    /// becomes a task, and the task once it is one.
    launch: Option<Launch>,
}

/// Whether a request is on MCP 2026-07-28 or later, the sessionless revision (its own `_meta`
/// names the version; otherwise the session's `initialize` did).
pub(crate) fn sessionless(request: &RequestContext<RoleServer>) -> bool {
    request
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// The headers minus the client's credentials for this server.
pub(crate) fn without_credentials(mut headers: http::HeaderMap) -> http::HeaderMap {
    for name in [
        http::header::AUTHORIZATION,
        http::header::PROXY_AUTHORIZATION,
        http::header::COOKIE,
    ] {
        headers.remove(name);
    }
    headers.remove("cf-access-jwt-assertion");
    let protocols: Vec<String> = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with("bearer."))
        .map(str::to_owned)
        .collect();
    if headers
        .remove(http::header::SEC_WEBSOCKET_PROTOCOL)
        .is_some()
        && !protocols.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&protocols.join(", "))
    {
        headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    headers
}

impl Context {
    pub(crate) fn new(
        request: RequestContext<RoleServer>,
        session: Arc<Session>,
        subscriptions: std::sync::Weak<Subscriptions>,
        input: Option<Arc<Round>>,
        launch: Option<Launch>,
    ) -> Self {
        let parts = request.extensions.get::<http::request::Parts>();
        let headers = parts
            .map(|parts| without_credentials(parts.headers.clone()))
            .or_else(|| session.headers.clone());
        let caller = parts
            .and_then(|parts| parts.extensions.get::<Arc<Caller>>().cloned())
            .or_else(|| session.caller.clone());
        let client = parts
            .and_then(|parts| crate::web::client_of(&parts.extensions))
            .or(session.client);
        let sessionless = sessionless(&request);
        let related = request.extensions.get::<RelatedSender>().cloned();
        let client_capabilities = request.client_capabilities();
        Self {
            inner: Arc::new(Inner {
                sessionless,
                client_capabilities,
                log_level: request.meta.log_level(),
                refused: std::sync::Mutex::default(),
                input,
                launch,
                progress_token: request.meta.get_progress_token(),
                peer: request.peer,
                ct: request.ct,
                id: request.id,
                headers,
                caller,
                client,
                session,
                related,
                subscriptions,
            }),
        }
    }

    /// The JSON-RPC id of the request.
    pub fn request_id(&self) -> &RequestId {
        &self.inner.id
    }

    /// True once the client cancelled the request (in a task: the task, with
    /// `tasks/cancel`), or the server is shutting down.
    pub fn is_cancelled(&self) -> bool {
        self.cancel_token().is_cancelled()
    }

    /// Completes when the request (in a task: the task) is cancelled; use it in
    /// `tokio::select!` to stop early.
    pub async fn cancelled(&self) {
        self.cancel_token().cancelled().await;
    }

    fn cancel_token(&self) -> &CancellationToken {
        self.inner
            .launch
            .as_ref()
            .map_or(&self.inner.ct, Launch::cancel_token)
    }

    /// The HTTP request headers (streamable HTTP: this request; WebSocket: the upgrade
    /// request), without the client's credentials: `Authorization`, `Proxy-Authorization`,
    /// `Cookie`, `Cf-Access-Jwt-Assertion` and `bearer.` subprotocols are removed, so a token
    /// meant for this server is never passed on by a tool. `None` over stdio.
    pub fn headers(&self) -> Option<&http::HeaderMap> {
        self.inner.headers.as_ref()
    }

    /// Who is calling, as their verified OAuth or Cloudflare Access token says (streamable
    /// HTTP: this request's token; WebSocket: the upgrade's). `None` over stdio, with static
    /// bearer tokens (`--auth-token-file`), or without authentication.
    ///
    /// ```no_run
    /// use mcp_expose::{tool, Context, ToolError};
    ///
    /// /// Says who you are.
    /// #[tool]
    /// async fn whoami(ctx: Context) -> Result<String, ToolError> {
    ///     let caller = ctx.caller().ok_or("sign in first")?;
    ///     if !caller.has_scope("notes:read") {
    ///         return Err("this tool needs the notes:read scope".into());
    ///     }
    ///     Ok(caller.subject.clone().unwrap_or_default())
    /// }
    /// ```
    pub fn caller(&self) -> Option<&Caller> {
        self.inner.caller.as_deref()
    }

    /// The client's address (streamable HTTP: this request's; WebSocket: the upgrade's): the
    /// peer's, or behind a `--trusted-proxy` the client it names (`Cf-Connecting-IP`, else the
    /// last `X-Forwarded-For` entry), behind `--tunnel` the one Cloudflare's edge names. For
    /// audit logs and per-client policy; `None` over stdio.
    pub fn client_addr(&self) -> Option<std::net::IpAddr> {
        self.inner.client
    }

    /// Sends `notifications/progress` for this request, if the client asked for progress
    /// (sent a progress token); otherwise does nothing.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = self.inner.progress_token.clone() else {
            return;
        };
        let mut params = ProgressNotificationParam::new(token, progress);
        params.total = total;
        params.message = message.map(str::to_owned);
        if let Err(e) = self.inner.peer.notify_progress(params).await {
            tracing::debug!(error = %e, "progress notification not delivered");
        }
    }

    /// The capabilities the client declared: in this request's `_meta` (MCP 2026-07-28) or at
    /// `initialize`. `None` when it declared none (a `--stateless` 2025 request).
    pub fn client_capabilities(&self) -> Option<&ClientCapabilities> {
        self.inner.client_capabilities.as_ref()
    }

    /// Asks the client's model for a completion (`sampling/createMessage`).
    ///
    /// On MCP 2026-07-28, the answer comes from the client's retry of the call: see
    /// [asking the client](Self#asking-the-client-the-same-code-on-every-revision).
    ///
    /// Fails at once, asking nothing, when the client cannot answer: it did not declare the
    /// `sampling` capability ([`ErrorKind::MissingCapability`]; on MCP 2026-07-28 the call is
    /// then answered with a `-32021` error naming it, should the tool return an error), or the
    /// server runs stateless on 2025 (no session for the answer to come back on).
    pub async fn sample(
        &self,
        params: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, Error> {
        let via = self.may_ask(Ask::Sampling)?;
        if !matches!(via, Via::Client) {
            let request = InputRequest::CreateMessage(CreateMessageRequest::new(params));
            return self
                .ask(via, "sampling", None, request, "a sampling result")
                .await;
        }
        let _asking = self.asking();
        #[allow(deprecated)]
        let result = self.inner.peer.create_message(params).await;
        result.map_err(|e| Error::with_source(ErrorKind::Peer, "sampling/createMessage failed", e))
    }

    /// Asks the user for input through the client (`elicitation/create`) with a form whose
    /// fields follow `requested_schema`, a JSON Schema object of primitive properties.
    ///
    /// On MCP 2026-07-28 the answer comes from the client's retry of the call, and fails at
    /// once when the client cannot answer, as [`sample`](Self::sample) does (here the
    /// capability is `elicitation`).
    pub async fn elicit(
        &self,
        message: impl Into<String>,
        requested_schema: serde_json::Value,
    ) -> Result<ElicitResult, Error> {
        self.elicit_keyed(None, message.into(), requested_schema)
            .await
    }

    /// [`elicit`](Self::elicit), under the input-request key `key` on MCP 2026-07-28 (in
    /// place of `elicitation-N`), for clients or tests that expect a given name. Use a key
    /// once per run.
    pub async fn elicit_as(
        &self,
        key: &str,
        message: impl Into<String>,
        requested_schema: serde_json::Value,
    ) -> Result<ElicitResult, Error> {
        self.elicit_keyed(Some(key), message.into(), requested_schema)
            .await
    }

    async fn elicit_keyed(
        &self,
        key: Option<&str>,
        message: String,
        requested_schema: serde_json::Value,
    ) -> Result<ElicitResult, Error> {
        let schema: ElicitationSchema = serde_json::from_value(requested_schema)
            .map_err(|e| Error::with_source(ErrorKind::Config, "invalid elicitation schema", e))?;
        let via = self.may_ask(Ask::Elicitation)?;
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema: schema,
        };
        if !matches!(via, Via::Client) {
            let request = InputRequest::Elicitation(ElicitRequest::new(params));
            return self
                .ask(via, "elicitation", key, request, "an elicitation result")
                .await;
        }
        let _asking = self.asking();
        self.inner
            .peer
            .create_elicitation(params)
            .await
            .map_err(|e| Error::with_source(ErrorKind::Peer, "elicitation/create failed", e))
    }

    /// Asks the client for its roots (`roots/list`): the directories or files it lets the
    /// server work in.
    ///
    /// On MCP 2026-07-28 the answer comes from the client's retry of the call, and fails at
    /// once when the client cannot answer, as [`sample`](Self::sample) does (here the
    /// capability is `roots`).
    pub async fn list_roots(&self) -> Result<ListRootsResult, Error> {
        let via = self.may_ask(Ask::Roots)?;
        if !matches!(via, Via::Client) {
            let request = InputRequest::ListRoots(Default::default());
            return self
                .ask(via, "roots", None, request, "a roots/list result")
                .await;
        }
        let _asking = self.asking();
        self.inner
            .peer
            .list_roots()
            .await
            .map_err(|e| Error::with_source(ErrorKind::Peer, "roots/list failed", e))
    }

    /// Tells every client subscribed to `uri` that the resource changed
    /// (`notifications/resources/updated`).
    pub async fn notify_resource_updated(&self, uri: &str) {
        if let Some(subscriptions) = self.inner.subscriptions.upgrade() {
            subscriptions.notify_resource_updated(uri).await;
        }
    }

    /// Marks this call's session as waiting for the client's answer while it is kept, so
    /// that another replica that gets the answer hands it on here.
    fn asking(&self) -> crate::session::Asking {
        let session = self
            .inner
            .headers
            .as_ref()
            .and_then(|h| h.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok());
        crate::session::Asking::start(session)
    }

    /// The rmcp peer, for requests this type does not wrap.
    pub fn peer(&self) -> &Peer<RoleServer> {
        &self.inner.peer
    }

    /// Whether the client can be sent `ask` and answer it, and how: a request, the round of
    /// an input-required result (MCP 2026-07-28) or the task; if not, why, as the tool's error.
    fn may_ask(&self, ask: Ask) -> Result<Via<'_>, Error> {
        let inner = &self.inner;
        let declared = inner.client_capabilities.as_ref().map(|caps| match ask {
            Ask::Sampling => caps.sampling.is_some(),
            Ask::Elicitation => caps.elicitation.is_some(),
            Ask::Roots => caps.roots.is_some(),
        });
        let (capability, method) = ask.names();
        // A stateless 2025 request has no capabilities to go by (there was no `initialize`).
        let missing = if inner.sessionless {
            declared != Some(true)
        } else {
            !inner.session.stateless && declared == Some(false)
        };
        if missing {
            let required = serde_json::json!({ capability: {} });
            *inner.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                serde_json::from_value(required).ok();
            let message =
                format!("the client did not declare the `{capability}` capability ({method})");
            return Err(Error::new(ErrorKind::MissingCapability, message));
        }
        if let Some(task) = self.running() {
            return Ok(Via::Task(task));
        }
        if inner.sessionless {
            if let Some(round) = &inner.input {
                return Ok(Via::Round(round));
            }
            let message = format!(
                "cannot send {method}: MCP 2026-07-28 has no requests from server to client"
            );
            return Err(Error::new(ErrorKind::Peer, message)
                .hint("only tools/call and prompts/get are answered with input-required results"));
        }
        if inner.session.stateless {
            let message = format!(
                "cannot send {method}: the server runs stateless, so the client's answer could not reach it"
            );
            return Err(Error::new(ErrorKind::Peer, message)
                .hint("serve with sessions (without --stateless) for tools that ask the client"));
        }
        Ok(Via::Client)
    }

    /// How a 2026-07-28 call ends when its tool asked the client something without an answer.
    pub(crate) fn input_outcome(
        &self,
    ) -> Option<Result<rmcp::model::InputRequiredResult, rmcp::model::ErrorData>> {
        self.inner.input.as_ref()?.outcome()
    }

    /// The capability the client lacked for a request this tool wanted to make, on MCP
    /// 2026-07-28 (the call is then answered `-32021`, naming it).
    pub(crate) fn refused_capability(&self) -> Option<ClientCapabilities> {
        if !self.inner.sessionless {
            return None;
        }
        self.inner
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// How a request to the client is made.
enum Via<'a> {
    /// As a request to the client (MCP 2025-xx sessions).
    Client,
    /// Through the round of an input-required result (MCP 2026-07-28).
    Round(&'a Round),
    /// On the task the call became.
    Task(&'a crate::task::run::Running),
}

/// A request to the client.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Sampling,
    Elicitation,
    Roots,
}

impl Ask {
    /// The capability it needs and its method.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Ask::Sampling => ("sampling", "sampling/createMessage"),
            Ask::Elicitation => ("elicitation", "elicitation/create"),
            Ask::Roots => ("roots", "roots/list"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_and_the_rest_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "authorization",
            http::HeaderValue::from_static("Bearer secret"),
        );
        headers.insert(
            "cookie",
            http::HeaderValue::from_static("CF_Authorization=secret"),
        );
        headers.insert(
            "cf-access-jwt-assertion",
            http::HeaderValue::from_static("secret"),
        );
        headers.insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static("mcp, bearer.secret"),
        );
        headers.insert("x-test", http::HeaderValue::from_static("kept"));
        let clean = without_credentials(headers);
        assert!(!format!("{clean:?}").contains("secret"), "{clean:?}");
        assert_eq!(clean["x-test"], "kept");
        assert_eq!(clean["sec-websocket-protocol"], "mcp");
    }
}
