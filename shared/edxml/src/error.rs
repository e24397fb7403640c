//! Errors: a package that is not XML, and a package that is XML but breaks QCVN 102 rules.

use std::fmt;

/// The bytes are not a well-formed, safe XML document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not well-formed XML at byte {position}: {reason}")]
    Malformed { position: u64, reason: String },
    #[error("document type declarations (DTDs) and entity definitions are not accepted")]
    DocTypeRefused,
    #[error("elements nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the file holds no XML element")]
    Empty,
}

/// One broken rule: where (an element path such as `edXMLHeader/MessageHeader/To[2]/OrganId`)
/// and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.rule)
    }
}

/// Why a package was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackageError {
    /// Not XML at all (maps to the REST error 10, invalid file).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// XML, but not a conformant edXML package (maps to the REST error 22). Every violation found
    /// is listed, first one first.
    #[error("edXML not conformant: {}", join(.0))]
    Invalid(Vec<Violation>),
}

impl PackageError {
    pub fn violations(&self) -> &[Violation] {
        match self {
            Self::Invalid(v) => v,
            Self::Parse(_) => &[],
        }
    }
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A value that does not have the shape its type demands, e.g. an OrganId that is not
/// `DDD.CC.BB.Lnn`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ShapeError(pub String);
