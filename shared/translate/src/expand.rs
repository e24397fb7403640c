//! Large attachments in renditions: a message read from a source may leave attachment contents
//! in the original package (`NewAttachment::content_ref`); the codecs write a marker where such
//! content goes, and [`expand`] writes the rendition with each marker replaced by the content,
//! streamed from the original a piece at a time in the form the format wants.

use std::io::{self, Write};

use base64::Engine;
use lienthong_edxml::source::Encoding;
use lienthong_edxml::spill::{NONCHAR, marker_index};

use crate::{Format, Message};

/// Whether a message holds attachment contents left in their package.
pub fn has_references(message: &Message) -> bool {
    match message {
        Message::Edoc(e) => e.attachments.iter().any(|a| a.content_ref.is_some()),
        Message::Status(_) => false,
    }
}

/// Writes `written` (what a codec wrote for `message` in `format`) to `out`, streaming each
/// referenced attachment content in place of its marker: base64 text for the XML formats, base64
/// without line breaks for JSON, the decoded bytes for e-doc.vn's MIME parts.
pub fn expand(
    written: &[u8],
    message: &Message,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let attachments = match message {
        Message::Edoc(e) if has_references(message) => &e.attachments,
        _ => return out.write_all(written),
    };
    let mut rest = written;
    while let Some(at) = memchr::memmem::find(rest, NONCHAR) {
        let after = &rest[at + NONCHAR.len()..];
        let Some(end) = memchr::memmem::find(after, NONCHAR) else {
            break;
        };
        let marker = &rest[at..at + 2 * NONCHAR.len() + end];
        let Some(content) = marker_index(marker)
            .and_then(|i| attachments.get(i))
            .and_then(|a| a.content_ref.as_ref())
        else {
            return Err(io::Error::other("a marker names no attachment content"));
        };
        out.write_all(&rest[..at])?;
        match content.encoding {
            Encoding::Base64Text => stream(&content.range, format, out)?,
            Encoding::Raw => stream_raw(&content.range, format, out)?,
        }
        rest = &rest[at + marker.len()..];
    }
    out.write_all(rest)
}

/// Raw bytes: as they are into a MIME part, in base64 (3-byte aligned pieces) anywhere else.
fn stream_raw(
    range: &lienthong_edxml::source::Range,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut failed = None;
    let mut carry: Vec<u8> = Vec::new();
    range.for_each_chunk(|chunk| {
        if failed.is_some() {
            return;
        }
        let result = if format == Format::Edocvn {
            out.write_all(chunk)
        } else {
            carry.extend_from_slice(chunk);
            let whole = carry.len() / 3 * 3;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&carry[..whole]);
            carry.drain(..whole);
            out.write_all(encoded.as_bytes())
        };
        if let Err(e) = result {
            failed = Some(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !carry.is_empty() {
        out.write_all(
            base64::engine::general_purpose::STANDARD
                .encode(&carry)
                .as_bytes(),
        )?;
    }
    Ok(())
}

/// Base64 text: as it is into XML, without line breaks into JSON, decoded into a MIME part.
fn stream(
    range: &lienthong_edxml::source::Range,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut failed = None;
    let mut carry: Vec<u8> = Vec::new();
    let mut decoded = Vec::new();
    range.for_each_text_chunk(|chunk| {
        if failed.is_some() {
            return;
        }
        let result = match format {
            Format::Edxml | Format::Govn => out.write_all(chunk),
            Format::Json => {
                let compact: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                out.write_all(&compact)
            }
            Format::Edocvn => {
                carry.extend(chunk.iter().filter(|b| !b.is_ascii_whitespace()));
                let whole = carry.len() / 4 * 4;
                // Padding only ends the text: keep the last quantum for the end.
                let upto = if whole == carry.len() && whole > 0 {
                    whole - 4
                } else {
                    whole
                };
                decoded.clear();
                match base64::engine::general_purpose::STANDARD
                    .decode_vec(&carry[..upto], &mut decoded)
                {
                    Ok(()) => {
                        carry.drain(..upto);
                        out.write_all(&decoded)
                    }
                    Err(e) => Err(io::Error::other(format!("attachment content: {e}"))),
                }
            }
        };
        if let Err(e) = result {
            failed = Some(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if format == Format::Edocvn && !carry.is_empty() {
        decoded.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(&carry, &mut decoded)
            .map_err(|e| io::Error::other(format!("attachment content: {e}")))?;
        out.write_all(&decoded)?;
    }
    Ok(())
}
