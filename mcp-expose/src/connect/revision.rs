//! The HTTP headers MCP 2026-07-28 requires of a request over streamable HTTP, from the request
//! itself: `MCP-Protocol-Version` (the version its `_meta` names), `Mcp-Method`, `Mcp-Name`
//! (the tool, prompt, resource or task it targets), and for a `tools/call` an `Mcp-Param-*`
//! header for each argument the tool's schema marks with `x-mcp-header` (SEP-2243), learnt
//! from the server's `tools/list` ([`ToolHeaders`]). Values that are not plain visible ASCII
//! go in Base64, as `=?base64?..?=`.

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::Value;

/// Where a request's `_meta` names its protocol version (MCP 2026-07-28 on).
const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// The headers `line` (one JSON-RPC message) needs when it is a request whose `_meta` names a
/// protocol version; none otherwise (2025 revisions, responses, notifications without one).
pub(crate) fn headers(line: &str, tools: &ToolHeaders) -> Vec<(String, String)> {
    if !line.contains(VERSION_KEY) {
        return Vec::new();
    }
    let Ok(message) = serde_json::from_str::<Value>(line) else {
        return Vec::new();
    };
    let params = &message["params"];
    let Some(version) = params["_meta"][VERSION_KEY].as_str() else {
        return Vec::new();
    };
    let mut headers = vec![("mcp-protocol-version".to_owned(), version.to_owned())];
    let Some(method) = message["method"].as_str() else {
        return headers;
    };
    headers.push(("mcp-method".to_owned(), method.to_owned()));
    let target = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        "tasks/get" | "tasks/update" | "tasks/cancel" => params["taskId"].as_str(),
        _ => None,
    };
    if let Some(target) = target {
        headers.push(("mcp-name".to_owned(), encoded(target)));
    }
    if method == "tools/call"
        && let Some(tool) = target
    {
        headers.extend(tools.params(tool, &params["arguments"]));
    }
    headers
}

/// Whether `line` is a request of MCP 2026-07-28 or later (its `_meta` names a version).
pub(super) fn is_versioned(line: &str) -> bool {
    line.contains(VERSION_KEY)
}

/// The `x-mcp-header` annotations of the server's tools, from its `tools/list` answers.
#[derive(Debug, Default)]
pub(super) struct ToolHeaders {
    /// Tool name: (argument, header suffix) pairs.
    valid: HashMap<String, Vec<(String, String)>>,
    /// Tool name: why its annotations are invalid (the tool is hidden and not called).
    invalid: HashMap<String, String>,
    listed: bool,
}

impl ToolHeaders {
    /// Whether a `tools/list` answer has been read.
    pub(super) fn listed(&self) -> bool {
        self.listed
    }

    /// Why `tool` may not be called, when its annotations are invalid.
    pub(super) fn refusal(&self, tool: &str) -> Option<&str> {
        self.invalid.get(tool).map(String::as_str)
    }

    /// Reads a `tools/list` answer: remembers each tool's annotations, and returns the answer
    /// without the tools whose annotations are invalid (SEP-2243: a client must not call
    /// them), or `None` when nothing was removed.
    pub(super) fn learn(&mut self, answer: &str) -> Option<String> {
        let mut reply: Value = serde_json::from_str(answer).ok()?;
        let tools = reply.get_mut("result")?.get_mut("tools")?.as_array_mut()?;
        self.listed = true;
        let before = tools.len();
        tools.retain(|tool| {
            let Some(name) = tool["name"].as_str() else {
                return true;
            };
            match annotations(&tool["inputSchema"]) {
                Ok(pairs) => {
                    self.invalid.remove(name);
                    self.valid.insert(name.to_owned(), pairs);
                    true
                }
                Err(reason) => {
                    tracing::warn!(tool = name, %reason, "hiding a tool whose x-mcp-header annotations are invalid");
                    self.valid.remove(name);
                    self.invalid.insert(name.to_owned(), reason);
                    false
                }
            }
        });
        (tools.len() != before).then(|| reply.to_string())
    }

