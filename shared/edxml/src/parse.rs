//! Maps the element tree of a package to the typed model, checking every QCVN 102 / Decree 30 rule
//! on the way and naming the path of each one broken.

use std::collections::HashSet;
use std::sync::Arc;

use crate::dom::{self, Element};
use crate::error::{PackageError, Violation};
use crate::legacy::{CodeMap, EDOCVN_NS, SOAP_NS, XLINK_NS, is_legacy_code};
use crate::model::*;
use crate::source::Source;
use crate::status::StatusCode;
use crate::write::{NewAttachment, NewEdoc};
use base64::Engine;

/// Decree 30/2020 length limits, in characters.
pub mod limits {
    pub const ORGAN_NAME: usize = 200;
    pub const CODE_NUMBER: usize = 11;
    pub const CODE_NOTATION: usize = 30;
    pub const SUBJECT: usize = 500;
    pub const TYPE_NAME: usize = 100;
    pub const POSITION: usize = 100;
    pub const FULL_NAME: usize = 50;
    pub const TO_PLACES: usize = 1000;
}

/// Parses and validates a package of either kind.
pub fn parse(bytes: &[u8]) -> Result<Package, PackageError> {
    checked(&dom::read(bytes)?)
}

/// Parses and validates the slim copy of a package (see [`crate::spill`]) whose markers stand for
/// `spills` (marker `n` for `spills[n]`).
pub fn parse_slim(bytes: &[u8], spills: &[crate::source::Range]) -> Result<Package, PackageError> {
    checked(&dom::read_slim(bytes, spills)?.root)
}

/// Parses and validates a package read from `source`, leaving attachment texts over
/// `spill_threshold` bytes in it: they are checked as base64 a chunk at a time, never held.
pub fn parse_source(
    source: Arc<dyn Source>,
    spill_threshold: u64,
) -> Result<Package, PackageError> {
    checked(&dom::read_document_source(source, spill_threshold)?.root)
}

/// A package of either kind, whole: an edoc with its attachments' content, or a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whole {
    Edoc(Box<NewEdoc>),
    Status(Box<StatusPackage>),
}

/// Reads a package whole (one pass over the bytes): every edXML rule checked, and for an edoc
/// each attachment's content decoded, in the order written. What translation starts from;
/// acceptance only needs [`parse`].
pub fn read_whole(bytes: &[u8]) -> Result<Whole, PackageError> {
    whole_of(&dom::read(bytes)?)
}

/// [`read_whole`] from a source, attachments over `spill_threshold` bytes left in it: their
/// `content_ref` names the base64 text, and nothing of them is held.
pub fn read_whole_source(
    source: Arc<dyn Source>,
    spill_threshold: u64,
) -> Result<Whole, PackageError> {
    whole_of(&dom::read_document_source(source, spill_threshold)?.root)
}

/// [`read_whole_source`] of a package already read into a tree (by
/// [`dom::read_document_source`], with the same threshold): for a caller that has read it for
/// something else, its signature's check.
pub fn read_whole_document(document: &dom::Document) -> Result<Whole, PackageError> {
    whole_of(&document.root)
}

