#![allow(deprecated)] // logging and sampling are deprecated by the 2026-07-28 revision; older clients use them
//! The rmcp `ServerHandler` over the registry: the one place that answers MCP requests, for
//! every transport.

use crate::observe::metrics::{Outcome, TransportKind};
use std::{panic::AssertUnwindSafe, sync::Arc};

use futures::FutureExt as _;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        CompletionInfo, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ReadResourceResult, Reference, ServerCapabilities, ServerConfig, SetLevelRequestParams,
        SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};

use crate::{
    Context,
    context::input::Round,
    registry::Registry,
    session::Session,
    state::{Identity, Limits, ServerState},
    tool::error_result,
};

/// The MCP handler of one session. Cheap to clone and to create per session.
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    state: Arc<ServerState>,
    session: Arc<Session>,
}

impl Handler {
    pub(crate) fn new(
        registry: Registry,
        identity: Identity,
        limits: Limits,
        sealer: crate::context::input::Sealer,
    ) -> Self {
        let capabilities = capabilities(&registry);
        Self {
            state: Arc::new(ServerState::new(
                registry,
                identity,
                capabilities,
                limits,
                sealer,
            )),
            session: Arc::new(Session::new(TransportKind::None, None, None, None, None)),
        }
    }

    /// A handler for a new session (its own log level and subscriptions); a WebSocket's comes
    /// with its upgrade's headers, caller and client address.
    pub(crate) fn session(
        &self,
        transport: TransportKind,
        headers: Option<http::HeaderMap>,
        caller: Option<Arc<crate::session::Caller>>,
        client: Option<std::net::IpAddr>,
    ) -> Self {
        Self {
            state: self.state.clone(),
            session: Arc::new(Session::new(
                transport,
                headers.map(crate::context::without_credentials),
                caller,
                client,
                Some(self.state.sessions.open()),
            )),
        }
    }

    /// A handler for one HTTP request served without a session (`--stateless`).
    pub(crate) fn stateless_session(&self, transport: TransportKind) -> Self {
        let mut session = Session::new(
            transport,
            None,
            None,
            None,
            Some(self.state.sessions.open()),
        );
        session.stateless = true;
        Self {
            state: self.state.clone(),
            session: Arc::new(session),
        }
    }

    /// The caller this session's token named (WebSocket).
    pub(crate) fn caller(&self) -> Option<Arc<crate::session::Caller>> {
        self.session.caller.clone()
    }

    pub(crate) fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Counts a request in `mcp_requests_total` (tools/call is counted with its outcome).
    fn count(&self, method: &'static str) {
        crate::observe::metrics::request(self.session.transport, method);
    }

    fn context(&self, request: RequestContext<RoleServer>, input: Option<Arc<Round>>) -> Context {
        Context::new(
            request,
            self.session.clone(),
            Arc::downgrade(&self.state.subscriptions),
            input,
        )
    }

    /// Runs a tool call; also says how it ended, for metrics and the log.
    async fn run_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> (Result<CallToolResponse, ErrorData>, Outcome) {
        let Some(tool) = self.state.registry.tool(&request.name) else {
            let error = ErrorData::invalid_params(format!("unknown tool: {}", request.name), None);
            return (Err(error), Outcome::Unknown);
        };
        let handler = tool.handler.clone();
        let _slot = match self.state.admit(&self.session) {
            Ok(slot) => slot,
            Err(message) => {
                let busy = rmcp::model::ErrorCode(crate::jsonrpc::SERVER_UNAVAILABLE);
                let error = ErrorData::new(busy, message, None);
                return (Err(error), Outcome::Refused);
            }
        };
        let args = request.arguments.take().unwrap_or_default();
        let sealer = &self.state.sealer;
        let caller = self.session.caller.as_deref();
        let input = match Round::for_call(sealer, &mut request, &context, &args, caller) {
            Ok(input) => input,
            Err(error) => return (Err(error), Outcome::Error),
        };
        let cancelled = context.ct.clone();
        let ctx = self.context(context, input);
        let probe = ctx.clone();
        // The tool runs in this task (not spawned) so that requests it sends to the client
        // travel on this call's response stream.
        let call = AssertUnwindSafe(handler(ctx, args)).catch_unwind();
        // A cancelled request (notifications/cancelled, or its client gone) drops the tool's
        // future: the tool stops at its next await.
        let call = async {
            tokio::select! {
                outcome = call => Some(outcome),
                () = cancelled.cancelled() => None,
            }
        };
        let call = async {
            match call.await {
                Some(outcome) => outcome,
                None => Ok(error_result(&format_args!(
                    "tool `{}` was cancelled",
                    request.name
                ))),
            }
        };
        let outcome = match self.state.limits.tool_timeout {
            Some(limit) => match tokio::time::timeout(limit, call).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::warn!(tool = %request.name, "tool call timed out after {limit:?}; cancelled");
                    let message = format!(
                        "tool `{}` timed out after {} s and was cancelled",
                        request.name,
                        limit.as_secs_f64()
                    );
                    return (
                        Ok(CallToolResponse::Complete(error_result(&message))),
                        Outcome::Timeout,
                    );
                }
            },
            None => call.await,
        };
        // MCP 2026-07-28: a run that asked the client something without an answer ends with
        // the requests listed (whatever the tool returned), or with the invalid answer's error.
        if outcome.is_ok()
            && !cancelled.is_cancelled()
            && let Some(input) = probe.input_outcome()
        {
            return match input {
                Ok(result) => (Ok(CallToolResponse::InputRequired(result)), Outcome::Ok),
                Err(error) => (Err(error), Outcome::Error),
            };
        }
        let (result, how) = match outcome {
            Ok(result) if cancelled.is_cancelled() => (result, Outcome::Cancelled),
            Ok(result) if result.is_error == Some(true) => {
                // MCP 2026-07-28: a call that needed a capability the client did not declare
                // is answered with the error that names it, not with the tool's text.
                if let Some(required) = probe.refused_capability() {
                    let error = ErrorData::missing_required_client_capability(required);
                    return (Err(error), Outcome::Error);
                }
                (result, Outcome::Error)
            }
            Ok(result) => (result, Outcome::Ok),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(tool = %request.name, panic = %message, "tool panicked");
                (
                    error_result(&format_args!("tool `{}` panicked: {message}", request.name)),
                    Outcome::Panic,
                )
            }
        };
        (Ok(CallToolResponse::Complete(result)), how)
    }
}

