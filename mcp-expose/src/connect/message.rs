//! JSON-RPC envelopes read without touching the payload: only `id` and `method` are looked at,
//! so a message reaches the other side byte for byte (save line breaks, see [`one_line`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{error::Category, value::RawValue};

use crate::jsonrpc::{self, INVALID_REQUEST, IdKey, PARSE_ERROR};

/// A JSON-RPC id: the text to echo back, and its value to match responses with (a server
/// may re-serialize `"\u0041"` as `"A"`).
#[derive(Debug, Clone)]
pub(crate) struct Id {
    raw: Box<RawValue>,
    key: IdKey,
}

impl Id {
    fn new(raw: &RawValue) -> Self {
        Self {
            raw: raw.to_owned(),
            key: IdKey::of(raw.get()),
        }
    }

    /// An id of our own (`"mcp-expose-connect/N"`), for requests the client never sees.
    pub(crate) fn internal(n: u64) -> Self {
        let text = format!("\"mcp-expose-connect/{n}\"");
        let key = IdKey::of(&text);
        let raw = RawValue::from_string(text).unwrap_or_else(|_| Self::null_raw());
        Self { raw, key }
    }

    fn null_raw() -> Box<RawValue> {
        RawValue::from_string("null".to_owned()).expect("`null` is JSON")
    }

    pub(crate) fn key(&self) -> &IdKey {
        &self.key
    }

    pub(crate) fn raw(&self) -> &RawValue {
        &self.raw
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

/// What a message is, as far as forwarding cares.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Request { id: Id, method: String },
    Notification { method: String },
    Response { id: Option<Id> },
}

/// One JSON-RPC message: its text on a single line, and its envelope.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) line: String,
    pub(crate) kind: Kind,
    /// `params`, kept only for `initialize` (replayed when a session is re-established).
    pub(crate) init_params: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

impl Message {
    /// Reads one message. `Err` holds the error reply to send back instead.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        // serde would read `[1]` as a struct in sequence form: only objects are messages.
        if !text.trim_start().starts_with('{') {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => error_reply(
                    None,
                    INVALID_REQUEST,
                    "Invalid Request: expected one JSON-RPC object (batches are not supported)",
                ),
                Err(e) => error_reply(None, PARSE_ERROR, &format!("Parse error: {e}")),
            });
        }
        let envelope: Envelope<'_> = match serde_json::from_str(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                let (code, what) = match e.classify() {
                    Category::Data => (INVALID_REQUEST, "Invalid Request"),
                    _ => (PARSE_ERROR, "Parse error"),
                };
                return Err(error_reply(None, code, &format!("{what}: {e}")));
            }
        };
        let id = envelope.id.map(Id::new);
        let kind = match (envelope.method, id) {
            (Some(method), Some(id)) => Kind::Request {
                id,
                method: method.into_owned(),
            },
            (Some(method), None) => Kind::Notification {
                method: method.into_owned(),
            },
            (None, id) if envelope.result.is_some() || envelope.error.is_some() => {
                Kind::Response { id }
            }
            (None, id) => {
                return Err(error_reply(
                    id.as_ref(),
                    INVALID_REQUEST,
                    "Invalid Request: a message needs `method`, `result` or `error`",
                ));
            }
        };
        let init_params = match &kind {
            Kind::Request { method, .. } if method == "initialize" => {
                envelope.params.map(RawValue::to_owned)
            }
            _ => None,
        };
        Ok(Self {
            line: one_line(text).into_owned(),
            kind,
            init_params,
        })
    }

    /// The id of a request, or of the request a response answers.
    pub(crate) fn id(&self) -> Option<&Id> {
        match &self.kind {
            Kind::Request { id, .. } => Some(id),
            Kind::Response { id } => id.as_ref(),
            Kind::Notification { .. } => None,
        }
    }

    pub(crate) fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            Kind::Response { .. } => None,
        }
    }

    pub(crate) fn is_request(&self) -> bool {
        matches!(self.kind, Kind::Request { .. })
    }

    /// Whether this is the response to the request `id`.
    pub(crate) fn answers(&self, id: &Id) -> bool {
        matches!(&self.kind, Kind::Response { id: Some(own) } if own == id)
    }

    /// The error reply a client request gets when it cannot be delivered; `None` for
    /// notifications and responses, which have nobody to answer.
    pub(crate) fn failure(&self, code: i32, message: &str) -> Option<String> {
        match &self.kind {
            Kind::Request { id, .. } => Some(error_reply(Some(id), code, message)),
            _ => None,
        }
    }
}

/// A message from the server, checked before it reaches stdout: anything that is not a
/// JSON-RPC object would corrupt the client's stream, so it is dropped (and logged).
pub(crate) fn from_server(text: &str) -> Option<Message> {
    match Message::parse(text) {
        Ok(message) => Some(message),
        Err(_) => {
            let preview: String = text.chars().take(200).collect();
            tracing::warn!(message = %preview, "dropped a message from the server that is not JSON-RPC");
            None
        }
    }
}