fn whole_of(root: &Element) -> Result<Whole, PackageError> {
    let edoc = match checked(root)? {
        Package::Edoc(edoc) => edoc,
        Package::Status(status) => return Ok(Whole::Status(status)),
    };
    let contents = root
        .child("AttachmentEncoded")
        .map(|enc| {
            enc.children_named("Attachment")
                // Checked as base64 by `checked` already.
                .map(|a| {
                    a.child("ContentTransferEncoded")
                        .map(content_of)
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let Edoc {
        header,
        trace,
        business,
        manifest,
        attachments,
        ..
    } = *edoc;
    Ok(Whole::Edoc(Box::new(NewEdoc {
        header,
        trace,
        business,
        manifest: Some(manifest),
        attachments: attachments
            .into_iter()
            .zip(contents)
            .map(|(a, (data, content_ref))| NewAttachment {
                content_id: Some(a.content_id),
                attachment_name: a.attachment_name,
                content_type: a.content_type,
                description: a.description,
                data,
                content_ref,
            })
            .collect(),
    })))
}

/// Reads an edoc whole (see [`read_whole`]); a status package is refused.
pub fn read_edoc(bytes: &[u8]) -> Result<NewEdoc, PackageError> {
    match read_whole(bytes)? {
        Whole::Edoc(edoc) => Ok(*edoc),
        Whole::Status(_) => Err(PackageError::Invalid(vec![Violation {
            path: "edXMLEnvelope/edXMLHeader".into(),
            rule: "holds Status: a status package, not an edoc".into(),
        }])),
    }
}

/// Reads a package of the flat `http://www.go.vn/eDoc` variant whole: root `edXMLEnvelope`, the
/// same header as edXML, attachments inline in `edXMLBody` (`FileName`, `FileType`,
/// `Description`, `Content`). The same rules apply; paths name the go.vn elements
/// (`edXMLHeader/MessageHeader/To[2]/OrganId`, `edXMLBody/Attachment[1]/Content`).
pub fn read_govn(bytes: &[u8]) -> Result<Whole, PackageError> {
    govn_of(&dom::read(bytes)?)
}

/// [`read_govn`] from a source, attachments over `spill_threshold` bytes left in it (see
/// [`read_whole_source`]).
pub fn read_govn_source(
    source: Arc<dyn Source>,
    spill_threshold: u64,
) -> Result<Whole, PackageError> {
    govn_of(&dom::read_document_source(source, spill_threshold)?.root)
}

/// [`read_govn_source`] of a package already read into a tree (see [`read_whole_document`]).
pub fn read_govn_document(document: &dom::Document) -> Result<Whole, PackageError> {
    govn_of(&document.root)
}

fn govn_of(root: &Element) -> Result<Whole, PackageError> {
    let mut c = Checker::default();
    let whole = govn_package(root, &mut c);
    c.outcome(whole, "edXMLEnvelope", "not a go.vn package")
}

fn govn_package(root: &Element, c: &mut Checker<'_>) -> Option<Whole> {
    let header = root_and_header(root, "edXMLEnvelope", GOVN_NS, "edXMLHeader", c)?;
    let hp = "edXMLHeader";
    let (trace, business) = trace_list(header, hp, c);
    match header_kind(header.child("MessageHeader"), header.child("Status"), hp, c)? {
        HeaderKind::Edoc(mh) => {
            let message_header = message_header(mh, &format!("{hp}/MessageHeader"), c);
            let mut attachments = Vec::new();
            let items = root
                .child("edXMLBody")
                .into_iter()
                .flat_map(|b| b.children_named("Attachment"));
            for (i, a) in items.enumerate() {
                let p = format!("edXMLBody/Attachment[{}]", i + 1);
                let attachment_name = c.required(a, &p, "FileName").unwrap_or_default();
                let (data, content_ref) = match a.child("Content") {
                    Some(content) => match base64_decoded_len(content) {
                        Ok(_) => content_of(content),
                        Err(why) => {
                            c.fail(&format!("{p}/Content"), why);
                            (Vec::new(), None)
                        }
                    },
                    None => {
                        c.fail(&format!("{p}/Content"), "is required but missing");
                        (Vec::new(), None)
                    }
                };
                attachments.push(NewAttachment {
                    content_id: None,
                    attachment_name,
                    content_type: c.optional(a, "FileType"),
                    description: c.optional(a, "Description"),
                    data,
                    content_ref,
                });
            }
            Some(Whole::Edoc(Box::new(NewEdoc {
                header: message_header?,
                trace,
                business,
                manifest: None,
                attachments,
            })))
        }
        HeaderKind::Status(st) => {
            status(st, &format!("{hp}/Status"), c, trace, false).map(|s| Whole::Status(Box::new(s)))
        }
    }
}

/// A MIME part of an e-doc.vn package, by its Content-ID (without the angle brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimePart {
    pub content_type: Option<String>,
    pub data: Vec<u8>,
    /// The content left in the package it came in (then `data` is empty).
    pub content_ref: Option<crate::source::ContentRef>,
}

/// Reads the SOAP 1.1 envelope of an e-doc.vn package whole: `MessageHeader` (or `Status`) and
/// `TraceHeaderList` in the SOAP header, a `Manifest` in the body whose `Reference`s point at
/// MIME parts (`xlink:href="cid:..."`, looked up in `parts`). 9-character agency codes are
/// mapped to OrganIds through `codes`. The edXML rules apply; paths name the SOAP elements
/// (`Header/MessageHeader/To[2]/OrganId`, `Body/Manifest/Reference[1]`).
pub fn read_edocvn_envelope(
    xml: &[u8],
    codes: &CodeMap,
    parts: &std::collections::HashMap<String, MimePart>,
) -> Result<Whole, PackageError> {
    let root = dom::read(xml)?;
    let mut c = Checker {
        codes: Some(codes),
        ..Checker::default()
    };
    let whole = edocvn_package(&root, parts, &mut c);
    c.outcome(whole, "Envelope", "not an e-doc.vn package")
}

fn edocvn_package(
    root: &Element,
    parts: &std::collections::HashMap<String, MimePart>,
    c: &mut Checker<'_>,
) -> Option<Whole> {
    let header = root_and_header(root, "Envelope", SOAP_NS, "Header", c)?;
    let in_edocvn = |e: &&Element| e.namespace.as_deref() == Some(EDOCVN_NS);
    let message_header_el = header.child("MessageHeader").filter(in_edocvn);
    let status_el = header.child("Status").filter(in_edocvn);
    let (trace, business) = trace_list(header, "Header", c);
    match header_kind(message_header_el, status_el, "Header", c)? {
        HeaderKind::Edoc(mh) => {
            let message_header = message_header(mh, "Header/MessageHeader", c);
            let mut attachments = Vec::new();
            let references = root
                .child("Body")
                .and_then(|b| b.child("Manifest"))
                .into_iter()
                .flat_map(|m| m.children_named("Reference"));
            for (i, r) in references.enumerate() {
                let p = format!("Body/Manifest/Reference[{}]", i + 1);
                let href = r
                    .attributes
                    .iter()
                    .find(|a| a.namespace.as_deref() == Some(XLINK_NS) && a.name == "href")
                    .map(|a| a.value.clone());
                let Some(href) = href else {
                    c.fail(&format!("{p}/@xlink:href"), "is required but missing");
                    continue;
                };
                let Some(cid) = href.strip_prefix("cid:") else {
                    c.fail(
                        &format!("{p}/@xlink:href"),
                        format!("`{href}` is not a cid: reference to a MIME part"),
                    );
                    continue;
                };
                let Some(part) = parts.get(cid) else {
                    c.fail(
                        &format!("{p}/@xlink:href"),
                        format!("`{href}` names no MIME part of the package"),
                    );
                    continue;
                };
                let attachment_name = c.required(r, &p, "AttachmentName").unwrap_or_default();
                attachments.push(NewAttachment {
                    content_id: Some(href.clone()),
                    attachment_name,
                    content_type: c
                        .optional(r, "ContentType")
                        .or_else(|| part.content_type.clone()),
                    description: c.optional(r, "Description"),
                    data: part.data.clone(),
                    content_ref: part.content_ref.clone(),
                });
            }
            Some(Whole::Edoc(Box::new(NewEdoc {
                header: message_header?,
                trace,
                business,
                manifest: None,
                attachments,
            })))
        }
        HeaderKind::Status(st) => {
            status(st, "Header/Status", c, trace, false).map(|s| Whole::Status(Box::new(s)))
        }
    }
}

fn checked(root: &Element) -> Result<Package, PackageError> {
    let mut c = Checker::default();
    let package = package(root, &mut c);
    c.outcome(package, "edXML", "not an edXML package")
}

/// Parses a package that must be of the given kind.
pub fn parse_as(bytes: &[u8], kind: MessageType) -> Result<Package, PackageError> {
    of_kind(parse(bytes)?, kind)
}

/// [`parse_source`], refusing the other kind of package (see [`parse_as`]).
pub fn parse_source_as(
    source: Arc<dyn Source>,
    spill_threshold: u64,
    kind: MessageType,
) -> Result<Package, PackageError> {
    of_kind(parse_source(source, spill_threshold)?, kind)
}

fn of_kind(package: Package, kind: MessageType) -> Result<Package, PackageError> {
    if package.message_type() != kind {
        let (expected, found) = match kind {
            MessageType::Edoc => ("MessageHeader", "Status"),
            MessageType::Status => ("Status", "MessageHeader"),
        };
        return Err(PackageError::Invalid(vec![Violation {
            path: "edXMLEnvelope/edXMLHeader".into(),
            rule: format!(
                "messageType is `{kind}` so the header must hold {expected}, but it holds {found}"
            ),
        }]));
    }
    Ok(package)
}

#[derive(Default)]
struct Checker<'a> {
    violations: Vec<Violation>,
    /// 9-character agency codes are read through this map (e-doc.vn).
    codes: Option<&'a CodeMap>,
}

impl Checker<'_> {
    /// The package read, if no rule was broken; otherwise every broken rule (or, when reading
    /// stopped without naming one, `fallback` at `path`).
    fn outcome<T>(
        mut self,
        read: Option<T>,
        path: &str,
        fallback: &str,
    ) -> Result<T, PackageError> {
        match read {
            Some(value) if self.violations.is_empty() => Ok(value),
            _ => {
                if self.violations.is_empty() {
                    self.violations.push(Violation {
                        path: path.into(),
                        rule: fallback.into(),
                    });
                }
                Err(PackageError::Invalid(self.violations))
            }
        }
    }

    fn fail(&mut self, path: &str, rule: impl Into<String>) {
        self.violations.push(Violation {
            path: path.to_owned(),
            rule: rule.into(),
        });
    }

    /// A required child element with non-empty text.
    fn required(&mut self, parent: &Element, path: &str, name: &str) -> Option<String> {
        let p = format!("{path}/{name}");
        match parent.child_text(name) {
            Some(t) if !t.is_empty() => Some(t),
            Some(_) => {
                self.fail(&p, "is required and must not be empty");
                None
            }
            None => {
                self.fail(&p, "is required but missing");
                None
            }
        }
    }

    /// An optional child's text; empty counts as absent.
    fn optional(&mut self, parent: &Element, name: &str) -> Option<String> {
        parent.child_text(name).filter(|t| !t.is_empty())
    }

    fn max_len(&mut self, path: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            let n = v.chars().count();
            if n > max {
                self.fail(
                    path,
                    format!("is {n} characters long, more than the {max} allowed (Decree 30/2020)"),
                );
            }
        }
    }

    fn integer(&mut self, parent: &Element, path: &str, name: &str) -> Option<i64> {
        let text = self.optional(parent, name)?;
        match text.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.fail(
                    &format!("{path}/{name}"),
                    format!("`{text}` is not an integer"),
                );
                None
            }
        }
    }

    /// A 9-character code when reading through a code map: today's OrganId for it.
    fn mapped(&mut self, path: &str, code: &str) -> Result<Option<OrganId>, ()> {
        let Some(map) = self.codes.filter(|_| is_legacy_code(code)) else {
            return Ok(None);
        };
        match map.organ(code) {
            Some(o) => Ok(Some(o.clone())),
            None => {
                self.fail(
                    path,
                    format!("agency code `{code}` is not in the registry: no agency has it as its 9-character code"),
                );
                Err(())
            }
        }
    }

    fn organ_id(&mut self, path: &str, text: Option<String>) -> Option<OrganId> {
        let text = text?;
        if let Some(mapped) = self.mapped(path, &text).ok()? {
            return Some(mapped);
        }
        match OrganId::parse(&text) {
            Ok(o) => Some(o),
            Err(e) => {
                self.fail(path, e.0);
                None
            }
        }
    }

    fn date(&mut self, path: &str, text: Option<String>) -> Option<EdxmlDate> {
        let text = text?;
        match EdxmlDate::parse(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.fail(path, e.0);
                None
            }
        }
    }

    fn document_id(&mut self, path: &str, text: Option<String>) -> Option<DocumentId> {
        let mut text = text?;
        if let Some((issuer, rest)) = text.split_once(',')
            && let Some(mapped) = self.mapped(path, issuer).ok()?
        {
            text = format!("{mapped},{rest}");
        }
        match DocumentId::parse(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.fail(path, e.0);
                None
            }
        }
    }

    fn timestamp(&mut self, path: &str, text: Option<String>) -> Option<Timestamp> {
        let text = text?;
        match Timestamp::parse(&text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.fail(path, e.0);
                None
            }
        }
    }
}

