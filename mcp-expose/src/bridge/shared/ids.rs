//! The ids the bridge gives the child, and the ids it gives a session for the child's own
//! requests: random, so that no client can name one.

/// The ids of requests to the child: a random prefix per process and a counter.
#[derive(Default)]
pub(super) struct Ids {
    prefix: String,
    counter: u64,
}

impl Ids {
    pub(super) fn new() -> Self {
        Self {
            prefix: format!("{:016x}", random()),
            counter: 0,
        }
    }

    /// A new id, raw JSON.
    pub(super) fn next(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("\"mx{kind}-{}-{}\"", self.prefix, self.counter)
    }

    /// An id for a request of the child's sent on to a session, raw JSON.
    pub(super) fn for_session() -> String {
        format!("\"mxs-{:016x}{:016x}\"", random(), random())
    }
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}