    /// The `Mcp-Param-*` headers of a call to `tool` with `arguments`.
    fn params(&self, tool: &str, arguments: &Value) -> Vec<(String, String)> {
        let Some(pairs) = self.valid.get(tool) else {
            return Vec::new();
        };
        pairs
            .iter()
            .filter_map(|(argument, suffix)| {
                let value = match arguments.get(argument)? {
                    Value::String(s) => param_value(s),
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((format!("mcp-param-{suffix}"), value))
            })
            .collect()
    }
}

/// A tool's valid `x-mcp-header` annotations, or why they are invalid: each must be a
/// non-empty header token, unique ignoring case, on a string, integer or boolean property.
fn annotations(schema: &Value) -> Result<Vec<(String, String)>, String> {
    let Some(properties) = schema["properties"].as_object() else {
        return Ok(Vec::new());
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (argument, property) in properties {
        let Some(annotation) = property.get("x-mcp-header") else {
            continue;
        };
        let Some(suffix) = annotation.as_str().filter(|s| !s.is_empty()) else {
            return Err(format!(
                "`{argument}` has an empty or non-string x-mcp-header"
            ));
        };
        if !suffix.bytes().all(is_token_char) {
            return Err(format!(
                "`{argument}`'s x-mcp-header {suffix:?} is not a valid header name"
            ));
        }
        if !matches!(
            property["type"].as_str(),
            Some("string" | "integer" | "boolean")
        ) {
            return Err(format!(
                "`{argument}` carries an x-mcp-header but is not a string, integer or boolean"
            ));
        }
        if pairs.iter().any(|(_, s)| s.eq_ignore_ascii_case(suffix)) {
            return Err(format!("x-mcp-header {suffix:?} is used twice"));
        }
        pairs.push((argument.clone(), suffix.to_owned()));
    }
    Ok(pairs)
}

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An argument's value as its `Mcp-Param-*` header carries it: as it is when it is visible
/// ASCII without surrounding spaces (empty included), else `=?base64?..?=`.
fn param_value(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    encoded(value)
}

/// `value` as a header carries it: as it is when it is visible ASCII (inner spaces allowed),
/// else `=?base64?..?=`.
fn encoded(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.starts_with("=?base64?");
    if plain {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2026_request_carries_its_version_method_and_target() {
        let line = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"gc_content","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let none = ToolHeaders::default();
        let pairs = |h: Vec<(String, String)>| {
            h.into_iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(headers(line, &none)),
            [
                "mcp-protocol-version: 2026-07-28",
                "mcp-method: tools/call",
                "mcp-name: gc_content"
            ]
        );
        let discover = r#"{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        assert_eq!(headers(discover, &none).len(), 2);
        let old = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#;
        assert!(headers(old, &none).is_empty());
    }

    #[test]
    fn annotated_arguments_become_param_headers_and_invalid_tools_are_hidden() {
        let list = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[
            {"name":"ok","inputSchema":{"type":"object","properties":{
                "region":{"type":"string","x-mcp-header":"Region"},
                "n":{"type":"integer","x-mcp-header":"N"},
                "flag":{"type":"boolean","x-mcp-header":"Flag"},
                "empty":{"type":"string","x-mcp-header":"Empty"},
                "f":{"type":"number"}}}},
            {"name":"bad_type","inputSchema":{"type":"object","properties":{"x":{"type":"number","x-mcp-header":"X"}}}},
            {"name":"bad_name","inputSchema":{"type":"object","properties":{"x":{"type":"string","x-mcp-header":"a b"}}}},
            {"name":"twice","inputSchema":{"type":"object","properties":{
                "a":{"type":"string","x-mcp-header":"Same"},"b":{"type":"string","x-mcp-header":"same"}}}}
        ]}}"#;
        let mut tools = ToolHeaders::default();
        let filtered: Value = serde_json::from_str(&tools.learn(list).expect("filtered")).unwrap();
        let names: Vec<_> = filtered["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["ok"]);
        assert!(tools.refusal("twice").is_some() && tools.refusal("ok").is_none());
        let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ok","arguments":{"region":" us","n":42,"flag":false,"empty":"","f":1.5},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let mut params: Vec<_> = headers(call, &tools)
            .into_iter()
            .filter(|(n, _)| n.starts_with("mcp-param-"))
            .collect();
        params.sort();
        assert_eq!(
            params,
            [
                ("mcp-param-Empty".to_owned(), String::new()),
                ("mcp-param-Flag".to_owned(), "false".to_owned()),
                ("mcp-param-N".to_owned(), "42".to_owned()),
                ("mcp-param-Region".to_owned(), "=?base64?IHVz?=".to_owned()),
            ]
        );
    }

    #[test]
    fn names_that_are_not_plain_ascii_go_in_base64() {
        assert_eq!(encoded("file:///a b.txt"), "file:///a b.txt");
        assert_eq!(encoded("café"), "=?base64?Y2Fmw6k=?=");
        assert_eq!(encoded(" lead"), "=?base64?IGxlYWQ=?=");
    }
}
