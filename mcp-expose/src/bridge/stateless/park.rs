//! Parked calls of a 2025 child (issue 17, item 5): while the child waits for the client's
//! answers to its requests (sampling, elicitation, roots), its call is held here under an
//! unguessable `requestState` (128 random bits), and the client's POST is answered with an
//! input-required result naming those requests. The client's retry finds the call again by
//! that state, but only with the same method, name and arguments (a SHA-256 digest of them);
//! its `inputResponses` become the child's answers and the call is relayed on.
//!
//! A call not resumed within the bridge's request timeout is dropped: its route closes (what
//! the child sends for it later is discarded) and every request of the child still waiting
//! is answered with an error, so that the child's tool fails rather than hangs.

use std::{collections::HashMap, sync::Arc};

use futures::FutureExt as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::{Stateless, lock};
use crate::{
    bridge::{
        envelope::{self, Message},
        stream,
    },
    jsonrpc,
};

/// The most calls one stateless child may have parked; past it, the child's requests are
/// refused to it (as when the client cannot answer them).
pub(super) const MAX_PARKED: usize = 1024;

/// How long, after the child's first request to the client, the bridge waits for others it
/// sends at the same time, so that one input-required result lists them all.
pub(super) const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// A request of the child's that waits for the client's answer.
#[derive(Debug)]
pub(super) struct Pending {
    /// Its key in `inputRequests` (`sampling-1`, `elicitation-2`, ...).
    pub(super) key: String,
    /// The child's id for it, raw JSON.
    pub(super) id: String,
    pub(super) method: String,
    /// Its params, without the child's `_meta` (addressed to the bridge, not the client).
    pub(super) params: Value,
}

impl Pending {
    /// The request `line` of the child (whose id is `id`), under the call's `n`th key.
    pub(super) fn new(line: &str, id: &str, method: &str, n: usize) -> Self {
        let request: Value = serde_json::from_str(line).unwrap_or_default();
        let mut params = request.get("params").cloned().unwrap_or(json!({}));
        if let Some(params) = params.as_object_mut() {
            params.remove("_meta");
        }
        let kind = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => "request",
        };
        Self {
            key: format!("{kind}-{n}"),
            id: id.to_owned(),
            method: method.to_owned(),
            params,
        }
    }
}

/// The parked calls of one child, by `requestState`.
pub(super) type Parked<T> = std::sync::Mutex<HashMap<String, T>>;

/// A fresh `requestState`: 128 random bits, hex.
pub(super) fn new_state() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a retry must repeat to resume a call: its method, name and arguments, digested.
pub(super) fn digest(method: &str, request: &Value) -> [u8; 32] {
    let params = &request["params"];
    let what = json!([method, params["name"], params["arguments"]]).to_string();
    Sha256::digest(what.as_bytes()).into()
}

/// The input-required result listing `pending` under `state`.
pub(super) fn input_required(pending: &[Pending], state: &str) -> Value {
    let requests: Map<String, Value> = pending
        .iter()
        .map(|p| {
            let request = json!({ "method": p.method, "params": p.params });
            (p.key.clone(), request)
        })
        .collect();
    json!({
        "resultType": "input_required",
        "inputRequests": requests,
        "requestState": state,
    })
}

/// The retry's `inputResponses`, checked: an object (or absent) whose entries are objects.
pub(super) fn responses(request: &Value) -> Result<Map<String, Value>, String> {
    match &request["params"]["inputResponses"] {
        Value::Null => Ok(Map::new()),
        Value::Object(responses) => {
            if let Some((key, _)) = responses.iter().find(|(_, v)| !v.is_object()) {
                return Err(format!(
                    "Invalid params: inputResponses[\"{key}\"] is not an object (the result its request wants)"
                ));
            }
            Ok(responses.clone())
        }
        _ => Err("Invalid params: inputResponses is not an object".to_owned()),
    }
}

/// Answers the child's request `id` (raw JSON) with an error saying `why`.
pub(super) async fn refuse(child: &Stateless, id: &str, why: &str) {
    let refusal = jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, why);
    child.link.send(refusal.into_bytes()).await;
}

/// Answers the child's request `id` (raw JSON) with `result`, the client's answer.
pub(super) async fn answer(child: &Stateless, id: &str, result: &Value) {
    let id: Value = serde_json::from_str(id).unwrap_or(Value::Null);
    let answer = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    child.link.send(answer.to_string().into_bytes()).await;
}

/// Drops a parked call whose client never came back: the route of the child's call `ours`
/// closes, and the child's requests, `pending` and any that reached `rx` since, are refused.
pub(super) async fn expire(
    child: &Arc<Stateless>,
    ours: &str,
    pending: &[Pending],
    mut rx: stream::Receiver,
) {
    lock(&child.routes).close_post(ours);
    let why = "the MCP client did not answer in time (the bridge dropped the call)";
    for request in pending {
        refuse(child, &request.id, why).await;
    }
    // Its route is closed: what waits is all there will be.
    while let Some(Some(routed)) = rx.recv().now_or_never() {
        if let Ok(Message::Request { id, .. }) = envelope::parse(routed.line.as_bytes()) {
            refuse(child, id, why).await;
        }
    }
    tracing::info!("a parked MCP 2026-07-28 call was not resumed in time and is dropped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_tells_calls_apart_by_method_name_and_arguments() {
        let call = |method: &str, name: &str, arguments: Value| {
            let request =
                json!({ "params": { "name": name, "arguments": arguments, "_meta": {} } });
            digest(method, &request)
        };
        let one = call("tools/call", "confirm", json!({ "q": "a" }));
        assert_eq!(one, call("tools/call", "confirm", json!({ "q": "a" })));
        assert_ne!(one, call("tools/call", "confirm", json!({ "q": "b" })));
        assert_ne!(one, call("tools/call", "other", json!({ "q": "a" })));
        assert_ne!(one, call("prompts/get", "confirm", json!({ "q": "a" })));
    }

    #[test]
    fn input_responses_are_objects_of_objects() {
        let with = |responses: Value| json!({ "params": { "inputResponses": responses } });
        assert!(responses(&json!({ "params": {} })).is_ok_and(|r| r.is_empty()));
        assert!(responses(&with(json!({ "a-1": { "action": "decline" } }))).is_ok());
        let why = responses(&with(json!({ "a-1": "yes" }))).expect_err("a string");
        assert!(why.contains("inputResponses[\"a-1\"]"), "{why}");
        assert!(responses(&with(json!(["a"]))).is_err());
    }

    #[test]
    fn a_pending_request_keeps_its_params_but_not_the_child_s_meta() {
        let line = r#"{"jsonrpc":"2.0","id":4,"method":"elicitation/create","params":{"message":"m","_meta":{"progressToken":"sl-x"}}}"#;
        let pending = Pending::new(line, "4", "elicitation/create", 3);
        assert_eq!(pending.key, "elicitation-3");
        assert_eq!(pending.params, json!({ "message": "m" }));
        let result = input_required(&[pending], "s");
        assert_eq!(
            result["inputRequests"]["elicitation-3"]["method"],
            "elicitation/create"
        );
        assert_eq!(result["requestState"], "s");
        assert_eq!(new_state().len(), 32);
        assert_ne!(new_state(), new_state());
    }
}
