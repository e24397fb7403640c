//! Where a package's bytes are read from: memory, or a file read piece by piece, so that a large
//! package need not be held whole.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Random-access bytes.
pub trait Source: Send + Sync + fmt::Debug {
    fn len(&self) -> u64;

    /// Reads at most `buf.len()` bytes at `offset`; fewer only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.as_slice().len());
        let n = buf.len().min(self.as_slice().len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// A file, read with positioned reads (no shared cursor, so readers may share it).
#[derive(Debug)]
pub struct FileSource {
    file: std::fs::File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// A byte range of a source.
#[derive(Clone)]
pub struct Range {
    pub source: Arc<dyn Source>,
    pub offset: u64,
    pub len: u64,
}

impl fmt::Debug for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Range({}..+{})", self.offset, self.len)
    }
}

impl PartialEq for Range {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
            && self.offset == other.offset
            && self.len == other.len
    }
}

impl Eq for Range {}

/// An attachment's content left in the package it came in: where it lies, and how it is
/// written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRef {
    pub range: Range,
    pub encoding: Encoding,
}

/// How content left in a package is written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Base64 text, possibly with line breaks (edXML, go.vn, a base64 MIME part).
    Base64Text,
    /// The bytes themselves (a binary MIME part).
    Raw,
}

/// Reads a source from the start, through a buffer: byte by byte, or by the buffered run.
pub struct Sequential {
    source: Arc<dyn Source>,
    buf: Vec<u8>,
    /// Source offset of `buf[0]`.
    base: u64,
    len: usize,
    at: usize,
}

impl Sequential {
    /// The most read from the source at once.
    const BUFFER: usize = 256 * 1024;

    pub fn new(source: Arc<dyn Source>) -> Self {
        // No larger than the source: a 20 KB package read through a 256 KiB buffer paid for
        // zeroing the whole buffer, about a tenth of a worker's CPU under load.
        let size = usize::try_from(source.len())
            .unwrap_or(usize::MAX)
            .clamp(1, Self::BUFFER);
        Self {
            source,
            buf: vec![0; size],
            base: 0,
            len: 0,
            at: 0,
        }
    }

    /// The source offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Makes sure some bytes are buffered; false at the end of the source.
    pub fn fill(&mut self) -> io::Result<bool> {
        if self.at < self.len {
            return Ok(true);
        }
        self.base += self.len as u64;
        self.at = 0;
        self.len = self.source.read_at(self.base, &mut self.buf)?;
        Ok(self.len > 0)
    }

    /// The next byte, read.
    pub fn read_byte(&mut self) -> io::Result<Option<u8>> {
        if !self.fill()? {
            return Ok(None);
        }
        self.at += 1;
        Ok(Some(self.buf[self.at - 1]))
    }

    /// The next byte, left unread.
    pub fn peek(&mut self) -> io::Result<Option<u8>> {
        if !self.fill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.at]))
    }

    /// The bytes buffered and not yet read (empty only at the end: call [`Sequential::fill`]).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.at..self.len]
    }

    /// Marks `n` buffered bytes read.
    pub fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.len);
    }
}

/// What a byte is in base64 text: a symbol, white space, or anything else (`=` among them).
const SYMBOL: u8 = 0;
const SPACE: u8 = 1;
const OTHER: u8 = 2;
const BASE64_CLASS: [u8; 256] = {
    let mut class = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
            class[b] = SYMBOL;
        } else if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            class[b] = SPACE;
        }
        b += 1;
    }
    class
};

/// Bytes [`Base64Check`] classifies at once.
const BLOCK: usize = 64;

/// The symbols in `block`, and whether it holds nothing but symbols and (when allowed) white
/// space. Comparisons and sums without branches or look-ups, so that they are made on many
/// bytes at once.
#[inline]
fn classify_block(block: &[u8; BLOCK], allow_whitespace: bool) -> (u8, bool) {
    // Byte lanes throughout: a count of at most 64 fits one.
    let space_allowed = u8::from(allow_whitespace);
    let mut symbols = 0u8;
    let mut others = 0u8;
    for &b in block {
        let upper = u8::from(b.wrapping_sub(b'A') < 26);
        let lower = u8::from(b.wrapping_sub(b'a') < 26);
        let digit = u8::from(b.wrapping_sub(b'0') < 10);
        let symbol = upper | lower | digit | u8::from(b == b'+') | u8::from(b == b'/');
        let space = space_allowed
            & (u8::from(b == b' ')
                | u8::from(b == b'\t')
                | u8::from(b == b'\r')
                | u8::from(b == b'\n'));
        symbols += symbol;
        others |= 1 ^ (symbol | space);
    }
    (symbols, others == 0)
}

