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

/// `--print-nginx-config` and what it needs, on `serve()` and the bridge.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NginxFlags {
    /// Print an nginx configuration for several replicas (include it in nginx's `http {}`
    /// block) and exit: no buffering, long reads, WebSocket upgrades. MCP 2026-07-28 requests
    /// go round-robin; so does everything with `--state redis://..` (sessions shared). Else a
    /// 2025 session stays on its replica: the bridge's by the replica id its session ids start
    /// with (`--replica-id`), a server's by client address.
    #[arg(long, requires = "replicas")]
    pub(crate) print_nginx_config: bool,

    /// The replicas nginx balances, for --print-nginx-config; `ID=` names a bridge replica's
    /// `--replica-id` [default ID: the port].
    #[arg(long, value_name = "[ID=]HOST:PORT,..", value_delimiter = ',')]
    pub(crate) replicas: Vec<String>,

    /// Where nginx listens, for --print-nginx-config.
    #[arg(long, value_name = "[ADDR:]PORT", default_value = "127.0.0.1:8080")]
    pub(crate) nginx_listen: String,
}

/// How nginx keeps a 2025 session on a replica that can serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Balance {
    /// Any replica serves any session (`--state redis://..`): round-robin.
    Shared,
    /// A session lives in the replica that created it, found by the client's address.
    ByClient,
    /// A session lives in the replica whose id starts its session id (the bridge).
    #[cfg_attr(not(feature = "bridge"), allow(dead_code))]
    BySession,
}

/// A replica: its id (for [`Balance::BySession`]) and address.
struct Replica<'a> {
    id: &'a str,
    address: &'a str,
}

/// Whether `id` can start a session id and an nginx regex as it is.
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub(crate) fn valid_replica_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn replicas(given: &[String]) -> Result<Vec<Replica<'_>>> {
    if given.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "--print-nginx-config needs the replicas to balance",
        )
        .hint("e.g. --replicas 127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"));
    }
    let mut replicas: Vec<Replica<'_>> = Vec::with_capacity(given.len());
    for replica in given {
        let (id, address) = replica.split_once('=').unwrap_or(("", replica));
        let port = address
            .rsplit_once(':')
            .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            .map(|(_, port)| port);
        let Some(port) = port else {
            return Err(Error::new(
                ErrorKind::Config,
                format!("replica `{replica}` is not HOST:PORT"),
            ));
        };
        let id = if id.is_empty() { port } else { id };
        if !valid_replica_id(id) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("replica id `{id}` may only have letters, digits, - and _ (32 at most)"),
            ));
        }
        if replicas.iter().any(|r| r.id == id) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("two replicas have the id `{id}`"),
            )
            .hint("name each: --replicas a=10.0.0.1:8000,b=10.0.0.2:8000, and start each bridge with its --replica-id"));
        }
        replicas.push(Replica { id, address });
    }
    Ok(replicas)
}

/// The configuration to include in nginx's `http {}` block: an upstream of `replicas` and a
/// server listening on `listen`, named after `name`, balanced as `balance` says.
pub(crate) fn config(
    name: &str,
    replicas: &[String],
    listen: &str,
    balance: Balance,
) -> Result<String> {
    let replicas = self::replicas(replicas)?;
    let upstream: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let servers: String = replicas
        .iter()
        .map(|r| format!("    server {} max_fails=1 fail_timeout=5s;\n", r.address))
        .collect();
    let (how, map, hash, target) = match balance {
        Balance::Shared => (
            "Every request goes round-robin: the\n# replicas share their sessions (--state redis://..).".to_owned(),
            String::new(),
            String::new(),
            format!("mcp_{upstream}"),
        ),
        Balance::ByClient => (
            "MCP 2026-07-28 requests go round-robin; a 2025\n# session stays on the replica that created it (by client address).".to_owned(),
            format!(
                "map $http_mcp_protocol_version $mcp_{upstream}_affinity {{\n    \"2026-07-28\" \"\";\n    default $binary_remote_addr;\n}}\n\n"
            ),
            format!("    hash $mcp_{upstream}_affinity consistent;\n"),
            format!("mcp_{upstream}"),
        ),
        Balance::BySession => {
            let starts: Vec<String> = replicas
                .iter()
                .map(|r| format!("{} at {}", r.id, r.address))
                .collect();
            let routes: String = replicas
                .iter()
                .map(|r| format!("    \"~^{}\\.\" {};\n", r.id, r.address))
                .collect();
            (
                format!(
                    "New sessions and MCP 2026-07-28\n# requests go round-robin; a session's requests go to the bridge whose id starts its\n# session id. Each bridge's --replica-id (by default its --http port): {}.",
                    starts.join(", ")
                ),
                format!(
                    "map $http_mcp_session_id $mcp_{upstream}_target {{\n    default mcp_{upstream};\n{routes}}}\n\n"
                ),
                String::new(),
                format!("$mcp_{upstream}_target"),
            )
        }
    };
    Ok(format!(
        r#"# nginx in front of {count} replicas of {name} (made by --print-nginx-config).
# Include it in nginx's http {{}} block. {how}
{map}map $http_upgrade $mcp_{upstream}_connection {{
    default upgrade;
    "" "";
}}

upstream mcp_{upstream} {{
{hash}{servers}    keepalive 32;
}}

server {{
    listen {listen};

    location / {{
        proxy_pass http://{target};
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
        let one = ["127.0.0.1:8001".to_owned()];
        assert!(config("s", &[], "8080", Balance::ByClient).is_err());
        assert!(config("s", &["nope".to_owned()], "8080", Balance::ByClient).is_err());
        let text = config("my-server", &one, "8080", Balance::ByClient).expect("config");
        assert!(text.contains("upstream mcp_my_server {"), "{text}");
        assert!(text.contains("server 127.0.0.1:8001 max_fails=1"), "{text}");
        assert!(
            text.contains("hash $mcp_my_server_affinity consistent;"),
            "{text}"
        );
        let shared = config("my-server", &one, "8080", Balance::Shared).expect("config");
        assert!(!shared.contains("hash "), "round-robin: {shared}");
    }

    #[test]
    fn bridge_sessions_go_to_the_replica_their_id_names() {
        let given = ["127.0.0.1:8001".to_owned(), "b=10.0.0.2:8001".to_owned()];
        let text = config("br", &given, "8080", Balance::BySession).expect("config");
        assert!(text.contains("\"~^8001\\.\" 127.0.0.1:8001;"), "{text}");
        assert!(text.contains("\"~^b\\.\" 10.0.0.2:8001;"), "{text}");
        assert!(text.contains("proxy_pass http://$mcp_br_target;"), "{text}");
        assert!(text.contains("b at 10.0.0.2:8001"), "{text}");
        let same = ["10.0.0.1:8001".to_owned(), "10.0.0.2:8001".to_owned()];
        let error = config("br", &same, "8080", Balance::BySession).expect_err("a clash");
        assert!(
            error
                .to_string()
                .contains("two replicas have the id `8001`"),
            "{error}"
        );
        assert!(
            config(
                "br",
                &["a.b=1.2.3.4:5".to_owned()],
                "8080",
                Balance::BySession
            )
            .is_err()
        );
    }
}
