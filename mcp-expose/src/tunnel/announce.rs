//! What a ready tunnel prints: the public URLs and client configs to paste.

use super::{TunnelKind, TunnelStatus};
use crate::serve::Access;

/// Ready-to-paste client configurations for a tunnel: Claude Desktop through `mcp-expose
/// connect` (the stdio connector), WebSocket, and streamable HTTP. With `token`, each carries
/// `Authorization: Bearer <token>` (for Claude Desktop through an environment variable, since
/// desktop clients on Windows split arguments at spaces).
pub fn client_configs(
    server_name: &str,
    status: &TunnelStatus,
    token: Option<&str>,
) -> Option<serde_json::Value> {
    let mcp = status.mcp_url()?;
    let Some(token) = token else {
        return Some(serde_json::json!({
            "claude_desktop": { "mcpServers": { server_name: { "command": "mcp-expose", "args": ["connect", mcp] } } },
            "websocket": { "transport": "websocket", "uri": status.ws_url() },
            "streamable_http": { "type": "http", "url": mcp },
        }));
    };
    let bearer = format!("Bearer {token}");
    Some(serde_json::json!({
        "claude_desktop": { "mcpServers": { server_name: {
            "command": "mcp-expose",
            "args": ["connect", mcp, "--header-env", "Authorization=MCP_EXPOSE_AUTH"],
            "env": { "MCP_EXPOSE_AUTH": bearer },
        } } },
        "websocket": { "transport": "websocket", "uri": status.ws_url(), "headers": { "Authorization": bearer } },
        "streamable_http": { "type": "http", "url": mcp, "headers": { "Authorization": bearer } },
    }))
}

/// The block printed on stderr when the tunnel becomes ready.
pub(crate) fn banner(
    server_name: &str,
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
    let (Some(mcp), Some(configs)) = (
        status.mcp_url(),
        client_configs(server_name, status, token.as_deref()),
    ) else {
        return String::new();
    };
    let mut text = format!(
        "\nmcp-expose: tunnel ready ({} tunnel{})\n  streamable HTTP: {mcp}\n",
        status.kind,
        if status.restarts > 0 {
            format!(", restart {}", status.restarts)
        } else {
            String::new()
        },
    );
    if serves_ws && let Some(ws) = status.ws_url() {
        text.push_str(&format!("  WebSocket:       {ws}\n"));
    }
    text.push_str(&format!(
        "  Claude Desktop (claude_desktop_config.json):\n    {}\n",
        configs["claude_desktop"]
    ));
    if serves_ws {
        text.push_str(&format!(
            "  WebSocket clients:\n    {}\n",
            configs["websocket"]
        ));
    }
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
