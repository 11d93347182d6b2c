//! Property-based fuzzing (proptest: cargo-fuzz needs a nightly toolchain, which this project's
//! machines do not have) of everything that reads untrusted bytes: stdio line framing, JSON-RPC
//! decoding (stdio and WebSocket frames), and the bridge's envelope parsing and id rewriting,
//! with frames that hold raw newlines between tokens and ids spelled every legal way.
//!
//! Each target runs for `MCP_EXPOSE_FUZZ_SECS` seconds (default 1); `.ci/run` gives each a
//! fixed budget.

use std::time::{Duration, Instant};

use proptest::{
    prelude::*,
    strategy::ValueTree as _,
    test_runner::{Config, TestRunner},
};

fn budget() -> Duration {
    let secs = std::env::var("MCP_EXPOSE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// Runs `test` on values of `strategy` until the time budget is spent; panics on a failure
/// with the (shrunk) input. Returns how many cases ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value)) -> u64
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let deadline = Instant::now() + budget();
    let mut cases = 0;
    while Instant::now() < deadline {
        let tree = strategy.new_tree(&mut runner).expect("a value");
        let value = tree.current();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(value)));
        if outcome.is_err() {
            panic!("fuzz target {name} failed on {:?}", tree.current());
        }
        cases += 1;
    }
    eprintln!("fuzz {name}: {cases} cases, no failure");
    cases
}

/// Arbitrary JSON, biased towards JSON-RPC shapes.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-z/_\\\\\"\\u{0}-\\u{7f}é€]{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("2.0"),
            Just("tools/call"),
            Just("initialize"),
            Just("ping")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("jsonrpc"),
                    Just("id"),
                    Just("method"),
                    Just("params"),
                    Just("result"),
                    Just("_meta"),
                    Just("progressToken"),
                    Just("x")
                ]
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes that are sometimes JSON, sometimes JSON damaged, sometimes noise.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json().prop_map(|v| v.to_string().into_bytes()),
        json().prop_map(|v| serde_json::to_vec_pretty(&v).unwrap_or_default()),
        (json(), any::<usize>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = v.to_string().into_bytes();
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            bytes
        }),
        prop::collection::vec(any::<u8>(), 0..64),
        // Valid JSON that parsers disagree on, where a value can be: the leaf "ping" replaced.
        (json(), any::<prop::sample::Index>()).prop_map(|(v, pick)| {
            let edge = *pick.get(EDGES);
            v.to_string().replace("\"ping\"", edge).into_bytes()
        }),
        // Raw newlines between tokens, strings and integers spelled every legal way.
        (json(), choices()).prop_map(|(v, choices)| spell(&v, &choices).into_bytes()),
    ]
}

fn choices() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..96)
}

/// `value` as JSON text, spelled as `choices` (cycled) pick: whitespace between tokens
/// (raw line feeds and carriage returns included), each string character as itself, a
/// `\uXXXX` escape (either case, surrogate pairs beyond the BMP) or a short escape (`\/`),
/// each integer as `1`, `1.0`, `1e0`, `10e-1`, `1E+00` (`-0` for zero).
fn spell(value: &serde_json::Value, choices: &[u8]) -> String {
    let mut at = 0;
    let mut pick = || {
        at += 1;
        choices.get(at % choices.len().max(1)).copied().unwrap_or(0)
    };
    let mut out = String::new();
    spell_into(value, &mut pick, &mut out);
    out
}

fn spell_into(value: &serde_json::Value, pick: &mut impl FnMut() -> u8, out: &mut String) {
    use serde_json::Value;
    let gap = |pick: &mut dyn FnMut() -> u8, out: &mut String| {
        out.push_str(match pick() % 8 {
            0..=3 => "",
            4 => " ",
            5 => "\n",
            6 => "\r\n",
            _ => " \t\n\r ",
        });
    };
    gap(pick, out);
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                spell_into(item, pick, out);
            }
            gap(pick, out);
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                gap(pick, out);
                spell_string(key, pick, out);
                gap(pick, out);
                out.push(':');
                spell_into(item, pick, out);
            }
            gap(pick, out);
            out.push('}');
        }
        Value::String(text) => spell_string(text, pick, out),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let n = n.to_string();
            out.push_str(&match pick() % 6 {
                0 => n,
                1 => format!("{n}.0"),
                2 => format!("{n}e0"),
                3 if n == "0" => "-0".to_owned(),
                3 => format!("{n}0e-1"),
                4 => format!("{n}E+00"),
                _ => format!("{n}.000"),
            });
        }
        other => out.push_str(&other.to_string()),
    }
    gap(pick, out);
}

fn spell_string(text: &str, pick: &mut impl FnMut() -> u8, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let choice = pick() % 4;
        match (choice, short) {
            (3, Some(short)) => out.push_str(short),
            (1 | 2, _) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    match choice {
                        1 => out.push_str(&format!("\\u{unit:04x}")),
                        _ => out.push_str(&format!("\\u{unit:04X}")),
                    }
                }
            }
            _ if c == '"' || c == '\\' => out.push_str(short.unwrap_or_default()),
            _ if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// JSON grammar that serde_json still refuses (out of range, lone surrogates) or reads lossily.