fn capabilities(registry: &Registry) -> ServerCapabilities {
    let mut caps = serde_json::json!({ "logging": {}, "completions": {} });
    if !registry.tools.is_empty() {
        caps["tools"] = serde_json::json!({ "listChanged": false });
    }
    if !registry.resources.is_empty() {
        caps["resources"] = serde_json::json!({ "subscribe": true, "listChanged": false });
    }
    if !registry.prompts.is_empty() {
        caps["prompts"] = serde_json::json!({ "listChanged": false });
    }
    serde_json::from_value(caps).unwrap_or_default()
}

impl ServerHandler for Handler {
    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, ErrorData> {
        self.count("initialize");
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn ping(&self, _: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.count("ping");
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        let identity = &self.state.identity;
        let mut implementation =
            Implementation::new(identity.name.clone(), identity.version.clone());
        implementation.title = identity.title.clone();
        implementation.description = identity.description.clone();
        let mut config = ServerConfig::new(self.state.capabilities.clone());
        config.server_info = implementation;
        config.instructions = identity.instructions.clone();
        config
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.count("tools/list");
        let tools = self
            .state
            .registry
            .tools
            .iter()
            .map(|t| t.tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.state.registry.tool(name).map(|t| t.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        let name = request.name.to_string();
        let transport = self.session.transport;
        crate::observe::metrics::request(transport, "tools/call");
        // Who called, for the debug event: looked up only when it is logged.
        let client = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| {
                context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| crate::web::client_of(&parts.extensions))
                    .or(self.session.client)
            })
            .flatten();
        let (response, outcome) = self.run_tool(request, context).await;
        let seconds = started.elapsed().as_secs_f64();
        crate::observe::metrics::tool_call(&name, transport, outcome, seconds);
        if outcome == Outcome::Refused {
            crate::observe::metrics::rejected("limit");
        }
        tracing::debug!(tool = %name, transport = transport.label(), client = client.map(tracing::field::display), outcome = outcome.label(), duration_ms = seconds * 1000.0, "tool call");
        response
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.count("resources/list");
        let resources = self
            .state
            .registry
            .resources
            .iter()
            .filter(|r| !r.is_template())
            .map(|r| r.meta());
        Ok(ListResourcesResult::with_all_items(resources.collect()))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.count("resources/templates/list");
        let templates = self
            .state
            .registry
            .resources
            .iter()
            .filter(|r| r.is_template())
            .map(|r| r.template_meta());
        Ok(ListResourceTemplatesResult::with_all_items(
            templates.collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.count("resources/read");
        let Some((resource, vars)) = self.state.registry.resource(&request.uri) else {
            return Err(ErrorData::resource_not_found(
                format!("resource not found: {}", request.uri),
                Some(serde_json::json!({ "uri": request.uri })),
            ));
        };
        let read = resource.read.clone();
        let contents =
            match AssertUnwindSafe(read(self.context(context, None), request.uri.clone(), vars))
                .catch_unwind()
                .await
            {
                Ok(contents) => contents?,
                Err(panic) => {
                    let message = format!(
                        "resource {} panicked: {}",
                        request.uri,
                        panic_message(panic.as_ref())
                    );
                    tracing::error!("{message}");
                    return Err(ErrorData::internal_error(message, None));
                }
            };
        Ok(ReadResourceResponse::Complete(ReadResourceResult::new(
            contents,
        )))
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.count("resources/subscribe");
        if self.state.registry.resource(&request.uri).is_none() {
            return Err(ErrorData::resource_not_found(
                format!("resource not found: {}", request.uri),
                None,
            ));
        }
        self.state
            .subscribe(&self.session, request.uri, context.peer);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.count("resources/unsubscribe");
        self.session.unsubscribe(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.count("prompts/list");
        let prompts = self
            .state
            .registry
            .prompts
            .iter()
            .map(|p| p.prompt.clone())
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.count("prompts/get");
        let Some(prompt) = self.state.registry.prompt(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt: {}", request.name),
                None,
            ));
        };
        let get = prompt.get.clone();
        let description = prompt.prompt.description.clone();
        let args = request.arguments.take().unwrap_or_default();
        let caller = self.session.caller.as_deref();
        let input = Round::for_call(&self.state.sealer, &mut request, &context, &args, caller)?;
        let ctx = self.context(context, input);
        let probe = ctx.clone();
        let messages = match AssertUnwindSafe(get(ctx, args)).catch_unwind().await {
            Ok(messages) => match probe.input_outcome() {
                Some(input) => return input.map(GetPromptResponse::InputRequired),
                None => messages?,
            },
            Err(panic) => {
                let message = format!(
                    "prompt {} panicked: {}",
                    request.name,
                    panic_message(panic.as_ref())
                );
                return Err(ErrorData::internal_error(message, None));
            }
        };
        let mut result = GetPromptResult::new(messages);
        result.description = description;
        Ok(GetPromptResponse::Complete(result))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.count("completion/complete");
        let values = match &request.r#ref {
            Reference::Prompt(reference) => self
                .state
                .registry
                .prompt(&reference.name)
                .and_then(|p| p.complete.as_ref())
                .map(|complete| complete(&request.argument.name, &request.argument.value))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let total = values.len();
        let mut values = values;
        values.truncate(CompletionInfo::MAX_VALUES);
        let mut info =
            CompletionInfo::new(values).map_err(|e| ErrorData::internal_error(e, None))?;
        info.total = u32::try_from(total).ok();
        info.has_more = Some(total > CompletionInfo::MAX_VALUES);
        Ok(CompleteResult::new(info))
    }

    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, ErrorData> {
        self.count("other");
        if crate::context::sessionless(&context)
            && REMOVED_METHODS.contains(&request.method.as_str())
        {
            return Err(removed(&request.method));
        }
        // rmcp turns a known method whose params it cannot read into a custom request.
        if KNOWN_METHODS.contains(&request.method.as_str()) {
            let message = format!("Invalid params for `{}`", request.method);
            return Err(ErrorData::invalid_params(message, request.params));
        }
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {}", request.method),
            None,
        ))
    }

