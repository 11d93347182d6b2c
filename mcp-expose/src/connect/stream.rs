//! The messages in an HTTP response body: one JSON message, or a server-sent event stream.

use std::{collections::VecDeque, time::Duration};

use reqwest::{Response, header::CONTENT_TYPE};

use super::sse::SseDecoder;
use crate::error::describe;

/// Reads the JSON-RPC messages of a response, one at a time.
#[derive(Debug)]
pub(crate) struct Messages {
    response: Option<Response>,
    event_stream: bool,
    decoder: SseDecoder,
    ready: VecDeque<String>,
}

impl Messages {
    pub(crate) fn new(response: Response) -> Self {
        let event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"));
        Self {
            response: Some(response),
            event_stream,
            decoder: SseDecoder::default(),
            ready: VecDeque::new(),
        }
    }

    /// The next message's text; `Ok(None)` once the body ended, `Err` when it broke.
    pub(crate) async fn next(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(text) = self.ready.pop_front() {
                return Ok(Some(text));
            }
            if !self.event_stream {
                let Some(response) = self.response.take() else {
                    return Ok(None);
                };
                let body = response.text().await.map_err(|e| describe(&e))?;
                return Ok(Some(body).filter(|b| !b.trim().is_empty()));
            }
            if !self.read_chunk().await? {
                return Ok(None);
            }
        }
    }

    /// Reads until a legacy HTTP+SSE server's `endpoint` event (where it takes the client's
    /// messages); messages before it stay queued for [`next`](Self::next).
    pub(crate) async fn endpoint(&mut self) -> Result<String, String> {
        loop {
            if let Some(endpoint) = &self.decoder.endpoint {
                return Ok(endpoint.clone());
            }
            if !self.event_stream {
                return Err("the server answered without an event stream".to_owned());
            }
            if !self.read_chunk().await? {
                return Err("the stream ended before the server named its endpoint".to_owned());
            }
        }
    }

    /// Feeds one chunk of an event stream to the decoder; `false` once the body ended.
    async fn read_chunk(&mut self) -> Result<bool, String> {
        let Some(response) = self.response.as_mut() else {
            return Ok(false);
        };
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let events = self.decoder.feed(&chunk).map_err(|_| {
                    self.response = None;
                    "an event-stream line or event exceeded 64 MiB".to_owned()
                })?;
                self.ready.extend(events);
                Ok(true)
            }
            Ok(None) => {
                self.response = None;
                Ok(false)
            }
            Err(e) => {
                self.response = None;
                Err(describe(&e))
            }
        }
    }

    /// Continues with a stream resumed from [`last_event_id`](Self::last_event_id).
    pub(crate) fn resume(&mut self, response: Response) {
        let mut resumed = Self::new(response);
        resumed.decoder.last_event_id = self.decoder.last_event_id.take();
        resumed.decoder.retry = self.decoder.retry;
        *self = resumed;
    }

    /// The id of the last event read, for `Last-Event-ID`.
    pub(crate) fn last_event_id(&self) -> Option<String> {
        self.decoder.last_event_id.clone()
    }

    /// The reconnection delay the server asked for.
    pub(crate) fn retry(&self) -> Option<Duration> {
        self.decoder.retry
    }
}

/// A response body of at most `limit` bytes (a longer one is cut there: what is kept is for
/// reading, not for parsing whole), for error bodies and OAuth documents a server controls.
pub(crate) async fn bounded_body(mut response: Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    Ok(body)
}

/// [`bounded_body`] as text (at most 1 MiB; lossy UTF-8, empty when unreadable): an error or
/// OAuth response a person reads parts of.
pub(crate) async fn bounded_text(response: Response) -> String {
    let body = bounded_body(response, 1 << 20).await.unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}
