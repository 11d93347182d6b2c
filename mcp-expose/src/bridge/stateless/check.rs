//! What a 2026-07-28 request must carry before the bridge serves it: its `_meta` (the revision
//! and the client's capabilities, the revision agreeing with the `MCP-Protocol-Version`
//! header), the `Mcp-Method` (and, for a named target, `Mcp-Name`) headers matching its body,
//! and for a tool whose parameters are mirrored in headers (`x-mcp-header`, SEP-2243), each
//! `Mcp-Param-*` header matching its argument.

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use super::{META_PREFIX, SUPPORTED, V2026};
use crate::jsonrpc;

/// The header and the body disagree (on the revision, the method or the name).
const HEADER_MISMATCH: i32 = -32020;
/// The revision asked for is not served.
const UNSUPPORTED_VERSION: i32 = -32022;

/// Why a request is refused: its error's code, message and data.
pub(super) type Refusal = (i32, String, Option<Value>);

/// Checks `request` (the body, parsed) against `headers`; `Ok` or why not.
pub(super) fn check(headers: &HeaderMap, request: &Value) -> Result<(), Refusal> {
    meta(headers, request)?;
    names(headers, request)
}

/// A header's value as SEP-2243 encodes it: `=?base64?..?=` wraps Base64 (which must be
/// valid), anything else is literal. `None` when the Base64 is not valid UTF-8 text.
fn decoded(value: &str) -> Option<String> {
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    String::from_utf8(STANDARD.decode(inner).ok()?).ok()
}

/// A JSON primitive as a header carries it; `None` for null, arrays and objects.
fn primitive(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `Mcp-Param-*` headers of a `tools/call` against the arguments they mirror, as the
/// tool's input schema (`schema`) annotates them with `x-mcp-header`.
pub(super) fn params(headers: &HeaderMap, request: &Value, schema: &Value) -> Result<(), Refusal> {
    let mismatch = |text: String| Err((HEADER_MISMATCH, text, None));
    let Some(properties) = schema["properties"].as_object() else {
        return Ok(());
    };
    let arguments = &request["params"]["arguments"];
    for (name, property) in properties {
        let Some(suffix) = property["x-mcp-header"].as_str() else {
            continue;
        };
        let full = format!("Mcp-Param-{suffix}");
        let body = arguments.get(name).and_then(primitive);
        match (header(headers, &full), body) {
            (None, None) => {}
            (Some(_), None) => {
                return mismatch(format!("unexpected {full} header for absent `{name}`"));
            }
            (None, Some(_)) => return mismatch(format!("missing {full} header for `{name}`")),
            (Some(raw), Some(expected)) => match decoded(raw) {
                None => return mismatch(format!("{full} header is not valid Base64")),
                Some(value) if value != expected => {
                    return mismatch(format!(
                        "{full} header `{value}` does not match `{name}` in the body"
                    ));
                }
                Some(_) => {}
            },
        }
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn meta(headers: &HeaderMap, request: &Value) -> Result<(), Refusal> {
    let meta = &request["params"]["_meta"];
    let invalid = |text: String| Err((jsonrpc::INVALID_PARAMS, text, None));
    if !meta.is_object() {
        return invalid(format!(
            "Invalid params: no _meta (MCP {V2026} requests carry one)"
        ));
    }
    let Some(version) = meta[format!("{META_PREFIX}protocolVersion")].as_str() else {
        return invalid(format!(
            "Invalid params: _meta has no {META_PREFIX}protocolVersion"
        ));
    };
    if !meta[format!("{META_PREFIX}clientCapabilities")].is_object() {
        return invalid(format!(
            "Invalid params: _meta has no {META_PREFIX}clientCapabilities"
        ));
    }
    if let Some(header) = header(headers, "mcp-protocol-version").filter(|h| *h != version) {
        let text = format!(
            "MCP-Protocol-Version header `{header}` does not match _meta protocolVersion `{version}`"
        );
        return Err((HEADER_MISMATCH, text, None));
    }
    if version != V2026 {
        let data = json!({ "requested": version, "supported": SUPPORTED });
        let text = "Unsupported protocol version".to_owned();
        return Err((UNSUPPORTED_VERSION, text, Some(data)));
    }
    Ok(())
}

/// `Mcp-Method` names the body's method, `Mcp-Name` the tool, prompt or resource it targets
/// (values are case-sensitive).
fn names(headers: &HeaderMap, request: &Value) -> Result<(), Refusal> {
    let mismatch = |text: String| Err((HEADER_MISMATCH, text, None));
    let method = request["method"].as_str().unwrap_or_default();
    match header(headers, "mcp-method") {
        None => return mismatch("missing required Mcp-Method header".to_owned()),
        Some(header) if header != method => {
            return mismatch(format!(
                "Mcp-Method header `{header}` does not match body method `{method}`"
            ));
        }
        Some(_) => {}
    }
    let target = match method {
        "tools/call" | "prompts/get" => request["params"]["name"].as_str(),
        "resources/read" => request["params"]["uri"].as_str(),
        "tasks/get" | "tasks/update" | "tasks/cancel" => request["params"]["taskId"].as_str(),
        _ => None,
    };
    let Some(target) = target else {
        return Ok(());
    };
    match header(headers, "mcp-name").map(|raw| (raw, decoded(raw))) {
        None => mismatch(format!("missing required Mcp-Name header for `{method}`")),
        Some((_, None)) => mismatch("Mcp-Name header is not valid Base64".to_owned()),
        Some((raw, Some(value))) if value != target => mismatch(format!(
            "Mcp-Name header `{raw}` does not match `{target}` in the body"
        )),
        Some(_) => Ok(()),
    }
}

/// The capability the child's request to the client needs, when it is one the client declares.
pub(super) fn capability(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// The error body refusing request `id` (raw JSON).
pub(super) fn refusal(id: &str, (code, message, data): Refusal) -> String {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    let id: Value = serde_json::from_str(id).unwrap_or(Value::Null);
    json!({ "jsonrpc": "2.0", "id": id, "error": error }).to_string()
}
