//! Large attachments without holding them: before a package is parsed, the text of each
//! attachment's content above a threshold is left in the source and recorded as a byte range
//! (a *spill*); the parser reads a slim copy of the package in which each such text is a marker,
//! and the tree holds the range instead of the text. Whoever needs the text (base64 checks,
//! canonicalization, decoding) reads the range piece by piece.
//!
//! Spilled are the texts of `ContentTransferEncoded` (edXML) and of `Content` under `Attachment`
//! (go.vn), when the element holds that text and nothing else and the text is ASCII without a
//! reference (`&`): base64, as attachments are. The marker is built around U+FFFF, which is not an XML character: a package that holds
//! one is refused, so a sender cannot forge a marker.

use std::sync::Arc;

use crate::error::ParseError;
use crate::source::{Range, Sequential, Source};

/// U+FFFF in UTF-8.
pub const NONCHAR: &[u8] = b"\xEF\xBF\xBF";

/// The slim copy of a package and the ranges of its spilled texts.
#[derive(Debug)]
pub struct Slim {
    pub xml: Vec<u8>,
    pub spills: Vec<Range>,
}

/// The marker standing for spill `index` in the slim copy.
pub fn marker(index: usize) -> String {
    format!("\u{FFFF}{index}\u{FFFF}")
}

/// The spill a text stands for, if it is a marker.
pub fn marker_index(text: &[u8]) -> Option<usize> {
    let inner = text.strip_prefix(NONCHAR)?.strip_suffix(NONCHAR)?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// Sequential reading, errors as the parser reports them.
struct Cursor(Sequential);

impl Cursor {
    fn offset(&self) -> u64 {
        self.0.offset()
    }

    fn next(&mut self) -> Result<Option<u8>, ParseError> {
        let at = self.0.offset();
        self.0
            .read_byte()
            .map_err(|e| malformed(at, format!("reading the package: {e}")))
    }

    fn peek(&mut self) -> Result<Option<u8>, ParseError> {
        let at = self.0.offset();
        self.0
            .peek()
            .map_err(|e| malformed(at, format!("reading the package: {e}")))
    }

    /// The bytes up to (not including) the next `<`, chunk by chunk; the cursor stops on `<`.
    fn text_run(&mut self, mut f: impl FnMut(&[u8])) -> Result<(), ParseError> {
        loop {
            let at = self.0.offset();
            if !self
                .0
                .fill()
                .map_err(|e| malformed(at, format!("reading the package: {e}")))?
            {
                return Ok(());
            }
            let chunk = self.0.buffered();
            match memchr::memchr(b'<', chunk) {
                Some(i) => {
                    f(&chunk[..i]);
                    self.0.consume(i);
                    return Ok(());
                }
                None => {
                    f(chunk);
                    let n = chunk.len();
                    self.0.consume(n);
                }
            }
        }
    }
}

fn malformed(position: u64, reason: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        position,
        reason: reason.into(),
    }
}