/// Raw line breaks in valid JSON can only be whitespace between tokens (inside strings they
/// must be escaped), so replacing them with spaces keeps the message intact on one line.
pub(crate) fn one_line(text: &str) -> Cow<'_, str> {
    let text = text.trim();
    if text.contains(['\n', '\r']) {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// A JSON-RPC error response (`id: null` when the id is unknown).
pub(crate) fn error_reply(id: Option<&Id>, code: i32, message: &str) -> String {
    jsonrpc::error(id.map_or("null", |id| id.raw().get()), code, message)
}

/// An `initialize` request carrying the client's original params under an id of our own.
pub(crate) fn initialize_request(id: &Id, params: &RawValue) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"method":"initialize","params":{}}}"#,
        id.raw().get(),
        params.get()
    )
}

pub(crate) const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// The outcome of an `initialize` response: the negotiated protocol version, or why it failed.
pub(crate) fn initialize_outcome(line: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(borrow, default)]
        result: Option<InitResult<'a>>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct InitResult<'a> {
        #[serde(borrow)]
        protocol_version: Cow<'a, str>,
    }
    match serde_json::from_str::<Reply<'_>>(line) {
        Ok(Reply {
            result: Some(result),
            ..
        }) => Ok(result.protocol_version.into_owned()),
        Ok(Reply {
            error: Some(error), ..
        }) => Err(format!("the server refused to initialize: {}", error.get())),
        Ok(_) => Err("the initialize response has no protocolVersion".to_owned()),
        Err(e) => Err(format!("unreadable initialize response: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn reply(text: &str) -> Value {
        let line = Message::parse(text).expect_err("an error reply");
        serde_json::from_str(&line).expect("reply is JSON")
    }

    #[test]
    fn kinds_and_ids() {
        let m = Message::parse(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).expect("ok");
        assert!(m.is_request());
        assert_eq!(m.method(), Some("tools/list"));
        assert_eq!(m.id().map(Id::key), Some(&IdKey::of("7.0")));
        let n = Message::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .expect("ok");
        assert!(matches!(n.kind, Kind::Notification { .. }));
        let r = Message::parse(r#"{"jsonrpc":"2.0","id":"\u0041","result":{}}"#).expect("ok");
        let a = Message::parse(r#"{"jsonrpc":"2.0","id":"A","method":"ping"}"#).expect("ok");
        assert!(r.answers(a.id().expect("id")));
        let seven = Message::parse(r#"{"jsonrpc":"2.0","id":7e0,"result":{}}"#).expect("ok");
        assert!(seven.answers(m.id().expect("id")));
    }

    #[test]
    fn initialize_params_are_kept_verbatim() {
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"b":1,  "a":[2]}}"#;
        let m = Message::parse(text).expect("ok");
        let params = m.init_params.expect("params");
        assert_eq!(params.get(), r#"{"b":1,  "a":[2]}"#);
        let replay = initialize_request(&Id::internal(3), &params);
        let value: Value = serde_json::from_str(&replay).expect("JSON");
        assert_eq!(value["id"], "mcp-expose-connect/3");
        assert_eq!(value["params"]["a"][0], 2);
    }

    #[test]
    fn bad_lines_get_error_replies() {
        assert_eq!(reply("{not json")["error"]["code"], PARSE_ERROR);
        assert_eq!(reply("{not json")["id"], Value::Null);
        assert_eq!(reply("[1,2]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(reply("[1]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(reply("42")["error"]["code"], INVALID_REQUEST);
        assert_eq!(reply("[1")["error"]["code"], PARSE_ERROR);
        let no_method = reply(r#"{"jsonrpc":"2.0","id":4}"#);
        assert_eq!(no_method["error"]["code"], INVALID_REQUEST);
        assert_eq!(no_method["id"], 4);
    }

    #[test]
    fn line_breaks_become_spaces() {
        let m = Message::parse("{\"jsonrpc\":\"2.0\",\r\n\"method\":\"x\\ny\"}\n").expect("ok");
        assert_eq!(m.line, "{\"jsonrpc\":\"2.0\",  \"method\":\"x\\ny\"}");
        assert_eq!(m.method(), Some("x\ny"));
    }

    #[test]
    fn initialize_outcomes() {
        let ok = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{}}}"#;
        assert_eq!(initialize_outcome(ok).as_deref(), Ok("2025-06-18"));
        let refused = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}}"#;
        assert!(initialize_outcome(refused).is_err());
    }

    #[test]
    fn failure_replies_only_for_requests() {
        let m = Message::parse(r#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#).expect("ok");
        let reply: Value = serde_json::from_str(
            &m.failure(jsonrpc::SERVER_UNAVAILABLE, "down")
                .expect("reply"),
        )
        .expect("JSON");
        assert_eq!(reply["id"], "x");
        assert_eq!(reply["error"]["code"], jsonrpc::SERVER_UNAVAILABLE);
        let n = Message::parse(r#"{"jsonrpc":"2.0","method":"x"}"#).expect("ok");
        assert!(n.failure(jsonrpc::SERVER_UNAVAILABLE, "down").is_none());
    }
}
