//! `--print-nginx-config --replicas HOST:PORT,..`: nginx in front of several replicas of a
//! server, with the settings MCP needs (no buffering, long reads, WebSocket upgrades).
//!
//! MCP 2026-07-28 requests (their `MCP-Protocol-Version` header says so) carry everything they
//! need and go round-robin to any replica. With the sessions in Redis (`--state redis://..`)
//! so does everything else: any replica serves any session. Without, a 2025 session lives in
//! the replica that created it, so the rest of a client's traffic is kept on one replica by
//! its address (`hash` on it, consistent, so that a replica leaving moves only its own
//! clients).

use crate::error::{Error, ErrorKind, Result};

/// The configuration to include in nginx's `http {}` block: an upstream of `replicas` and a
/// server listening on `listen`, named after `name`; round-robin for everything when the
/// replicas share their sessions (`shared`).
pub(crate) fn config(
    name: &str,
    replicas: &[String],
    listen: &str,
    shared: bool,
) -> Result<String> {
    if replicas.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "--print-nginx-config needs the replicas to balance",
        )
        .hint("e.g. --replicas 127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"));
    }
    for replica in replicas {
        let valid = replica
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(Error::new(
                ErrorKind::Config,
                format!("replica `{replica}` is not HOST:PORT"),
            ));
        }
    }
    let upstream: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let servers: String = replicas
        .iter()
        .map(|replica| format!("    server {replica} max_fails=1 fail_timeout=5s;\n"))
        .collect();
    let (balance, how) = if shared {
        (
            String::new(),
            "Every request goes round-robin: the\n# replicas share their sessions (--state redis://..).",
        )
    } else {
        (
            format!(
                "map $http_mcp_protocol_version $mcp_{upstream}_affinity {{\n    \"2026-07-28\" \"\";\n    default $binary_remote_addr;\n}}\n\n"
            ),
            "MCP 2026-07-28 requests go round-robin; a 2025\n# session stays on the replica that created it (by client address).",
        )
    };
    let hash = if shared {
        String::new()
    } else {
        format!("    hash $mcp_{upstream}_affinity consistent;\n")
    };
    Ok(format!(
        r#"# nginx in front of {count} replicas of {name} (made by --print-nginx-config).
# Include it in nginx's http {{}} block. {how}
{balance}map $http_upgrade $mcp_{upstream}_connection {{
    default upgrade;
    "" "";
}}

upstream mcp_{upstream} {{
{hash}{servers}    keepalive 32;
}}

server {{
    listen {listen};

    location / {{
        proxy_pass http://mcp_{upstream};
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # WebSocket (/ws)
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $mcp_{upstream}_connection;
        # Event streams: pass each event on at once, keep long calls and listens open.
        proxy_buffering off;
        proxy_cache off;
        proxy_request_buffering off;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        client_max_body_size 8m;
    }}
}}
"#,
        count = replicas.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_checked() {
        assert!(config("s", &[], "8080", false).is_err());
        assert!(config("s", &["nope".to_owned()], "8080", false).is_err());
        let text =
            config("my-server", &["127.0.0.1:8001".to_owned()], "8080", false).expect("config");
        assert!(text.contains("upstream mcp_my_server {"), "{text}");
        assert!(text.contains("server 127.0.0.1:8001 max_fails=1"), "{text}");
        assert!(
            text.contains("hash $mcp_my_server_affinity consistent;"),
            "{text}"
        );
        let shared =
            config("my-server", &["127.0.0.1:8001".to_owned()], "8080", true).expect("config");
        assert!(!shared.contains("hash "), "round-robin: {shared}");
    }
}
