//! The typed model of QCVN 102:2016 packages: an `edoc` (a document, văn bản) and a `status`
//! (a business receipt, trạng thái xử lý). Identifiers are newtypes that cannot hold an invalid
//! value: parse, don't validate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::macros::format_description;

use crate::error::ShapeError;
use crate::status::StatusCode;

/// The edXML namespace of QCVN 102:2016.
pub const EDXML_NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
/// The namespace of the flat variant still found in the field (root `edXMLEnvelope`).
pub const GOVN_NS: &str = "http://www.go.vn/eDoc";
/// The W3C XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// An agency code (mã định danh), `DDD.CC.BB.Lnn`, e.g. `000.00.00.G22`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrganId(String);

impl OrganId {
    pub fn parse(s: &str) -> Result<Self, ShapeError> {
        let bytes = s.as_bytes();
        let shape_ok = bytes.len() == 13
            && bytes[3] == b'.'
            && bytes[6] == b'.'
            && bytes[9] == b'.'
            && [0, 1, 2, 4, 5, 7, 8, 11, 12]
                .iter()
                .all(|&i| bytes[i].is_ascii_digit())
            && bytes[10].is_ascii_uppercase();
        if shape_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ShapeError(format!(
                "`{s}` is not an agency code of the shape DDD.CC.BB.Lnn (13 characters, e.g. 000.00.00.G22)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level-1 owner group, e.g. `G22` or `H49`.
    pub fn owner(&self) -> &str {
        &self.0[10..]
    }
}

impl fmt::Display for OrganId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OrganId {
    type Err = ShapeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for OrganId {
    type Error = ShapeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<OrganId> for String {
    fn from(o: OrganId) -> Self {
        o.0
    }
}

/// A calendar date written `yyyy/MM/dd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EdxmlDate(pub time::Date);

impl EdxmlDate {
    pub fn parse(s: &str) -> Result<Self, ShapeError> {
        time::Date::parse(s, format_description!("[year]/[month]/[day]"))
            .map(Self)
            .map_err(|_| ShapeError(format!("`{s}` is not a date written yyyy/MM/dd")))
    }
}

impl fmt::Display for EdxmlDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}/{:02}/{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    }
}

/// A local time written `yyyy/MM/dd HH:mm:ss` (Vietnam time, UTC+7, as the standard writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub time::PrimitiveDateTime);

impl Timestamp {
    pub fn parse(s: &str) -> Result<Self, ShapeError> {
        time::PrimitiveDateTime::parse(
            s,
            format_description!("[year]/[month]/[day] [hour]:[minute]:[second]"),
        )
        .map(Self)
        .map_err(|_| {
            ShapeError(format!(
                "`{s}` is not a timestamp written yyyy/MM/dd HH:mm:ss"
            ))
        })
    }

    /// The current time in Vietnam.
    pub fn now() -> Self {
        let ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        Self::from_unix_ms(ms)
    }

    /// Vietnam local time of a Unix time in milliseconds.
    pub fn from_unix_ms(ms: i64) -> Self {
        // Timestamps are written to the second.
        let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(time::macros::offset!(+7));
        Self(time::PrimitiveDateTime::new(at.date(), at.time()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// `<issuer OrganId>,<yyyy/MM/dd>,<number>/<notation>`: identifies a document across all hubs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    pub fn parse(s: &str) -> Result<Self, ShapeError> {
        let bad = |why: &str| {
            ShapeError(format!(
                "`{s}` is not a DocumentId <OrganId>,<yyyy/MM/dd>,<number>/<notation>: {why}"
            ))
        };
        let mut parts = s.splitn(3, ',');
        let (Some(organ), Some(date), Some(code)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("it needs three parts separated by commas"));
        };
        OrganId::parse(organ).map_err(|e| bad(&e.0))?;
        EdxmlDate::parse(date).map_err(|e| bad(&e.0))?;
        if code.trim().is_empty() {
            return Err(bad("the number/notation part is empty"));
        }
        Ok(Self(s.to_owned()))
    }

    /// Builds the identifier from its parts, which are valid by their types.
    pub fn from_parts(issuer: &OrganId, date: EdxmlDate, number_notation: &str) -> Self {
        Self(format!("{issuer},{date},{number_notation}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The issuing agency named in the identifier.
    pub fn issuer(&self) -> &str {
        self.0.split(',').next().unwrap_or_default()
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DocumentId {
    type Error = ShapeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DocumentId> for String {
    fn from(d: DocumentId) -> Self {
        d.0
    }
}

/// An agency as named in `From` or `To`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub organ_id: OrganId,
    pub organization_in_charge: Option<String>,
    pub organ_name: Option<String>,
    pub organ_add: Option<String>,
    pub email: Option<String>,
    pub telephone: Option<String>,
    pub fax: Option<String>,
    pub website: Option<String>,
}

impl Organization {
    pub fn new(organ_id: OrganId, organ_name: &str) -> Self {
        Self {
            organ_id,
            organ_name: Some(organ_name.to_owned()),
            organization_in_charge: None,
            organ_add: None,
            email: None,
            telephone: None,
            fax: None,
            website: None,
        }
    }
}

/// `Code`: số and ký hiệu of the document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Code {
    pub code_number: String,
    pub code_notation: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromulgationInfo {
    pub place: Option<String>,
    pub promulgation_date: EdxmlDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentType {
    /// Vendors disagree (1 or 2 seen): kept as an integer, other values accepted.
    pub type_: i64,
    pub type_detail: Option<i64>,
    pub type_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignerInfo {
    pub competence: Option<String>,
    pub position: Option<String>,
    pub full_name: Option<String>,
}

/// Priority (độ khẩn): 0 normal, 1 urgent, 2 very urgent, 3 express, 4 express at a set time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtherInfo {
    pub priority: Option<i64>,
    pub sphere_of_promulgation: Option<String>,
    pub typer_notation: Option<String>,
    pub promulgation_amount: Option<i64>,
    pub page_amount: Option<i64>,
    pub direction: Option<String>,
    pub appendixes: Vec<String>,
}

/// `ResponseFor`: the document a package answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFor {
    pub organ_id: OrganId,
    pub code: Option<String>,
    pub promulgation_date: Option<EdxmlDate>,
    pub document_id: DocumentId,
}

/// The header of an edoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    pub from: Organization,
    pub to: Vec<Organization>,
    pub document_id: DocumentId,
    pub code: Code,
    pub promulgation_info: PromulgationInfo,
    pub document_type: DocumentType,
    pub subject: String,
    pub content: Option<String>,
    pub signer_info: SignerInfo,
    pub due_date: Option<EdxmlDate>,
    pub to_places: Vec<String>,
    pub other_info: OtherInfo,
    pub response_for: Vec<ResponseFor>,
    pub steering_type: Option<i64>,
}

impl MessageHeader {
    /// The sender's code.
    pub fn sender(&self) -> &OrganId {
        &self.from.organ_id
    }

    /// Every recipient code, in the order written.
    pub fn recipients(&self) -> Vec<&OrganId> {
        self.to.iter().map(|o| &o.organ_id).collect()
    }
}

/// One hop a package passed through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub organ_id: OrganId,
    pub timestamp: Timestamp,
}

/// `Bussiness/BussinessDocType`: 0 new, 1 revoke, 2 update, 3 replace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Business {
    pub doc_type: i64,
    pub doc_reason: Option<String>,
}

/// A manifest reference (`edXMLManifest/Reference`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestReference {
    pub content_id: String,
    pub content_type: Option<String>,
    pub description: Option<String>,
    pub attachment_name: Option<String>,
}

/// An attachment as carried: metadata plus the size of its base64 text (the content itself stays
/// in the original bytes, never copied into the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub content_id: String,
    pub attachment_name: String,
    pub description: Option<String>,
    pub content_type: Option<String>,
    /// Decoded size in bytes of `ContentTransferEncoded`.
    pub size: u64,
}

/// An edoc package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edoc {
    pub header: MessageHeader,
    pub trace: Vec<TraceHeader>,
    pub business: Option<Business>,
    pub manifest: Vec<ManifestReference>,
    pub attachments: Vec<Attachment>,
    pub signed: bool,
}

/// `StaffInfo` of a status package.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffInfo {
    pub department: Option<String>,
    pub staff: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
}

/// A status package: a business receipt about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPackage {
    pub from: Organization,
    pub response_for: ResponseFor,
    pub staff_info: StaffInfo,
    pub status_code: StatusCode,
    pub description: Option<String>,
    pub timestamp: Timestamp,
    pub trace: Vec<TraceHeader>,
    pub signed: bool,
}

impl StatusPackage {
    pub fn sender(&self) -> &OrganId {
        &self.from.organ_id
    }
}

/// Either kind of package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Package {
    Edoc(Box<Edoc>),
    Status(Box<StatusPackage>),
}