const EDGES: &[&str] = &[
    "1E400",
    "-1e-400",
    "18446744073709551616",
    "-0",
    "0.1e1",
    r#""\ud800""#,
    r#""\udc00\ud800""#,
    r#""\ud83d\ude00""#,
    r#""\u0000""#,
    r#""a\/b""#,
];

#[test]
fn fuzz_jsonrpc_decode() {
    use crate::transport::decode::{Decoded, decode};
    fuzz("jsonrpc_decode", frame(), |bytes| match decode(&bytes) {
        Decoded::Reply(reply) => {
            let reply: serde_json::Value = serde_json::from_str(&reply).expect("replies are JSON");
            let code = reply["error"]["code"].as_i64().expect("an error code");
            assert!([-32700, -32600, -32602].contains(&code), "{reply}");
        }
        Decoded::Message(_) | Decoded::Ignore => {}
    });
}

#[test]
fn fuzz_stdio_line_framing() {
    use crate::transport::{framed::Inbound, stdio::read_lines};
    let input = (
        prop::collection::vec(frame(), 0..8),
        prop::collection::vec(1usize..40, 1..8),
        16usize..200,
    );
    fuzz("stdio_line_framing", input, |(lines, chunks, max)| {
        let mut stream = Vec::new();
        for line in &lines {
            stream.extend(line.iter().filter(|b| **b != b'\n'));
            stream.push(b'\n');
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let frames = runtime.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let input = tokio_test_reader(stream.clone(), chunks);
            let reader = tokio::spawn(async move { read_lines(input, tx, max).await });
            let mut frames = Vec::new();
            while let Some(inbound) = rx.recv().await {
                frames.push(inbound);
            }
            let _ = reader.await;
            frames
        });
        // Every non-blank line within the limit comes out whole (BOM and trailing blanks
        // trimmed); every longer one is answered with an error instead.
        let mut expected = Vec::new();
        for line in stream.split(|b| *b == b'\n').take(lines.len()) {
            if line.len() > max {
                expected.push(None);
                continue;
            }
            let mut trimmed = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            while let [rest @ .., b'\r' | b' ' | b'\t'] = trimmed {
                trimmed = rest;
            }
            if !trimmed.iter().all(u8::is_ascii_whitespace) {
                expected.push(Some(trimmed.to_vec()));
            }
        }
        assert_eq!(frames.len(), expected.len(), "{frames:?} vs {expected:?}");
        for (frame, expected) in frames.iter().zip(expected) {
            match (frame, expected) {
                (Inbound::Frame(bytes), Some(line)) => assert_eq!(*bytes, line),
                (Inbound::Reply(reply), None) => assert!(reply.contains("-32600"), "{reply}"),
                (frame, expected) => panic!("got {frame:?}, expected {expected:?}"),
            }
        }
    });
}

/// An `AsyncRead` over `bytes` that yields them in chunks of the given sizes (cycled).
fn tokio_test_reader(bytes: Vec<u8>, chunks: Vec<usize>) -> Chunks {
    let mut parts = std::collections::VecDeque::new();
    let mut rest = bytes.as_slice();
    for size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*size).min(rest.len()));
        parts.push_back(head.to_vec());
        rest = tail;
    }
    Chunks(parts)
}

struct Chunks(std::collections::VecDeque<Vec<u8>>);

