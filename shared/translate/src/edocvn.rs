//! The pre-2016 e-doc.vn generation: a SOAP 1.1 message with attachments (`multipart/related`,
//! SOAP 1.1 with Attachments). The root part is the SOAP envelope (`MessageHeader` or `Status`
//! in the SOAP header, a `Manifest` in the body); each attachment is a MIME part the manifest
//! points at with `xlink:href="cid:..."`. Agency codes are the 9-character codes (`00.01.H03`)
//! the registry maps to OrganIds.
//!
//! A package is stored and exchanged as a whole MIME entity: its `Content-Type` header (with
//! the boundary) first, then the parts; [`split_entity`] and [`join_entity`] move between that
//! and an HTTP body with its `Content-Type`.

use std::collections::HashMap;

use std::sync::Arc;

use lienthong_edxml::source::{Base64Check, ContentRef, Encoding, Range, Source};
use lienthong_edxml::{CodeMap, MimePart, PackageError, Unmapped, Violation};

use crate::Message;

/// The Content-ID of the SOAP envelope part.
pub const ENVELOPE_ID: &str = "envelope";

/// A MIME part as read or to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub content_id: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Reads an e-doc.vn package (a whole MIME entity, or a bare SOAP envelope when it has no
/// attachments).
pub fn from_edocvn(bytes: &[u8], codes: &CodeMap) -> Result<Message, PackageError> {
    // Every part read: no threshold.
    from_edocvn_source(Arc::new(bytes.to_vec()), u64::MAX, codes)
}

/// Reads an e-doc.vn package from a source: the parts over `threshold` bytes are left in it
/// (their content referenced, raw or base64 as the part is written), the rest read.
pub fn from_edocvn_source(
    source: Arc<dyn Source>,
    threshold: u64,
    codes: &CodeMap,
) -> Result<Message, PackageError> {
    let (envelope, parts) = unpack_source(source, threshold)?;
    let parts: HashMap<String, MimePart> = parts
        .into_iter()
        .map(|p| {
            (
                p.content_id,
                MimePart {
                    content_type: Some(p.content_type),
                    data: p.data,
                    content_ref: p.content_ref,
                },
            )
        })
        .collect();
    lienthong_edxml::read_edocvn_envelope(&envelope, codes, &parts)
}

/// A MIME part of a package read from a source.
#[derive(Debug)]
pub struct SourcePart {
    pub content_id: String,
    pub content_type: String,
    /// The content, when it was read.
    pub data: Vec<u8>,
    /// Where the content lies, when it was left in the source.
    pub content_ref: Option<ContentRef>,
}

/// The most MIME parts a package may have.
const MAX_PARTS: usize = 10_000;

/// The largest SOAP envelope read (it holds headers, not attachments).
const MAX_ENVELOPE: u64 = 16 * 1024 * 1024;

fn read_range(source: &Arc<dyn Source>, offset: u64, len: u64) -> Result<Vec<u8>, PackageError> {
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    Range {
        source: Arc::clone(source),
        offset,
        len,
    }
    .for_each_chunk(|c| out.extend_from_slice(c))
    .map_err(|e| mime_error(format!("reading the package: {e}")))?;
    Ok(out)
}

