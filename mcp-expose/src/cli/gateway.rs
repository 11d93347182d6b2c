//! `mcp-expose gateway CONFIG.toml`: several stdio servers behind one port, each under its
//! own path prefix (`/github/mcp`, `/github/ws`, `/db/mcp`, ...), so one tunnel serves them all.
//!
//! ```toml
//! [servers.github]
//! command = ["npx", "-y", "@modelcontextprotocol/server-github"]
//! env = { GITHUB_PERSONAL_ACCESS_TOKEN = "..." }
//!
//! [servers.db]
//! command = ["python3", "db_server.py"]
//! cwd = "/srv/db"
//! child = "shared"             # or "per-session" (the default)
//! max_message_size = 1048576   # bytes
//! ```

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use serde::Deserialize;

use crate::{
    bridge::{self, Bridge, BridgeHealth, ChildModel, ChildSpec},
    error::{Error, ErrorKind, Result},
    serve::Options,
};

/// `gateway` options.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("stdio", |a| a.hide(true)),
    mut_arg("http", |a| a.help("Serve streamable HTTP on this port, at /NAME/mcp for each server (0 picks a free port) [default: 8000]")),
    mut_arg("ws", |a| a.help("Serve WebSocket on this port, at /NAME/ws for each server (the same port as --http shares one listener) [default: 8000]")),
    mut_arg("state", |a| a.help("Where replicas share their --rate-limit and --max-auth-failures counts: `redis://HOST:PORT/DB` (build with the `redis` feature), or `memory` [default: memory, this process only]. Sessions stay with the process that runs their child: see --replica-id")),
)]
#[non_exhaustive]
pub struct GatewayOptions {
    /// The configuration file (TOML, `[servers.NAME]` tables).
    pub config: PathBuf,

    /// Serving options (--http, --ws, --bind, --tunnel, auth, ...).
    #[command(flatten)]
    pub serve: Options,

    /// With --print-cloudflared-config: route servers by subdomain (`NAME.HOST`) instead of by path.
    #[arg(long)]
    pub by_subdomain: bool,

    /// This replica's id, which starts every session id it makes, so that nginx in front of
    /// several gateways sends a session's requests to the gateway that runs its child (see
    /// --print-nginx-config) [default: the --http port].
    #[arg(long, value_name = "ID", env = "MCP_EXPOSE_REPLICA_ID")]
    pub replica_id: Option<String>,

    #[command(flatten)]
    pub(crate) nginx: crate::serve::nginx::NginxFlags,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    servers: BTreeMap<String, ServerConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerConfig {
    command: Command,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    #[serde(default)]
    child: Child,
    max_message_size: Option<usize>,
}

/// `command = ["npx", "-y", "pkg"]`, or one string split as a POSIX shell would
/// (`command = "npx -y pkg"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Command {
    Words(Vec<String>),
    Line(String),
}

impl Command {
    fn words(self) -> Option<Vec<String>> {
        match self {
            Command::Words(words) => Some(words),
            Command::Line(line) => shlex::split(&line),
        }
    }
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Child {
    #[default]
    PerSession,
    Shared,
}

fn load(path: &std::path::Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("cannot read {}", path.display()),
            e,
        )
    })?;
    // toml's errors name the line and column, and show it.
    let config: Config = toml::from_str(&text)
        .map_err(|e| Error::new(ErrorKind::Config, format!("{}: {e}", path.display())))?;
    if config.servers.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("{}: no [servers.NAME] table", path.display()),
        ));
    }
    for name in config.servers.keys() {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{}: server name `{name}` must be letters, digits, - or _ (it becomes a path)",
                    path.display()
                ),
            ));
        }
    }
    Ok(config)
}

/// Runs the gateway until SIGINT/SIGTERM (or prints a cloudflared config and exits).
pub async fn run(options: GatewayOptions) -> Result<()> {
    use crate::serve::nginx;
    let config = load(&options.config)?;
    let mut serve = options.serve;
    if options.nginx.print_nginx_config {
        let text = nginx::config(
            "mcp-expose-gateway",
            &options.nginx.replicas,
            &options.nginx.nginx_listen,
            nginx::Balance::BySession,
        )?;
        return crate::flags::print(&text);
    }
    #[cfg(feature = "tunnel")]
    if let Some(printed) = crate::tunnel::print_requested(
        &serve.tunnel,
        &crate::tunnel::Deployment {
            name: "mcp-expose-gateway",
            prefixes: config
                .servers
                .keys()
                .map(|name| format!("/{name}"))
                .collect(),
            by_subdomain: options.by_subdomain,
            http: serve.http,
            ws: serve.ws,
            bind: serve.bind,
        },
    ) {
        return printed;
    }
    if serve.http.is_none() && serve.ws.is_none() {
        serve.http = Some(8000);
        serve.ws = Some(8000);
    }
    if serve.stdio {
        return Err(Error::new(
            ErrorKind::Config,
            "the gateway serves its stdio servers over the network; --stdio does not apply",
        ));
    }
    let replica = super::bridge::replica_id(options.replica_id.clone(), serve.http)?;
    let mut bridges = Vec::new();
    let mut per_session = 0;
    for (name, server) in config.servers {
        let words = server.command.words().filter(|w| !w.is_empty()).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "{}: [servers.{name}] needs a `command`, e.g. command = [\"npx\", \"-y\", \"@modelcontextprotocol/server-github\"] (a string with unbalanced quotes does not split)",
                    options.config.display()
                ),
            )
        })?;
        let mut command = words.into_iter();
        let program = command.next().unwrap_or_default();
        let spec = ChildSpec {
            program,
            args: command.collect(),
            env: server.env.into_iter().collect(),
            cwd: server.cwd,
            max_message: 0,
        };
        spec.check().map_err(|e| {
            e.hint(format!(
                "fix `command` of [servers.{name}] in {}",
                options.config.display()
            ))
        })?;
        let spec = Arc::new(spec);
        let model = if server.child == Child::Shared {
            ChildModel::Shared
        } else {
            ChildModel::PerSession
        };
        let health: Arc<BridgeHealth> = Arc::default();
        let max_message = server.max_message_size.unwrap_or(serve.max_message_size);
        if model == ChildModel::PerSession {
            per_session += 1;
        }
        let bridge = Bridge::new(spec, health, model, max_message)
            .with_keep_alive(serve.sse_keep_alive)
            .with_replica(replica.clone());
        bridges.push((name, Arc::new(bridge)));
    }
    if per_session > 0 {
        // Each per-session server's sessions are processes.
        serve
            .max_sessions
            .get_or_insert(bridge::PER_SESSION_MAX_SESSIONS * per_session);
    }
    let mounts = bridges
        .into_iter()
        .map(|(name, bridge)| {
            bridge::spawn_reaper(&bridge, std::time::Duration::from_secs(600));
            let prefix = format!("/{name}");
            bridge::mount(bridge, name, prefix)
        })
        .collect();
    crate::serve::Server::new("mcp-expose gateway", env!("CARGO_PKG_VERSION"))
        .without_collected()
        .options(serve)
        .serve_mounts(mounts)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("mcp-expose-gw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("bad.toml");
        std::fs::write(
            &file,
            "[servers.a]\ncommand = [\"x\"]\nchlid = \"shared\"\n",
        )
        .ok();
        let error = load(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("chlid"), "{error}");
        std::fs::write(&file, "[servers.a]\ncommand = [\"x\"\n").ok();
        let error = load(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("line 2") || error.contains("line 3"),
            "{error}"
        );
    }
}
