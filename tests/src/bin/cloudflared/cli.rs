//! The command line: the flags of `cloudflared [tunnel] [run]` a supervisor may pass.

use std::{collections::BTreeMap, path::PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::log::stdout_and_exit;

pub(crate) const VERSION: &str = "2026.8.2";
pub(crate) const BUILT: &str = "2026-08-20-1200 UTC";
pub(crate) const PROTOCOLS: &str = "Available protocols: 'auto' - automatically chooses the best protocol over time (the default; and also the recommended one); 'quic' - based on QUIC, relying on UDP egress to Cloudflare edge; 'http2' - using Go's HTTP2 library, relying on TCP egress to Cloudflare edge";
pub(crate) const HELP: &str = "NAME:
   cloudflared tunnel - Use Cloudflare Tunnel to expose private services to the Internet or to Cloudflare connected private users.

USAGE:
   cloudflared tunnel [tunnel command options] [subcommand options]

OPTIONS:
   --url value      Connect to the local webserver at URL. (default: \"http://localhost:8080\")
   --metrics value  Listen address for metrics reporting.
";
/// The flags of `cloudflared [tunnel] [run]` a supervisor may pass.
#[derive(Default)]
pub(crate) struct Cli {
    pub(crate) values: BTreeMap<String, String>,
    pub(crate) no_autoupdate: bool,
    pub(crate) run: bool,
}

impl Cli {
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

pub(crate) const VALUE_FLAGS: &str = "url metrics config protocol loglevel output grace-period logfile \
    edge-ip-version token token-file autoupdate-freq edge quick-service";

/// Parses like Go's flag package (`-f v`, `--f v`, `--f=v`); exits for version, help and usage.
pub(crate) fn parse_cli(args: &[String]) -> Cli {
    let (mut cli, mut positional, mut it) = (Cli::default(), Vec::new(), args.iter());
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            positional.push(arg.as_str());
            continue;
        };
        let (name, inline) = flag
            .split_once('=')
            .map_or((flag, None), |(n, v)| (n, Some(v)));
        match name {
            "version" | "v" | "V" => stdout_and_exit(&version_line()),
            "help" | "h" => stdout_and_exit(HELP),
            "no-autoupdate" => cli.no_autoupdate = inline.is_none_or(|v| v != "false"),
            n if VALUE_FLAGS.split_whitespace().any(|f| f == n) => {
                let Some(v) = inline.map(str::to_string).or_else(|| it.next().cloned()) else {
                    stdout_and_exit(&format!(
                        "Incorrect Usage. flag needs an argument: -{n}\n\n{HELP}"
                    ))
                };
                cli.values.insert(n.to_string(), v);
            }
            n => stdout_and_exit(&format!(
                "Incorrect Usage. flag provided but not defined: -{n}\n\n{HELP}"
            )),
        }
    }
    match positional.as_slice() {
        ["version", ..] => stdout_and_exit(&version_line()),
        ["tunnel", "run", ..] => cli.run = true,
        _ => {}
    }
    cli
}

/// Fills the flags not given on the command line from the config file: `--config F`, or else
/// the first `config.yml`/`config.yaml` in the default directories under $HOME, as the real one
/// does (it silently picks up a user's `protocol:` or `loglevel:` there). Only top-level
/// `key: value` lines are read; `{}` holds none.
pub(crate) fn apply_config_file(cli: &mut Cli) {
    let path = cli.get("config").map(PathBuf::from).or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        let dirs = [".cloudflared", ".cloudflare-warp", "cloudflare-warp"];
        dirs.iter()
            .flat_map(|d| ["config.yml", "config.yaml"].map(|f| home.join(d).join(f)))
            .find(|p| p.is_file())
    });
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return;
    };
    for line in text.lines() {
        if line.starts_with([' ', '\t', '#', '-']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        let known = VALUE_FLAGS.split_whitespace().any(|f| f == key);
        if known && key != "config" && !value.is_empty() {
            cli.values
                .entry(key.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
}

/// `Settings: map[...]`: the flags in effect (from argv and the config file), as Go prints a map.
pub(crate) fn settings_line(cli: &Cli) -> String {
    let mut values = cli.values.clone();
    if cli.no_autoupdate {
        values.insert("no-autoupdate".into(), "true".into());
    }
    let pairs: Vec<String> = values
        .iter()
        .map(|(k, v)| match k.as_str() {
            "token" => format!("{k}:*****"),
            _ => format!("{k}:{v}"),
        })
        .collect();
    format!("Settings: map[{}]", pairs.join(" "))
}

pub(crate) fn version_line() -> String {
    format!("cloudflared version {VERSION} (built {BUILT})\n")
}

/// Decodes a named-tunnel token (base64 of `{"a":..,"t":<uuid>,"s":<base64>}`) to its tunnel id.
pub(crate) fn tunnel_id(token: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let v: Value = serde_json::from_slice(&b64.decode(token.trim()).ok()?).ok()?;
    let (_, t, s) = (v["a"].as_str()?, v["t"].as_str()?, v["s"].as_str()?);
    let uuid_shape = t.split('-').map(str::len).eq([8, 4, 4, 4, 12]);
    let uuid_ok = uuid_shape && t.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
    (uuid_ok && b64.decode(s).is_ok()).then(|| t.to_ascii_lowercase())
}
