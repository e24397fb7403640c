//! edXML packages (QCVN 102:2016): the typed model, a safe parser that names every broken rule,
//! a writer, and the business status rules.
//!
//! The bus never rewrites an agency's package: [`parse`] reads the original bytes to learn where
//! the package goes and whether it is conformant, and the bytes themselves are stored and
//! delivered untouched so that the signature inside still verifies.

pub mod dom;
pub mod error;
pub mod format;
pub mod legacy;
pub mod model;
pub mod parse;
pub mod sample;
pub mod source;
pub mod spill;
pub mod splice;
pub mod status;
pub mod write;

pub use error::{PackageError, ParseError, ShapeError, Violation};
pub use format::Format;
pub use legacy::CodeMap;
pub use model::*;
pub use parse::{
    MimePart, Whole, parse, parse_as, parse_slim, parse_source, parse_source_as, read_edoc,
    read_edocvn_envelope, read_govn, read_govn_document, read_govn_source, read_whole,
    read_whole_document, read_whole_source,
};
pub use status::{CopyStatus, IllegalTransition, StatusCode};
pub use write::{
    NewAttachment, NewEdoc, Unmapped, write_edoc, write_edoc_govn, write_edocvn_envelope,
    write_edocvn_status_envelope, write_status, write_status_govn,
};
