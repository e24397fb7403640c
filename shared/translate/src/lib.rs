//! Schema translation: every format an agency system speaks is a codec over one typed model, a
//! [`Message`] (an edoc with its attachments' content, or a status package).
//!
//! Codecs so far: edXML (QCVN 102:2016, [`from_edxml`], [`to_edxml`]), the flat go.vn variant
//! ([`from_govn`], [`to_govn`]) and JSON for REST adapters ([`json`]). `docs/translation.md`
//! maps every field.

pub mod edocvn;
pub mod expand;
pub mod json;
pub mod json_spill;

use lienthong_edxml::{PackageError, TraceHeader, Violation};

pub use edocvn::{from_edocvn, to_edocvn};
pub use lienthong_edxml::{CodeMap, Unmapped};

pub use json::{JsonError, from_json, to_json};
pub use lienthong_edxml::Format;
/// A package of either kind, whole: what every codec reads into and writes from.
pub use lienthong_edxml::Whole as Message;

/// Reads an edXML package whole (attachments decoded), with every edXML rule checked.
pub fn from_edxml(bytes: &[u8]) -> Result<Message, PackageError> {
    lienthong_edxml::read_whole(bytes)
}

/// Writes a message as an edXML package. It carries no signature: a translation never does; the
/// sender's signed original travels beside it.
pub fn to_edxml(message: &Message) -> Vec<u8> {
    match message {
        Message::Edoc(e) => lienthong_edxml::write_edoc(e),
        Message::Status(s) => lienthong_edxml::write_status(s),
    }
}

/// Reads a package of the flat `http://www.go.vn/eDoc` variant whole, with the edXML rules.
pub fn from_govn(bytes: &[u8]) -> Result<Message, PackageError> {
    lienthong_edxml::read_govn(bytes)
}

/// Writes a message in the flat go.vn variant. It has no content ids and no manifest: those
/// are the two edXML fields it cannot carry.
pub fn to_govn(message: &Message) -> Vec<u8> {
    match message {
        Message::Edoc(e) => lienthong_edxml::write_edoc_govn(e),
        Message::Status(s) => lienthong_edxml::write_status_govn(s),
    }
}

