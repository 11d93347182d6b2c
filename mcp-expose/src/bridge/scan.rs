//! The envelope's fast path: a strict, allocation-free JSON scanner that reads the id, the
//! method and the progress token and skips everything else, long strings with `memchr`; and
//! the [`Message`] both it and `envelope::parse` answer with.
//!
//! It answers only when it is sure. Anything it does not handle the way serde_json would
//! (escaped member names or methods, duplicate envelope members, deep nesting, bytes that are
//! not UTF-8, any syntax error) makes it step aside with `None`, and `envelope::parse` reads the
//! frame with serde_json instead, so errors and corner cases keep serde_json's exact answers.
//! It never accepts what serde_json rejects: it checks the full JSON grammar of everything it
//! skips (and is stricter about UTF-8 inside skipped strings).

use std::borrow::Cow;

/// What kind of message a frame holds. Ids and tokens are their raw JSON text (`1`, `"a"`),
/// borrowed from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A request: it has an id and a method.
    Request {
        /// The id, raw JSON.
        id: &'a str,
        /// The method.
        method: Cow<'a, str>,
        /// `params._meta.progressToken` (or `params.progressToken`), raw JSON.
        progress_token: Option<&'a str>,
    },
    /// A notification: a method and no id.
    Notification {
        /// The method.
        method: Cow<'a, str>,
        /// `params._meta.progressToken` (or `params.progressToken`), raw JSON.
        progress_token: Option<&'a str>,
    },
    /// A response (a result or an error): an id and no method.
    Response {
        /// The id, raw JSON.
        id: &'a str,
    },
}

/// Deeper nesting is left to serde_json (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// The envelope of `frame`, or `None` when serde_json should decide.
pub(crate) fn envelope(frame: &[u8]) -> Option<Message<'_>> {
    let mut scan = Scan { b: frame, i: 0 };
    scan.ws();
    if scan.peek()? != b'{' {
        return None;
    }
    let (mut id, mut method, mut params) = (None, None, None);
    scan.object(1, |scan, key, depth| {
        match key {
            // A duplicate is serde_json's to report.
            b"id" if id.is_some() => return None,
            b"id" => id = Some(scan.nullable_raw(depth)?),
            b"method" if method.is_some() => return None,
            b"method" if scan.literal(b"null").is_some() => method = Some(None),
            b"method" => method = Some(Some(scan.plain_string()?)),
            b"params" if params.is_some() => return None,
            b"params" => params = Some(scan.token(depth)?),
            _ => scan.value(depth)?,
        }
        Some(())
    })?;
    scan.ws();
    if scan.i != frame.len() {
        return None;
    }
    let method = match method.flatten() {
        Some((start, end)) => Some(text(frame, start, end)?),
        None => None,
    };
    let progress_token = match params.flatten() {
        Some((start, end)) => Some(text(frame, start, end)?),
        None => None,
    };
    let id = match id.flatten() {
        Some((start, end)) => Some(text(frame, start, end)?),
        None => None,
    };
    match (id, method) {
        (Some(id), Some(method)) => Some(Message::Request {
            id,
            method: Cow::Borrowed(method),
            progress_token,
        }),
        (None, Some(method)) => Some(Message::Notification {
            method: Cow::Borrowed(method),
            progress_token,
        }),
        (Some(id), None) => Some(Message::Response { id }),
        (None, None) => None,
    }
}

fn text(frame: &[u8], start: usize, end: usize) -> Option<&str> {
    std::str::from_utf8(frame.get(start..end)?).ok()
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.i += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// JSON whitespace: space, tab, line feed, carriage return.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes: the range of its contents.
    fn plain_string(&mut self) -> Option<(usize, usize)> {
        let start = self.i + 1;
        match self.string()? {
            false => Some((start, self.i - 1)),
            true => None,
        }
    }

    /// Skips a string; says whether it held escapes.
    fn string(&mut self) -> Option<bool> {
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            let rest = self.b.get(self.i..)?;
            let stop = memchr::memchr2(b'"', b'\\', rest)?;
            check_segment(&rest[..stop])?;
            self.i += stop + 1;
            if rest[stop] == b'"' {
                return Some(escaped);
            }
            escaped = true;
            match self.next()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let hex = self.b.get(self.i..self.i + 4)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 4;
                }
                _ => return None,
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digit()?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digit()?;
            self.digits();
        }
        Some(())
    }

    fn digit(&mut self) -> Option<()> {
        self.next()?.is_ascii_digit().then_some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// Skips any value.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(depth + 1, |scan, _, depth| scan.value(depth)),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// A value kept as raw text (the id): `None` inside for `null`.
    fn nullable_raw(&mut self, depth: usize) -> Option<Option<(usize, usize)>> {
        if self.literal(b"null").is_some() {
            return Some(None);
        }
        let start = self.i;
        self.value(depth)?;
        Some(Some((start, self.i)))
    }

    /// `params` or `params._meta`: the progress token read the way the serde path reads it
    /// (`_meta`'s token first, else a direct `progressToken`; the last of duplicates wins).
    ///
    /// A number or a string here is serde_json's to read: in these two places (and only there)
    /// it parses them, and rejects a number out of `f64`'s range (`1E400`) or a lone surrogate
    /// escape (`"\ud800"`) as a parse error.
    fn token(&mut self, depth: usize) -> Option<Option<(usize, usize)>> {
        match self.peek()? {
            b'{' => {}
            b'[' | b't' | b'f' | b'n' => {
                self.value(depth)?;
                return Some(None);
            }
            _ => return None,
        }
        let (mut meta, mut direct) = (None, None);
        self.object(depth + 1, |scan, key, depth| {
            match key {
                b"_meta" => meta = scan.token(depth)?,
                b"progressToken" => {
                    let start = scan.i;
                    scan.value(depth)?;
                    direct = Some((start, scan.i));
                }
                _ => scan.value(depth)?,
            }
            Some(())
        })?;
        Some(meta.or(direct))
    }

    /// Walks an object, handing each member's value to `member` (positioned at the value).
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, &[u8], usize) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let (start, end) = self.plain_string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let b = self.b;
            member(self, b.get(start..end)?, depth)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

