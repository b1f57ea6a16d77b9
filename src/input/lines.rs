//! A line reader with a hard cap on line length: lines longer than the cap are skipped in
//! bounded memory and reported, never buffered whole.

use std::io::{self, Read};

const BLOCK: usize = 1 << 20;

/// One physical line of the decompressed stream.
#[derive(Debug)]
pub enum Line<'a> {
    /// The line without its `\n` (nor a `\r` before it, nor a leading BOM on line 1).
    Text { no: u64, bytes: &'a [u8], terminated: bool },
    /// A line longer than the cap; its bytes were discarded.
    TooLong { no: u64, len: u64, terminated: bool },
}

pub struct LineReader<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    error: Option<io::Error>,
    line_no: u64,
    max_line: usize,
    bytes_read: u64,
    /// Stream offset just past the last line returned with its newline.
    consumed: u64,
    /// Leave a last line without a newline unread (a blob still being appended to): an
    /// incremental scan picks it up complete next time.
    hold_tail: bool,
    held_tail: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(src: R, max_line: usize) -> LineReader<R> {
        LineReader {
            src,
            buf: vec![0; BLOCK.min(max_line.saturating_add(1)).max(4096)],
            pos: 0,
            len: 0,
            eof: false,
            error: None,
            line_no: 0,
            max_line,
            bytes_read: 0,
            consumed: 0,
            hold_tail: false,
            held_tail: false,
        }
    }

    /// Starts reading at `offset` of the stream (bytes before it are read and dropped, since a
    /// decompressed stream cannot seek), numbering lines after `line`.
    pub fn resume(mut self, offset: u64, line: u64) -> std::io::Result<LineReader<R>> {
        let mut left = offset;
        let mut sink = vec![0u8; (1 << 16).min(offset as usize).max(1)];
        while left > 0 {
            let want = sink.len().min(left as usize);
            let n = match self.src.read(&mut sink[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            left -= n as u64;
        }
        self.bytes_read = offset - left;
        self.consumed = self.bytes_read;
        self.line_no = line;
        Ok(self)
    }

    pub fn hold_tail(mut self, hold: bool) -> LineReader<R> {
        self.hold_tail = hold;
        self
    }

    /// Stream offset just past the last complete line: where the next incremental run resumes.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The number of the last line returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// True when a last line without a newline was left for the next run.
    pub fn held_tail(&self) -> bool {
        self.held_tail
    }

    /// Bytes consumed from the (decompressed) stream so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The read error that ended the stream early, if any. Lines before it were all returned.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    pub fn next_line(&mut self) -> Option<Line<'_>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.len]) {
                if i > self.max_line {
                    // The whole line is in the buffer but over the cap.
                    let no = self.next_no();
                    self.pos += i + 1;
                    self.consumed += (i + 1) as u64;
                    return Some(Line::TooLong { no, len: i as u64, terminated: true });
                }
                let start = self.pos;
                self.pos += i + 1;
                self.consumed += (i + 1) as u64;
                let no = self.next_no();
                return Some(Line::Text { no, bytes: trim_line(&self.buf[start..start + i], no), terminated: true });
            }
            let pending = self.len - self.pos;
            if pending > self.max_line {
                return Some(self.discard_long_line());
            }
            if self.eof {
                if pending == 0 {
                    return None;
                }
                if self.hold_tail && self.error.is_none() {
                    self.held_tail = true;
                    self.pos = self.len;
                    return None;
                }
                let start = self.pos;
                self.pos = self.len;
                let no = self.next_no();
                return Some(Line::Text { no, bytes: trim_line(&self.buf[start..self.len], no), terminated: false });
            }
            self.fill();
        }
    }

    fn next_no(&mut self) -> u64 {
        self.line_no += 1;
        self.line_no
    }

    /// Moves the unfinished tail to the front, grows the buffer if the tail fills it (never
    /// past the line cap), and reads more.
    fn fill(&mut self) {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            let target = (self.buf.len() * 2).min(self.max_line.saturating_add(2)).max(self.buf.len() + 1);
            self.buf.resize(target, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    self.len += n;
                    self.bytes_read += n as u64;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                    return;
                }
            }
        }
    }

    /// Skips the rest of an over-long line without keeping it.
    fn discard_long_line(&mut self) -> Line<'static> {
        let no = self.next_no();
        let mut len = (self.len - self.pos) as u64;
        self.pos = 0;
        self.len = 0;
        loop {
            if self.eof {
                return Line::TooLong { no, len, terminated: false };
            }
            self.fill();
            if let Some(i) = memchr::memchr(b'\n', &self.buf[..self.len]) {
                len += i as u64;
                self.pos = i + 1;
                self.consumed += len + 1;
                return Line::TooLong { no, len, terminated: true };
            }
            len += self.len as u64;
            self.len = 0;
        }
    }
}

/// Drops a trailing `\r` (CRLF files) and, on the first line, a UTF-8 byte-order mark.
fn trim_line(mut line: &[u8], no: u64) -> &[u8] {
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    if no == 1 {
        if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
            line = rest;
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line() {
            out.push(match l {
                Line::Text { no, bytes, terminated } => {
                    format!("{no}:{}{}", String::from_utf8_lossy(bytes), if terminated { "" } else { "$" })
                }
                Line::TooLong { no, len, terminated } => format!("{no}:too long {len}{}", if terminated { "" } else { "$" }),
            });
        }
        out
    }

    #[test]
    fn bom_crlf_and_unterminated_last_line() {
        assert_eq!(collect(b"\xEF\xBB\xBFa\r\n\nb", 100), vec!["1:a", "2:", "3:b$"]);
    }

    #[test]
    fn long_lines_are_skipped_in_bounded_memory() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nok\n");
        input.extend(vec![b'y'; 5000]);
        assert_eq!(collect(&input, 100), vec!["1:too long 10000", "2:ok", "3:too long 5000$"]);
        let mut r = LineReader::new(&input[..], 100);
        while r.next_line().is_some() {}
        assert!(r.buf.len() <= 4096, "buffer grew to {}", r.buf.len());
    }

    /// A reader that hands out at most `chunk` bytes per read, as pipes and decompressors do.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn collect_from(r: impl Read, max: usize) -> Vec<String> {
        let mut r = LineReader::new(r, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line() {
            out.push(format!("{l:?}"));
        }
        out.push(format!("consumed {}", r.consumed()));
        out
    }

    proptest::proptest! {
        #[test]
        fn the_lines_do_not_depend_on_how_reads_are_chunked(
            data in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(b'\n'), proptest::strategy::Just(b'\r'), proptest::strategy::Just(b'x'), proptest::num::u8::ANY], 0..3000),
            chunk in 1usize..300,
            max in proptest::prop_oneof![proptest::strategy::Just(8usize), proptest::strategy::Just(100), proptest::strategy::Just(5000)],
        ) {
            proptest::prop_assert_eq!(collect_from(Trickle { data: &data, chunk }, max), collect_from(&data[..], max));
        }
    }

    #[test]
    fn line_exactly_at_the_cap_is_kept() {
        assert_eq!(collect(b"abcd\nabcde\n", 4), vec!["1:abcd", "2:too long 5"]);
    }
}
