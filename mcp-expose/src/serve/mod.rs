//! [`Server`]: the builder, and `serve()` over stdio, streamable HTTP and WebSocket.

mod accept;
mod app;
mod console;
pub(crate) mod nginx;
mod options;
mod routes;
mod run;
#[cfg(feature = "tunnel")]
mod tunneling;
#[cfg(not(feature = "tunnel"))]
#[path = "no_tunnel.rs"]
mod tunneling;
mod unread;

use std::net::IpAddr;

pub use options::{LogFormat, Options, Revisions};
pub use run::Running;

use crate::{
    error::{Error, ErrorKind, Result},
    handler::Handler,
    prompt::PromptDef,
    registry::Registry,
    resource::ResourceDef,
    state::{Identity, Limits},
    tool::ToolDef,
};

/// An MCP server: its identity, its tools/resources/prompts, and how to serve them.
///
/// By default it holds every `#[tool]`, `#[resource]` and `#[prompt]` linked into the binary
/// (collected at link time); [`without_collected`](Self::without_collected) starts empty for
/// explicit registration.
///
/// ```no_run
/// use mcp_expose::{tool, ToolError};
///
/// /// Fraction of G and C bases in a DNA sequence.
/// #[tool]
/// fn gc_content(seq: String) -> Result<f64, ToolError> {
///     let gc = seq.bytes().filter(|b| matches!(b, b'G' | b'C')).count();
///     Ok(gc as f64 / seq.len().max(1) as f64)
/// }
///
/// #[tokio::main]
/// async fn main() -> mcp_expose::Result<()> {
///     mcp_expose::server!().serve().await // reads --stdio, --http PORT, --ws PORT, ...
/// }
/// ```
#[derive(Debug)]
#[must_use = "a Server does nothing until `.serve()`, `.start()` or `.serve_stream()`"]
pub struct Server {
    identity: Identity,
    collected: bool,
    tools: Vec<ToolDef>,
    resources: Vec<ResourceDef>,
    prompts: Vec<PromptDef>,
    options: Options,
    tunnel: Option<tunneling::TunnelConfig>,
    task_store: Option<std::sync::Arc<dyn crate::task::TaskStore>>,
}