fn package(root: &Element, c: &mut Checker<'_>) -> Option<Package> {
    if root.name != "edXML" || root.namespace.as_deref() != Some(EDXML_NS) {
        c.fail(
            &root.name,
            format!("the root element must be `edXML` in the namespace {EDXML_NS}"),
        );
        return None;
    }
    let Some(envelope) = root.child("edXMLEnvelope") else {
        c.fail("edXMLEnvelope", "is required but missing");
        return None;
    };
    let Some(header) = envelope.child("edXMLHeader") else {
        c.fail("edXMLEnvelope/edXMLHeader", "is required but missing");
        return None;
    };
    let hp = "edXMLEnvelope/edXMLHeader";
    // QCVN 102 puts it in edXMLHeader; generic XML-DSig tools append it to the root.
    let signatures = header
        .elements()
        .chain(envelope.elements())
        .chain(root.elements())
        .filter(|e| e.name == "Signature" && e.namespace.as_deref() == Some(DSIG_NS))
        .count();
    let (trace, business) = trace_list(header, hp, c);
    match header_kind(header.child("MessageHeader"), header.child("Status"), hp, c)? {
        HeaderKind::Edoc(mh) => {
            let header = message_header(mh, &format!("{hp}/MessageHeader"), c);
            let (manifest, attachments) = body(root, envelope, c);
            Some(Package::Edoc(Box::new(Edoc {
                header: header?,
                trace,
                business,
                manifest,
                attachments,
                signed: signatures > 0,
            })))
        }
        HeaderKind::Status(st) => {
            let status = status(st, &format!("{hp}/Status"), c, trace, signatures > 0);
            status.map(|s| Package::Status(Box::new(s)))
        }
    }
}

