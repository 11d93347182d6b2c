//! Decoding one JSON-RPC frame, and the error replies for frames that do not decode.

use rmcp::{RoleServer, service::RxJsonRpcMessage};
use serde_json::Value;

use crate::jsonrpc::{INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};

/// What to do with one incoming frame.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A message for the service.
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// An error reply to send back (the frame was not a usable message).
    Reply(String),
    /// Nothing can be answered (a malformed notification or response): logged and dropped.
    Ignore,
}

/// A JSON-RPC error response to `id` (a string, a number or `null`).
fn error_reply(id: &Value, code: i32, message: &str) -> String {
    crate::jsonrpc::error(&id.to_string(), code, message)
}

pub(crate) fn decode(frame: &[u8]) -> Decoded {
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(frame) {
        Ok(message) => Decoded::Message(Box::new(message)),
        Err(typed_error) => classify(frame, &typed_error),
    }
}

/// Works out why a frame did not decode, to answer with the right code. Only runs for bad
/// frames, so it may parse again.
fn classify(frame: &[u8], typed_error: &serde_json::Error) -> Decoded {
    let value: Value = match serde_json::from_slice(frame) {
        Ok(value) => value,
        Err(e) => {
            return Decoded::Reply(error_reply(
                &Value::Null,
                PARSE_ERROR,
                &format!("Parse error: {e}"),
            ));
        }
    };
    let Value::Object(object) = &value else {
        let message = if value.is_array() {
            "Invalid Request: batches are not supported; send one message per frame"
        } else {
            "Invalid Request: a JSON-RPC message must be an object"
        };
        return Decoded::Reply(error_reply(&Value::Null, INVALID_REQUEST, message));
    };
    let id = object
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned();
    let method = object.get("method").and_then(Value::as_str);
    let reply_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        if id.is_none() && method.is_some() {
            tracing::warn!("dropped a notification without `\"jsonrpc\": \"2.0\"`");
            return Decoded::Ignore;
        }
        return Decoded::Reply(error_reply(
            &reply_id,
            INVALID_REQUEST,
            "Invalid Request: `jsonrpc` must be \"2.0\"",
        ));
    }
    match (method, id) {
        (Some(method), Some(id)) => Decoded::Reply(error_reply(
            &id,
            INVALID_PARAMS,
            &format!("Invalid params for `{method}`: {typed_error}"),
        )),
        (Some(method), None) if object.get("id").is_none() => {
            tracing::warn!(%method, error = %typed_error, "dropped a malformed notification");
            Decoded::Ignore
        }
        (None, _) if object.contains_key("result") || object.contains_key("error") => {
            tracing::warn!(error = %typed_error, "dropped a malformed response");
            Decoded::Ignore
        }
        _ => Decoded::Reply(error_reply(
            &reply_id,
            INVALID_REQUEST,
            "Invalid Request: expected `method` and an `id` that is a string or a number",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(frame: &str) -> Value {
        match decode(frame.as_bytes()) {
            Decoded::Reply(r) => serde_json::from_str(&r).unwrap_or_default(),
            other => panic!("expected a reply for {frame}, got {other:?}"),
        }
    }

    #[test]
    fn error_codes() {
        assert_eq!(reply("{not json")["error"]["code"], PARSE_ERROR);
        assert_eq!(reply("[1,2]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(reply("42")["error"]["code"], INVALID_REQUEST);
        assert_eq!(reply(r#"{"id":7,"method":"ping"}"#)["id"], 7);
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#)["error"]["code"],
            INVALID_REQUEST
        );
        let bad = reply(r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":7}"#);
        assert_eq!(bad["error"]["code"], INVALID_PARAMS, "{bad}");
        assert_eq!(bad["id"], 3);
    }

    #[test]
    fn valid_and_unanswerable_frames() {
        // Known methods with unreadable params reach the handler as custom requests (-32602 there).
        let frame = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":1}}"#;
        assert!(matches!(decode(frame), Decoded::Message(_)));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Decoded::Message(_)
        ));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"no/such"}"#),
            Decoded::Message(_)
        ));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":1}"#),
            Decoded::Ignore
        ));
    }
}
