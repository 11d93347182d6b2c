//! A server-sent events decoder (the WHATWG event-stream format) fed with body chunks.
//!
//! Events without data are dropped: MCP servers send them to prime `id`/`retry` before any
//! message (SEP-1699), and comments (`: keep-alive`) carry nothing either.

use std::time::Duration;

/// Longest line accepted; a server that never ends a line would otherwise grow the buffer
/// without bound.
const MAX_LINE: usize = 64 << 20;

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buffer: Vec<u8>,
    data: String,
    has_data: bool,
    event: String,
    /// The last `id:` seen, for `Last-Event-ID` when the stream is resumed.
    pub(crate) last_event_id: Option<String>,
    /// The last `retry:` seen: how long to wait before reconnecting.
    pub(crate) retry: Option<Duration>,
    /// The data of the last `endpoint` event: where a legacy HTTP+SSE server (MCP
    /// 2024-11-05) takes the client's messages.
    pub(crate) endpoint: Option<String>,
}

/// Too long a line.
#[derive(Debug)]
pub(crate) struct LineTooLong;

impl SseDecoder {
    /// Feeds a chunk; returns the data of every event it completed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, LineTooLong> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.buffer[start..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
        {
            let end = start + offset;
            let terminator = match self.buffer[end] {
                // A lone CR also ends a line, but only once the next byte shows it is not CRLF.
                b'\r' if end + 1 == self.buffer.len() => break,
                b'\r' if self.buffer[end + 1] == b'\n' => 2,
                _ => 1,
            };
            let line = String::from_utf8_lossy(&self.buffer[start..end]).into_owned();
            start = end + terminator;
            if let Some(data) = self.line(&line) {
                events.push(data);
            }
        }
        self.buffer.drain(..start);
        // One event's data may span many lines: bounded as a whole, like a line.
        if self.buffer.len() > MAX_LINE || self.data.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => value.clone_into(&mut self.event),
            "id" if !value.contains('\0') => self.last_event_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<String> {
        let mut data = std::mem::take(&mut self.data);
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        data.pop();
        let is_message = event.is_empty() || event == "message";
        if event == "endpoint" {
            self.endpoint = Some(data.trim().to_owned());
            return None;
        }
        if !is_message {
            tracing::debug!(%event, "ignored a server-sent event that is not a message");
            return None;
        }
        (!data.trim().is_empty()).then_some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut SseDecoder, chunks: &[&str]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| decoder.feed(c.as_bytes()).expect("short lines"))
            .collect()
    }

    #[test]
    fn events_ids_retry_and_comments() {
        let mut d = SseDecoder::default();
        let events = all(
            &mut d,
            &[
                "id: 0\nretry: 3000\ndata:\n\n",
                ": keep-alive\n\n",
                "event: message\nid: 1\ndata: {\"a\":",
                "1}\n\ndata: {\"b\":2}\n",
                "\n",
            ],
        );
        assert_eq!(events, [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(d.last_event_id.as_deref(), Some("1"));
        assert_eq!(d.retry, Some(Duration::from_secs(3)));
    }

    #[test]
    fn line_endings_and_multiline_data() {
        let mut d = SseDecoder::default();
        let events = all(
            &mut d,
            &["data: {\"a\":\r", "\ndata: 1}\r\r", "data:x\r\n\r\n"],
        );
        assert_eq!(events, ["{\"a\":\n1}", "x"]);
    }

    #[test]
    fn one_events_data_is_bounded_across_lines() {
        let mut d = SseDecoder::default();
        let line = format!("data: {}\n", "x".repeat(1 << 20));
        let fed = (0..80).find_map(|_| d.feed(line.as_bytes()).err());
        assert!(
            fed.is_some(),
            "80 MiB of data lines in one event is refused"
        );
    }

    #[test]
    fn other_event_types_are_ignored() {
        let mut d = SseDecoder::default();
        assert!(all(&mut d, &["event: endpoint\ndata: /messages\n\n"]).is_empty());
        assert_eq!(d.endpoint.as_deref(), Some("/messages"));
        assert_eq!(all(&mut d, &["data: {}\n\n"]), ["{}"]);
    }
}