impl tokio::io::AsyncRead for Chunks {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some(mut part) = self.0.pop_front() {
            let n = part.len().min(buf.remaining());
            buf.put_slice(&part[..n]);
            if n < part.len() {
                self.0.push_front(part.split_off(n));
            }
        }
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "bridge")]
#[test]
fn fuzz_bridge_envelope_and_id_rewriting() {
    use crate::bridge::envelope::{parse, parse_serde, with_id, with_param};
    fuzz("bridge_envelope", (frame(), json()), |(bytes, id)| {
        let parsed = parse(&bytes);
        // Whatever the fast scanner answers, serde_json answers the same.
        if let Some(fast) = crate::bridge::scan::envelope(&bytes) {
            assert_eq!(
                Ok(fast),
                parse_serde(&bytes),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return;
        };
        let Ok(serde_json::Value::Object(original)) =
            serde_json::from_str::<serde_json::Value>(text)
        else {
            return;
        };
        // The one-pass envelope reads what serde_json reads.
        match parsed {
            Ok(message) => assert_envelope(&message, &original),
            Err((code, _)) => assert_eq!(code, -32600, "{text}"),
        }
        // serde_json keeps the last of duplicate keys, the raw rewrite too: compare parsed.
        let id_text = id.to_string();
        // Compare with the id as parsed back: floats need not survive a text round trip.
        let id: serde_json::Value = serde_json::from_str(&id_text).expect("JSON");
        if let Some(rewritten) = with_id(text.as_bytes(), &id_text) {
            let rewritten: serde_json::Value =
                serde_json::from_str(&rewritten).expect("rewritten JSON");
            assert_eq!(rewritten["id"], id);
            for (key, value) in &original {
                if key != "id" {
                    assert_eq!(&rewritten[key], value, "member {key} changed");
                }
            }
        }
        if let Some(rewritten) = with_param(text, "_meta.progressToken", &id_text) {
            let rewritten: serde_json::Value =
                serde_json::from_str(&rewritten).expect("rewritten JSON");
            assert_eq!(rewritten["params"]["_meta"]["progressToken"], id);
        }
    });
}

/// The shared child's path for a request spelled with raw newlines and an id spelled any legal
/// way: it reaches the child as one line under the bridge's id with nothing else changed, and
/// the child's answer, its id re-spelled, goes back matched by value and under the client's id
/// exactly as the client spelled it.
#[cfg(feature = "bridge")]
#[test]
fn fuzz_bridge_shared_one_line_and_ids_by_value() {
    use crate::bridge::envelope::{Message, one_line, parse, with_id};
    use crate::jsonrpc::IdKey;
    use serde_json::{Value, json};
    const EXACT: i64 = 1 << 53;
    let id = prop_oneof![
        "[a-z/_\\\\\"\\u{0}-\\u{7f}é€😀]{0,12}".prop_map(Value::from),
        (-EXACT..=EXACT).prop_map(Value::from),
    ];
    let method = prop_oneof![Just("tools/call".to_owned()), "[a-z/\\n\"]{1,12}"];
    let input = (id, method, json(), choices(), choices());
    fuzz(
        "bridge_shared_path",
        input,
        |(id, method, params, c1, c2)| {
            let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            let spelled = spell(&request, &c1);
            let frame = one_line(spelled.clone().into_bytes());
            assert!(
                !frame.contains(&b'\n') && !frame.contains(&b'\r'),
                "{spelled:?}"
            );
            let value = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("JSON");
            let sent = value(&frame);
            assert_eq!(sent, value(spelled.as_bytes()), "{spelled:?}");
            let Ok(Message::Request { id: raw_id, .. }) = parse(&frame) else {
                panic!("not read as a request: {spelled:?}");
            };
            assert_eq!(IdKey::of(raw_id), IdKey::of(&id.to_string()), "{spelled:?}");
            let ours = "\"mx-0123456789abcdef-7\"";
            let forwarded = with_id(&frame, ours).expect("rewritten");
            assert!(!forwarded.contains(['\n', '\r']), "{forwarded:?}");
            let mut expected = sent.clone();
            expected["id"] = json!("mx-0123456789abcdef-7");
            assert_eq!(value(forwarded.as_bytes()), expected);
            // The child answers on one line, spelling our id its own way.
            let answer =
                json!({ "jsonrpc": "2.0", "id": "mx-0123456789abcdef-7", "result": params });
            let line = one_line(spell(&answer, &c2).into_bytes());
            let Ok(Message::Response { id: answered }) = parse(&line) else {
                panic!(
                    "not read as a response: {:?}",
                    String::from_utf8_lossy(&line)
                );
            };
            assert_eq!(IdKey::of(answered), IdKey::of(ours));
            let reply = with_id(&line, raw_id).expect("rewritten back");
            assert_eq!(
                parse(reply.as_bytes()),
                Ok(Message::Response { id: raw_id })
            );
            assert_eq!(value(reply.as_bytes())["result"], value(&line)["result"]);
        },
    );
}

/// `message` holds the id, method and progress token of `object`, as serde_json reads them.
#[cfg(feature = "bridge")]
fn assert_envelope(
    message: &crate::bridge::envelope::Message<'_>,
    object: &serde_json::Map<String, serde_json::Value>,
) {
    use crate::bridge::envelope::Message;
    use serde_json::Value;
    let raw = |text: &str| serde_json::from_str::<Value>(text).expect("raw JSON");
    let present = |key: &str| object.get(key).filter(|v| !v.is_null());
    let params = object.get("params");
    let token = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get("progressToken"))
        .or_else(|| params.and_then(|p| p.get("progressToken")))
        .filter(|_| params.is_some_and(Value::is_object));
    let (id, method, progress_token) = match message {
        Message::Request {
            id,
            method,
            progress_token,
        } => (Some(*id), Some(method), *progress_token),
        Message::Notification {
            method,
            progress_token,
        } => (None, Some(method), *progress_token),
        Message::Response { id } => (Some(*id), None, None),
    };
    assert_eq!(id.map(raw).as_ref(), present("id"), "id of {object:?}");
    assert_eq!(
        method.map(|m| Value::from(m.as_ref())).as_ref(),
        present("method"),
        "method of {object:?}"
    );
    if method.is_some() {
        assert_eq!(
            progress_token.map(raw).as_ref(),
            token,
            "token of {object:?}"
        );
    }
}