/// The header element under a root that must be `root_name` in `namespace`.
fn root_and_header<'e>(
    root: &'e Element,
    root_name: &str,
    namespace: &str,
    header_name: &str,
    c: &mut Checker<'_>,
) -> Option<&'e Element> {
    if root.name != root_name || root.namespace.as_deref() != Some(namespace) {
        c.fail(
            &root.name,
            format!("the root element must be `{root_name}` in the namespace {namespace}"),
        );
        return None;
    }
    let header = root.child(header_name);
    if header.is_none() {
        c.fail(header_name, "is required but missing");
    }
    header
}

/// What a package header holds: a `MessageHeader` (an edoc) or a `Status`, never both.
enum HeaderKind<'e> {
    Edoc(&'e Element),
    Status(&'e Element),
}

fn header_kind<'e>(
    message_header: Option<&'e Element>,
    status: Option<&'e Element>,
    path: &str,
    c: &mut Checker<'_>,
) -> Option<HeaderKind<'e>> {
    match (message_header, status) {
        (Some(mh), None) => Some(HeaderKind::Edoc(mh)),
        (None, Some(st)) => Some(HeaderKind::Status(st)),
        (Some(_), Some(_)) => {
            c.fail(
                path,
                "holds both MessageHeader and Status; a package is one or the other",
            );
            None
        }
        (None, None) => {
            c.fail(
                path,
                "must hold a MessageHeader (edoc) or a Status (status package)",
            );
            None
        }
    }
}

