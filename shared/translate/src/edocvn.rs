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
    let (envelope, parts) = unpack(bytes)?;
    let parts: HashMap<String, MimePart> = parts
        .into_iter()
        .map(|p| {
            (
                p.content_id,
                MimePart {
                    content_type: Some(p.content_type),
                    data: p.data,
                },
            )
        })
        .collect();
    lienthong_edxml::read_edocvn_envelope(&envelope, codes, &parts)
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

/// The root SOAP envelope and the other parts of a package.
pub fn unpack(bytes: &[u8]) -> Result<(Vec<u8>, Vec<Part>), PackageError> {
    let body_start = skip_ws(bytes);
    if bytes[body_start..].starts_with(b"<") {
        // A bare SOAP envelope: a package without attachments.
        return Ok((bytes.to_vec(), Vec::new()));
    }
    let (headers, body) = split_headers(bytes)
        .ok_or_else(|| mime_error("the package is neither XML nor a MIME entity with headers"))?;
    let content_type = header(&headers, "content-type")
        .ok_or_else(|| mime_error("the MIME entity has no Content-Type header"))?;
    let mut parts = multipart_parts(content_type, body)?;
    let start = parameter(content_type, "start").map(|s| s.trim_matches(['<', '>']).to_owned());
    let root = match &start {
        Some(id) => parts
            .iter()
            .position(|p| &p.content_id == id)
            .ok_or_else(|| {
                mime_error(format!("the start part <{id}> is not among the MIME parts"))
            })?,
        None => 0,
    };
    if parts.is_empty() {
        return Err(mime_error("the multipart entity has no part"));
    }
    let envelope = parts.remove(root);
    Ok((envelope.data, parts))
}

/// The parts of a `multipart/*` body given its Content-Type (with the boundary).
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Result<Vec<Part>, PackageError> {
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return Err(mime_error(format!(
            "Content-Type `{content_type}` is not multipart/related"
        )));
    }
    let boundary = parameter(content_type, "boundary")
        .ok_or_else(|| mime_error("the multipart Content-Type has no boundary"))?;
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let positions: Vec<usize> = finder.find_iter(body).collect();
    let mut parts = Vec::new();
    let mut closed = false;
    for (i, &at) in positions.iter().enumerate() {
        // A delimiter starts a line.
        if at != 0 && !body[..at].ends_with(b"\n") {
            continue;
        }
        let after = at + delimiter.len();
        if body[after..].starts_with(b"--") {
            closed = true;
            break;
        }
        let Some(next) = positions[i + 1..]
            .iter()
            .copied()
            .find(|&n| body[..n].ends_with(b"\n"))
        else {
            break;
        };
        let mut part = &body[after..next];
        // The line break after the delimiter and the one before the next belong to them.
        part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        let (headers, data) = split_headers(part).ok_or_else(|| {
            mime_error(format!(
                "MIME part {} has no header section",
                parts.len() + 1
            ))
        })?;
        let n = parts.len() + 1;
        let content_id = header(&headers, "content-id")
            .map(|v| v.trim().trim_matches(['<', '>']).to_owned())
            .ok_or_else(|| mime_error(format!("MIME part {n} has no Content-ID")))?;
        let data = match header(&headers, "content-transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("binary" | "8bit" | "7bit") => data.to_vec(),
            Some("base64") => {
                let text: Vec<u8> = data
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).map_err(
                    |e| mime_error(format!("MIME part <{content_id}> is not valid base64: {e}")),
                )?
            }
            Some(other) => {
                return Err(mime_error(format!(
                    "MIME part <{content_id}>: Content-Transfer-Encoding `{other}` is not supported"
                )));
            }
        };
        parts.push(Part {
            content_type: header(&headers, "content-type")
                .unwrap_or("application/octet-stream")
                .trim()
                .to_owned(),
            content_id,
            data,
        });
    }
    if !closed {
        return Err(mime_error(format!(
            "the multipart body does not end with the closing delimiter --{boundary}--"
        )));
    }
    Ok(parts)
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
