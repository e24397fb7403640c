//! The pre-2016 e-doc.vn generation's 9-character agency codes (`00.01.H03`) and their mapping to
//! today's 13-character OrganIds, which the registry holds (`legacyCode` of an agency).

use std::collections::HashMap;

use crate::ShapeError;
use crate::model::OrganId;

/// The e-doc.vn namespace.
pub const EDOCVN_NS: &str = "http://www.e-doc.vn/Schema/";
/// SOAP 1.1.
pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// XLink, for `xlink:href="cid:..."` attachment references.
pub const XLINK_NS: &str = "http://www.w3.org/1999/xlink";

/// Whether `s` has the shape of a 9-character code: `CC.BB.Lnn`.
pub fn is_legacy_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b'.'
        && b[3].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[5] == b'.'
        && b[6].is_ascii_uppercase()
        && b[7].is_ascii_digit()
        && b[8].is_ascii_digit()
}

/// Both directions of the mapping between 9-character codes and OrganIds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeMap {
    to_organ: HashMap<String, OrganId>,
    to_legacy: HashMap<OrganId, String>,
}

impl CodeMap {
    /// Builds the map from (legacy code, OrganId) pairs; a malformed or repeated code is an error
    /// naming it.
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a OrganId)>,
    ) -> Result<Self, ShapeError> {
        let mut map = Self::default();
        for (legacy, organ) in pairs {
            if !is_legacy_code(legacy) {
                return Err(ShapeError(format!(
                    "legacy code `{legacy}` of {organ} is not a 9-character code CC.BB.Lnn"
                )));
            }
            if let Some(other) = map.to_organ.insert(legacy.to_owned(), organ.clone()) {
                return Err(ShapeError(format!(
                    "legacy code `{legacy}` is given to both {other} and {organ}"
                )));
            }
            map.to_legacy.insert(organ.clone(), legacy.to_owned());
        }
        Ok(map)
    }

    pub fn organ(&self, legacy: &str) -> Option<&OrganId> {
        self.to_organ.get(legacy)
    }

    pub fn legacy(&self, organ: &OrganId) -> Option<&str> {
        self.to_legacy.get(organ).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.to_organ.len()
    }

    pub fn is_empty(&self) -> bool {
        self.to_organ.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_codes_have_their_own_shape_and_map_both_ways() {
        assert!(is_legacy_code("00.01.H03"));
        for bad in ["000.01.H03", "00.01.h03", "00-01.H03", "00.01.H3", ""] {
            assert!(!is_legacy_code(bad), "{bad}");
        }
        let organ = OrganId::parse("000.00.01.H03").expect("organ");
        let map = CodeMap::new([("00.01.H03", &organ)]).expect("map");
        assert_eq!(map.organ("00.01.H03"), Some(&organ));
        assert_eq!(map.legacy(&organ), Some("00.01.H03"));
        let other = OrganId::parse("000.00.02.H03").expect("organ");
        let twice = CodeMap::new([("00.01.H03", &organ), ("00.01.H03", &other)]);
        assert!(twice.is_err());
        assert!(CodeMap::new([("0.01.H03", &organ)]).is_err());
    }
}
