//! The HTTP headers MCP 2026-07-28 requires of a request over streamable HTTP, from the request
//! itself: `MCP-Protocol-Version` (the version its `_meta` names), `Mcp-Method`, and `Mcp-Name`
//! (the tool, prompt, resource or task it targets; Base64 in `=?base64?..?=` when the value is
//! not plain visible ASCII).

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::Value;

/// Where a request's `_meta` names its protocol version (MCP 2026-07-28 on).
const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// The headers `line` (one JSON-RPC message) needs when it is a request whose `_meta` names a
/// protocol version; none otherwise (2025 revisions, responses, notifications without one).
pub(super) fn headers(line: &str) -> Vec<(&'static str, String)> {
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
    let mut headers = vec![("mcp-protocol-version", version.to_owned())];
    let Some(method) = message["method"].as_str() else {
        return headers;
    };
    headers.push(("mcp-method", method.to_owned()));
    let target = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        "tasks/get" | "tasks/update" | "tasks/cancel" => params["taskId"].as_str(),
        _ => None,
    };
    if let Some(target) = target {
        headers.push(("mcp-name", encoded(target)));
    }
    headers
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
        assert_eq!(
            headers(line),
            [
                ("mcp-protocol-version", "2026-07-28".to_owned()),
                ("mcp-method", "tools/call".to_owned()),
                ("mcp-name", "gc_content".to_owned()),
            ]
        );
        let discover = r#"{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        assert_eq!(headers(discover).len(), 2);
        let old = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#;
        assert!(headers(old).is_empty());
    }

    #[test]
    fn names_that_are_not_plain_ascii_go_in_base64() {
        assert_eq!(encoded("file:///a b.txt"), "file:///a b.txt");
        assert_eq!(encoded("café"), "=?base64?Y2Fmw6k=?=");
        assert_eq!(encoded(" lead"), "=?base64?IGxlYWQ=?=");
    }
}
