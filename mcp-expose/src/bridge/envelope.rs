//! Envelope-only JSON-RPC parsing: the id, the method, and a progress token, with everything
//! else left as raw JSON. The bridge routes messages without re-serialising their params.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<Meta<'a>>,
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

/// What kind of message a frame holds. Ids and tokens are their raw JSON text (`1`, `"a"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Request {
        id: String,
        method: String,
        progress_token: Option<String>,
    },
    Notification {
        method: String,
        progress_token: Option<String>,
    },
    Response {
        id: String,
    },
}

/// Parses the envelope of one message; `Err` carries a JSON-RPC error code and message.
pub(crate) fn parse(frame: &[u8]) -> Result<Message, (i64, String)> {
    let envelope: Envelope<'_> = match serde_json::from_slice(frame) {
        Ok(envelope) => envelope,
        Err(e) if e.is_syntax() || e.is_eof() => return Err((-32700, format!("Parse error: {e}"))),
        Err(e) => return Err((-32600, format!("Invalid Request: {e}"))),
    };
    let token = |params: Option<&RawValue>| {
        let params: Params<'_> = serde_json::from_str(params?.get()).ok()?;
        params
            .meta
            .and_then(|m| m.progress_token)
            .or(params.progress_token)
            .map(|t| t.get().to_owned())
    };
    match (envelope.id, envelope.method) {
        (Some(id), Some(method)) => Ok(Message::Request {
            id: id.get().to_owned(),
            method: method.into_owned(),
            progress_token: token(envelope.params),
        }),
        (None, Some(method)) => Ok(Message::Notification {
            method: method.into_owned(),
            progress_token: token(envelope.params),
        }),
        (Some(id), None) => Ok(Message::Response {
            id: id.get().to_owned(),
        }),
        (None, None) => Err((
            -32600,
            "Invalid Request: neither a method nor an id".to_owned(),
        )),
    }
}

/// The JSON-RPC error response for request `id` (raw JSON text, or `null`).
pub(crate) fn error(id: &str, code: i64, message: &str) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#)
}

/// `frame` with its top-level `id` replaced by `id` (raw JSON); other members stay raw.
pub(crate) fn with_id(frame: &[u8], id: &str) -> Option<String> {
    let members: std::collections::BTreeMap<std::borrow::Cow<'_, str>, &RawValue> =
        serde_json::from_slice(frame).ok()?;
    let new_id = RawValue::from_string(id.to_owned()).ok()?;
    let mut out = String::with_capacity(frame.len() + id.len());
    out.push_str(r#"{"id":"#);
    out.push_str(new_id.get());
    for (key, value) in members.into_iter().filter(|(k, _)| k != "id") {
        out.push(',');
        out.push_str(&serde_json::to_string(&key).ok()?);
        out.push(':');
        out.push_str(value.get());
    }
    out.push('}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"p1"}}}"#;
        assert_eq!(
            parse(call),
            Ok(Message::Request {
                id: "7".into(),
                method: "tools/call".into(),
                progress_token: Some("\"p1\"".into())
            })
        );
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":1}}"#;
        assert!(
            matches!(parse(progress), Ok(Message::Notification { progress_token: Some(t), .. }) if t == "\"p1\"")
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Message::Response { id: "\"a\"".into() })
        );
        assert_eq!(parse(b"{nope").map_err(|e| e.0), Err(-32700));
        assert_eq!(parse(b"[1]").map_err(|e| e.0), Err(-32600));
        let rewritten = with_id(call, "\"s1-7\"").expect("rewritten");
        let value: serde_json::Value = serde_json::from_str(&rewritten).expect("json");
        assert_eq!(value["id"], "s1-7");
        assert_eq!(value["params"]["_meta"]["progressToken"], "p1");
        let error: serde_json::Value =
            serde_json::from_str(&error("7", -32000, "gone \"x\"")).expect("json");
        assert_eq!(error["error"]["message"], "gone \"x\"");
    }
}