/// Why a package could not be read in its format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// edXML or go.vn: not XML, or XML breaking the rules (paths are element paths).
    #[error(transparent)]
    Xml(#[from] PackageError),
    /// JSON: each broken rule at its JSON path.
    #[error("JSON not conformant: {0}")]
    Json(#[from] JsonError),
}

impl DecodeError {
    /// Not a readable document of the format at all (as opposed to a readable one that breaks
    /// rules).
    pub fn is_unreadable(&self) -> bool {
        match self {
            Self::Xml(e) => {
                matches!(e, PackageError::Parse(_))
                    || e.violations().iter().any(|v| v.path == "MIME")
            }
            Self::Json(JsonError(v)) => v.iter().any(|v| v.path == "$"),
        }
    }

    /// Every broken rule, with the path of the field in the format read.
    pub fn violations(&self) -> &[Violation] {
        match self {
            Self::Xml(e) => e.violations(),
            Self::Json(JsonError(v)) => v,
        }
    }
}

/// Reads a package in any format the bus speaks; `codes` maps the 9-character agency codes of
/// e-doc.vn packages (the other formats do not use it).
pub fn decode(format: Format, bytes: &[u8], codes: &CodeMap) -> Result<Message, DecodeError> {
    Ok(match format {
        Format::Edxml => from_edxml(bytes)?,
        Format::Govn => from_govn(bytes)?,
        Format::Json => from_json(bytes)?,
        Format::Edocvn => from_edocvn(bytes, codes)?,
    })
}

/// Reads a package from a source, its attachments over `spill_threshold` bytes left in the source
/// (see [`expand`]), whatever its format.
pub fn decode_source(
    format: Format,
    source: std::sync::Arc<dyn lienthong_edxml::source::Source>,
    spill_threshold: u64,
    codes: &CodeMap,
) -> Result<Message, DecodeError> {
    Ok(match format {
        Format::Edxml => lienthong_edxml::read_whole_source(source, spill_threshold)?,
        Format::Govn => lienthong_edxml::read_govn_source(source, spill_threshold)?,
        Format::Edocvn => edocvn::from_edocvn_source(source, spill_threshold, codes)?,
        Format::Json => json::from_json_source(source, spill_threshold)?,
    })
}

/// [`decode_source`] of a package already read into a tree from its source, with the same
/// threshold (by [`lienthong_edxml::dom::read_document_source`]): `None` for the formats not read
/// that way (e-doc.vn's MIME entity, JSON).
pub fn decode_document(
    format: Format,
    document: &lienthong_edxml::dom::Document,
) -> Option<Result<Message, DecodeError>> {
    match format {
        Format::Edxml => Some(lienthong_edxml::read_whole_document(document).map_err(Into::into)),
        Format::Govn => Some(lienthong_edxml::read_govn_document(document).map_err(Into::into)),
        Format::Edocvn | Format::Json => None,
    }
}

/// Writes a message in any format to `out`, attachment contents left in their package streamed
/// in (see [`expand`]).
pub fn encode_to(
    format: Format,
    message: &Message,
    codes: &CodeMap,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let written = encode(format, message, codes).map_err(std::io::Error::other)?;
    expand::expand(&written, message, format, out)
}

/// Writes a message in any format the bus speaks. Only e-doc.vn can fail: an agency without a
/// 9-character code in `codes` cannot be named in it.
pub fn encode(format: Format, message: &Message, codes: &CodeMap) -> Result<Vec<u8>, Unmapped> {
    Ok(match format {
        Format::Edxml => to_edxml(message),
        Format::Govn => to_govn(message),
        Format::Json => to_json(message),
        Format::Edocvn => to_edocvn(message, codes)?,
    })
}

/// Appends a hop to the package's `TraceHeaderList` (every bus a package passes adds its own).
pub fn append_trace(message: &mut Message, hop: TraceHeader) {
    match message {
        Message::Edoc(e) => e.trace.push(hop),
        Message::Status(s) => s.trace.push(hop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lienthong_edxml::{OrganId, Timestamp, sample};

    #[test]
    fn every_format_reads_back_what_it_wrote_with_the_hop_appended() {
        let from = OrganId::parse("000.00.00.H49").expect("organ");
        let to = OrganId::parse("000.00.00.G22").expect("organ");
        let mut message = Message::Edoc(Box::new(sample::edoc(&from, &[to], 7, 64)));
        let hop = TraceHeader {
            organ_id: OrganId::parse("000.00.05.H49").expect("organ"),
            timestamp: Timestamp::parse("2026/12/02 08:30:00").expect("time"),
        };
        append_trace(&mut message, hop.clone());
        let organs: Vec<OrganId> = ["000.00.00.H49", "000.00.00.G22", "000.00.05.H49"]
            .iter()
            .map(|o| OrganId::parse(o).expect("organ"))
            .collect();
        let legacy: Vec<String> = organs.iter().map(|o| o.as_str()[4..].to_owned()).collect();
        let codes = CodeMap::new(legacy.iter().map(String::as_str).zip(&organs)).expect("codes");
        for format in Format::ALL {
            let bytes = encode(format, &message, &codes).expect("encodes");
            let back = decode(format, &bytes, &codes).expect("reads back");
            let Message::Edoc(e) = &back else {
                panic!("{format}: not an edoc")
            };
            assert_eq!(e.trace.last(), Some(&hop), "{format}");
        }
    }

    #[test]
    fn unreadable_input_is_told_apart_from_broken_rules() {
        let not_json = decode(Format::Json, b"{", &CodeMap::default()).expect_err("not JSON");
        assert!(not_json.is_unreadable(), "{not_json}");
        let not_xml = decode(Format::Govn, b"<a", &CodeMap::default()).expect_err("not XML");
        assert!(not_xml.is_unreadable(), "{not_xml}");
        let from = OrganId::parse("000.00.00.H49").expect("organ");
        let message = Message::Edoc(Box::new(sample::edoc(
            &from,
            std::slice::from_ref(&from),
            1,
            8,
        )));
        let mut json: serde_json::Value = serde_json::from_slice(&to_json(&message)).expect("json");
        json["header"]["from"]["organId"] = "H49".into();
        let broken = from_json(json.to_string().as_bytes()).expect_err("bad organ");
        let broken = DecodeError::from(broken);
        assert!(!broken.is_unreadable(), "{broken}");
        assert_eq!(
            broken.violations().first().map(|v| v.path.as_str()),
            Some("header.from.organId"),
            "{broken}"
        );
    }
}
