//! An edXML package with this bus's `TraceHeader`s put in, kept as the sender's bytes and a few
//! edits instead of a second copy.
//!
//! An edXML recipient's rendition of an edXML package differs from the package in two places:
//! the `TraceHeader`s of the buses it passed, put at the end of the `TraceHeaderList` (the list
//! made after `MessageHeader` or `Status` when the package has none), and the sender's
//! `Signature` taken out of `edXMLHeader` (it covers the whole package, so it no longer holds for
//! the rendition; the recipient checks it on the original, which travels beside). Everything
//! else is the sender's bytes. [`trace_edits`] finds those places in the package's header;
//! [`Spliced`] reads the rendition from the package and the edits, so a store keeps the edits, a
//! few hundred bytes, beside the package it already holds.

use std::fmt;
use std::io;
use std::sync::Arc;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::{Deserialize, Serialize};

use crate::model::TraceHeader;
use crate::source::{Range, Source};

/// Replaces `cut` bytes of the package at `at` with `put`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub at: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub put: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a package's header gave no edits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unspliced {
    /// The bytes given end before `edXMLHeader` does: read more of the package and ask again.
    #[error("the header goes on past the {0} bytes read")]
    NeedMore(usize),
    /// The package is not shaped so that edits can make the rendition; encode it whole.
    #[error("{0}")]
    Shape(&'static str),
}

/// Where things lie in an edXML package's header, as the scan found them.
#[derive(Default)]
struct Header {
    /// After the end tag of `MessageHeader` or `Status`.
    after_first_block: Option<u64>,
    /// `edXMLHeader`'s prefix with its colon (empty without one).
    header_prefix: String,
    /// The first `TraceHeaderList`: its prefix with its colon, where its content starts and
    /// after the end tag of its last `TraceHeader`.
    list_prefix: Option<String>,
    list_content: u64,
    after_last_trace: Option<u64>,
    /// The byte ranges of the `Signature` children of `edXMLHeader`.
    signatures: Vec<(u64, u64)>,
}

/// The edits that make an edXML recipient's rendition of this package: `hops` put after the
/// package's own `TraceHeader`s, its `Signature`s taken out of `edXMLHeader`. `head` is the
/// package or its first bytes (`whole` says which); with too few, the answer is
/// [`Unspliced::NeedMore`].
///
/// The package has passed the gateway's checks (well formed, no DTD); a shape this does not
/// expect (another root, a self-closed list, no `MessageHeader` or `Status`) is
/// [`Unspliced::Shape`], and the caller encodes the rendition from the model as before.
pub fn trace_edits(head: &[u8], whole: bool, hops: &[TraceHeader]) -> Result<Vec<Edit>, Unspliced> {
    let h = scan(head, whole)?;
    let mut edits = Vec::new();
    let (at, put) = match (&h.list_prefix, h.after_first_block) {
        (Some(p), _) => (
            h.after_last_trace.unwrap_or(h.list_content),
            hops.iter().map(|t| trace_header(p, t)).collect::<String>(),
        ),
        (None, Some(after)) => {
            let p = &h.header_prefix;
            let list: String = hops.iter().map(|t| trace_header(p, t)).collect();
            (
                after,
                format!("<{p}TraceHeaderList>{list}</{p}TraceHeaderList>"),
            )
        }
        (None, None) => {
            return Err(Unspliced::Shape(
                "no MessageHeader or Status in edXMLHeader",
            ));
        }
    };
    if !hops.is_empty() {
        edits.push(Edit { at, cut: 0, put });
    }
    // The signatures and the list are children of edXMLHeader side by side, so no cut holds
    // the insertion.
    for &(start, end) in &h.signatures {
        edits.push(Edit {
            at: start,
            cut: end - start,
            put: String::new(),
        });
    }
    // An insertion before a cut at the same place.
    edits.sort_by_key(|e| (e.at, e.cut));
    Ok(edits)
}

fn trace_header(prefix: &str, t: &TraceHeader) -> String {
    let organ = quick_xml::escape::escape(t.organ_id.as_str());
    let time = quick_xml::escape::escape(t.timestamp.to_string());
    format!(
        "<{prefix}TraceHeader><{prefix}OrganId>{organ}</{prefix}OrganId>\
         <{prefix}Timestamp>{time}</{prefix}Timestamp></{prefix}TraceHeader>"
    )
}

/// `name`'s prefix with its colon, and its local name.
fn split(name: &[u8]) -> (String, &[u8]) {
    match name.iter().position(|&b| b == b':') {
        Some(i) => (
            String::from_utf8_lossy(&name[..=i]).into_owned(),
            &name[i + 1..],
        ),
        None => (String::new(), name),
    }
}