/// The local name of a tag's name bytes (after any prefix).
fn local(name: &[u8]) -> &[u8] {
    match memchr::memchr(b':', name) {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Scans `source` once and returns its slim copy: every spillable text longer than `threshold`
/// bytes replaced by a marker. Markup is copied as it is; what the scan cannot make sense of is
/// left for the parser to refuse.
pub fn slim(source: Arc<dyn Source>, threshold: u64) -> Result<Slim, ParseError> {
    if let Some(xml) = whole_if_nothing_spills(&*source, threshold)? {
        return Ok(Slim {
            xml,
            spills: Vec::new(),
        });
    }
    scan(source, threshold)
}

/// [`slim`] by scanning the package: markup copied, each text run measured and spilled or copied.
fn scan(source: Arc<dyn Source>, threshold: u64) -> Result<Slim, ParseError> {
    let mut c = Cursor(Sequential::new(Arc::clone(&source)));
    // The copy is the package itself unless something spills: room for a small one at once.
    let mut xml = Vec::with_capacity(usize::try_from(source.len()).unwrap_or(0).min(1 << 20));
    let mut spills = Vec::new();
    // Local names of the open elements.
    let mut open: Vec<Vec<u8>> = Vec::new();
    // The text run being read: its start, length, whether it holds `&`, and its bytes while it
    // is short.
    let mut run = Vec::new();
    // Whether the markup before the run was the start tag of the element it is in.
    let mut opened = false;
    loop {
        let start = c.offset();
        let mut len = 0u64;
        let mut has_reference = false;
        let mut has_nonchar = false;
        let mut ascii = true;
        run.clear();
        // A non-character may straddle two chunks: keep the last two bytes seen.
        let mut tail = [0u8; 2];
        c.text_run(|chunk| {
            len += chunk.len() as u64;
            has_reference |= memchr::memchr(b'&', chunk).is_some();
            ascii &= chunk.is_ascii();
            let mut joined = [0u8; 4];
            let head = chunk.len().min(2);
            joined[..2].copy_from_slice(&tail);
            joined[2..2 + head].copy_from_slice(&chunk[..head]);
            has_nonchar |= memchr::memmem::find(chunk, NONCHAR).is_some()
                || memchr::memmem::find(&joined[..2 + head], NONCHAR).is_some();
            if chunk.len() >= 2 {
                tail.copy_from_slice(&chunk[chunk.len() - 2..]);
            }
            if run.len() as u64 <= threshold {
                run.extend_from_slice(chunk);
            }
        })?;
        if has_nonchar {
            return Err(malformed(
                start,
                "the package holds U+FFFF, which is not an XML character",
            ));
        }
        let next = c.next()?;
        // An end tag follows the run.
        let closes = next == Some(b'<') && c.peek()? == Some(b'/');
        let parent = open.len().checked_sub(2).map(|i| open[i].as_slice());
        let spillable = match open.last().map(Vec::as_slice) {
            Some(b"ContentTransferEncoded") => true,
            Some(b"Content") => parent == Some(b"Attachment"),
            _ => false,
        };
        if len > threshold && spillable && opened && closes && ascii && !has_reference {
            xml.extend_from_slice(marker(spills.len()).as_bytes());
            spills.push(Range {
                source: Arc::clone(&source),
                offset: start,
                len,
            });
        } else if run.len() as u64 == len {
            xml.extend_from_slice(&run);
        } else {
            // A long text that is not spilled: read it back (a package whose attachment text
            // holds references, say; rare, and held in memory then).
            Range {
                source: Arc::clone(&source),
                offset: start,
                len,
            }
            .for_each_chunk(|chunk| xml.extend_from_slice(chunk))
            .map_err(|e| malformed(start, format!("reading the package: {e}")))?;
        }
        match next {
            None => break,
            Some(_) => opened = markup(&mut c, &mut xml, &mut open)?,
        }
    }
    Ok(Slim { xml, spills })
}

/// A package no longer than `threshold` holds no text longer than it, so nothing in it spills
/// and its slim copy is the package itself: read whole, in one piece, instead of scanned a byte
/// at a time, which was most of what reading a 20 KB package into a tree cost
/// (`docs/performance.md`). `None` sends the package to the scan: too long, shorter than it
/// said, or holding U+FFFF somewhere (the scan then refuses it where it refuses it today, in a
/// text, and lets the parser judge it elsewhere).
fn whole_if_nothing_spills(
    source: &dyn Source,
    threshold: u64,
) -> Result<Option<Vec<u8>>, ParseError> {
    let len = source.len();
    if len > threshold {
        return Ok(None);
    }
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    let mut xml = vec![0; len];
    let mut done = 0;
    while done < len {
        match source.read_at(done as u64, &mut xml[done..]) {
            Ok(0) => return Ok(None),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(malformed(done as u64, format!("reading the package: {e}"))),
        }
    }
    if memchr::memmem::find(&xml, NONCHAR).is_some() {
        return Ok(None);
    }
    Ok(Some(xml))
}

/// Copies one piece of markup (the `<` is already read) and keeps `open` up to date; true when
/// it was a start tag (an element that may hold text).
fn markup(c: &mut Cursor, xml: &mut Vec<u8>, open: &mut Vec<Vec<u8>>) -> Result<bool, ParseError> {
    let start = c.offset() - 1;
    let mut tag = vec![b'<'];
    // Comments, CDATA sections, processing instructions: up to their own terminator.
    let first = c.next()?;
    let terminator: Option<&[u8]> = match first {
        Some(b'!') => Some(b"!"),
        Some(b'?') => Some(b"?>"),
        _ => None,
    };
    if let Some(b) = first {
        tag.push(b);
    }
    if let Some(t) = terminator {
        let end: &[u8] = if t == b"?>" {
            b"?>"
        } else {
            // `<!--` ends with `-->`, `<![CDATA[` with `]]>`, anything else (a DOCTYPE) with
            // `>`: the parser refuses DOCTYPEs anyway.
            let mut head = Vec::new();
            while head.len() < 7 {
                match c.next()? {
                    Some(b) => {
                        head.push(b);
                        tag.push(b);
                        if head.starts_with(b"--") || head == b"[CDATA[" {
                            break;
                        }
                        if !b"[CDATA[".starts_with(&head) && !b"--".starts_with(&head) {
                            break;
                        }
                    }
                    None => break,
                }
            }
            if head.starts_with(b"--") {
                b"-->"
            } else if head == b"[CDATA[" {
                b"]]>"
            } else {
                b">"
            }
        };
        while !tag.ends_with(end) || tag.len() < 2 + end.len() {
            match c.next()? {
                Some(b) => tag.push(b),
                None => break,
            }
        }
        xml.extend_from_slice(&tag);
        return Ok(false);
    }
    // A start or end tag: up to the `>` outside quotes.
    let mut quote = None;
    while let Some(b) = c.next()? {
        tag.push(b);
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => break,
            None => {}
        }
    }
    let mut started = false;
    if tag.get(1) == Some(&b'/') {
        open.pop();
    } else if !tag.ends_with(b"/>") {
        started = true;
        let name_end = tag[1..]
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .map_or(tag.len(), |i| i + 1);
        open.push(local(&tag[1..name_end]).to_vec());
        if open.len() > 256 {
            return Err(malformed(start, "elements nested too deep"));
        }
    }
    xml.extend_from_slice(&tag);
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slim_of(xml: &str, threshold: u64) -> Slim {
        slim(Arc::new(xml.as_bytes().to_vec()), threshold).expect("slim")
    }

    #[test]
    fn attachment_text_over_the_threshold_becomes_a_marker_and_nothing_else_changes() {
        let big = "QUJD".repeat(10);
        let xml = format!(
            "<?xml version=\"1.0\"?><!-- a <comment> --><e:edXML xmlns:e=\"urn:x\"><e:Subject a='>'>{big}</e:Subject><![CDATA[<ContentTransferEncoded>]]><e:Attachment><e:ContentTransferEncoded>{big}</e:ContentTransferEncoded><e:Content>{big}</e:Content></e:Attachment><Content>{big}</Content></e:edXML>"
        );
        let s = slim_of(&xml, 16);
        assert_eq!(
            s.spills.len(),
            2,
            "ContentTransferEncoded and Attachment/Content"
        );
        let expected = xml
            .replacen(
                &format!("<e:ContentTransferEncoded>{big}"),
                &format!("<e:ContentTransferEncoded>{}", marker(0)),
                1,
            )
            .replacen(
                &format!("<e:Content>{big}"),
                &format!("<e:Content>{}", marker(1)),
                1,
            );
        assert_eq!(String::from_utf8(s.xml).expect("utf-8"), expected);
        let at = xml
            .find(&format!("<e:ContentTransferEncoded>{big}"))
            .expect("found")
            + "<e:ContentTransferEncoded>".len();
        assert_eq!(
            (s.spills[0].offset, s.spills[0].len),
            (at as u64, big.len() as u64)
        );
        // Below the threshold, the copy is the package.
        let s = slim_of(&xml, 1000);
        assert!(s.spills.is_empty());
        assert_eq!(s.xml, xml.as_bytes());
    }

    #[test]
    fn texts_with_references_or_other_content_stay_inline() {
        let big = "QUJD".repeat(10);
        let xml = format!(
            "<a><ContentTransferEncoded>{big}&#13;{big}</ContentTransferEncoded><ContentTransferEncoded>{big}<!--x-->{big}</ContentTransferEncoded></a>"
        );
        let s = slim_of(&xml, 16);
        assert!(s.spills.is_empty());
        assert_eq!(s.xml, xml.as_bytes());
    }

    /// What the slim copy of a package no longer than the threshold is, whether it is read
    /// whole or scanned: the same bytes, no spills, the same refusals (a nesting deeper than
    /// the scan follows is refused by the parser instead).
    #[test]
    fn a_package_under_the_threshold_read_whole_is_what_the_scan_makes_of_it() {
        let packages = [
            "<?xml version=\"1.0\"?><!-- <c> --><?pi x?><a b='>'><![CDATA[<x>]]>t&amp;u</a>"
                .to_owned(),
            format!(
                "<a><ContentTransferEncoded>{}</ContentTransferEncoded></a>",
                "QUJD".repeat(50)
            ),
            // U+FFFF in a text is refused; elsewhere it is left for the parser to judge.
            format!("<a>x{}y</a>", marker(0)),
            "<a b=\"\u{FFFF}\"/>".to_owned(),
            "<a><!--\u{FFFF}--></a>".to_owned(),
            // Cut short, or nested deeper than the scan follows.
            "<a><b".to_owned(),
            "<x>".repeat(300),
            String::new(),
        ];
        for package in packages {
            let bytes: Arc<dyn Source> = Arc::new(package.clone().into_bytes());
            let threshold = package.len() as u64;
            let read = slim(Arc::clone(&bytes), threshold);
            let scanned = scan(bytes, threshold);
            match (read, scanned) {
                (Ok(read), Ok(scanned)) => {
                    assert_eq!(read.xml, scanned.xml, "{package:?}");
                    assert!(read.spills.is_empty() && scanned.spills.is_empty());
                }
                (Err(read), Err(scanned)) => {
                    assert_eq!(read.to_string(), scanned.to_string(), "{package:?}");
                }
                // Deeper than the scan follows: the parser refuses it instead (it allows less).
                (Ok(read), Err(_)) => assert!(
                    matches!(
                        crate::dom::read_slim(&read.xml, &[]),
                        Err(ParseError::TooDeep { .. })
                    ),
                    "{package:?}"
                ),
                (read, scanned) => panic!(
                    "{package:?}: read whole {:?}, scanned {:?}",
                    read.map(|s| s.xml.len()),
                    scanned.map(|s| s.xml.len())
                ),
            }
        }
    }

    #[test]
    fn a_package_holding_u_ffff_is_refused_so_markers_cannot_be_forged() {
        let forged = format!(
            "<a><ContentTransferEncoded>{}</ContentTransferEncoded></a>",
            marker(0)
        );
        assert!(slim(Arc::new(forged.into_bytes()), 1).is_err());
        assert_eq!(marker_index(marker(7).as_bytes()), Some(7));
        assert_eq!(marker_index(b"7"), None);
    }
}
