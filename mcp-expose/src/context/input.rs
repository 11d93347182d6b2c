//! Input-required results (MCP 2026-07-28, multi-round-trip requests): how a tool's requests
//! to the client become an `input_required` result, and how the client's retry brings the
//! answers back.
//!
//! For `tools/call` and `prompts/get`. A tool (or prompt) runs again from the start on every
//! retry. Each request it makes to the client gets a key (the one it names, or `KIND-N` for
//! the Nth request of the run); an answer under that key, from this retry's `inputResponses`
//! or from an earlier round carried in `requestState`, is returned at once, and a missing one
//! is recorded and fails the request. A run that recorded any is answered with an
//! input-required result listing them all, and a `requestState` holding every answer so far.
//!
//! `requestState` is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`, the
//! payload a JSON object with an expiry and a digest of the call (method and name, arguments,
//! caller):
//! any replica with the key can continue a call, and a state that was altered, has expired or
//! belongs to another call is refused with -32602.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rmcp::{
    RoleServer,
    model::{
        CallToolRequestParams, ErrorData, GetPromptRequestParams, InputRequest, InputRequests,
        InputRequiredResult, InputResponses,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};

type HmacSha256 = Hmac<Sha256>;

/// How long a `requestState` is accepted by default (the tests' lifetime).
#[cfg(test)]
const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// The shortest key accepted from `--state-key-file`.
const MIN_KEY_BYTES: usize = 32;

/// Signs and checks `requestState`: the server's key and how long a state lives.
#[derive(Clone)]
pub(crate) struct Sealer {
    key: Arc<[u8]>,
    ttl: Duration,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The client's answer under `key` as the type its request wants.
pub(crate) fn decode<T: DeserializeOwned>(
    key: &str,
    answer: Value,
    wanted: &str,
) -> Result<T, Error> {
    serde_json::from_value(answer).map_err(|e| {
        let message = format!("inputResponses[\"{key}\"] is not {wanted}: {e}");
        Error::new(ErrorKind::Peer, message)
    })
}

/// What a `requestState` holds.
#[derive(Serialize, Deserialize)]
struct State {
    /// Expiry, in milliseconds since the Unix epoch.
    exp: u128,
    /// The digest of the call it belongs to.
    call: String,
    /// Every answer so far, by key.
    answers: BTreeMap<String, Value>,
}

impl Sealer {
    /// A key of 32 random bytes, for this process only.
    pub(crate) fn random(ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        let _ = getrandom::fill(&mut key);
        Self {
            key: Arc::from(&key[..]),
            ttl,
        }
    }

