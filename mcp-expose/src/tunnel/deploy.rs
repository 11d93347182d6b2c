//! Deployment helpers: a cloudflared `config.yml` for a named tunnel, and a systemd unit, for a
//! server, a bridge or a gateway (`--print-cloudflared-config`, `--print-systemd-unit`).

use std::path::{Path, PathBuf};

use super::TunnelOptions;
use crate::error::{Error, ErrorKind, Result};

/// What is being deployed: its name (the unit's) and the path prefixes of its servers (`""`
/// for a single server, `/NAME` for each of a gateway's).
#[derive(Debug)]
pub(crate) struct Deployment<'a> {
    pub(crate) name: &'a str,
    pub(crate) prefixes: Vec<String>,
    /// A gateway's servers under `NAME.HOST` rather than `HOST/NAME`.
    pub(crate) by_subdomain: bool,
    /// Where it listens: `--http`, `--ws` and `--bind`.
    pub(crate) http: Option<u16>,
    pub(crate) ws: Option<u16>,
    pub(crate) bind: std::net::IpAddr,
}

/// Prints what a print flag asks for and returns `Some`, or `None` when none was given (then
/// the caller serves).
pub(crate) fn print_requested(tunnel: &TunnelOptions, what: &Deployment<'_>) -> Option<Result<()>> {
    let text = if tunnel.print_systemd_unit {
        Ok(systemd_unit(
            what.name,
            &std::env::args().skip(1).collect::<Vec<_>>(),
        ))
    } else if tunnel.print_cloudflared_config {
        cloudflared_config(tunnel, what)
    } else {
        return None;
    };
    Some(text.and_then(|text| crate::flags::print(&text)))
}

/// The arguments a print flag was given with, minus the print-only ones: how to run the server.
fn server_args(args: &[String]) -> Vec<String> {
    const PRINT_ONLY: &[&str] = &["--print-cloudflared-config", "--print-systemd-unit"];
    const PRINT_ONLY_VALUES: &[&str] = &["--tunnel-id", "--credentials-file"];
    let mut kept = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            kept.push(arg.clone());
            kept.extend(args.by_ref().cloned());
            break;
        }
        let flag = arg.split('=').next().unwrap_or_default();
        if PRINT_ONLY.contains(&arg.as_str()) {
            continue;
        }
        if PRINT_ONLY_VALUES.contains(&flag) {
            if !arg.contains('=') {
                args.next();
            }
            continue;
        }
        kept.push(arg.clone());
    }
    kept
}

