//! The landing page at `GET /` (for a person with a browser) and its JSON twin at
//! `GET /.well-known/mcp` (for machines): what this server is and how to connect to it.
//! Without a valid token (when one is required), only the name and how to connect are shown.

use serde_json::{Value, json};

/// What the page shows.
#[derive(Debug)]
pub(crate) struct Landing {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: Option<String>,
    /// Streamable HTTP and WebSocket URLs (public ones first when tunneled).
    pub(crate) http_urls: Vec<String>,
    pub(crate) ws_urls: Vec<String>,
    pub(crate) auth_required: bool,
    /// The tools, when the visitor may see them.
    pub(crate) tools: Option<Vec<rmcp::model::Tool>>,
}

impl Landing {
    fn configs(&self) -> Value {
        let http = self.http_urls.first();
        let ws = self.ws_urls.first();
        let mut args = vec![json!("connect"), json!(http.or(ws))];
        let mut entry = json!({ "command": "mcp-expose" });
        if self.auth_required {
            args.extend([
                json!("--header-env"),
                json!("Authorization=MCP_EXPOSE_AUTH"),
            ]);
            entry["env"] = json!({ "MCP_EXPOSE_AUTH": "Bearer <your token>" });
        }
        entry["args"] = Value::Array(args);
        json!({
            "claude_desktop": { "mcpServers": { self.name.clone(): entry } },
            "websocket": ws.map(|uri| json!({ "transport": "websocket", "uri": uri })),
            "streamable_http": http.map(|url| json!({ "type": "http", "url": url })),
        })
    }

    /// The JSON twin.
    pub(crate) fn json(&self) -> Value {
        let tools = self.tools.as_ref().map(|tools| {
            tools
                .iter()
                .map(|t| json!({ "name": t.name, "description": t.description, "inputSchema": t.input_schema }))
                .collect::<Vec<_>>()
        });
        json!({
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "endpoints": { "streamable_http": self.http_urls, "websocket": self.ws_urls },
            "authentication": if self.auth_required { "bearer" } else { "none" },
            "client_configs": self.configs(),
            "tools": tools,
        })
    }

    /// The HTML page: one document, inline styles, no scripts or external assets.
    pub(crate) fn html(&self) -> String {
        let mut page = String::with_capacity(8 * 1024);
        page.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
        page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        page.push_str(&format!(
            "<title>{} — MCP server</title>",
            escape(&self.name)
        ));
        page.push_str(
            "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}\
             code,pre{font:13px ui-monospace,monospace;background:#f3f3f5;border-radius:4px}\
             pre{padding:.75rem;overflow-x:auto;white-space:pre-wrap}code{padding:.1rem .3rem}\
             h1{margin-bottom:0}.muted{color:#666}.tool{border-top:1px solid #ddd;padding:.5rem 0}\
             details summary{cursor:pointer;color:#555}</style></head><body>",
        );
        page.push_str(&format!(
            "<h1>{}</h1><p class=\"muted\">MCP server · version {}</p>",
            escape(&self.name),
            escape(&self.version)
        ));
        if let Some(description) = &self.description {
            page.push_str(&format!("<p>{}</p>", escape(description)));
        }
        page.push_str("<h2>Connect</h2><ul>");
        for url in &self.http_urls {
            page.push_str(&format!(
                "<li>Streamable HTTP: <code>{}</code></li>",
                escape(url)
            ));
        }
        for url in &self.ws_urls {
            page.push_str(&format!("<li>WebSocket: <code>{}</code></li>", escape(url)));
        }
        page.push_str("</ul>");
        if self.auth_required {
            page.push_str("<p>This server requires a bearer token: send <code>Authorization: Bearer &lt;token&gt;</code>.</p>");
        }
        let configs = self.configs();
        page.push_str("<h3>Claude Desktop (<code>claude_desktop_config.json</code>)</h3>");
        page.push_str(&format!(
            "<pre id=\"claude-config\">{}</pre>",
            escape(&pretty(&configs["claude_desktop"]))
        ));
        if !configs["websocket"].is_null() {
            page.push_str("<h3>WebSocket clients</h3>");
            page.push_str(&format!(
                "<pre id=\"websocket-config\">{}</pre>",
                escape(&pretty(&configs["websocket"]))
            ));
        }
        match &self.tools {
            Some(tools) => {
                page.push_str(&format!("<h2>Tools ({})</h2>", tools.len()));
                for tool in tools {
                    page.push_str(&format!(
                        "<div class=\"tool\"><strong><code>{}</code></strong><br>{}<details><summary>input schema</summary><pre>{}</pre></details></div>",
                        escape(&tool.name),
                        escape(tool.description.as_deref().unwrap_or("")),
                        escape(&pretty(&Value::Object((*tool.input_schema).clone())))
                    ));
                }
            }
            None => page.push_str("<p class=\"muted\">Present a token to see the tools.</p>"),
        }
        page.push_str("<p class=\"muted\">Served by mcp-expose. Machine-readable: <code>/.well-known/mcp</code></p></body></html>");
        page
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