/// [`unpack`] without reading the parts over `threshold` bytes: one pass to find the
/// delimiters, then the small parts and every part's headers read.
pub fn unpack_source(
    source: Arc<dyn Source>,
    threshold: u64,
) -> Result<(Vec<u8>, Vec<SourcePart>), PackageError> {
    let total = source.len();
    let head = read_range(&source, 0, total.min(64 * 1024))?;
    if head[skip_ws(&head)..].starts_with(b"<") {
        if total > MAX_ENVELOPE {
            return Err(mime_error(format!(
                "a bare SOAP envelope of {total} bytes: large attachments go in MIME parts"
            )));
        }
        return Ok((read_range(&source, 0, total)?, Vec::new()));
    }
    let (headers, body) = split_headers(&head)
        .ok_or_else(|| mime_error("the package is neither XML nor a MIME entity with headers"))?;
    let body_at = (head.len() - body.len()) as u64;
    let content_type = header(&headers, "content-type")
        .ok_or_else(|| mime_error("the MIME entity has no Content-Type header"))?
        .to_owned();
    let boundary = parameter(&content_type, "boundary")
        .ok_or_else(|| mime_error("the multipart Content-Type has no boundary"))?;
    let start = parameter(&content_type, "start").map(|s| s.trim_matches(['<', '>']).to_owned());
    let delimiter = format!("--{boundary}");
    // Every delimiter that starts a line, found a chunk at a time.
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut delimiters = Vec::new();
    let overlap = delimiter.len() as u64;
    let mut at = body_at;
    while at < total {
        let len = (1024 * 1024).min(total - at);
        let chunk = read_range(&source, at, (len + overlap).min(total - at))?;
        for i in finder.find_iter(&chunk) {
            let pos = at + i as u64;
            if i as u64 >= len || delimiters.last() == Some(&pos) {
                continue;
            }
            let line_start = pos == body_at
                || (i > 0 && chunk[i - 1] == b'\n')
                || (i == 0 && read_range(&source, pos - 1, 1)? == b"\n");
            if line_start {
                if delimiters.len() >= MAX_PARTS {
                    return Err(mime_error(format!(
                        "the package has more than {MAX_PARTS} MIME parts"
                    )));
                }
                delimiters.push(pos);
            }
        }
        at += len;
    }
    let mut parts = Vec::new();
    let mut envelope = None;
    let mut closed = false;
    for (n, &d) in delimiters.iter().enumerate() {
        let after = d + overlap;
        if read_range(&source, after, 2.min(total - after))? == b"--" {
            closed = true;
            break;
        }
        let Some(&next) = delimiters.get(n + 1) else {
            break;
        };
        // The line break after the delimiter and the one before the next belong to them.
        let mut from = after;
        let lead = read_range(&source, from, 2.min(next - from))?;
        from += if lead.starts_with(b"\r\n") {
            2
        } else {
            u64::from(lead.starts_with(b"\n"))
        };
        let mut to = next;
        let trail = read_range(
            &source,
            to.saturating_sub(2).max(from),
            to - to.saturating_sub(2).max(from),
        )?;
        to -= if trail.ends_with(b"\r\n") {
            2
        } else {
            u64::from(trail.ends_with(b"\n"))
        };
        let head = read_range(&source, from, (to - from).min(16 * 1024))?;
        let (headers, rest) = split_headers(&head)
            .ok_or_else(|| mime_error(format!("MIME part {} has no header section", n + 1)))?;
        let data_at = from + (head.len() - rest.len()) as u64;
        let data_len = to - data_at;
        let content_id = header(&headers, "content-id")
            .map(|v| v.trim().trim_matches(['<', '>']).to_owned())
            .ok_or_else(|| mime_error(format!("MIME part {} has no Content-ID", n + 1)))?;
        let content_type = header(&headers, "content-type")
            .unwrap_or("application/octet-stream")
            .trim()
            .to_owned();
        let encoding = match header(&headers, "content-transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("binary" | "8bit" | "7bit") => Encoding::Raw,
            Some("base64") => Encoding::Base64Text,
            Some(other) => {
                return Err(mime_error(format!(
                    "MIME part <{content_id}>: Content-Transfer-Encoding `{other}` is not supported"
                )));
            }
        };
        let is_root = match &start {
            Some(id) => *id == content_id,
            None => envelope.is_none() && parts.is_empty(),
        };
        if is_root {
            if data_len > MAX_ENVELOPE {
                return Err(mime_error(format!(
                    "the SOAP envelope part is {data_len} bytes; attachments go in parts of their own"
                )));
            }
            let raw = read_range(&source, data_at, data_len)?;
            envelope = Some(decode_part(raw, encoding, &content_id)?);
            continue;
        }
        if data_len > threshold {
            if encoding == Encoding::Base64Text {
                let range = Range {
                    source: Arc::clone(&source),
                    offset: data_at,
                    len: data_len,
                };
                Base64Check::range(&range, true)
                    .map_err(|why| mime_error(format!("MIME part <{content_id}> {why}")))?;
            }
            parts.push(SourcePart {
                content_id,
                content_type,
                data: Vec::new(),
                content_ref: Some(ContentRef {
                    range: Range {
                        source: Arc::clone(&source),
                        offset: data_at,
                        len: data_len,
                    },
                    encoding,
                }),
            });
        } else {
            let raw = read_range(&source, data_at, data_len)?;
            parts.push(SourcePart {
                data: decode_part(raw, encoding, &content_id)?,
                content_id,
                content_type,
                content_ref: None,
            });
        }
    }
    if !closed {
        return Err(mime_error(format!(
            "the multipart body does not end with the closing delimiter --{boundary}--"
        )));
    }
    let envelope = envelope.ok_or_else(|| match &start {
        Some(id) => mime_error(format!("the start part <{id}> is not among the MIME parts")),
        None => mime_error("the multipart entity has no part"),
    })?;
    Ok((envelope, parts))
}

fn decode_part(
    raw: Vec<u8>,
    encoding: Encoding,
    content_id: &str,
) -> Result<Vec<u8>, PackageError> {
    match encoding {
        Encoding::Raw => Ok(raw),
        Encoding::Base64Text => {
            let text: Vec<u8> = raw
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).map_err(|e| {
                mime_error(format!("MIME part <{content_id}> is not valid base64: {e}"))
            })
        }
    }
}