/// A `config.yml` routing the public hostname to the listener(s): WebSocket paths to the
/// WebSocket port when it differs, everything else of the host to HTTP (the landing page, OAuth
/// metadata), and a final `http_status:404`. A gateway by subdomain routes `NAME.HOST` to
/// its server's prefix.
pub(crate) fn cloudflared_config(tunnel: &TunnelOptions, what: &Deployment<'_>) -> Result<String> {
    let Some(hostname) = tunnel.public_hostname.as_deref().map(str::trim) else {
        return Err(Error::new(
            ErrorKind::Config,
            "--print-cloudflared-config needs --public-hostname HOST (the hostname routed to this server)",
        ));
    };
    let port = |p: Option<u16>| p.filter(|p| *p != 0);
    let (http, ws) = match (port(what.http), port(what.ws)) {
        (None, None) => {
            return Err(Error::new(
                ErrorKind::Config,
                "--print-cloudflared-config needs --http PORT and/or --ws PORT (a fixed port, not 0)",
            ));
        }
        (Some(p), None) | (None, Some(p)) => (p, p),
        (Some(h), Some(w)) => (h, w),
    };
    let host = if what.bind.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        what.bind.to_string()
    };
    let id = tunnel.tunnel_id.as_deref().unwrap_or("<TUNNEL-UUID>");
    let credentials = tunnel
        .credentials_file
        .as_ref()
        .map(|f| absolute(f).display().to_string())
        .unwrap_or_else(|| format!("/etc/cloudflared/{id}.json"));
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| what.name.to_owned());
    let mut run = vec![exe];
    run.extend(server_args(&std::env::args().skip(1).collect::<Vec<_>>()));
    let names: Vec<String> = what
        .prefixes
        .iter()
        .map(|p| p.trim_start_matches('/').to_owned())
        .collect();
    let subdomains = what.by_subdomain && names.iter().all(|n| !n.is_empty());
    if subdomains {
        let hosts: Vec<String> = names.iter().map(|n| format!("{n}.{hostname}")).collect();
        run.push(format!("--allowed-host={}", hosts.join(",")));
    }
    let mut yaml = format!(
        "# cloudflared configuration for {hostname}: cloudflared tunnel --config config.yml run\n\
         # Run the server with:\n\
         #   {}\n\
         # It names a public hostname, so it requires a token: it generates one and prints it at\n\
         # start unless given --auth-token-file FILE (or --oauth-issuer).\n",
        run.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut urls = Vec::new();
    let mut rules = String::new();
    let mut rule = |public: &str, path: Option<String>, port: u16| {
        rules.push_str(&format!("  - hostname: {public}\n"));
        if let Some(path) = path {
            rules.push_str(&format!("    path: {path}\n"));
        }
        rules.push_str(&format!("    service: http://{host}:{port}\n"));
    };
    for (name, prefix) in names.iter().zip(&what.prefixes) {
        let public = if subdomains {
            format!("{name}.{hostname}")
        } else {
            hostname.to_owned()
        };
        if ws != http {
            rule(&public, Some(format!("^{prefix}/ws$")), ws);
        }
        if subdomains {
            // cloudflared cannot rewrite paths: the server is at its prefix on its subdomain.
            rule(&public, Some(format!("^{prefix}/")), http);
        }
        urls.push(format!(
            "#   {}https://{public}{prefix}/mcp and wss://{public}{prefix}/ws\n",
            if name.is_empty() {
                String::new()
            } else {
                format!("{name}: ")
            }
        ));
    }
    if !subdomains {
        rule(hostname, None, http);
    }
    yaml.push_str("# Clients connect to:\n");
    for url in urls {
        yaml.push_str(&url);
    }
    yaml.push_str(&format!(
        "tunnel: {id}\ncredentials-file: {credentials}\ningress:\n{rules}  - service: http_status:404\n"
    ));
    Ok(yaml)
}

/// `arg` as a POSIX shell word.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// `path` made absolute against the working directory (as the server would have read it).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Flags whose value is a path, read relative to where the server was started.
const PATH_FLAGS: &[&str] = &[
    "--auth-token-file",
    "--tunnel-token-file",
    "--cloudflared",
    "--cwd",
    "--credentials-file",
];

/// The arguments with every relative path made absolute: the values of path flags, any
/// argument naming an existing file or directory here (a gateway's config, a script), and a
/// bridged command's program (looked up in PATH when it is a bare name), since a unit runs
/// elsewhere with another PATH.
fn absolute_args(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut path_value = false;
    let mut program_next = false;
    for arg in args {
        let resolved = if path_value {
            absolute(Path::new(arg)).display().to_string()
        } else if program_next {
            which::which(arg)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| arg.clone())
        } else if let Some((flag, value)) = arg.split_once('=')
            && PATH_FLAGS.contains(&flag)
        {
            format!("{flag}={}", absolute(Path::new(value)).display())
        } else if !arg.starts_with('-') && !Path::new(arg).is_absolute() && Path::new(arg).exists()
        {
            absolute(Path::new(arg)).display().to_string()
        } else {
            arg.clone()
        };
        program_next = arg == "--" && !path_value;
        path_value = PATH_FLAGS.contains(&arg.as_str());
        out.push(resolved);
    }
    out
}