impl Server {
    /// A server with this name and version (shown to clients in `initialize`). The
    /// [`server!`](crate::server) macro fills them in from the calling crate.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            identity: Identity {
                name: name.into(),
                version: version.into(),
                title: None,
                description: None,
                instructions: None,
            },
            collected: true,
            tools: Vec::new(),
            resources: Vec::new(),
            prompts: Vec::new(),
            task_store: None,
            options: Options::default(),
            tunnel: None,
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.identity.title = Some(title.into());
        self
    }

    /// A description of the server.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.identity.description = Some(description.into());
        self
    }

    /// Instructions for the model on how to use the server.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.identity.instructions = Some(instructions.into());
        self
    }

    /// Leaves out the items collected from `#[tool]`, `#[resource]` and `#[prompt]`: only those
    /// added explicitly are served.
    pub fn without_collected(mut self) -> Self {
        self.collected = false;
        self
    }

    /// Adds a tool (replacing a collected one of the same name).
    pub fn tool(mut self, tool: ToolDef) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds several tools, for example `tools![gc_content, translate]`.
    pub fn tools(mut self, tools: impl IntoIterator<Item = ToolDef>) -> Self {
        self.tools.extend(tools);
        self
    }

    /// Adds a resource or resource template.
    pub fn resource(mut self, resource: ResourceDef) -> Self {
        self.resources.push(resource);
        self
    }

    /// Adds a prompt.
    pub fn prompt(mut self, prompt: PromptDef) -> Self {
        self.prompts.push(prompt);
        self
    }

    /// Serve over stdio (besides any network transport).
    pub fn stdio(mut self) -> Self {
        self.options.stdio = true;
        self
    }

    /// Serve streamable HTTP on `port` (0: any free port; see [`Running::http_addr`]).
    pub fn http(mut self, port: u16) -> Self {
        self.options.http = Some(port);
        self
    }

    /// Serve WebSocket on `port` (the same port as [`http`](Self::http) shares one listener).
    pub fn ws(mut self, port: u16) -> Self {
        self.options.ws = Some(port);
        self
    }

    /// The address to bind (default 127.0.0.1).
    pub fn bind(mut self, addr: IpAddr) -> Self {
        self.options.bind = addr;
        self
    }

    /// Accept this host in the Host header (besides loopback names).
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.options.allowed_hosts.push(host.into());
        self
    }

    /// Streamable HTTP without sessions.
    pub fn stateless(mut self, stateless: bool) -> Self {
        self.options.stateless = stateless;
        self
    }

    /// The MCP revisions to speak ([`Revisions::Latest`]: 2026-07-28 alone).
    pub fn protocol(mut self, revisions: Revisions) -> Self {
        self.options.protocol = revisions;
        self
    }

    /// Largest accepted message, in bytes.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.options.max_message_size = bytes;
        self
    }

    /// Exposes the server through a Cloudflare tunnel (feature `tunnel`); the handle is
    /// [`Running::tunnel`]. Without `http`/`ws`, HTTP and WebSocket are served on one free port.
    #[cfg(feature = "tunnel")]
    pub fn tunnel(mut self, config: crate::tunnel::TunnelConfig) -> Self {
        self.tunnel = Some(config);
        self
    }

    /// Cancels tool calls running longer than `limit`, answering with an error.
    pub fn tool_timeout(mut self, limit: std::time::Duration) -> Self {
        self.options.tool_timeout = Some(limit);
        self
    }

    /// Shares state with the other replicas of this server through Redis (`--state`,
    /// `redis://HOST:PORT/DB`): sessions and their event streams, clients' answers, tasks,
    /// resource updates, rate limits and failed token checks. Replicas behind one load
    /// balancer need it, and the same [`state_key_file`](Self::state_key_file).
    #[cfg(feature = "redis")]
    pub fn state(mut self, url: impl Into<String>) -> Self {
        self.options.state = Some(url.into());
        self
    }

    /// Signs the `requestState` of input-required results (MCP 2026-07-28) with the key in
    /// `path` (at least 32 bytes), so that replicas sharing it can continue each other's calls;
    /// by default each process draws a random key.
    pub fn state_key_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.options.state_key_file = Some(path.into());
        self
    }

    /// How long the `requestState` of an input-required result is accepted (default 10 min).
    pub fn input_state_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.options.input_state_ttl = ttl;
        self
    }

    /// How long a task (of a tool declared with `#[tool(task = ..)]`) is kept after it was
    /// created, and the longest its tool may run (default 1 h).
    pub fn task_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.options.task_ttl = ttl;
        self
    }

    /// Where tasks are kept (default: [`MemoryTaskStore`](crate::task::MemoryTaskStore)).
    pub fn task_store(mut self, store: impl crate::task::TaskStore) -> Self {
        self.task_store = Some(std::sync::Arc::new(store));
        self
    }

    /// Tool calls in flight allowed per session and in total; more are refused with an error.
    pub fn max_inflight(mut self, per_session: usize, total: usize) -> Self {
        self.options.max_inflight_per_session = per_session;
        self.options.max_inflight = total;
        self
    }

    /// Replaces all serving options at once.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Reads the command line and environment (`--stdio`, `--http PORT`, `--ws PORT`,
    /// `--bind ADDR`, ...; `--help` lists them), logs to stderr, serves until SIGINT/SIGTERM
    /// (or, with stdio alone, until stdin ends), then shuts down gracefully.
    pub async fn serve(self) -> Result<()> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let about = self.identity.description.clone().unwrap_or_else(|| {
            format!(
                "{}: an MCP server. Serves over stdio by default (for a local client such as \
                 Claude Desktop); --http PORT and --ws PORT serve streamable HTTP at /mcp and \
                 WebSocket at /ws.",
                self.identity.name
            )
        });
        let command = options::Cli::command()
            .name(self.identity.name.clone())
            .version(self.identity.version.clone())
            .about(about);
        let matches = command.get_matches();
        let cli = options::Cli::from_arg_matches(&matches)
            .map_err(|e| Error::with_source(ErrorKind::Config, "invalid command line", e))?;
        if cli.nginx.print_nginx_config {
            let shared = shared_redis(cli.options.state.as_deref(), &self.identity.name)?.is_some();
            let balance = if shared {
                nginx::Balance::Shared
            } else {
                nginx::Balance::ByClient
            };
            let text = nginx::config(
                &self.identity.name,
                &cli.nginx.replicas,
                &cli.nginx.nginx_listen,
                balance,
            )?;
            return crate::flags::print(&text);
        }
        if let Some(printed) = tunneling::print_requested(&cli.options, &self.identity.name) {
            return printed;
        }
        self.options(cli.options).serve_with_signals().await
    }

    /// Like [`serve`](Self::serve), with the options set on this builder instead of the
    /// command line.
    pub async fn serve_with_signals(self) -> Result<()> {
        console::init_tracing(&self.options.log_level, self.options.log_format);
        let signals = Signals::install();
        let running = self.start().await?;
        Self::until_signal(running, signals).await
    }

    /// Serves mounted servers (their routes, under their path prefixes, instead of this
    /// server's own) until a signal.
    #[cfg_attr(not(feature = "bridge"), allow(dead_code))]
    pub(crate) async fn serve_mounts(self, mounts: Vec<crate::mount::Mount>) -> Result<()> {
        console::init_tracing(&self.options.log_level, self.options.log_format);
        let signals = Signals::install();
        let running = self.start_inner(mounts).await?;
        Self::until_signal(running, signals).await
    }

    async fn until_signal(running: Running, mut signals: Signals) -> Result<()> {
        tokio::select! {
            signal = signals.recv() => tracing::info!(%signal, "shutting down"),
            () = running.finished() => tracing::debug!("all transports ended"),
        }
        let fatal = running.take_fatal();
        running.shutdown().await;
        fatal.map_or(Ok(()), Err)
    }

    /// Binds every transport and starts serving; returns at once with a handle that knows the
    /// bound addresses. Does not read the command line or install signal handlers.
    pub async fn start(self) -> Result<Running> {
        self.start_inner(Vec::new()).await
    }

    async fn start_inner(self, mounts: Vec<crate::mount::Mount>) -> Result<Running> {
        let mut this = self;
        let tunnel = tunneling::Tunneling::new(this.tunnel.take(), &this.options)?;
        let (tools, resources) = tunnel.definitions(&this.options);
        this.tools.extend(tools);
        this.resources.extend(resources);
        let (handler, options) = this.into_handler()?;
        run::start(handler, options, tunnel, mounts).await
    }

    /// Serves one session over any byte stream pair with newline-delimited JSON-RPC (the stdio
    /// framing), until `input` ends. For embedding, pipes, and in-memory tests.
    pub async fn serve_stream<R, W>(self, input: R, output: W)
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (handler, options) = match self.into_handler() {
            Ok(built) => built,
            Err(error) => {
                tracing::error!("{error:#}");
                return;
            }
        };
        let ct = tokio_util::sync::CancellationToken::new();
        crate::transport::stdio::serve(handler, input, output, options.max_message_size, ct).await;
    }

    fn into_handler(self) -> Result<(Handler, Options)> {
        let ttl = self.options.input_state_ttl;
        let sealer = match &self.options.state_key_file {
            Some(path) => crate::context::input::Sealer::from_file(path, ttl)?,
            None => crate::context::input::Sealer::random(ttl),
        };
        let store = match self.task_store {
            Some(store) => store,
            None => task_store(self.options.state.as_deref(), &self.identity.name)?,
        };
        let tasks = crate::task::run::Tasks::new(store, self.options.task_ttl);
        let mut registry = if self.collected {
            Registry::collected()
        } else {
            Registry::default()
        };
        for tool in self.tools {
            registry.add_tool(tool);
        }
        for resource in self.resources {
            registry.add_resource(resource);
        }
        for prompt in self.prompts {
            registry.add_prompt(prompt);
        }
        let limits = Limits {
            per_session: self.options.max_inflight_per_session.max(1),
            total: self.options.max_inflight.max(1),
            // `--tool-timeout 0` meant never, as it did when it counted seconds.
            tool_timeout: self.options.tool_timeout.filter(|limit| !limit.is_zero()),
        };
        Ok((
            Handler::new(registry, self.identity, limits, sealer, tasks),
            self.options,
        ))
    }
}

