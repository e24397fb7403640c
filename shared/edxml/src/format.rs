//! The formats a connected system may speak: what the registry records per agency and what the
//! translator produces for each recipient.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A package format on the bus.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// QCVN 102:2016 edXML (`urn:oasis:names:tc:ebxml-msg:schema:xsd:2.0` envelope).
    #[default]
    Edxml,
    /// The flat `http://www.go.vn/eDoc` variant.
    Govn,
    /// JSON for REST adapters (`shared/translate/schema/package.schema.json`).
    Json,
    /// The pre-2016 `http://www.e-doc.vn/Schema/` generation: SOAP 1.1 with attachments
    /// (`multipart/related`), 9-character agency codes.
    Edocvn,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Edxml, Format::Govn, Format::Json, Format::Edocvn];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edxml => "edxml",
            Self::Govn => "govn",
            Self::Json => "json",
            Self::Edocvn => "edocvn",
        }
    }

    /// The media type a package of this format is served with.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Edxml | Self::Govn => "application/xml",
            Self::Json => "application/json",
            Self::Edocvn => "multipart/related",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("format `{s}` is not edxml, govn, json or edocvn"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_from_their_names_and_nothing_else() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert_eq!(
            "xml".parse::<Format>(),
            Err("format `xml` is not edxml, govn, json or edocvn".to_owned())
        );
    }
}
