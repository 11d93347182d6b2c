//! Envelope-only JSON-RPC parsing: the id, the method, and a progress token, read in one pass
//! and borrowed from the frame, with everything else skipped. The bridge routes messages
//! without re-serialising them; rewriting an id splices the frame's bytes.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::value::RawValue;

use crate::jsonrpc::{INVALID_REQUEST, PARSE_ERROR};

pub use super::scan::Message;

/// The members the envelope reads.
enum Key {
    Id,
    Method,
    Params,
    Meta,
    ProgressToken,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "_meta" => Key::Meta,
                    "progressToken" => Key::ProgressToken,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// A string, borrowed from the frame unless it holds escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// `params` or `params._meta`, read only for a progress token; any other shape is skipped.
struct Token<'a>(Option<&'a RawValue>);

impl<'de> Deserialize<'de> for Token<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TokenVisitor)
    }
}

struct TokenVisitor;

impl<'de> Visitor<'de> for TokenVisitor {
    type Value = Token<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut meta, mut direct) = (None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Meta => meta = map.next_value::<Token<'de>>()?.0,
                Key::ProgressToken => direct = Some(map.next_value::<&'de RawValue>()?),
                _ => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        Ok(Token(meta.or(direct)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Token(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Token(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Token(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Token(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Token(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Token(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Token(None))
    }
}

/// The envelope: id, method and progress token, read in one pass over the frame.
struct Envelope<'a> {
    id: Option<&'a RawValue>,
    method: Option<Cow<'a, str>>,
    token: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut id, mut method, mut params) = (None, None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id if id.is_some() => return Err(de::Error::duplicate_field("id")),
                        Key::Id => id = Some(map.next_value::<Option<&'de RawValue>>()?),
                        Key::Method if method.is_some() => {
                            return Err(de::Error::duplicate_field("method"));
                        }
                        Key::Method => method = Some(map.next_value::<Option<Str<'de>>>()?),
                        Key::Params if params.is_some() => {
                            return Err(de::Error::duplicate_field("params"));
                        }
                        Key::Params => params = Some(map.next_value::<Token<'de>>()?),
                        _ => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                Ok(Envelope {
                    id: id.flatten(),
                    method: method.flatten().map(|m| m.0),
                    token: params.and_then(|p| p.0),
                })
            }
        }
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// Parses the envelope of one message; `Err` carries a JSON-RPC error code and message.
///
/// A strict scanner reads well-formed frames (`bridge::scan`); whatever it is unsure of is read
/// by serde_json, which also words every error.
pub fn parse(frame: &[u8]) -> Result<Message<'_>, (i32, String)> {
    match super::scan::envelope(frame) {
        Some(message) => Ok(message),
        None => parse_serde(frame),
    }
}

/// The envelope as serde_json reads it: the reference the scanner is fuzzed against.
pub(crate) fn parse_serde(frame: &[u8]) -> Result<Message<'_>, (i32, String)> {
    // Only an object is a message: say which other thing it is.
    match frame.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') => {
            return Err((
                INVALID_REQUEST,
                "Invalid Request: batches are not supported".to_owned(),
            ));
        }
        _ if serde_json::from_slice::<IgnoredAny>(frame).is_ok() => {
            return Err((
                INVALID_REQUEST,
                "Invalid Request: a message must be an object".to_owned(),
            ));
        }
        _ => return Err((PARSE_ERROR, "Parse error: not JSON".to_owned())),
    }
    let envelope: Envelope<'_> = match serde_json::from_slice(frame) {
        Ok(envelope) => envelope,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err((PARSE_ERROR, format!("Parse error: {e}")));
        }
        Err(e) => return Err((INVALID_REQUEST, format!("Invalid Request: {e}"))),
    };
    let progress_token = envelope.token.map(RawValue::get);
    match (envelope.id, envelope.method) {
        (Some(id), Some(method)) => Ok(Message::Request {
            id: id.get(),
            method,
            progress_token,
        }),
        (None, Some(method)) => Ok(Message::Notification {
            method,
            progress_token,
        }),
        (Some(id), None) => Ok(Message::Response { id: id.get() }),
        (None, None) => Err((
            INVALID_REQUEST,
            "Invalid Request: neither a method nor an id".to_owned(),
        )),
    }
}

/// `frame` as exactly one line: its raw line feeds and carriage returns made spaces.
///
/// Only for a frame that parsed: JSON allows those bytes nowhere but as whitespace between
/// tokens (never inside a string, never inside a UTF-8 sequence), so the value is unchanged,
/// while a child reading lines would otherwise see each piece as a message of its own.
pub(crate) fn one_line(mut frame: Vec<u8>) -> Vec<u8> {
    for byte in &mut frame {
        if matches!(*byte, b'\n' | b'\r') {
            *byte = b' ';
        }
    }
    frame
}

/// Where a member's value sits in an object, and where a new member would go.
struct Found {
    value: Option<std::ops::Range<usize>>,
    members: usize,
    /// The offset of the closing brace.
    close: usize,
}

/// Finds the last member `key` of `object` (raw JSON) without copying anything: a borrowed
/// `RawValue` is a slice of the input, so its offset is where it starts.
fn find(object: &str, key: &str) -> Option<Found> {
    struct KeyIs<'k>(&'k str);
    impl<'de> de::DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for KeyIs<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
            Ok(key == self.0)
        }
    }
    struct Members<'k>(&'k str);
    impl<'de> Visitor<'de> for Members<'_> {
        type Value = (Option<&'de RawValue>, usize);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut found, mut members) = (None, 0);
            while let Some(is_key) = map.next_key_seed(KeyIs(self.0))? {
                members += 1;
                if is_key {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok((found, members))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(object);
    let (value, members) = deserializer.deserialize_map(Members(key)).ok()?;
    deserializer.end().ok()?;
    let value = match value {
        Some(raw) => {
            let start = (raw.get().as_ptr() as usize).checked_sub(object.as_ptr() as usize)?;
            let range = start..start + raw.get().len();
            (object.get(range.clone()) == Some(raw.get())).then_some(range)
        }
        None => None,
    };
    let close = object.trim_end().len().checked_sub(1)?;
    Some(Found {
        value,
        members,
        close,
    })
}

/// `object` (raw JSON) with member `key` set to `value` (raw JSON): the bytes around it are
/// copied as they are.
fn replace(object: &str, key: &str, value: &str) -> Option<String> {
    let found = find(object, key)?;
    let mut out = String::with_capacity(object.len() + key.len() + value.len() + 4);
    match found.value {
        Some(range) => {
            out.push_str(&object[..range.start]);
            out.push_str(value);
            out.push_str(&object[range.end..]);
        }
        None => {
            out.push_str(&object[..found.close]);
            if found.members > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(key).ok()?);
            out.push(':');
            out.push_str(value);
            out.push_str(&object[found.close..]);
        }
    }
    Some(out)
}

/// A member of `object` (raw JSON), as raw JSON text.
pub(crate) fn member<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    find(object, key)?.value.map(|range| &object[range])
}

