//! What a session of the shared child declared it can do: a request from the child goes only
//! to a session that can answer it.

use crate::bridge::envelope;

/// What a session declared it can do, from its `initialize`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Capabilities {
    sampling: bool,
    elicitation: bool,
    roots: bool,
}

impl Capabilities {
    pub(super) fn read(initialize: &str) -> Self {
        let declared = envelope::member(initialize, "params")
            .and_then(|p| envelope::member(p, "capabilities"));
        let has = |name| {
            declared
                .and_then(|c| envelope::member(c, name))
                .is_some_and(|v| v.trim() != "null")
        };
        Self {
            sampling: has("sampling"),
            elicitation: has("elicitation"),
            roots: has("roots"),
        }
    }

    /// The capability a request from the child needs, when this session lacks it.
    pub(super) fn lacks(self, method: &str) -> Option<&'static str> {
        match method {
            "sampling/createMessage" if !self.sampling => Some("sampling"),
            "elicitation/create" if !self.elicitation => Some("elicitation"),
            "roots/list" if !self.roots => Some("roots"),
            _ => None,
        }
    }
}