/// Reads the package up to the end of `edXMLHeader`.
fn scan(head: &[u8], whole: bool) -> Result<Header, Unspliced> {
    let more = || {
        if whole {
            Unspliced::Shape("the package ends inside edXMLHeader")
        } else {
            Unspliced::NeedMore(head.len())
        }
    };
    let mut reader = Reader::from_reader(head);
    let mut h = Header::default();
    // Local names from the root down to the element read last.
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut in_list = false;
    let mut signature_start = None;
    loop {
        let before = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(e) => e,
            // A prefix of the package may cut a tag in two.
            Err(_) if !whole => return Err(more()),
            Err(_) => return Err(Unspliced::Shape("the package is not well formed")),
        };
        let after = reader.buffer_position();
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let empty = matches!(event, Event::Empty(_));
                let name = s.name();
                let (prefix, local) = split(name.as_ref());
                let depth = path.len();
                match (depth, local) {
                    (0, b"edXML") | (1, b"edXMLEnvelope") => {}
                    (0 | 1, _) => return Err(Unspliced::Shape("not an edXML envelope")),
                    (2, b"edXMLHeader") => {
                        if empty {
                            return Err(Unspliced::Shape("an empty edXMLHeader"));
                        }
                        h.header_prefix = prefix;
                    }
                    (2, _) => return Err(Unspliced::Shape("edXMLHeader is not first")),
                    (3, b"TraceHeaderList") if h.list_prefix.is_none() => {
                        if empty {
                            return Err(Unspliced::Shape("a self-closed TraceHeaderList"));
                        }
                        h.list_prefix = Some(prefix);
                        h.list_content = after;
                        in_list = true;
                    }
                    (3, b"MessageHeader" | b"Status") if empty && h.after_first_block.is_none() => {
                        h.after_first_block = Some(after);
                    }
                    (3, b"Signature") if empty => h.signatures.push((before, after)),
                    (3, b"Signature") => signature_start = Some(before),
                    _ => {}
                }
                if !empty {
                    path.push(local.to_vec());
                }
            }
            Event::End(ref e) => {
                let name = e.name();
                let (_, local) = split(name.as_ref());
                let depth = path.len();
                path.pop();
                match (depth, local) {
                    (4, b"MessageHeader" | b"Status") if h.after_first_block.is_none() => {
                        h.after_first_block = Some(after);
                    }
                    (4, b"TraceHeaderList") => in_list = false,
                    (5, b"TraceHeader") if in_list => h.after_last_trace = Some(after),
                    (4, b"Signature") => {
                        if let Some(start) = signature_start.take() {
                            h.signatures.push((start, after));
                        }
                    }
                    (3, b"edXMLHeader") => return Ok(h),
                    _ => {}
                }
            }
            Event::DocType(_) => return Err(Unspliced::Shape("a DTD")),
            Event::Eof => return Err(more()),
            _ => {}
        }
    }
}

/// The rendition: the package read through its edits, which are sorted by `at` and do not
/// overlap.
pub struct Spliced {
    base: Arc<dyn Source>,
    /// Each piece in order: a range of the package, or an edit's bytes; and where it starts in
    /// the rendition.
    pieces: Vec<(u64, Piece)>,
    len: u64,
}

enum Piece {
    Base { offset: u64, len: u64 },
    Put(Vec<u8>),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Base { len, .. } => *len,
            Piece::Put(bytes) => bytes.len() as u64,
        }
    }
}

impl Spliced {
    /// `None` when the edits do not fit the package (out of order, overlapping or past its end):
    /// a stored rendition that is not what was made.
    pub fn new(base: Arc<dyn Source>, edits: &[Edit]) -> Option<Self> {
        let mut pieces = Vec::new();
        let mut from = 0u64;
        let mut len = 0u64;
        let mut push = |piece: Piece, pieces: &mut Vec<(u64, Piece)>| {
            let n = piece.len();
            if n > 0 {
                pieces.push((len, piece));
                len += n;
            }
        };
        for e in edits {
            let end = e.at.checked_add(e.cut)?;
            if e.at < from || end > base.len() {
                return None;
            }
            push(
                Piece::Base {
                    offset: from,
                    len: e.at - from,
                },
                &mut pieces,
            );
            push(Piece::Put(e.put.as_bytes().to_vec()), &mut pieces);
            from = end;
        }
        push(
            Piece::Base {
                offset: from,
                len: base.len() - from,
            },
            &mut pieces,
        );
        Some(Self { base, pieces, len })
    }

    /// The SHA-256 of the rendition, in hex.
    pub fn sha256_hex(&self) -> io::Result<String> {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for (_, piece) in &self.pieces {
            match piece {
                Piece::Put(bytes) => context.update(bytes),
                Piece::Base { offset, len } => Range {
                    source: Arc::clone(&self.base),
                    offset: *offset,
                    len: *len,
                }
                .for_each_chunk(|chunk| context.update(chunk))?,
            }
        }
        Ok(hex::encode(context.finish()))
    }

