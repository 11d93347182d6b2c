//! The landing page at `GET /` (for a person with a browser) and its JSON twin at
//! `GET /.well-known/mcp` (for machines): what this server is and how to connect to it.
//! Without a valid token (when one is required), only the name and how to connect are shown.

use serde_json::{Value, json};

use super::clients::{CLIENTS, Place, configs, lists_servers};

/// What the page shows.
#[derive(Debug)]
pub(crate) struct Landing {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: Option<String>,
    /// The servers behind this listener: one, or a gateway's several.
    pub(crate) servers: Vec<Listed>,
    pub(crate) auth_required: bool,
}

/// One server on the page: where to connect (public URLs first) and its tools.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) name: String,
    pub(crate) http_urls: Vec<String>,
    pub(crate) ws_urls: Vec<String>,
    /// Legacy HTTP+SSE (protocol revision 2024-11-05), for clients older than streamable HTTP.
    pub(crate) sse_urls: Vec<String>,
    pub(crate) tools: Tools,
}

/// What the page can say of a server's tools.
#[derive(Debug)]
pub(crate) enum Tools {
    /// These (the visitor may see them).
    Listed(Vec<rmcp::model::Tool>),
    /// A token is needed to see them.
    Hidden,
    /// A bridged server: its tools are its own, listed over MCP.
    Bridged,
}

impl Landing {
    fn configs(&self) -> Value {
        let places: Vec<Place> = self
            .servers
            .iter()
            .map(|s| Place {
                name: s.name.clone(),
                http: s.http_urls.first().cloned(),
                ws: s.ws_urls.first().cloned(),
            })
            .collect();
        configs(&places, self.auth_required.then_some("<your token>"))
    }

    /// The JSON twin.
    pub(crate) fn json(&self) -> Value {
        let tools = |listed: &Listed| {
            match &listed.tools {
            Tools::Listed(tools) => Value::Array(
                tools
                    .iter()
                    .map(|t| json!({ "name": t.name, "description": t.description, "inputSchema": t.input_schema }))
                    .collect(),
            ),
            Tools::Hidden | Tools::Bridged => Value::Null,
        }
        };
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "endpoints": {
                        "streamable_http": s.http_urls,
                        "websocket": s.ws_urls,
                        "sse": s.sse_urls,
                    },
                    "tools": tools(s),
                })
            })
            .collect();
        let all = |urls: fn(&Listed) -> &Vec<String>| {
            self.servers
                .iter()
                .flat_map(|s| urls(s).iter().cloned())
                .collect::<Vec<_>>()
        };
        json!({
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "endpoints": {
                "streamable_http": all(|s| &s.http_urls),
                "websocket": all(|s| &s.ws_urls),
                "sse": all(|s| &s.sse_urls),
            },
            "authentication": if self.auth_required { "bearer" } else { "none" },
            "client_configs": self.configs(),
            "tools": match self.servers.as_slice() { [one] => tools(one), _ => Value::Null },
            "servers": servers,
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
        let several = self.servers.len() > 1;
        if several {
            page.push_str(&format!("<h2>Servers ({})</h2>", self.servers.len()));
        }
        for server in &self.servers {
            if several {
                page.push_str(&format!(
                    "<h2 class=\"server\"><code>{}</code></h2>",
                    escape(&server.name)
                ));
            } else {
                page.push_str("<h2>Connect</h2>");
            }
            page.push_str("<ul>");
            for url in &server.http_urls {
                page.push_str(&format!(
                    "<li>Streamable HTTP: <code>{}</code></li>",
                    escape(url)
                ));
            }
            for url in &server.ws_urls {
                page.push_str(&format!("<li>WebSocket: <code>{}</code></li>", escape(url)));
            }
            for url in &server.sse_urls {
                page.push_str(&format!(
                    "<li>Legacy HTTP+SSE (2024-11-05 clients): <code>{}</code></li>",
                    escape(url)
                ));
            }
            page.push_str("</ul>");
            tools_html(&mut page, &server.tools, several);
        }
        if self.auth_required {
            page.push_str("<p>This server requires a bearer token: send <code>Authorization: Bearer &lt;token&gt;</code>.</p>");
        }
        let configs = self.configs();
        for (key, name, file, id) in CLIENTS {
            if lists_servers(&configs[key]) {
                page.push_str(&format!(
                    "<h3>{name} (<code>{}</code>)</h3><pre id=\"{id}\">{}</pre>",
                    escape(file),
                    escape(&pretty(&configs[key]))
                ));
            }
        }
        if !configs["websocket"].is_null() {
            page.push_str("<h3>WebSocket clients</h3>");
            page.push_str(&format!(
                "<pre id=\"websocket-config\">{}</pre>",
                escape(&pretty(&configs["websocket"]))
            ));
        }
        page.push_str("<p class=\"muted\">Served by mcp-expose. Machine-readable: <code>/.well-known/mcp</code></p></body></html>");
        page
    }
}

fn tools_html(page: &mut String, tools: &Tools, several: bool) {
    let heading = if several { "h3" } else { "h2" };
    match tools {
        Tools::Listed(tools) => {
            page.push_str(&format!("<{heading}>Tools ({})</{heading}>", tools.len()));
            for tool in tools {
                page.push_str(&format!(
                    "<div class=\"tool\"><strong><code>{}</code></strong><br>{}<details><summary>input schema</summary><pre>{}</pre></details></div>",
                    escape(&tool.name),
                    escape(tool.description.as_deref().unwrap_or("")),
                    escape(&pretty(&Value::Object((*tool.input_schema).clone())))
                ));
            }
        }
        Tools::Hidden => page.push_str("<p class=\"muted\">Present a token to see the tools.</p>"),
        Tools::Bridged => page.push_str(
            "<p class=\"muted\">A bridged stdio server: MCP clients list its tools once connected.</p>",
        ),
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