/// One ExecStart word: systemd's specifiers (`%`) and variables (`$`) escaped, quoted when it
/// holds spaces, quotes, backslashes or is a `;` (a command separator to systemd).
fn exec_word(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    if escaped.is_empty() || escaped == ";" || escaped.contains([' ', '\t', '"', '\'', '\\']) {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

/// Whether `path` lies where `ProtectHome=yes` hides it.
fn under_home(path: &str) -> bool {
    ["/root", "/home/", "/run/user/"]
        .iter()
        .any(|home| path == *home || path.starts_with(&format!("{}/", home.trim_end_matches('/'))))
}

/// A systemd unit that runs this executable with `args` (the print flags removed, relative
/// paths made absolute); secrets (`TUNNEL_TOKEN`, tokens) come from an environment file, never
/// the command line. Files under a home directory (where `cargo install` puts binaries) stay
/// reachable: the unit runs as the current user with the home read-only instead of a dynamic
/// user with it hidden.
pub(crate) fn systemd_unit(name: &str, args: &[String]) -> String {
    let unit: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| name.to_owned());
    let words: Vec<String> = std::iter::once(exe)
        .chain(absolute_args(&server_args(args)))
        .collect();
    let template = replicated(args);
    let in_home = words.iter().any(|w| under_home(w));
    let user = if in_home {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".to_owned(), |u| u.name);
        format!(
            "# {} lives under a home directory: run as its owner, the home read-only.\n\
             User={user}\nProtectHome=read-only\n",
            words[0]
        )
    } else {
        "DynamicUser=yes\nProtectHome=yes\n".to_owned()
    };
    let (file, enable) = if template {
        (
            format!("{unit}@.service"),
            format!(
                "{unit}@8001 {unit}@8002 {unit}@8003\n\
                 # (a template: one replica per instance, serving HTTP on the instance's port)"
            ),
        )
    } else {
        (format!("{unit}.service"), unit.clone())
    };
    let mut exec: Vec<String> = Vec::with_capacity(words.len() + 2);
    let mut port_next = false;
    for word in &words {
        exec.push(if template && port_next {
            "%i".to_owned()
        } else if template && word.starts_with("--http=") {
            "--http=%i".to_owned()
        } else {
            exec_word(word)
        });
        port_next = word == "--http";
    }
    if template
        && !words
            .iter()
            .any(|w| w == "--http" || w.starts_with("--http="))
    {
        exec.extend(["--http".to_owned(), "%i".to_owned()]);
    }
    format!(
        "# /etc/systemd/system/{file}, then: systemctl daemon-reload && systemctl enable --now {enable}\n\
         [Unit]\n\
         Description={name} MCP server (mcp-expose)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         # TUNNEL_TOKEN=... and other secrets, readable by root only (chmod 600)\n\
         EnvironmentFile=-/etc/{unit}/env\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         {user}\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         PrivateTmp=yes\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        name = name.replace('%', "%%"),
        exec = exec.join(" "),
    )
}

/// Whether the server shares its state with replicas (`--state redis://..`, or
/// `MCP_EXPOSE_STATE`): then its unit is a template, one instance per port.
fn replicated(args: &[String]) -> bool {
    let redis = |v: &str| v.starts_with("redis://") || v.starts_with("rediss://");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let shared = if arg == "--state" {
            args.next().is_some_and(|v| redis(v))
        } else {
            arg.strip_prefix("--state=").is_some_and(redis)
        };
        if shared {
            return true;
        }
    }
    std::env::var("MCP_EXPOSE_STATE").is_ok_and(|v| redis(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_escape_specifiers_variables_and_quotes() {
        assert_eq!(exec_word("100%"), "100%%");
        assert_eq!(exec_word("$HOME"), "$$HOME");
        assert_eq!(exec_word("a b"), "\"a b\"");
        assert_eq!(exec_word("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(exec_word(";"), "\";\"");
    }

    #[test]
    fn replicas_sharing_state_get_a_template_unit() {
        let args: Vec<String> = ["--http", "8001", "--state", "redis://127.0.0.1:6379/0"]
            .map(str::to_owned)
            .to_vec();
        let unit = systemd_unit("my-server", &args);
        assert!(
            unit.contains("/etc/systemd/system/my-server@.service"),
            "{unit}"
        );
        assert!(unit.contains(" --http %i "), "{unit}");
        assert!(!unit.contains("8001 --state"), "{unit}");
        let single = systemd_unit("my-server", &args[..2]);
        assert!(
            single.contains("/etc/systemd/system/my-server.service"),
            "{single}"
        );
        assert!(single.contains(" --http 8001"), "{single}");
    }

    #[test]
    fn print_flags_and_their_values_are_left_out() {
        let args: Vec<String> = [
            "--http",
            "8000",
            "--print-systemd-unit",
            "--tunnel-id",
            "abc",
            "--credentials-file=/x.json",
            "--",
            "--print-systemd-unit",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            server_args(&args),
            ["--http", "8000", "--", "--print-systemd-unit"]
        );
    }

    #[test]
    fn homes_are_recognised() {
        assert!(under_home("/root/.cargo/bin/x"));
        assert!(under_home("/home/ann/bin/x"));
        assert!(!under_home("/usr/local/bin/x"));
        assert!(!under_home("/homes/x"));
    }
}
