//! `mcp-expose bridge -- CMD ARGS...`: one stdio MCP server on the network.

use std::{path::PathBuf, sync::Arc, time::Duration};

use crate::{
    bridge::{self, Bridge, ChildModel, ChildSpec},
    error::{Error, ErrorKind, Result},
    serve::Options,
};

/// `bridge` options.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("stdio", |a| a.hide(true)),
    mut_arg("state", |a| a.help("Where replicas share their --rate-limit and --max-auth-failures counts: `redis://HOST:PORT/DB` (build with the `redis` feature), or `memory` [default: memory, this process only]. Sessions stay with the process that runs their child: see --replica-id")),
)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// Serving options (--http, --ws, --bind, --tunnel, auth, ...).
    #[command(flatten)]
    pub serve: Options,

    /// `per-session`: each remote session gets its own child (isolated state; the default).
    /// `shared`: one child for everyone (cheaper; for stateless servers).
    #[arg(long = "child", value_enum, default_value_t = ChildModel::PerSession)]
    pub child_model: ChildModel,

    /// An environment variable for the child, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// The child's working directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// The server's name in client configs, `/health` and the landing page [default: the
    /// program's file name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// End HTTP sessions (and their children) idle this long (seconds, or a unit: 90s, 10m).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::flags::duration)]
    pub idle_timeout: Duration,

    /// Answer a request (`initialize` included) with an error when the child has not answered
    /// it within this time (seconds, or a unit).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::flags::duration)]
    pub request_timeout: Duration,

    /// This replica's id, which starts every session id it makes, so that nginx in front of
    /// several bridges sends a session's requests to the bridge that runs its child (see
    /// --print-nginx-config) [default: the --http port].
    #[arg(long, value_name = "ID", env = "MCP_EXPOSE_REPLICA_ID")]
    pub replica_id: Option<String>,

    #[command(flatten)]
    pub(crate) nginx: crate::serve::nginx::NginxFlags,

    /// The stdio MCP server to run, after `--`: `mcp-expose bridge --http 8000 -- CMD ARGS...`.
    #[arg(
        last = true,
        required_unless_present = "print_nginx_config",
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// The replica id that starts the session ids of a bridge serving HTTP on `http`: `given`
/// (checked), else the port.
pub(crate) fn replica_id(given: Option<String>, http: Option<u16>) -> Result<Option<String>> {
    match given {
        Some(id) if !crate::serve::nginx::valid_replica_id(&id) => Err(Error::new(
            ErrorKind::Config,
            format!("--replica-id `{id}` may only have letters, digits, - and _ (32 at most)"),
        )),
        Some(id) => Ok(Some(id)),
        None => Ok(http.filter(|port| *port != 0).map(|port| port.to_string())),
    }
}

/// The bridged program's file name, for the server's name.
fn program_name(command: &[String]) -> String {
    let program = command.first().map_or("bridge", String::as_str);
    std::path::Path::new(program)
        .file_stem()
        .map_or_else(|| program.to_owned(), |s| s.to_string_lossy().into_owned())
}

fn parse_env(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}

/// Runs the bridge until SIGINT/SIGTERM.
pub async fn run(options: BridgeOptions) -> Result<()> {
    use crate::serve::nginx;
    let mut serve = options.serve;
    if options.nginx.print_nginx_config {
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| program_name(&options.command));
        let text = nginx::config(
            &name,
            &options.nginx.replicas,
            &options.nginx.nginx_listen,
            nginx::Balance::BySession,
        )?;
        return crate::flags::print(&text);
    }
    let replica = replica_id(options.replica_id, serve.http)?;
    if serve.http.is_none() && serve.ws.is_none() {
        #[cfg(feature = "tunnel")]
        let tunnel = serve.tunnel.requested();
        #[cfg(not(feature = "tunnel"))]
        let tunnel = false;
        if !tunnel {
            return Err(Error::new(
                ErrorKind::Config,
                "bridge needs --http PORT and/or --ws PORT (or --tunnel)",
            ));
        }
    }
    if serve.stdio {
        return Err(Error::new(
            ErrorKind::Config,
            "the bridge serves a stdio server over the network; --stdio does not apply",
        )
        .hint("run the stdio server itself for a local client"));
    }
    if options.child_model == ChildModel::PerSession {
        serve
            .max_sessions
            .get_or_insert(bridge::PER_SESSION_MAX_SESSIONS);
    }
    let mut command = options.command.into_iter();
    let program = command
        .next()
        .ok_or_else(|| Error::new(ErrorKind::Config, "no command to bridge"))?;
    let spec = ChildSpec {
        program,
        args: command.collect(),
        env: options.env,
        cwd: options.cwd,
        max_message: 0,
    };
    spec.check()?;
    let name = options
        .name
        .unwrap_or_else(|| program_name(std::slice::from_ref(&spec.program)));
    #[cfg(feature = "tunnel")]
    if let Some(printed) = crate::tunnel::print_requested(
        &serve.tunnel,
        &crate::tunnel::Deployment {
            name: &name,
            prefixes: vec![String::new()],
            by_subdomain: false,
            http: serve.http,
            ws: serve.ws,
            bind: serve.bind,
        },
    ) {
        return printed;
    }
    let bridge = Bridge::new(
        Arc::new(spec),
        Arc::default(),
        options.child_model,
        serve.max_message_size,
    )
    .with_request_timeout(options.request_timeout.max(Duration::from_secs(1)))
    .with_keep_alive(serve.sse_keep_alive)
    .with_replica(replica);
    let bridge = Arc::new(bridge);
    bridge::spawn_reaper(&bridge, options.idle_timeout.max(Duration::from_secs(1)));
    crate::serve::Server::new(name.clone(), env!("CARGO_PKG_VERSION"))
        .without_collected()
        .options(serve)
        .serve_mounts(vec![bridge::mount(bridge, name, String::new())])
        .await
}
