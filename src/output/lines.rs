//! What a printer writes, cut into whole lines for the destinations that
//! take one message per event (`--syslog`, `--kafka`): a printer writes an
//! event in several pieces, the message must be the whole line.
//!
//! [`Lines`] never fails and never waits on its own: the [`LineSink`] it
//! hands each line to decides what a full queue means. A line longer than
//! the sink's largest message is dropped whole at its newline, never sent
//! cut (half a JSON object is worse than none), and counted by the sink.

use std::io::{self, Write};

/// Where [`Lines`] hands each line.
pub trait LineSink: Send {
    /// One whole line, without its newline; never empty.
    fn line(&mut self, line: &[u8]);
    /// A line longer than [`LineSink::MAX_LINE`] was dropped.
    fn overlong(&mut self);
    /// The longest line a message may carry.
    const MAX_LINE: usize;
}

/// A [`Write`] that cuts at each newline and hands the lines to `S`.
pub struct Lines<S> {
    sink: S,
    /// The start of a line whose newline has not come yet.
    partial: Vec<u8>,
    /// The line being written is longer than any message.
    overlong: bool,
}

impl<S: LineSink> Lines<S> {
    pub fn new(sink: S) -> Lines<S> {
        Lines {
            sink,
            partial: Vec::new(),
            overlong: false,
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    fn end_line(&mut self, line: &[u8]) {
        if self.overlong || self.partial.len() + line.len() > S::MAX_LINE {
            self.sink.overlong();
            self.partial.clear();
            self.overlong = false;
        } else if self.partial.is_empty() {
            if !line.is_empty() {
                self.sink.line(line);
            }
        } else {
            let mut whole = std::mem::take(&mut self.partial);
            whole.extend_from_slice(line);
            self.sink.line(&whole);
            whole.clear();
            self.partial = whole;
        }
    }
}

impl<S: LineSink> Write for Lines<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(end);
            self.end_line(line);
            rest = &after[1..];
        }
        if self.partial.len() + rest.len() > S::MAX_LINE {
            self.overlong = true;
            self.partial.clear();
        } else if !self.overlong {
            self.partial.extend_from_slice(rest);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Kept {
        lines: Vec<Vec<u8>>,
        overlong: u64,
    }

    impl LineSink for Kept {
        fn line(&mut self, line: &[u8]) {
            self.lines.push(line.to_vec());
        }
        fn overlong(&mut self) {
            self.overlong += 1;
        }
        const MAX_LINE: usize = 8;
    }

    #[test]
    fn lines_come_whole_whatever_the_writes_and_overlong_ones_are_dropped_whole() {
        let mut lines = Lines::new(Kept::default());
        lines.write_all(b"{\"a\":").expect("write");
        lines.write_all(b"1}\n\n{\"b\":2}\n{\"c\"").expect("write");
        lines.write_all(b":3}\n").expect("write");
        assert_eq!(
            lines.sink().lines,
            [&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]
        );
        // Longer than a message, in pieces or in one write.
        lines.write_all(b"12345678").expect("write");
        lines.write_all(b"9\nok\n").expect("write");
        lines.write_all(b"123456789\n").expect("write");
        assert_eq!(
            lines.sink().lines.last().map(Vec::as_slice),
            Some(&b"ok"[..])
        );
        assert_eq!(lines.sink().lines.len(), 4);
        assert_eq!(lines.sink().overlong, 2);
    }
}