/// `frame` with its top-level `id` replaced by `id` (raw JSON); other members stay raw.
pub fn with_id(frame: &[u8], id: &str) -> Option<String> {
    replace(std::str::from_utf8(frame).ok()?, "id", id)
}

/// `frame` with `params.<key>` replaced (`_meta.progressToken` when `key` is `_meta.progressToken`).
pub fn with_param(frame: &str, key: &str, value: &str) -> Option<String> {
    let params = member(frame, "params")?;
    let params = match key.split_once('.') {
        Some((outer, inner)) => {
            let nested = member(params, outer)?;
            replace(params, outer, &replace(nested, inner, value)?)?
        }
        None => replace(params, key, value)?,
    };
    replace(frame, "params", &params)
}

/// Where MCP 2026-07-28 tags a notification with the `subscriptions/listen` it belongs to.
pub(crate) const SUBSCRIPTION_ID: &str = "_meta.io.modelcontextprotocol/subscriptionId";

/// The `subscriptions/listen` request a notification is tagged with, raw JSON.
pub(crate) fn subscription(line: &str) -> Option<&str> {
    let (meta, key) = SUBSCRIPTION_ID.split_once('.')?;
    member(member(member(line, "params")?, meta)?, key)
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
                id: "7",
                method: "tools/call".into(),
                progress_token: Some("\"p1\"")
            })
        );
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":1}}"#;
        assert!(
            matches!(parse(progress), Ok(Message::Notification { progress_token: Some(t), .. }) if t == "\"p1\"")
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Message::Response { id: "\"a\"" })
        );
        assert_eq!(parse(b"{nope").map_err(|e| e.0), Err(-32700));
        assert_eq!(parse(b"[1]").map_err(|e| e.0), Err(-32600));
        // A number out of f64's range where the envelope reads numbers: a parse error.
        assert_eq!(
            parse(br#"{"id":1,"method":"m","params":1E400}"#).map_err(|e| e.0),
            Err(-32700)
        );
        let rewritten = with_id(call, "\"s1-7\"").expect("rewritten");
        let value: serde_json::Value = serde_json::from_str(&rewritten).expect("json");
        assert_eq!(value["id"], "s1-7");
        assert_eq!(value["params"]["_meta"]["progressToken"], "p1");
    }

    #[test]
    fn rewrites_splice_the_frame() {
        // Member order and spacing survive; an escaped name is the same member.
        let frame = br#"{ "jsonrpc":"2.0", "i\u0064" : 1 ,"method":"x"}"#;
        assert_eq!(
            with_id(frame, "\"a\"").as_deref(),
            Some(r#"{ "jsonrpc":"2.0", "i\u0064" : "a" ,"method":"x"}"#)
        );
        assert_eq!(with_id(b"{}", "2").as_deref(), Some(r#"{"id":2}"#));
        assert_eq!(
            with_id(br#"{"a":1 }"#, "2").as_deref(),
            Some(r#"{"a":1 ,"id":2}"#)
        );
        assert_eq!(with_id(b"[1]", "2"), None);
        assert_eq!(with_id(b"{} x", "2"), None);
        let call = r#"{"id":1,"params":{"_meta":{"progressToken":7},"name":"t"}}"#;
        assert_eq!(
            with_param(call, "_meta.progressToken", "\"t1\"").as_deref(),
            Some(r#"{"id":1,"params":{"_meta":{"progressToken":"t1"},"name":"t"}}"#)
        );
        assert_eq!(
            member(call, "params").and_then(|p| member(p, "name")),
            Some("\"t\"")
        );
        let escaped = br#"{"id":1,"method":"a\/b","params":[1,{"progressToken":2}]}"#;
        assert_eq!(
            parse(escaped),
            Ok(Message::Request {
                id: "1",
                method: "a/b".into(),
                progress_token: None
            })
        );
        assert_eq!(parse(br#"{"id":1,"id":2}"#).map_err(|e| e.0), Err(-32600));
    }

    #[test]
    fn one_line_keeps_the_value() {
        let frame = b"{\"id\":1,\r\n\"method\":\n\"m\",\"params\":{\"a\":[\n1\n]}}".to_vec();
        let line = one_line(frame.clone());
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        let before: serde_json::Value = serde_json::from_slice(&frame).expect("json");
        let after: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(before, after);
    }
}
