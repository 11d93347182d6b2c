//! Ready-to-paste client configurations, in the forms each client reads: Claude Desktop
//! (through `mcp-expose connect`, its stdio connector), Claude Code (`.mcp.json`), Cursor
//! (`~/.cursor/mcp.json`), VS Code (`.vscode/mcp.json`), and plain WebSocket and streamable
//! HTTP entries. One place builds them for the landing page, `/.well-known/mcp`, the tunnel's
//! banner and the bridge's and gateway's start-up notice.

use serde_json::{Map, Value, json};

/// One server as clients reach it.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The name clients list it under.
    pub(crate) name: String,
    /// Its streamable HTTP URL, when served.
    pub(crate) http: Option<String>,
    /// Its WebSocket URL, when served.
    pub(crate) ws: Option<String>,
}

/// The configs for `places`, each client's servers under one key; with `token`, each carries
/// `Authorization: Bearer <token>` (for Claude Desktop through an environment variable, since
/// desktop clients on Windows split arguments at spaces).
pub(crate) fn configs(places: &[Place], token: Option<&str>) -> Value {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers = bearer
        .as_ref()
        .map(|b| json!({ "Authorization": b }))
        .unwrap_or(Value::Null);
    let mut desktop = Map::new();
    let mut code = Map::new();
    let mut cursor = Map::new();
    let mut vscode = Map::new();
    let mut websocket = Vec::new();
    let mut http = Vec::new();
    for place in places {
        let Some(url) = place.http.as_ref().or(place.ws.as_ref()) else {
            continue;
        };
        let mut args = vec![json!("connect"), json!(url)];
        let mut entry = json!({ "command": "mcp-expose" });
        if let Some(bearer) = &bearer {
            args.extend([
                json!("--header-env"),
                json!("Authorization=MCP_EXPOSE_AUTH"),
            ]);
            entry["env"] = json!({ "MCP_EXPOSE_AUTH": bearer });
        }
        entry["args"] = Value::Array(args);
        desktop.insert(place.name.clone(), entry);
        if let Some(url) = &place.http {
            let with_headers = |mut entry: Value| {
                if !headers.is_null() {
                    entry["headers"] = headers.clone();
                }
                entry
            };
            code.insert(
                place.name.clone(),
                with_headers(json!({ "type": "http", "url": url })),
            );
            cursor.insert(place.name.clone(), with_headers(json!({ "url": url })));
            vscode.insert(
                place.name.clone(),
                with_headers(json!({ "type": "http", "url": url })),
            );
            http.push(with_headers(json!({ "type": "http", "url": url })));
        }
        if let Some(uri) = &place.ws {
            let mut entry = json!({ "transport": "websocket", "uri": uri });
            if !headers.is_null() {
                entry["headers"] = headers.clone();
            }
            websocket.push(entry);
        }
    }
    // One server: the plain entries are objects, as they always were; several: lists.
    let one_or_list = |mut list: Vec<Value>| match list.len() {
        0 => Value::Null,
        1 => list.remove(0),
        _ => Value::Array(list),
    };
    json!({
        "claude_desktop": { "mcpServers": desktop },
        "claude_code": { "mcpServers": code },
        "cursor": { "mcpServers": cursor },
        "vscode": { "servers": vscode },
        "websocket": one_or_list(websocket),
        "streamable_http": one_or_list(http),
    })
}

/// Each client config: its key in [`configs`], the client's name, the file it goes in, and the
/// landing page's element id for it.
pub(crate) const CLIENTS: [(&str, &str, &str, &str); 4] = [
    (
        "claude_desktop",
        "Claude Desktop",
        "claude_desktop_config.json",
        "claude-config",
    ),
    (
        "claude_code",
        "Claude Code",
        ".mcp.json",
        "claude-code-config",
    ),
    ("cursor", "Cursor", "~/.cursor/mcp.json", "cursor-config"),
    ("vscode", "VS Code", ".vscode/mcp.json", "vscode-config"),
];

/// Whether a client's config (`{"mcpServers": {..}}` or `{"servers": {..}}`) names a server.
pub(crate) fn lists_servers(config: &Value) -> bool {
    config
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_object)
        .is_some_and(|servers| !servers.is_empty())
}

/// The lines a person pastes, for a terminal: each client's file and its JSON on one line.
#[cfg_attr(not(feature = "tunnel"), allow(dead_code))]
pub(crate) fn describe(configs: &Value) -> String {
    let mut text = String::new();
    for (key, name, file, _) in CLIENTS {
        if lists_servers(&configs[key]) {
            text.push_str(&format!("  {name} ({file}):\n    {}\n", configs[key]));
        }
    }
    if !configs["websocket"].is_null() {
        text.push_str(&format!(
            "  WebSocket clients:\n    {}\n",
            configs["websocket"]
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_own_form() {
        let places = [Place {
            name: "bio".into(),
            http: Some("https://h/mcp".into()),
            ws: Some("wss://h/ws".into()),
        }];
        let c = configs(&places, Some("t"));
        assert_eq!(c["claude_code"]["mcpServers"]["bio"]["type"], "http");
        assert_eq!(
            c["cursor"]["mcpServers"]["bio"],
            json!({ "url": "https://h/mcp", "headers": { "Authorization": "Bearer t" } })
        );
        assert_eq!(c["vscode"]["servers"]["bio"]["url"], "https://h/mcp");
        assert_eq!(
            c["claude_desktop"]["mcpServers"]["bio"]["env"]["MCP_EXPOSE_AUTH"],
            "Bearer t"
        );
        assert_eq!(c["websocket"]["uri"], "wss://h/ws");
        let open = configs(&places, None);
        assert!(open["cursor"]["mcpServers"]["bio"].get("headers").is_none());
        assert!(describe(&open).contains("VS Code (.vscode/mcp.json)"));
    }
}