    /// `subscriptions/listen` (MCP 2026-07-28): updates of the resources it names that exist.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris = requested.resource_subscriptions.iter().flatten();
        let known = uris.filter(|uri| self.state.registry.resource(uri).is_some());
        Some(
            SubscriptionFilter::builder()
                .resource_subscriptions(known.cloned())
                .build(),
        )
    }

    /// Holds a `subscriptions/listen` stream open, sending it the updates it accepted, until
    /// the client closes it.
    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        self.count("subscriptions/listen");
        let _listening = self.state.subscriptions.listen(subscription.sink().clone());
        subscription.cancelled().await;
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.count("logging/setLevel");
        if crate::context::sessionless(&context) {
            return Err(removed("logging/setLevel"));
        }
        self.session.set_log_level(request.level);
        Ok(())
    }
}

/// Methods MCP 2026-07-28 removed (it has no session to initialize, ping, set a log level on or
/// subscribe in). rmcp refuses the well-formed ones it knows to be removed; these are refused
/// whatever their params (rmcp hands a request whose params it cannot read to
/// `on_custom_request`).
const REMOVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// A removed method's answer: -32601, which rmcp sends with HTTP 404 on 2026-07-28.
fn removed(method: &str) -> ErrorData {
    ErrorData::new(
        rmcp::model::ErrorCode::METHOD_NOT_FOUND,
        format!("Method not found: {method} (removed in MCP 2026-07-28)"),
        None,
    )
}

/// Methods rmcp parses into typed requests.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
    "server/discover",
    "subscriptions/listen",
];

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
