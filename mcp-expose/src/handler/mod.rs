#![allow(deprecated)] // logging and sampling are deprecated by the 2026-07-28 revision; older clients use them
//! The rmcp `ServerHandler` over the registry: the one place that answers MCP requests, for
//! every transport.

mod call;
mod tasks;

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
    context::{Launch, input::Round},
    registry::Registry,
    session::{Caller, Session},
    state::{Identity, Limits, ServerState},
    task::{TaskSupport, run::Tasks},
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
        tasks: Arc<Tasks>,
    ) -> Self {
        let capabilities = capabilities(&registry);
        Self {
            state: Arc::new(ServerState::new(
                registry,
                identity,
                capabilities,
                limits,
                sealer,
                tasks,
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

    fn context(
        &self,
        request: RequestContext<RoleServer>,
        input: Option<Arc<Round>>,
        launch: Option<Launch>,
    ) -> Context {
        Context::new(
            request,
            self.session.clone(),
            Arc::downgrade(&self.state.subscriptions),
            input,
            launch,
        )
    }
}

/// Whom a request is from, as its token (or its session's) names them: the owner of the
/// tasks it creates, the one an input-required state is bound to.
fn owner<'a>(context: &'a RequestContext<RoleServer>, session: &'a Session) -> Option<&'a str> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<Caller>>())
        .map(|caller| &**caller)
        .or(session.caller.as_deref())
        .and_then(|caller| caller.subject.as_deref())
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
    if registry
        .tools
        .iter()
        .any(|t| t.tasks.0 != TaskSupport::Never)
    {
        let tasks = rmcp::model::TASKS_EXTENSION_ID;
        caps["extensions"] = serde_json::json!({ tasks: {} });
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
        if self
            .state
            .latest_only
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(removed("initialize"));
        }
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
        let contents = match AssertUnwindSafe(read(
            self.context(context, None, None),
            request.uri.clone(),
            vars,
        ))
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
        let caller = owner(&context, &self.session).map(str::to_owned);
        let input = Round::for_call(
            &self.state.sealer,
            &mut request,
            &context,
            &args,
            caller.as_deref(),
        )?;
        let ctx = self.context(context, input, None);
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

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        self.task_get(request, context).await
    }

    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_update(request, context).await
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_cancel(request, context).await
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
