//! Deployment helpers: a cloudflared `config.yml` for a named tunnel, and a systemd unit.

use crate::{
    error::{Error, ErrorKind, Result},
    serve::Options,
};

/// A `config.yml` routing `hostname` to the listener(s): WebSocket paths to the WebSocket
/// port when it differs, everything else to HTTP, and a final `http_status:404`.
pub(crate) fn cloudflared_config(options: &Options) -> Result<String> {
    let tunnel = &options.tunnel;
    let Some(hostname) = tunnel.public_hostname.as_deref() else {
        return Err(Error::new(
            ErrorKind::Config,
            "--print-cloudflared-config needs --public-hostname HOST",
        ));
    };
    let port = |p: Option<u16>| p.filter(|p| *p != 0);
    let (http, ws) = match (port(options.http), port(options.ws)) {
        (None, None) => {
            return Err(Error::new(
                ErrorKind::Config,
                "--print-cloudflared-config needs --http PORT and/or --ws PORT (not 0)",
            ));
        }
        (Some(p), None) | (None, Some(p)) => (p, p),
        (Some(h), Some(w)) => (h, w),
    };
    let host = if options.bind.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        options.bind.to_string()
    };
    let id = tunnel.tunnel_id.as_deref().unwrap_or("<TUNNEL-UUID>");
    let credentials = tunnel
        .credentials_file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| format!("/etc/cloudflared/{id}.json"));
    let mut yaml = format!(
        "# cloudflared configuration for {hostname}; run: cloudflared tunnel --config config.yml run\n\
         tunnel: {id}\n\
         credentials-file: {credentials}\n\
         ingress:\n"
    );
    if ws != http {
        yaml.push_str(&format!(
            "  - hostname: {hostname}\n    path: ^/ws$\n    service: http://{host}:{ws}\n"
        ));
    }
    yaml.push_str(&format!(
        "  - hostname: {hostname}\n    service: http://{host}:{http}\n"
    ));
    yaml.push_str("  - service: http_status:404\n");
    Ok(yaml)
}

/// A systemd unit that runs this executable with `args` (the print flag removed); secrets
/// (`TUNNEL_TOKEN`, tokens) come from an environment file, never the command line.
pub(crate) fn systemd_unit(name: &str, args: &[String]) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| name.to_owned());
    let quoted: Vec<String> = std::iter::once(exe)
        .chain(
            args.iter()
                .filter(|a| *a != "--print-systemd-unit")
                .cloned(),
        )
        .map(|a| {
            if a.contains([' ', '"', '\\']) {
                format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                a
            }
        })
        .collect();
    format!(
        "# /etc/systemd/system/{name}.service — then: systemctl daemon-reload && systemctl enable --now {name}\n\
         [Unit]\n\
         Description={name} MCP server (mcp-expose)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         # TUNNEL_TOKEN=... and other secrets, readable by root only (chmod 600)\n\
         EnvironmentFile=-/etc/{name}/env\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         DynamicUser=yes\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        exec = quoted.join(" "),
    )
}
