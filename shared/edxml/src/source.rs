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