/// The task store `--state` names (`redis://..`, `memory`, or nothing: memory), its keys
/// under the server's name.
fn task_store(
    state: Option<&str>,
    name: &str,
) -> Result<std::sync::Arc<dyn crate::task::TaskStore>> {
    #[cfg(feature = "redis")]
    if let Some(redis) = shared_redis(state, name)? {
        return Ok(std::sync::Arc::new(crate::task::RedisTaskStore::on(redis)));
    }
    #[cfg(not(feature = "redis"))]
    shared_redis(state, name)?;
    Ok(std::sync::Arc::new(crate::task::MemoryTaskStore::default()))
}

/// The Redis `--state` names, its keys under `mcp-expose:NAME:`; `None` for `memory` (or
/// nothing).
#[cfg(feature = "redis")]
pub(crate) fn shared_redis(state: Option<&str>, name: &str) -> Result<Option<crate::store::Redis>> {
    use crate::error::{Error, ErrorKind};
    match state_kind(state)? {
        None => Ok(None),
        Some(url) => crate::store::Redis::new(url, format!("mcp-expose:{name}:"))
            .map(Some)
            .map_err(|e| Error::with_source(ErrorKind::Config, "invalid --state", e)),
    }
}

/// Without Redis support: `memory` (or nothing), else an error saying how to get it.
#[cfg(not(feature = "redis"))]
pub(crate) fn shared_redis(state: Option<&str>, _name: &str) -> Result<Option<()>> {
    use crate::error::{Error, ErrorKind};
    match state_kind(state)? {
        None => Ok(None),
        Some(url) => Err(Error::new(
            ErrorKind::Config,
            format!("--state {url} needs Redis support, which this build lacks"),
        )
        .hint("build with the `redis` feature (cargo build --features redis)")),
    }
}

/// The Redis URL `--state` names, or `None` for `memory` (or nothing).
fn state_kind(state: Option<&str>) -> Result<Option<&str>> {
    use crate::error::{Error, ErrorKind};
    match state {
        None | Some("memory") => Ok(None),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Some(url)),
        Some(other) => Err(Error::new(
            ErrorKind::Config,
            format!("--state `{other}` is neither `memory` nor a redis:// URL"),
        )
        .hint("e.g. --state redis://127.0.0.1:6379/0")),
    }
}

/// SIGINT and SIGTERM handlers, installed before anything is served so that a signal that
/// arrives right after the listeners are announced still shuts down gracefully.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = next(&mut self.interrupt) => "SIGINT",
                () = next(&mut self.terminate) => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
