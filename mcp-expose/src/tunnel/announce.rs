//! What a ready tunnel prints: the public URLs and client configs to paste.

use super::{TunnelKind, TunnelStatus};
use crate::observe::clients::{Place, configs, describe};

/// Whether clients need a token, and the generated one to put in printed configs.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) enabled: bool,
    pub(crate) token: Option<String>,
}

/// Ready-to-paste client configurations for a tunnel: Claude Desktop through `mcp-expose
/// connect` (the stdio connector), Claude Code, Cursor, VS Code, WebSocket, and streamable
/// HTTP. With `token`, each carries `Authorization: Bearer <token>` (for Claude Desktop through
/// an environment variable, since desktop clients on Windows split arguments at spaces).
pub fn client_configs(
    server_name: &str,
    status: &TunnelStatus,
    token: Option<&str>,
) -> Option<serde_json::Value> {
    let servers = [(server_name.to_owned(), String::new())];
    Some(configs(&places(&servers, status, true)?, token))
}

/// Each server's public URLs (`prefix` is empty for a single server, `/NAME` for a gateway's).
fn places(servers: &[(String, String)], status: &TunnelStatus, ws: bool) -> Option<Vec<Place>> {
    let origin = status.url.as_ref()?;
    let ws_origin = status.hostname.as_ref().map(|h| format!("wss://{h}"));
    Some(
        servers
            .iter()
            .map(|(name, prefix)| Place {
                name: name.clone(),
                http: Some(format!("{origin}{prefix}/mcp")),
                ws: ws_origin
                    .as_ref()
                    .filter(|_| ws)
                    .map(|o| format!("{o}{prefix}/ws")),
            })
            .collect(),
    )
}

/// The block printed on stderr when the tunnel becomes ready: each server's URLs and the
/// client configs.
pub(crate) fn banner(
    servers: &[(String, String)],
    status: &TunnelStatus,
    kind: &TunnelKind,
    serves_ws: bool,
    access: &Access,
) -> String {
    // A configured token is the user's secret: the configs show a placeholder for it.
    let token = access.enabled.then(|| {
        access
            .token
            .clone()
            .unwrap_or_else(|| "<your token>".to_owned())
    });
    let Some(places) = places(servers, status, serves_ws) else {
        return String::new();
    };
    let mut text = format!(
        "\nmcp-expose: tunnel ready ({} tunnel{})\n",
        status.kind,
        if status.restarts > 0 {
            format!(", restart {}", status.restarts)
        } else {
            String::new()
        },
    );
    let named = servers.len() > 1 || servers.iter().any(|(_, p)| !p.is_empty());
    for place in &places {
        if named {
            text.push_str(&format!("  {}:\n", place.name));
        }
        let indent = if named { "    " } else { "  " };
        if let Some(url) = &place.http {
            text.push_str(&format!("{indent}streamable HTTP: {url}\n"));
        }
        if let Some(url) = &place.ws {
            text.push_str(&format!("{indent}WebSocket:       {url}\n"));
        }
    }
    text.push_str(&describe(&configs(&places, token.as_deref())));
    if !access.enabled {
        text.push_str(
            "  warning: no authentication (--no-auth): anyone with the URL can call the tools\n",
        );
    }
    if *kind == TunnelKind::Quick {
        text.push_str(
            "  note: quick tunnels buffer GET event streams; clients should prefer the WebSocket URL or \
             POST-response streams. A restart brings a new URL.\n",
        );
    }
    text
}
