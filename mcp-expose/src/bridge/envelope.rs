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
    // serde would read a struct from an array too: only an object is a message.
    match frame.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') => {
            return Err((
                -32600,
                "Invalid Request: batches are not supported".to_owned(),
            ));
        }
        _ if serde_json::from_slice::<serde::de::IgnoredAny>(frame).is_ok() => {
            return Err((
                -32600,
                "Invalid Request: a message must be an object".to_owned(),
            ));
        }
        _ => return Err((-32700, "Parse error: not JSON".to_owned())),
    }
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

type Members<'a> = std::collections::BTreeMap<std::borrow::Cow<'a, str>, &'a RawValue>;

/// `object` (raw JSON) with some members replaced by raw JSON values; the others are copied
/// as they are.
pub(crate) fn replace(object: &str, replacements: &[(&str, &str)]) -> Option<String> {
    let members: Members<'_> = serde_json::from_str(object).ok()?;
    let mut out = String::with_capacity(object.len() + 32);
    out.push('{');
    let mut first = true;
    let mut push = |out: &mut String, key: &str, value: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
        out.push(':');
        out.push_str(value);
    };
    for (key, value) in &members {
        let replaced = replacements.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        push(&mut out, key, replaced.unwrap_or(value.get()));
    }
    for (key, value) in replacements {
        if !members.contains_key(*key) {
            push(&mut out, key, value);
        }
    }
    out.push('}');
    Some(out)
}

/// A member of `object` (raw JSON), as raw JSON text.
pub(crate) fn member<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let members: Members<'a> = serde_json::from_str(object).ok()?;
    members.get(key).map(|v| v.get())
}

/// `frame` with its top-level `id` replaced by `id` (raw JSON); other members stay raw.
pub(crate) fn with_id(frame: &[u8], id: &str) -> Option<String> {
    replace(std::str::from_utf8(frame).ok()?, &[("id", id)])
}

/// `frame` with `params.<key>` replaced (`_meta.progressToken` when `key` is `_meta.progressToken`).
pub(crate) fn with_param(frame: &str, key: &str, value: &str) -> Option<String> {
    let params = member(frame, "params")?;
    let params = match key.split_once('.') {
        Some((outer, inner)) => {
            let nested = member(params, outer)?;
            replace(params, &[(outer, &replace(nested, &[(inner, value)])?)])?
        }
        None => replace(params, &[(key, value)])?,
    };
    replace(frame, &[("params", &params)])
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
