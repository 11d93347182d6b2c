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

use super::{Bridge, BridgeHealth, ChildModel, ChildSpec};
use crate::{
    error::{Error, ErrorKind, Result},
    serve::Options,
};

/// `gateway` options.
#[derive(Debug, Clone, clap::Args)]
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    servers: BTreeMap<String, ServerConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerConfig {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    #[serde(default)]
    child: Child,
    max_message_size: Option<usize>,
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
    for (name, server) in &config.servers {
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
        if server.command.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{}: [servers.{name}] has an empty `command`",
                    path.display()
                ),
            ));
        }
    }
    Ok(config)
}

/// Runs the gateway until SIGINT/SIGTERM (or prints a cloudflared config and exits).
pub async fn run(options: GatewayOptions) -> Result<()> {
    let config = load(&options.config)?;
    let mut serve = options.serve;
    #[cfg(feature = "tunnel")]
    if serve.tunnel.print_cloudflared_config {
        let text = cloudflared_config(&config, &serve, options.by_subdomain)?;
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(text.as_bytes())
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot write to stdout", e));
    }
    if serve.http.is_none() && serve.ws.is_none() {
        serve.http = Some(8000);
        serve.ws = Some(8000);
    }
    serve.stdio = false;
    let mut bridges = Vec::new();
    let mut per_session = 0;
    for (name, server) in config.servers {
        let mut command = server.command.into_iter();
        let program = command.next().unwrap_or_default();
        let spec = Arc::new(ChildSpec {
            program,
            args: command.collect(),
            env: server.env.into_iter().collect(),
            cwd: server.cwd,
        });
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
        let bridge = Bridge::new(spec, health, model, max_message);
        tracing::info!("server `{name}` at /{name}/mcp and /{name}/ws");
        bridges.push((format!("/{name}"), Arc::new(bridge)));
    }
    if per_session > 0 {
        // Each per-session server's sessions are processes.
        serve
            .max_sessions
            .get_or_insert(super::PER_SESSION_MAX_SESSIONS * per_session);
    }
    for (_, bridge) in &bridges {
        super::spawn_reaper(bridge, std::time::Duration::from_secs(600));
    }
    crate::Server::new("mcp-expose gateway", env!("CARGO_PKG_VERSION"))
        .without_collected()
        .options(serve)
        .serve_bridges(bridges)
        .await
}

/// Ingress rules for every server: by path on one hostname, or by subdomain.
#[cfg(feature = "tunnel")]
fn cloudflared_config(config: &Config, serve: &Options, by_subdomain: bool) -> Result<String> {
    let Some(hostname) = serve.tunnel.public_hostname.as_deref() else {
        return Err(Error::new(
            ErrorKind::Config,
            "--print-cloudflared-config needs --public-hostname HOST",
        ));
    };
    let port = serve.http.or(serve.ws).filter(|p| *p != 0).unwrap_or(8000);
    let host = if serve.bind.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        serve.bind.to_string()
    };
    let id = serve.tunnel.tunnel_id.as_deref().unwrap_or("<TUNNEL-UUID>");
    let credentials = serve
        .tunnel
        .credentials_file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| format!("/etc/cloudflared/{id}.json"));
    let mut yaml = format!(
        "# cloudflared configuration for the gateway; run: cloudflared tunnel --config config.yml run\n\
         tunnel: {id}\ncredentials-file: {credentials}\ningress:\n"
    );
    for name in config.servers.keys() {
        if by_subdomain {
            // The origin serves each server under its prefix: a subdomain maps to that prefix
            // through the path the client uses, so clients connect to https://NAME.HOST/NAME/mcp.
            yaml.push_str(&format!("  - hostname: {name}.{hostname}\n    path: ^/{name}/\n    service: http://{host}:{port}\n"));
        } else {
            yaml.push_str(&format!("  - hostname: {hostname}\n    path: ^/{name}/(mcp|ws)$\n    service: http://{host}:{port}\n"));
        }
    }
    yaml.push_str("  - service: http_status:404\n");
    Ok(yaml)
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