    /// The whole rendition.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = vec![0; usize::try_from(self.len).map_err(io::Error::other)?];
        let n = self.read_at(0, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

impl fmt::Debug for Spliced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Spliced({} pieces, {} bytes)",
            self.pieces.len(),
            self.len
        )
    }
}

impl Source for Spliced {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        // The last piece starting at or before `offset`.
        let first = self.pieces.partition_point(|(start, _)| *start <= offset);
        let mut done = 0;
        for (start, piece) in self.pieces.iter().skip(first.saturating_sub(1)) {
            if done == buf.len() {
                break;
            }
            let at = offset + done as u64;
            let within = at - start;
            let want = (piece.len() - within).min((buf.len() - done) as u64) as usize;
            let out = &mut buf[done..done + want];
            match piece {
                Piece::Put(bytes) => {
                    let w = within as usize;
                    out.copy_from_slice(&bytes[w..w + want]);
                }
                Piece::Base { offset: o, .. } => {
                    let n = self.base.read_at(o + within, out)?;
                    if n < want {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the package is shorter than its rendition's edits say",
                        ));
                    }
                }
            }
            done += want;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrganId, Timestamp};

    fn hop(organ: &str, time: &str) -> TraceHeader {
        TraceHeader {
            organ_id: OrganId::parse(organ).expect("organ"),
            timestamp: Timestamp::parse(time).expect("time"),
        }
    }

    fn spliced(package: &str, hops: &[TraceHeader]) -> String {
        let edits = trace_edits(package.as_bytes(), true, hops).expect("edits");
        let base: Arc<dyn Source> = Arc::new(package.as_bytes().to_vec());
        let s = Spliced::new(base, &edits).expect("fits");
        String::from_utf8(s.to_vec().expect("reads")).expect("utf-8")
    }

    const HEADER_END: &str = "<edXMLBody/></edXMLEnvelope></edXML>";

    #[test]
    fn hops_go_after_the_last_trace_header_and_the_signature_comes_out() {
        let package = format!(
            "<?xml version=\"1.0\"?>\n<e:edXML xmlns:e=\"urn:x\"><e:edXMLEnvelope><e:edXMLHeader>\
             <e:MessageHeader><e:Subject>s</e:Subject></e:MessageHeader>\
             <e:TraceHeaderList><e:TraceHeader><e:OrganId>000.00.00.H49</e:OrganId>\
             <e:Timestamp>2026/12/01 08:00:00</e:Timestamp></e:TraceHeader>\
             <e:Bussiness><e:BussinessDocType>0</e:BussinessDocType></e:Bussiness></e:TraceHeaderList>\
             <ds:Signature xmlns:ds=\"urn:dsig\"><ds:SignedInfo/></ds:Signature>\
             </e:edXMLHeader>{}",
            HEADER_END.replace('<', "<e:").replace("<e:/", "</e:")
        );
        let out = spliced(&package, &[hop("000.00.05.H49", "2026/12/07 09:30:00")]);
        assert!(
            out.contains(
                "<e:Timestamp>2026/12/01 08:00:00</e:Timestamp></e:TraceHeader>\
                 <e:TraceHeader><e:OrganId>000.00.05.H49</e:OrganId>\
                 <e:Timestamp>2026/12/07 09:30:00</e:Timestamp></e:TraceHeader><e:Bussiness>"
            ),
            "{out}"
        );
        assert!(!out.contains("Signature"), "{out}");
        assert!(
            out.contains("</e:TraceHeaderList></e:edXMLHeader>"),
            "{out}"
        );
    }

    #[test]
    fn a_package_without_a_list_gets_one_after_its_first_block() {
        for block in ["MessageHeader", "Status"] {
            let package = format!(
                "<edXML xmlns=\"urn:x\"><edXMLEnvelope><edXMLHeader><{block}><a/></{block}>\
                 </edXMLHeader>{HEADER_END}"
            );
            let out = spliced(
                &package,
                &[
                    hop("000.00.00.H49", "2026/12/07 09:00:00"),
                    hop("000.00.05.H49", "2026/12/07 09:30:00"),
                ],
            );
            assert_eq!(
                out,
                format!(
                    "<edXML xmlns=\"urn:x\"><edXMLEnvelope><edXMLHeader><{block}><a/></{block}>\
                     <TraceHeaderList><TraceHeader><OrganId>000.00.00.H49</OrganId>\
                     <Timestamp>2026/12/07 09:00:00</Timestamp></TraceHeader>\
                     <TraceHeader><OrganId>000.00.05.H49</OrganId>\
                     <Timestamp>2026/12/07 09:30:00</Timestamp></TraceHeader></TraceHeaderList>\
                     </edXMLHeader>{HEADER_END}"
                )
            );
        }
    }

    #[test]
    fn an_empty_list_takes_the_hops_at_its_start() {
        let package = format!(
            "<edXML><edXMLEnvelope><edXMLHeader><MessageHeader/><TraceHeaderList>\n\
             </TraceHeaderList></edXMLHeader>{HEADER_END}"
        );
        let out = spliced(&package, &[hop("000.00.05.H49", "2026/12/07 09:30:00")]);
        assert!(
            out.contains("<TraceHeaderList><TraceHeader><OrganId>000.00.05.H49"),
            "{out}"
        );
    }

    #[test]
    fn shapes_it_does_not_expect_are_named() {
        let h = [hop("000.00.05.H49", "2026/12/07 09:30:00")];
        for (package, why) in [
            ("<other/>", "not an edXML envelope"),
            (
                "<edXML><edXMLEnvelope><edXMLBody/></edXMLEnvelope></edXML>",
                "edXMLHeader is not first",
            ),
            (
                "<edXML><edXMLEnvelope><edXMLHeader><MessageHeader/><TraceHeaderList/>\
                 </edXMLHeader></edXMLEnvelope></edXML>",
                "a self-closed TraceHeaderList",
            ),
            (
                "<edXML><edXMLEnvelope><edXMLHeader><Other/></edXMLHeader></edXMLEnvelope></edXML>",
                "no MessageHeader or Status in edXMLHeader",
            ),
            (
                "<edXML><edXMLEnvelope><edXMLHeader><MessageHeader/>",
                "the package ends inside edXMLHeader",
            ),
        ] {
            assert_eq!(
                trace_edits(package.as_bytes(), true, &h),
                Err(Unspliced::Shape(why)),
                "{package}"
            );
        }
    }

    #[test]
    fn a_prefix_that_ends_in_the_header_asks_for_more() {
        let package = format!(
            "<edXML><edXMLEnvelope><edXMLHeader><MessageHeader><Subject>s</Subject>\
             </MessageHeader></edXMLHeader>{HEADER_END}"
        );
        let h = [hop("000.00.05.H49", "2026/12/07 09:30:00")];
        for cut in [5, 30, 50, 70] {
            assert_eq!(
                trace_edits(&package.as_bytes()[..cut], false, &h),
                Err(Unspliced::NeedMore(cut)),
                "cut at {cut}"
            );
        }
        let whole = trace_edits(package.as_bytes(), true, &h).expect("edits");
        let cut = package.find("<edXMLBody").expect("body");
        assert_eq!(
            trace_edits(&package.as_bytes()[..cut], false, &h),
            Ok(whole)
        );
    }

    #[test]
    fn reads_at_any_offset_give_the_rendition() {
        let package = format!(
            "<edXML><edXMLEnvelope><edXMLHeader><MessageHeader><Subject>s</Subject>\
             </MessageHeader><Signature>x</Signature></edXMLHeader>{HEADER_END}"
        );
        let whole = spliced(&package, &[hop("000.00.05.H49", "2026/12/07 09:30:00")]);
        let edits = trace_edits(
            package.as_bytes(),
            true,
            &[hop("000.00.05.H49", "2026/12/07 09:30:00")],
        )
        .expect("edits");
        let base: Arc<dyn Source> = Arc::new(package.into_bytes());
        let s = Spliced::new(base, &edits).expect("fits");
        assert_eq!(s.len(), whole.len() as u64);
        for offset in 0..whole.len() {
            for size in [1, 3, 17, 4096] {
                let mut buf = vec![0; size];
                let n = s.read_at(offset as u64, &mut buf).expect("reads");
                let expect = &whole.as_bytes()[offset..(offset + size).min(whole.len())];
                assert_eq!(&buf[..n], expect, "at {offset}, {size} bytes");
            }
        }
    }

    #[test]
    fn edits_that_do_not_fit_the_package_are_refused() {
        let base: Arc<dyn Source> = Arc::new(b"0123456789".to_vec());
        let edit = |at, cut| Edit {
            at,
            cut,
            put: "x".into(),
        };
        assert!(Spliced::new(Arc::clone(&base), &[edit(8, 3)]).is_none());
        assert!(Spliced::new(Arc::clone(&base), &[edit(5, 0), edit(4, 0)]).is_none());
        assert!(Spliced::new(Arc::clone(&base), &[edit(2, 3), edit(4, 0)]).is_none());
        assert!(Spliced::new(Arc::clone(&base), &[edit(u64::MAX, 2)]).is_none());
        let s = Spliced::new(base, &[edit(0, 0), edit(10, 0)]).expect("fits");
        assert_eq!(s.to_vec().expect("reads"), b"x0123456789x");
        assert_eq!(
            s.sha256_hex().expect("reads"),
            hex::encode(ring::digest::digest(&ring::digest::SHA256, b"x0123456789x"))
        );
    }
}
