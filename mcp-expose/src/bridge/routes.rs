//! The routing of a child's messages into a streamable HTTP session's streams: an answer ends
//! the POST stream of its request, a progress notification goes to that request's stream (and
//! one tagged with a `subscriptionId`, MCP 2026-07-28, to that `subscriptions/listen`'s), and
//! the rest to the GET stream (else the newest open POST stream, else a bounded backlog the next
//! GET stream starts with). The stateless link of MCP 2026-07-28 clients has no GET stream and
//! no backlog: a request of its child that no open call takes goes to its stray handler (which
//! refuses it at once), and anything else no one takes is dropped.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use super::{
    envelope::{self, Message},
    stream::{self, Routed, STREAM_BYTES, Sent},
};

/// Where one session's outgoing messages go.
#[derive(Default)]
pub(crate) struct Routes {
    /// Open POST streams by request id, in opening order.
    posts: Vec<(String, stream::Sender)>,
    /// Progress token -> request id.
    tokens: HashMap<String, String>,
    get: Option<stream::Sender>,
    /// Messages that arrived while no stream was open, at most [`STREAM_BYTES`] of them.
    backlog: VecDeque<String>,
    backlog_bytes: usize,
    backlog_full: bool,
    /// The stateless link's: where requests of the child that no call takes go.
    strays: Option<tokio::sync::mpsc::Sender<String>>,
}

impl Routes {
    /// The routes of the stateless link, whose child's stray requests go to `strays`.
    pub(super) fn stateless(strays: tokio::sync::mpsc::Sender<String>) -> Self {
        Self {
            strays: Some(strays),
            ..Self::default()
        }
    }

    /// Closes the POST stream of request `id` (and its progress token's route) before its
    /// answer: what the child sends for it from now on is not routed to it.
    pub(super) fn close_post(&mut self, id: &str) {
        self.posts.retain(|(request, _)| request != id);
        self.tokens.retain(|_, request| request != id);
    }

    /// Whether a stream is open whose client is still there (a dropped receiver is not).
    pub(super) fn has_open_stream(&self) -> bool {
        self.posts.iter().any(|(_, tx)| !tx.is_closed())
            || self.get.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// Opens the POST stream of request `id`, which its progress `token` (if any) also reaches.
    pub(super) fn open_post(&mut self, id: &str, token: Option<&str>, tx: stream::Sender) {
        if let Some(token) = token {
            self.tokens.insert(token.to_owned(), id.to_owned());
        }
        self.posts.push((id.to_owned(), tx));
    }

    /// Opens the GET stream, starting with the backlog.
    pub(super) fn open_get(&mut self, tx: stream::Sender) {
        self.backlog_bytes = 0;
        self.backlog_full = false;
        for line in std::mem::take(&mut self.backlog) {
            tx.send(Routed::event(line));
        }
        self.get = Some(tx);
    }
}

fn is_request(line: &str) -> bool {
    matches!(
        envelope::parse(line.as_bytes()),
        Ok(Message::Request { .. })
    )
}

/// Delivers one of the child's messages to the stream it belongs to, without waiting.
pub(crate) fn route(routes: &Mutex<Routes>, line: String) {
    let mut routes = routes.lock().unwrap_or_else(|e| e.into_inner());
    let open = |tx: &&stream::Sender| !tx.is_closed();
    let target = match envelope::parse(line.as_bytes()) {
        Ok(Message::Response { id }) => {
            if let Some(i) = routes.posts.iter().position(|(request, _)| request == id) {
                // Its answer ends a POST stream (a client that left does not get it).
                let (_, tx) = routes.posts.remove(i);
                routes.tokens.retain(|_, request| request != id);
                let _ = tx.send(Routed { line, last: true });
                return;
            }
            None
        }
        Ok(Message::Notification {
            progress_token: Some(token),
            ..
        }) => {
            let post = routes
                .tokens
                .get(token)
                .and_then(|request| routes.posts.iter().find(|(id, _)| id == request));
            match post {
                // Progress of a call whose stream was cut or left goes nowhere else.
                Some((_, tx)) if tx.is_closed() => return,
                post => post.map(|(_, tx)| tx),
            }
        }
        Ok(Message::Notification { .. }) => match envelope::subscription(&line) {
            Some(id) => match routes.posts.iter().find(|(request, _)| request == id) {
                Some((_, tx)) if !tx.is_closed() => Some(tx),
                // Nobody listens under that id any more.
                _ => return,
            },
            None => None,
        },
        _ => None,
    };
    if let Some(strays) = &routes.strays {
        // The stateless link: a request goes to the newest open call, else is a stray.
        if let Some(tx) = target {
            let _ = tx.send(Routed::event(line));
            return;
        }
        if !is_request(&line) {
            return;
        }
        let line = match routes.posts.iter().rev().map(|(_, tx)| tx).find(open) {
            Some(tx) => match tx.send(Routed::event(line)) {
                Sent::Closed(routed) => routed.line,
                Sent::Queued | Sent::Cut => return,
            },
            None => line,
        };
        if strays.try_send(line).is_err() {
            tracing::warn!("dropping a request of the MCP server: too many strays waiting");
        }
        return;
    }
    let target = target
        .or_else(|| routes.get.as_ref().filter(open))
        .or_else(|| routes.posts.iter().rev().map(|(_, tx)| tx).find(open));
    let sent = match target {
        Some(tx) => tx.send(Routed::event(line)),
        None => Sent::Closed(Routed::event(line)),
    };
    let line = match sent {
        Sent::Queued | Sent::Cut => return,
        Sent::Closed(routed) => routed.line,
    };
    if routes.backlog_bytes > 0 && routes.backlog_bytes + line.len() > STREAM_BYTES {
        // Said once per filling: a client that reads nothing would have it said per message.
        if !routes.backlog_full {
            tracing::warn!("dropping server messages: no stream open and the backlog is full");
        }
        routes.backlog_full = true;
        return;
    }
    routes.backlog_bytes += line.len();
    routes.backlog.push_back(line);
}