    /// The key in `path` (its bytes, less surrounding whitespace; at least 32).
    pub(crate) fn from_file(path: &std::path::Path, ttl: Duration) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                format!("cannot read the state key file {}", path.display()),
                e,
            )
        })?;
        let key = bytes.trim_ascii();
        if key.len() < MIN_KEY_BYTES {
            let message = format!(
                "the state key in {} is {} bytes; at least {MIN_KEY_BYTES} are needed",
                path.display(),
                key.len()
            );
            return Err(Error::new(ErrorKind::Config, message)
                .hint("write a long random secret to it, e.g. `openssl rand -hex 32 > FILE`"));
        }
        Ok(Self {
            key: Arc::from(key),
            ttl,
        })
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(payload);
        mac
    }

    fn seal(&self, state: &State) -> String {
        let payload = serde_json::to_vec(state).unwrap_or_default();
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The answers in `token`, if it is intact, unexpired and for `call`.
    fn open(&self, token: &str, call: &str) -> Result<BTreeMap<String, Value>, ErrorData> {
        let tampered = || {
            ErrorData::invalid_params(
                "requestState failed its integrity check (altered, or signed with another key); call the tool again without it",
                None,
            )
        };
        let (payload, tag) = token.split_once('.').ok_or_else(tampered)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| tampered())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| tampered())?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| tampered())?;
        let state: State = serde_json::from_slice(&payload).map_err(|_| tampered())?;
        if state.call != call {
            return Err(ErrorData::invalid_params(
                "requestState belongs to another call (tool, arguments or caller differ)",
                None,
            ));
        }
        if now_ms() >= state.exp {
            return Err(ErrorData::invalid_params(
                "requestState has expired; call the tool again without it",
                None,
            ));
        }
        Ok(state.answers)
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The digest a state is bound to: which tool, with which arguments, for whom.
fn call_digest(
    tool: &str,
    arguments: &serde_json::Map<String, Value>,
    caller: Option<&str>,
) -> String {
    let binding = serde_json::json!([tool, arguments, caller]);
    let digest = Sha256::digest(binding.to_string().as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// A request that can be answered with an input-required result, and retried with answers.
pub(crate) trait Retry {
    /// What a state is bound to besides the arguments: the method and the name.
    fn target(&self) -> String;
    /// The retry's `inputResponses` and `requestState`.
    fn take_input(&mut self) -> (Option<InputResponses>, Option<String>);
}

impl Retry for CallToolRequestParams {
    fn target(&self) -> String {
        format!("tools/call {}", self.name)
    }

    fn take_input(&mut self) -> (Option<InputResponses>, Option<String>) {
        (self.input_responses.take(), self.request_state.take())
    }
}

impl Retry for GetPromptRequestParams {
    fn target(&self) -> String {
        format!("prompts/get {}", self.name)
    }

    fn take_input(&mut self) -> (Option<InputResponses>, Option<String>) {
        (self.input_responses.take(), self.request_state.take())
    }
}

/// One run of a tool (or prompt) on MCP 2026-07-28: the answers it can use, and what it asked without one.
#[derive(Debug)]
pub(crate) struct Round {
    sealer: Sealer,
    call: String,
    answers: BTreeMap<String, Value>,
    asked: Mutex<Asked>,
}

#[derive(Debug, Default)]
struct Asked {
    /// Requests made so far in this run.
    count: usize,
    /// Requests without an answer, by key.
    pending: InputRequests,
    /// An answer that was not the result its request wants.
    invalid: Option<String>,
}

impl Round {
    /// The round of a call on MCP 2026-07-28 (on older revisions, none: requests go to the
    /// client), bound to `caller` (the subject its token names).
    pub(crate) fn for_call(
        sealer: &Sealer,
        request: &mut impl Retry,
        context: &RequestContext<RoleServer>,
        arguments: &serde_json::Map<String, Value>,
        caller: Option<&str>,
    ) -> Result<Option<Arc<Self>>, ErrorData> {
        if !super::sessionless(context) {
            return Ok(None);
        }
        let (responses, state) = request.take_input();
        let target = request.target();
        let round = Self::start(
            sealer,
            &target,
            arguments,
            caller,
            responses,
            state.as_deref(),
        )?;
        Ok(Some(Arc::new(round)))
    }

    /// The round for a call: the answers in its (checked) `requestState` and `inputResponses`.
    pub(crate) fn start(
        sealer: &Sealer,
        tool: &str,
        arguments: &serde_json::Map<String, Value>,
        caller: Option<&str>,
        responses: Option<InputResponses>,
        state: Option<&str>,
    ) -> Result<Self, ErrorData> {
        let call = call_digest(tool, arguments, caller);
        let mut answers = match state {
            Some(token) => sealer.open(token, &call)?,
            None => BTreeMap::new(),
        };
        answers.extend(responses.unwrap_or_default());
        Ok(Self {
            sealer: sealer.clone(),
            call,
            answers,
            asked: Mutex::default(),
        })
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, Asked> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of the next request: `name`, or `KIND-N` for the Nth request of the run.
    pub(crate) fn key(&self, kind: &str, name: Option<&str>) -> String {
        let mut asked = self.asked();
        asked.count += 1;
        name.map_or_else(|| format!("{kind}-{}", asked.count), str::to_owned)
    }

    /// The answer under `key` from this retry or an earlier round, if there is one.
    pub(crate) fn answered(&self, key: &str) -> Option<&Value> {
        self.answers.get(key)
    }

    /// The answer under `key`, or the request recorded as pending and an error.
    pub(crate) fn answer<T: DeserializeOwned>(
        &self,
        key: String,
        request: InputRequest,
        wanted: &str,
    ) -> Result<T, Error> {
        let Some(answer) = self.answers.get(&key) else {
            let message = format!("waiting for the client's answer to input request `{key}`");
            self.asked().pending.insert(key, request);
            return Err(Error::new(ErrorKind::InputRequired, message));
        };
        decode(&key, answer.clone(), wanted).inspect_err(|e| {
            self.asked().invalid.get_or_insert(e.to_string());
        })
    }

    /// How the call ends, when not with the tool's result: an invalid answer (-32602), or an
    /// input-required result listing every request without an answer.
    pub(crate) fn outcome(&self) -> Option<Result<InputRequiredResult, ErrorData>> {
        let asked = self.asked();
        if let Some(message) = &asked.invalid {
            return Some(Err(ErrorData::invalid_params(message.clone(), None)));
        }
        if asked.pending.is_empty() {
            return None;
        }
        let exp = now_ms() + self.sealer.ttl.as_millis();
        let state = State {
            exp,
            call: self.call.clone(),
            answers: self.answers.clone(),
        };
        let token = self.sealer.seal(&state);
        Some(Ok(InputRequiredResult::new(
            Some(asked.pending.clone()),
            Some(token),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(sealer: &Sealer, state: Option<&str>) -> Result<Round, ErrorData> {
        Round::start(sealer, "t", &serde_json::Map::new(), None, None, state)
    }

    fn pending_state(sealer: &Sealer) -> String {
        let round = round(sealer, None).expect("round");
        let key = round.key("roots", None);
        let request = InputRequest::ListRoots(Default::default());
        assert!(round.answer::<Value>(key, request, "x").is_err());
        let result = round.outcome().expect("pending").expect("result");
        result.request_state.expect("state")
    }

    #[test]
    fn a_state_opens_with_its_key_only_and_untampered() {
        let sealer = Sealer::random(DEFAULT_TTL);
        let state = pending_state(&sealer);
        assert!(round(&sealer, Some(&state)).is_ok());
        assert!(round(&Sealer::random(DEFAULT_TTL), Some(&state)).is_err());
        assert!(round(&sealer, Some(&format!("{state}-TAMPERED"))).is_err());
        let other = Round::start(&sealer, "u", &serde_json::Map::new(), None, None, None);
        assert!(other.is_ok());
        let wrong_call = Round::start(
            &sealer,
            "u",
            &serde_json::Map::new(),
            None,
            None,
            Some(&state),
        );
        assert!(wrong_call.is_err());
    }

    #[test]
    fn an_expired_state_is_refused() {
        let sealer = Sealer::random(Duration::ZERO);
        let state = pending_state(&sealer);
        let error = round(&sealer, Some(&state)).expect_err("expired");
        assert!(error.message.contains("expired"), "{}", error.message);
    }
}
