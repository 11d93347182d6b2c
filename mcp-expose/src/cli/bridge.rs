//! `mcp-expose bridge -- CMD ARGS...`: one stdio MCP server on the network.

use std::{path::PathBuf, sync::Arc, time::Duration};

use crate::{
    bridge::{self, Bridge, ChildModel, ChildSpec},
    error::{Error, ErrorKind, Result},
    serve::Options,
};

/// `bridge` options.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("stdio", |a| a.hide(true)))]
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

    /// The stdio MCP server to run, after `--`: `mcp-expose bridge --http 8000 -- CMD ARGS...`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_env(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}

/// Runs the bridge until SIGINT/SIGTERM.
pub async fn run(options: BridgeOptions) -> Result<()> {
    let mut serve = options.serve;
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
    let name = options.name.unwrap_or_else(|| {
        std::path::Path::new(&spec.program)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.program.clone())
    });
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
    .with_keep_alive(serve.sse_keep_alive);
    let bridge = Arc::new(bridge);
    bridge::spawn_reaper(&bridge, options.idle_timeout.max(Duration::from_secs(1)));
    crate::serve::Server::new(name.clone(), env!("CARGO_PKG_VERSION"))
        .without_collected()
        .options(serve)
        .serve_mounts(vec![bridge::mount(bridge, name, String::new())])
        .await
}
