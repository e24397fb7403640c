//! Schema translation: every format an agency system speaks is a codec over one typed model, a
//! [`Message`] (an edoc with its attachments' content, or a status package).
//!
//! Codecs so far: edXML (QCVN 102:2016, [`from_edxml`], [`to_edxml`]), the flat go.vn variant
//! ([`from_govn`], [`to_govn`]) and JSON for REST adapters ([`json`]). `docs/translation.md`
//! maps every field.

pub mod json;

use lienthong_edxml::PackageError;

pub use json::{JsonError, from_json, to_json};
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