/// A run of string bytes between escapes: no control characters, and UTF-8 when not ASCII.
/// Checked a block at a time so that the compiler can use vector instructions.
fn check_segment(segment: &[u8]) -> Option<()> {
    let mut ascii = true;
    for block in segment.chunks(64) {
        let (low, high) = block
            .iter()
            .fold((u8::MAX, 0u8), |(low, high), &b| (low.min(b), high.max(b)));
        if low < 0x20 {
            return None;
        }
        ascii &= high < 0x80;
    }
    if ascii || std::str::from_utf8(segment).is_ok() {
        Some(())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::envelope::parse_serde;

    /// The scanner's answer, checked against serde_json's whenever it gives one.
    fn scan(frame: &str) -> Option<Message<'_>> {
        let fast = envelope(frame.as_bytes());
        if let Some(fast) = &fast {
            assert_eq!(Ok(fast.clone()), parse_serde(frame.as_bytes()), "{frame}");
        }
        fast
    }

    fn request<'a>(id: &'a str, method: &'a str, token: Option<&'a str>) -> Option<Message<'a>> {
        Some(Message::Request {
            id,
            method: Cow::Borrowed(method),
            progress_token: token,
        })
    }

    #[test]
    fn reads_what_serde_reads() {
        assert_eq!(
            scan(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}"#),
            request("7", "tools/call", None)
        );
        assert_eq!(
            scan(
                " {\"id\" :\t\"a\\\"b\" , \"method\":\"m\",\"params\":{\"_meta\":{\"progressToken\": {\"k\":[1,2]} }}}\r\n"
            ),
            request(r#""a\"b""#, "m", Some(r#"{"k":[1,2]}"#))
        );
        // `_meta`'s token wins over a direct one, the last duplicate over earlier ones.
        assert_eq!(
            scan(
                r#"{"id":1,"method":"m","params":{"progressToken":1,"_meta":{"progressToken":2},"progressToken":3}}"#
            ),
            request("1", "m", Some("2"))
        );
        // A number as `_meta` is serde_json's to read (above), which keeps the direct token.
        let frame = r#"{"id":1,"method":"m","params":{"progressToken":1,"_meta":5}}"#;
        assert_eq!(scan(frame), None);
        assert_eq!(
            super::super::envelope::parse(frame.as_bytes()),
            Ok(request("1", "m", Some("1")).expect("a request"))
        );
        assert_eq!(
            scan(r#"{"method":"notifications/x","id":null,"params":[1,{"a":-0.5e+3}]}"#),
            Some(Message::Notification {
                method: Cow::Borrowed("notifications/x"),
                progress_token: None
            })
        );
        assert_eq!(
            scan(r#"{"id":"é€","result":{"text":"\u00e9 \ud83d\ude00 ok","n":[true,false,null]}}"#),
            Some(Message::Response { id: r#""é€""# })
        );
        let long = format!(
            r#"{{"id":2,"method":"m","params":{{"t":"{}"}}}}"#,
            "x".repeat(70_000)
        );
        assert_eq!(scan(&long), request("2", "m", None));
    }

    #[test]
    fn steps_aside_when_unsure_or_wrong() {
        for frame in [
            // serde_json's to decide or to word the error:
            r#"{"\u0069d":1,"method":"m"}"#,
            r#"{"id":1,"method":"t\u006fols/call"}"#,
            r#"{"id":1,"id":2,"method":"m"}"#,
            r#"{"id":1,"method":5}"#,
            r#"{"params":{}}"#,
            // serde_json reads numbers and strings in params and _meta (and rejects these):
            r#"{"id":"%*","params":15.6491086E3002424}"#,
            r#"{"id":1,"method":"m","params":{"_meta":-1E400}}"#,
            r#"{"id":1,"method":"m","params":7}"#,
            r#"{"id":1,"method":"m","params":"\ud800"}"#,
            r#"{"id":1,"method":"m","params":{"_meta":"\udc00"}}"#,
            r#"[{"id":1,"method":"m"}]"#,
            // and not JSON at all:
            r#"{"id":1,"method":"m",}"#,
            r#"{"id":01,"method":"m"}"#,
            r#"{"id":1.,"method":"m"}"#,
            r#"{"id":-,"method":"m"}"#,
            r#"{"id":1,"method":"m"} x"#,
            r#"{"id":1,"method":"m""#,
            r#"{"id":tru,"method":"m"}"#,
            "{\"id\":\"a\u{1}b\",\"method\":\"m\"}",
            r#"{"id":"\x","method":"m"}"#,
            r#"{"id":"\u12g4","method":"m"}"#,
            "\u{feff}{\"id\":1,\"method\":\"m\"}",
        ] {
            assert_eq!(scan(frame), None, "{frame}");
        }
        assert_eq!(envelope(b"{\"id\":\"\xff\",\"method\":\"m\"}"), None);
        let deep = format!(
            r#"{{"id":1,"method":"m","params":{}{}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert_eq!(scan(&deep), None);
    }
}