fn organization(
    e: &Element,
    path: &str,
    c: &mut Checker<'_>,
    name_required: bool,
) -> Option<Organization> {
    let organ_text = c.required(e, path, "OrganId");
    let organ_id = c.organ_id(&format!("{path}/OrganId"), organ_text);
    let organ_name = if name_required {
        c.required(e, path, "OrganName")
    } else {
        c.optional(e, "OrganName")
    };
    c.max_len(
        &format!("{path}/OrganName"),
        organ_name.as_deref(),
        limits::ORGAN_NAME,
    );
    Some(Organization {
        organ_id: organ_id?,
        organization_in_charge: c.optional(e, "OrganizationInCharge"),
        organ_name,
        organ_add: c.optional(e, "OrganAdd"),
        email: c.optional(e, "Email"),
        telephone: c.optional(e, "Telephone"),
        fax: c.optional(e, "Fax"),
        website: c.optional(e, "Website"),
    })
}

fn message_header(mh: &Element, path: &str, c: &mut Checker<'_>) -> Option<MessageHeader> {
    let from = match mh.child("From") {
        Some(f) => organization(f, &format!("{path}/From"), c, true),
        None => {
            c.fail(&format!("{path}/From"), "is required but missing");
            None
        }
    };

    let mut to = Vec::new();
    let mut seen = HashSet::new();
    let tos: Vec<&Element> = mh.children_named("To").collect();
    if tos.is_empty() {
        c.fail(
            &format!("{path}/To"),
            "at least one recipient (To) is required",
        );
    }
    for (i, t) in tos.iter().enumerate() {
        let p = format!("{path}/To[{}]", i + 1);
        if let Some(org) = organization(t, &p, c, false) {
            if !seen.insert(org.organ_id.clone()) {
                c.fail(
                    &format!("{p}/OrganId"),
                    format!("recipient {} is named more than once", org.organ_id),
                );
            } else {
                to.push(org);
            }
        }
    }

    let doc_id_text = c.required(mh, path, "DocumentId");
    let document_id = c.document_id(&format!("{path}/DocumentId"), doc_id_text);

    let code = match mh.child("Code") {
        Some(code) => {
            let p = format!("{path}/Code");
            let number = c.required(code, &p, "CodeNumber");
            let notation = c.required(code, &p, "CodeNotation");
            c.max_len(
                &format!("{p}/CodeNumber"),
                number.as_deref(),
                limits::CODE_NUMBER,
            );
            c.max_len(
                &format!("{p}/CodeNotation"),
                notation.as_deref(),
                limits::CODE_NOTATION,
            );
            Some(Code {
                code_number: number.unwrap_or_default(),
                code_notation: notation.unwrap_or_default(),
            })
        }
        None => {
            c.fail(&format!("{path}/Code"), "is required but missing");
            None
        }
    };

    let promulgation_info = match mh.child("PromulgationInfo") {
        Some(pi) => {
            let p = format!("{path}/PromulgationInfo");
            let date_text = c.required(pi, &p, "PromulgationDate");
            let date = c.date(&format!("{p}/PromulgationDate"), date_text);
            date.map(|promulgation_date| PromulgationInfo {
                place: c.optional(pi, "Place"),
                promulgation_date,
            })
        }
        None => {
            c.fail(
                &format!("{path}/PromulgationInfo"),
                "is required but missing",
            );
            None
        }
    };

    let document_type = match mh.child("DocumentType") {
        Some(dt) => {
            let p = format!("{path}/DocumentType");
            let ty = match c.required(dt, &p, "Type") {
                Some(t) => match t.parse::<i64>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        c.fail(&format!("{p}/Type"), format!("`{t}` is not an integer"));
                        None
                    }
                },
                None => None,
            };
            let type_name = c.optional(dt, "TypeName");
            c.max_len(
                &format!("{p}/TypeName"),
                type_name.as_deref(),
                limits::TYPE_NAME,
            );
            ty.map(|type_| DocumentType {
                type_,
                type_detail: c.integer(dt, &p, "TypeDetail"),
                type_name,
            })
        }
        None => {
            c.fail(&format!("{path}/DocumentType"), "is required but missing");
            None
        }
    };

    let subject = c.required(mh, path, "Subject");
    c.max_len(
        &format!("{path}/Subject"),
        subject.as_deref(),
        limits::SUBJECT,
    );

    let signer_info = mh
        .child("SignerInfo")
        .map(|si| {
            let p = format!("{path}/SignerInfo");
            let position = c.optional(si, "Position");
            let full_name = c.optional(si, "FullName");
            c.max_len(
                &format!("{p}/Position"),
                position.as_deref(),
                limits::POSITION,
            );
            c.max_len(
                &format!("{p}/FullName"),
                full_name.as_deref(),
                limits::FULL_NAME,
            );
            SignerInfo {
                competence: c.optional(si, "Competence"),
                position,
                full_name,
            }
        })
        .unwrap_or_default();

    let due_text = c.optional(mh, "DueDate");
    let due_date = c.date(&format!("{path}/DueDate"), due_text);

    let to_places: Vec<String> = mh
        .child("ToPlaces")
        .map(|tp| {
            tp.children_named("Place")
                .map(Element::text)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let places_len: usize = to_places.iter().map(|p| p.chars().count()).sum();
    if places_len > limits::TO_PLACES {
        c.fail(
            &format!("{path}/ToPlaces"),
            format!(
                "places total {places_len} characters, more than the {} allowed (Decree 30/2020)",
                limits::TO_PLACES
            ),
        );
    }

    let other_info = mh
        .child("OtherInfo")
        .map(|oi| other_info(oi, &format!("{path}/OtherInfo"), c))
        .unwrap_or_default();

    let mut response_for = Vec::new();
    for (i, rf) in mh.children_named("ResponseFor").enumerate() {
        if let Some(r) = response_for_block(rf, &format!("{path}/ResponseFor[{}]", i + 1), c) {
            response_for.push(r);
        }
    }

    let steering_type = c.integer(mh, path, "SteeringType");

    Some(MessageHeader {
        from: from?,
        to,
        document_id: document_id?,
        code: code?,
        promulgation_info: promulgation_info?,
        document_type: document_type?,
        subject: subject?,
        content: c.optional(mh, "Content"),
        signer_info,
        due_date,
        to_places,
        other_info,
        response_for,
        steering_type,
    })
}

fn other_info(oi: &Element, path: &str, c: &mut Checker<'_>) -> OtherInfo {
    let priority = c.integer(oi, path, "Priority");
    if let Some(p) = priority
        && !(0..=4).contains(&p)
    {
        c.fail(
                &format!("{path}/Priority"),
                format!("`{p}` is out of range: 0 normal, 1 urgent, 2 very urgent, 3 express, 4 express at a set time"),
            );
    }
    OtherInfo {
        priority,
        sphere_of_promulgation: c.optional(oi, "SphereOfPromulgation"),
        typer_notation: c.optional(oi, "TyperNotation"),
        promulgation_amount: c.integer(oi, path, "PromulgationAmount"),
        page_amount: c.integer(oi, path, "PageAmount"),
        direction: c.optional(oi, "Direction"),
        appendixes: oi
            .child("Appendixes")
            .map(|a| a.children_named("Appendix").map(Element::text).collect())
            .unwrap_or_default(),
    }
}

fn response_for_block(rf: &Element, path: &str, c: &mut Checker<'_>) -> Option<ResponseFor> {
    let organ_text = c.required(rf, path, "OrganId");
    let organ_id = c.organ_id(&format!("{path}/OrganId"), organ_text);
    let doc_text = c.required(rf, path, "DocumentId");
    let document_id = c.document_id(&format!("{path}/DocumentId"), doc_text);
    let date_text = c.optional(rf, "PromulgationDate");
    let promulgation_date = c.date(&format!("{path}/PromulgationDate"), date_text);
    Some(ResponseFor {
        organ_id: organ_id?,
        code: c.optional(rf, "Code"),
        promulgation_date,
        document_id: document_id?,
    })
}

fn trace_list(
    header: &Element,
    hp: &str,
    c: &mut Checker<'_>,
) -> (Vec<TraceHeader>, Option<Business>) {
    let Some(list) = header.child("TraceHeaderList") else {
        return (Vec::new(), None);
    };
    let lp = format!("{hp}/TraceHeaderList");
    let mut trace = Vec::new();
    for (i, th) in list.children_named("TraceHeader").enumerate() {
        let p = format!("{lp}/TraceHeader[{}]", i + 1);
        let organ_text = c.required(th, &p, "OrganId");
        let organ = c.organ_id(&format!("{p}/OrganId"), organ_text);
        let ts_text = c.required(th, &p, "Timestamp");
        let ts = c.timestamp(&format!("{p}/Timestamp"), ts_text);
        if let (Some(organ_id), Some(timestamp)) = (organ, ts) {
            trace.push(TraceHeader {
                organ_id,
                timestamp,
            });
        }
    }
    let business = list.child_any(&["Bussiness", "Business"]).map(|b| {
        let p = format!("{lp}/{}", b.name);
        let doc_type = b
            .child_any(&["BussinessDocType", "BusinessDocType"])
            .map(Element::text)
            .unwrap_or_default();
        let doc_type = if doc_type.is_empty() {
            0
        } else {
            match doc_type.parse::<i64>() {
                Ok(v) if (0..=3).contains(&v) => v,
                _ => {
                    c.fail(
                        &format!("{p}/BussinessDocType"),
                        format!("`{doc_type}` is not 0 new, 1 revoke, 2 update or 3 replace"),
                    );
                    0
                }
            }
        };
        Business {
            doc_type,
            doc_reason: b
                .child_any(&["BussinessDocReason", "BusinessDocReason"])
                .map(Element::text)
                .filter(|t| !t.is_empty()),
        }
    });
    (trace, business)
}

fn body(
    root: &Element,
    envelope: &Element,
    c: &mut Checker<'_>,
) -> (Vec<ManifestReference>, Vec<Attachment>) {
    let mut manifest = Vec::new();
    if let Some(m) = envelope
        .child("edXMLBody")
        .and_then(|b| b.child("edXMLManifest"))
    {
        for (i, r) in m.children_named("Reference").enumerate() {
            let p = format!("edXMLEnvelope/edXMLBody/edXMLManifest/Reference[{}]", i + 1);
            let content_id = c.required(r, &p, "ContentId").unwrap_or_default();
            manifest.push(ManifestReference {
                content_id,
                content_type: c.optional(r, "ContentType"),
                description: c.optional(r, "Description"),
                attachment_name: c.optional(r, "AttachmentName"),
            });
        }
    }

    let mut attachments = Vec::new();
    if let Some(enc) = root.child("AttachmentEncoded") {
        let mut ids = HashSet::new();
        for (i, a) in enc.children_named("Attachment").enumerate() {
            let p = format!("AttachmentEncoded/Attachment[{}]", i + 1);
            let content_id = c.required(a, &p, "ContentId").unwrap_or_default();
            if !content_id.is_empty() && !ids.insert(content_id.clone()) {
                c.fail(
                    &format!("{p}/ContentId"),
                    format!("`{content_id}` is used by two attachments"),
                );
            }
            let name = c.required(a, &p, "AttachmentName").unwrap_or_default();
            let size = match a.child("ContentTransferEncoded") {
                Some(content) => match base64_decoded_len(content) {
                    Ok(n) => n,
                    Err(why) => {
                        c.fail(&format!("{p}/ContentTransferEncoded"), why);
                        0
                    }
                },
                None => {
                    c.fail(
                        &format!("{p}/ContentTransferEncoded"),
                        "is required but missing",
                    );
                    0
                }
            };
            attachments.push(Attachment {
                content_id,
                attachment_name: name,
                description: c.optional(a, "Description"),
                content_type: c.optional(a, "ContentType"),
                size,
            });
        }
    }

    let attached: HashSet<&str> = attachments.iter().map(|a| a.content_id.as_str()).collect();
    for (i, r) in manifest.iter().enumerate() {
        if !r.content_id.is_empty() && !attached.contains(r.content_id.as_str()) {
            c.fail(
                &format!(
                    "edXMLEnvelope/edXMLBody/edXMLManifest/Reference[{}]/ContentId",
                    i + 1
                ),
                format!(
                    "`{}` names no attachment in AttachmentEncoded",
                    r.content_id
                ),
            );
        }
    }
    (manifest, attachments)
}

/// The bytes of base64 text already checked by [`base64_decoded_len`] (white space ignored).
/// An attachment's content: decoded, or, when its text was left in the package, where it lies.
fn content_of(content: &Element) -> (Vec<u8>, Option<crate::source::ContentRef>) {
    let spilled = content.children.iter().find_map(|n| match n {
        crate::dom::Node::Text(t) => t.spilled().cloned(),
        _ => None,
    });
    match spilled {
        Some(range) => (
            Vec::new(),
            Some(crate::source::ContentRef {
                range,
                encoding: crate::source::Encoding::Base64Text,
            }),
        ),
        None => (decoded(content), None),
    }
}

fn decoded(content: &Element) -> Vec<u8> {
    let mut compact = Vec::new();
    for node in &content.children {
        if let crate::dom::Node::Text(t) = node {
            // Checked as base64 (so readable) before; a source failing now decodes to nothing.
            // Base64 in XML comes in lines: copied a line at a time, not a byte.
            let _ = t.for_each_chunk(|chunk| {
                compact.reserve(chunk.len());
                for line in chunk.split(u8::is_ascii_whitespace) {
                    compact.extend_from_slice(line);
                }
            });
        }
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap_or_default()
}

fn base64_decoded_len(content: &Element) -> Result<u64, String> {
    let mut check = crate::source::Base64Check::new(true);
    for node in &content.children {
        let t = match node {
            crate::dom::Node::Text(t) => t,
            crate::dom::Node::Element(_) => {
                return Err("must hold base64 text only, not elements".into());
            }
            crate::dom::Node::Comment(_) | crate::dom::Node::ProcessingInstruction { .. } => {
                continue;
            }
        };
        t.for_each_chunk(|chunk| check.feed(chunk))
            .map_err(|e| format!("could not be read: {e}"))?;
    }
    check.finish()
}

fn status(
    st: &Element,
    path: &str,
    c: &mut Checker<'_>,
    trace: Vec<TraceHeader>,
    signed: bool,
) -> Option<StatusPackage> {
    let from = match st.child("From") {
        Some(f) => organization(f, &format!("{path}/From"), c, false),
        None => {
            c.fail(&format!("{path}/From"), "is required but missing");
            None
        }
    };
    let response_for = match st.child("ResponseFor") {
        Some(rf) => response_for_block(rf, &format!("{path}/ResponseFor"), c),
        None => {
            c.fail(&format!("{path}/ResponseFor"), "is required but missing");
            None
        }
    };
    let code_text = c.required(st, path, "StatusCode");
    let status_code = code_text.and_then(|t| match StatusCode::parse(&t) {
        Ok(code) => Some(code),
        Err(e) => {
            c.fail(&format!("{path}/StatusCode"), e.0);
            None
        }
    });
    let ts_text = c.required(st, path, "Timestamp");
    let timestamp = c.timestamp(&format!("{path}/Timestamp"), ts_text);
    let staff_info = st
        .child("StaffInfo")
        .map(|s| StaffInfo {
            department: c.optional(s, "Department"),
            staff: c.optional(s, "Staff"),
            mobile: c.optional(s, "Mobile"),
            email: c.optional(s, "Email"),
        })
        .unwrap_or_default();
    Some(StatusPackage {
        from: from?,
        response_for: response_for?,
        staff_info,
        status_code: status_code?,
        description: c.optional(st, "Description"),
        timestamp: timestamp?,
        trace,
        signed,
    })
}