/// Writes a message as an e-doc.vn package: a MIME entity with the SOAP envelope first and one
/// part per attachment.
pub fn to_edocvn(message: &Message, codes: &CodeMap) -> Result<Vec<u8>, Unmapped> {
    match message {
        Message::Edoc(e) => {
            let envelope = lienthong_edxml::write_edocvn_envelope(e, codes)?;
            let mut parts = vec![envelope_part(envelope)];
            for (i, a) in e.attachments.iter().enumerate() {
                let cid = lienthong_edxml::write::cid_url(&a.content_id_at(i));
                parts.push(Part {
                    content_id: cid.strip_prefix("cid:").unwrap_or(&cid).to_owned(),
                    content_type: a
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    // A large attachment left in its package: a marker that `expand` turns
                    // into the decoded content.
                    data: match a.content_ref {
                        Some(_) => lienthong_edxml::spill::marker(i).into_bytes(),
                        None => a.data.clone(),
                    },
                });
            }
            Ok(pack(&parts))
        }
        Message::Status(s) => {
            let envelope = lienthong_edxml::write_edocvn_status_envelope(s, codes)?;
            Ok(pack(&[envelope_part(envelope)]))
        }
    }
}

fn envelope_part(envelope: Vec<u8>) -> Part {
    Part {
        content_id: ENVELOPE_ID.into(),
        content_type: "text/xml; charset=utf-8".into(),
        data: envelope,
    }
}

/// Packs parts as a `multipart/related` MIME entity (headers included), the first part the root.
/// The boundary is derived from the content, so it cannot occur in it and the output is
/// deterministic.
pub fn pack(parts: &[Part]) -> Vec<u8> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        digest.update(&p.data);
    }
    let boundary = format!("lienthong-{}", hex_prefix(digest.finish().as_ref(), 16));
    let start = parts
        .first()
        .map(|p| p.content_id.as_str())
        .unwrap_or(ENVELOPE_ID);
    let mut out = format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/related; type=\"text/xml\"; start=\"<{start}>\"; boundary=\"{boundary}\"\r\n\r\n"
    )
    .into_bytes();
    for p in parts {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {}\r\nContent-ID: <{}>\r\nContent-Transfer-Encoding: binary\r\n\r\n",
                p.content_type, p.content_id
            )
            .as_bytes(),
        );
        out.extend_from_slice(&p.data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().take(n).map(|b| format!("{b:02x}")).collect()
}

fn mime_error(rule: impl Into<String>) -> PackageError {
    PackageError::Invalid(vec![Violation {
        path: "MIME".into(),
        rule: rule.into(),
    }])
}

/// The root SOAP envelope and the other parts of a package, all read.
pub fn unpack(bytes: &[u8]) -> Result<(Vec<u8>, Vec<Part>), PackageError> {
    let (envelope, parts) = unpack_source(Arc::new(bytes.to_vec()), u64::MAX)?;
    Ok((
        envelope,
        parts
            .into_iter()
            .map(|p| Part {
                content_id: p.content_id,
                content_type: p.content_type,
                data: p.data,
            })
            .collect(),
    ))
}

fn skip_ws(bytes: &[u8]) -> usize {
    let bom = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    bom + bytes[bom..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

/// Header lines (unfolded) and the body after the blank line.
/// Header fields, names lower-cased, in order.
type Headers = Vec<(String, String)>;

fn split_headers(bytes: &[u8]) -> Option<(Headers, &[u8])> {
    let (end, sep) = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| memchr::memmem::find(bytes, sep).map(|i| (i, sep.len())))
        .min()?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut headers: Headers = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Some((headers, &bytes[end + sep..]))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter of a structured header value (`boundary="x"`).
pub fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// An HTTP body and its Content-Type header as one MIME entity (what is stored).
pub fn join_entity(content_type: &str, body: &[u8]) -> Vec<u8> {
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return body.to_vec();
    }
    let mut out = format!("MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// A stored MIME entity as an HTTP Content-Type and body (a bare envelope is `text/xml`).
pub fn split_entity(entity: &[u8]) -> (String, &[u8]) {
    if entity[skip_ws(entity)..].starts_with(b"<") {
        return ("text/xml; charset=utf-8".into(), entity);
    }
    match split_headers(entity) {
        Some((headers, body)) => (
            header(&headers, "content-type")
                .unwrap_or("application/octet-stream")
                .to_owned(),
            body,
        ),
        None => ("application/octet-stream".into(), entity),
    }
}

/// The e-doc.vn error code of a broken rule: `N.` missing, `R.` out of range, `T.` wrong type,
/// `M.` malformed, followed by the element path.
pub fn fault_code(v: &Violation) -> String {
    let kind = if v.rule.starts_with("is required") {
        'N'
    } else if v.rule.contains("characters long, more than") {
        'R'
    } else if v.rule.contains("is not an integer") {
        'T'
    } else {
        'M'
    };
    format!("{kind}.{}", v.path)
}