/// Checks base64 text fed a piece at a time and counts the bytes it decodes to.
#[derive(Debug, Default)]
pub struct Base64Check {
    symbols: u64,
    padding: u64,
    bad: Option<u8>,
    /// White space (line breaks in base64 MIME parts and XML) is allowed.
    pub allow_whitespace: bool,
}

impl Base64Check {
    pub fn new(allow_whitespace: bool) -> Self {
        Self {
            allow_whitespace,
            ..Self::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.bad.is_some() {
            return;
        }
        let mut rest = chunk;
        if self.padding == 0 {
            // Before any `=`, a block of symbols (and white space where allowed) at a time,
            // classified by comparisons the compiler makes many bytes at once; a block holding
            // anything else is left to the byte-wise look-up below, which finds it.
            while let Some((block, after)) = rest.split_first_chunk::<BLOCK>() {
                let (symbols, clean) = classify_block(block, self.allow_whitespace);
                if !clean {
                    break;
                }
                self.symbols += u64::from(symbols);
                rest = after;
            }
            // Then symbols, and white space where allowed, counted a table look-up and no
            // branch a byte; the first other byte ends the run.
            let space = if self.allow_whitespace { SPACE } else { SYMBOL };
            let run = rest
                .iter()
                .position(|&b| {
                    let class = BASE64_CLASS[usize::from(b)];
                    class != SYMBOL && class != space
                })
                .unwrap_or(rest.len());
            self.symbols += rest[..run]
                .iter()
                .map(|&b| u64::from(BASE64_CLASS[usize::from(b)] == SYMBOL))
                .sum::<u64>();
            rest = &rest[run..];
        }
        // From the first `=` on (or the first byte that is not base64), with the same table.
        for &b in rest {
            match BASE64_CLASS[usize::from(b)] {
                SYMBOL if self.padding == 0 => self.symbols += 1,
                SPACE if self.allow_whitespace => {}
                _ if b == b'=' => self.padding += 1,
                _ => {
                    self.bad = Some(b);
                    return;
                }
            }
        }
    }

    /// The decoded length, or why the text is not base64.
    pub fn finish(&self) -> Result<u64, String> {
        if let Some(b) = self.bad {
            return Err(format!(
                "is not valid base64 (unexpected `{}`)",
                char::from(b).escape_default()
            ));
        }
        if self.padding > 2 || !(self.symbols + self.padding).is_multiple_of(4) {
            return Err("is not valid base64 (its length is not a multiple of 4)".into());
        }
        Ok((self.symbols + self.padding) / 4 * 3 - self.padding)
    }

    /// Checks a range.
    pub fn range(range: &Range, allow_whitespace: bool) -> Result<u64, String> {
        let mut check = Self::new(allow_whitespace);
        range
            .for_each_chunk(|c| check.feed(c))
            .map_err(|e| format!("could not be read: {e}"))?;
        check.finish()
    }
}

/// How much a range is read at a time.
const CHUNK: usize = 64 * 1024;

impl Range {
    /// Calls `f` with the range's bytes, a chunk at a time.
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK.min(usize::try_from(self.len).unwrap_or(CHUNK)).max(1)];
        let mut at = 0u64;
        while at < self.len {
            let want = buf
                .len()
                .min(usize::try_from(self.len - at).unwrap_or(buf.len()));
            let n = self.source.read_at(self.offset + at, &mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the source is shorter than the range",
                ));
            }
            f(&buf[..n]);
            at += n as u64;
        }
        Ok(())
    }

    /// The text of the range as an XML processor reports it: CR LF and lone CR become LF
    /// (XML 1.0 section 2.11), a chunk at a time.
    pub fn for_each_text_chunk(&self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let mut pending_cr = false;
        let mut out = Vec::with_capacity(CHUNK);
        self.for_each_chunk(|chunk| {
            out.clear();
            for &b in chunk {
                if pending_cr {
                    pending_cr = false;
                    out.push(b'\n');
                    if b == b'\n' {
                        continue;
                    }
                }
                if b == b'\r' {
                    pending_cr = true;
                } else {
                    out.push(b);
                }
            }
            f(&out);
        })?;
        if pending_cr {
            f(b"\n");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What [`Base64Check`] answered before it looked bytes up in a table: a byte at a time.
    fn checked_a_byte_at_a_time(pieces: &[Vec<u8>], allow_whitespace: bool) -> Result<u64, String> {
        let mut check = Base64Check::new(allow_whitespace);
        for piece in pieces {
            for &b in piece {
                if check.bad.is_some() {
                    break;
                }
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if check.padding == 0 => {
                        check.symbols += 1
                    }
                    b'=' => check.padding += 1,
                    b' ' | b'\t' | b'\r' | b'\n' if allow_whitespace => {}
                    _ => check.bad = Some(b),
                }
            }
        }
        check.finish()
    }

    fn checked(pieces: &[Vec<u8>], allow_whitespace: bool) -> Result<u64, String> {
        let mut check = Base64Check::new(allow_whitespace);
        for piece in pieces {
            check.feed(piece);
        }
        check.finish()
    }

    #[test]
    fn base64_is_checked_and_measured_with_the_offending_byte_named() {
        let text = |s: &str| vec![s.as_bytes().to_vec()];
        assert_eq!(checked(&text("aGVsbG8="), false), Ok(5));
        assert_eq!(checked(&text("aGVs\r\nbG8h"), true), Ok(6));
        assert_eq!(checked(&[b"aGV".to_vec(), b"sbG8=".to_vec()], false), Ok(5));
        assert!(checked(&text("aGVs\nbG8h"), false).is_err_and(|e| e.contains("`\\n`")));
        assert!(checked(&text("aGVsbG8=x"), true).is_err_and(|e| e.contains("`x`")));
        assert!(checked(&text("aGVs-G8h"), true).is_err_and(|e| e.contains("`-`")));
        assert!(checked(&text("aGVsbG8"), true).is_err_and(|e| e.contains("multiple of 4")));
        assert!(checked(&text("aGVsb==="), true).is_err());
    }

    proptest! {
        #[test]
        fn base64_checked_a_run_at_a_time_answers_as_a_byte_at_a_time(
            pieces in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        8 => proptest::sample::select(
                            b"ABCXYZabcxyz0189+/".to_vec()
                        ),
                        2 => proptest::sample::select(b" \t\r\n=".to_vec()),
                        1 => any::<u8>(),
                    ],
                    0..40,
                ),
                0..6,
            ),
            allow_whitespace in any::<bool>(),
        ) {
            prop_assert_eq!(
                checked(&pieces, allow_whitespace),
                checked_a_byte_at_a_time(&pieces, allow_whitespace)
            );
        }
    }

    proptest! {
        /// Long runs, mostly symbols: whole blocks are classified at once, and a block with a
        /// stray byte is handed to the byte-wise look-up.
        #[test]
        fn base64_checked_a_block_at_a_time_answers_as_a_byte_at_a_time(
            pieces in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        400 => proptest::sample::select(
                            b"ABCMNXYZabcmnxyz0189+/".to_vec()
                        ),
                        20 => proptest::sample::select(b" \t\r\n".to_vec()),
                        2 => Just(b'='),
                        1 => any::<u8>(),
                    ],
                    0..400,
                ),
                0..4,
            ),
            allow_whitespace in any::<bool>(),
        ) {
            prop_assert_eq!(
                checked(&pieces, allow_whitespace),
                checked_a_byte_at_a_time(&pieces, allow_whitespace)
            );
        }
    }

    #[test]
    fn a_source_is_read_through_a_buffer_no_larger_than_it_and_read_whole_either_way() {
        for len in [0usize, 1, 20_000, Sequential::BUFFER + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut s = Sequential::new(Arc::new(data.clone()));
            assert_eq!(s.buf.len(), len.clamp(1, Sequential::BUFFER), "{len} bytes");
            let mut read = Vec::new();
            while s.fill().expect("fill") {
                read.extend_from_slice(s.buffered());
                let n = s.buffered().len();
                s.consume(n);
            }
            assert_eq!(read, data, "{len} bytes");
        }
    }

    #[test]
    fn ranges_are_read_in_chunks_with_line_ends_normalized() {
        let mut data = vec![b'a'; CHUNK - 1];
        data.extend_from_slice(b"\r\nb\rc\r");
        let source: Arc<dyn Source> = Arc::new(data.clone());
        let range = Range {
            source,
            offset: 0,
            len: data.len() as u64,
        };
        let mut raw = Vec::new();
        range
            .for_each_chunk(|c| raw.extend_from_slice(c))
            .expect("read");
        assert_eq!(raw, data);
        let mut text = Vec::new();
        range
            .for_each_text_chunk(|c| text.extend_from_slice(c))
            .expect("read");
        let mut expected = vec![b'a'; CHUNK - 1];
        expected.extend_from_slice(b"\nb\nc\n");
        assert_eq!(text, expected, "CR LF split across chunks is one LF");
    }
}