/// The `messageType` of the REST interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Edoc,
    Status,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edoc => "edoc",
            Self::Status => "status",
        }
    }
}

impl FromStr for MessageType {
    type Err = ShapeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "edoc" => Ok(Self::Edoc),
            "status" => Ok(Self::Status),
            other => Err(ShapeError(format!(
                "messageType `{other}` is neither `edoc` nor `status`"
            ))),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Package {
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Edoc(_) => MessageType::Edoc,
            Self::Status(_) => MessageType::Status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organ_id_accepts_the_standard_shape_only() {
        assert!(OrganId::parse("000.00.00.G22").is_ok());
        assert!(OrganId::parse("001.12.05.H49").is_ok());
        for bad in [
            "000.00.00.g22",
            "00.00.00.G22",
            "000.00.00.G2",
            "000-00-00-G22",
            "000.0A.00.G22",
            "",
        ] {
            assert!(OrganId::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            OrganId::parse("000.00.00.H49").map(|o| o.owner().to_owned()),
            Ok("H49".to_owned())
        );
    }

    #[test]
    fn document_id_names_what_is_wrong() {
        assert!(DocumentId::parse("000.00.00.G22,2015/09/30,7816/VPCP-TTĐT").is_ok());
        let err =
            DocumentId::parse("000.00.00.G22,2015-09-30,7816/VPCP").expect_err("must be refused");
        assert!(err.0.contains("yyyy/MM/dd"), "{err}");
        let err = DocumentId::parse("G22,2015/09/30,1").expect_err("must be refused");
        assert!(err.0.contains("DDD.CC.BB.Lnn"), "{err}");
        assert!(DocumentId::parse("000.00.00.G22,2015/09/30, ").is_err());
    }

    #[test]
    fn dates_and_timestamps_round_trip() {
        let d = EdxmlDate::parse("2024/02/29").expect("leap day");
        assert_eq!(d.to_string(), "2024/02/29");
        assert!(EdxmlDate::parse("2023/02/29").is_err());
        let t = Timestamp::parse("2024/01/05 07:08:09").expect("timestamp");
        assert_eq!(t.to_string(), "2024/01/05 07:08:09");
        assert!(Timestamp::parse("2024/01/05T07:08:09").is_err());
    }
}
