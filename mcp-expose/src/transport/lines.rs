//! Newline framing for byte streams (stdio, a bridged child's stdout): lines are found with
//! memchr in one reused buffer and lent out, so reading costs no allocation per message.

use std::io;

use memchr::memchr;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// One result of [`LineReader::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line without its newline (the last one may lack it).
    Frame(&'a [u8]),
    /// A line longer than the limit began; the rest of it up to its newline is skipped.
    TooLong,
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineReader<R> {
    input: R,
    /// Read bytes; the unconsumed ones are `buf[start..]`, and `buf[start..scanned]` holds no
    /// newline. Reads go into the spare capacity (nothing is zeroed first).
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
    initial: usize,
    max: usize,
    discarding: bool,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader whose buffer starts at `capacity` bytes (it grows for longer lines, and shrinks
    /// back after them).
    pub fn new(input: R, capacity: usize, max: usize) -> Self {
        Self {
            input,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            initial: capacity.max(64),
            max,
            discarding: false,
            eof: false,
        }
    }

    /// The next line; `None` at the end of the input (or once it failed).
    ///
    /// Cancel-safe: state changes only between reads, so dropping the future loses nothing.
    pub async fn next(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(i) = memchr(b'\n', &self.buf[self.scanned..]) {
                let (start, newline) = (self.start, self.scanned + i);
                self.start = newline + 1;
                self.scanned = self.start;
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                if newline - start > self.max {
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(Line::Frame(&self.buf[start..newline])));
            }
            self.scanned = self.buf.len();
            if self.discarding {
                self.clear();
            } else if self.buf.len() - self.start > self.max {
                self.discarding = true;
                self.clear();
                return Ok(Some(Line::TooLong));
            }
            if self.eof {
                let start = self.start;
                self.start = self.buf.len();
                if self.buf.len() > start {
                    return Ok(Some(Line::Frame(&self.buf[start..])));
                }
                return Ok(None);
            }
            self.make_room();
            match self.input.read_buf(&mut self.buf).await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    self.clear();
                    return Err(e);
                }
            }
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        (self.start, self.scanned) = (0, 0);
    }

    /// Makes room to read into: drops consumed bytes when space runs short, grows for a long
    /// line, and gives the memory of a long line back once it is done.
    fn make_room(&mut self) {
        if self.start == self.buf.len() {
            self.clear();
        }
        let pending = self.buf.len() - self.start;
        if self.buf.capacity() > self.initial * 16 && pending < self.initial / 2 {
            self.buf.drain(..self.start);
            (self.start, self.scanned) = (0, self.scanned - self.start);
            self.buf.shrink_to(self.initial);
        }
        let low = self.initial / 4;
        if self.buf.capacity() - self.buf.len() >= low {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            (self.start, self.scanned) = (0, self.scanned - self.start);
        }
        if self.buf.capacity() - self.buf.len() < low {
            self.buf.reserve(self.buf.len().max(self.initial));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], capacity: usize, max: usize) -> Vec<Option<Vec<u8>>> {
        let mut reader = LineReader::new(input, capacity, max);
        let mut out = Vec::new();
        while let Some(line) = reader.next().await.expect("read") {
            out.push(match line {
                Line::Frame(frame) => Some(frame.to_vec()),
                Line::TooLong => None,
            });
        }
        out
    }

    #[tokio::test]
    async fn splits_grows_and_skips_long_lines() {
        let lines = all(b"a\nbb\n\nccc", 64, 100).await;
        assert_eq!(
            lines,
            [
                Some(b"a".to_vec()),
                Some(b"bb".to_vec()),
                Some(vec![]),
                Some(b"ccc".to_vec())
            ]
        );
        let long = [b'x'; 1000];
        let mut input = long.to_vec();
        input.extend_from_slice(b"\nok\n");
        assert_eq!(
            all(&input, 64, 2000).await,
            [Some(long.to_vec()), Some(b"ok".to_vec())]
        );
        assert_eq!(all(&input, 64, 100).await, [None, Some(b"ok".to_vec())]);
        assert_eq!(all(b"12345\n1\n", 64, 4).await, [None, Some(b"1".to_vec())]);
    }
}
