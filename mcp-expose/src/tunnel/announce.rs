//! What a ready tunnel prints: the public URLs and client configs to paste.

use super::{TunnelKind, TunnelStatus};

/// Ready-to-paste client configurations for a tunnel.
pub fn client_configs(server_name: &str, status: &TunnelStatus) -> Option<serde_json::Value> {
    let mcp = status.mcp_url()?;
    Some(serde_json::json!({
        "claude_desktop": { "mcpServers": { server_name: { "command": "npx", "args": ["mcp-remote", mcp] } } },
        "websocket": { "transport": "websocket", "uri": status.ws_url() },
        "streamable_http": { "type": "http", "url": mcp },
    }))
}

/// The block printed on stderr when the tunnel becomes ready.
pub(crate) fn banner(
    server_name: &str,
    status: &TunnelStatus,
    kind: &TunnelKind,
    serves_ws: bool,
) -> String {
    let (Some(mcp), Some(configs)) = (status.mcp_url(), client_configs(server_name, status)) else {
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
    if *kind == TunnelKind::Quick {
        text.push_str(
            "  note: quick tunnels buffer GET event streams; clients should prefer the WebSocket URL or \
             POST-response streams. A restart brings a new URL.\n",
        );
    }
    text
}
