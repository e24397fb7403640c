//! Writes packages. Used by adapters that build packages (the CLI, tests, the load generator) and by
//! the bus when it speaks for itself; packages received from agencies are never rewritten.

use base64::Engine;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::legacy::{CodeMap, EDOCVN_NS, SOAP_NS, XLINK_NS};
use crate::model::*;

/// An attachment with its content (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// `cid:1`, `cid:2`... in order when absent.
    pub content_id: Option<String>,
    pub attachment_name: String,
    pub content_type: Option<String>,
    pub description: Option<String>,
    pub data: Vec<u8>,
    /// A large attachment left in the package it was read from: `data` is then empty and the
    /// content is the base64 text in this range (see [`crate::spill`]). Writers put a marker
    /// where the base64 goes; `lienthong_translate::expand` streams the content in.
    pub content_ref: Option<crate::source::ContentRef>,
}

/// A whole edoc: every field of the package, attachments with their content. Written by
/// [`write_edoc`], read back by [`crate::read_edoc`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEdoc {
    pub header: MessageHeader,
    pub trace: Vec<TraceHeader>,
    pub business: Option<Business>,
    /// `edXMLManifest`; when absent, one reference per attachment is written.
    pub manifest: Option<Vec<ManifestReference>>,
    pub attachments: Vec<NewAttachment>,
}

impl NewEdoc {
    /// The manifest as written: the one given, or one reference per attachment.
    pub fn manifest_or_derived(&self) -> Vec<ManifestReference> {
        match &self.manifest {
            Some(m) => m.clone(),
            None => self
                .attachments
                .iter()
                .enumerate()
                .map(|(i, a)| ManifestReference {
                    content_id: a.content_id_at(i),
                    content_type: a.content_type.clone(),
                    description: a.description.clone(),
                    attachment_name: Some(a.attachment_name.clone()),
                })
                .collect(),
        }
    }
}

impl NewAttachment {
    /// The content as base64 text, or the marker of attachment `index` when the content is left
    /// in the package.
    pub fn base64_at(&self, index: usize) -> String {
        match self.content_ref {
            Some(_) => crate::spill::marker(index),
            None => base64::engine::general_purpose::STANDARD.encode(&self.data),
        }
    }

    /// The content id written for the attachment at `index`.
    pub fn content_id_at(&self, index: usize) -> String {
        self.content_id
            .clone()
            .unwrap_or_else(|| format!("cid:{}", index + 1))
    }
}

struct Out<'a> {
    w: Writer<Vec<u8>>,
    /// Agency codes are written as 9-character codes through this map (e-doc.vn).
    codes: Option<&'a CodeMap>,
    /// OrganIds the map has no code for.
    unmapped: Vec<String>,
}

impl<'a> Out<'a> {
    fn new() -> Self {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Self {
            w,
            codes: None,
            unmapped: Vec::new(),
        }
    }
    fn legacy(codes: &'a CodeMap) -> Self {
        Self {
            codes: Some(codes),
            ..Self::new()
        }
    }
    /// An agency code as this output writes it.
    fn code(&mut self, organ: &OrganId) -> String {
        match self.codes {
            None => organ.as_str().to_owned(),
            Some(map) => match map.legacy(organ) {
                Some(legacy) => legacy.to_owned(),
                None => {
                    if !self.unmapped.iter().any(|u| u == organ.as_str()) {
                        self.unmapped.push(organ.to_string());
                    }
                    organ.as_str().to_owned()
                }
            },
        }
    }
    fn organ(&mut self, name: &str, organ: &OrganId) {
        let code = self.code(organ);
        self.leaf(name, &code);
    }
    fn document_id(&mut self, name: &str, id: &DocumentId) {
        let text = match id.as_str().split_once(',') {
            Some((issuer, rest)) if self.codes.is_some() => match OrganId::parse(issuer) {
                Ok(o) => format!("{},{rest}", self.code(&o)),
                Err(_) => id.as_str().to_owned(),
            },
            _ => id.as_str().to_owned(),
        };
        self.leaf(name, &text);
    }
    /// An element in namespace `ns` when given (declared on it as the default namespace).
    fn open_in(&mut self, name: &str, ns: Option<&str>) {
        match ns {
            Some(ns) => self.open_ns(name, ns),
            None => self.open(name),
        }
    }
    /// The bytes, or the OrganIds a legacy output had no code for.
    fn finish_legacy(self) -> Result<Vec<u8>, Unmapped> {
        if self.unmapped.is_empty() {
            Ok(self.finish())
        } else {
            Err(Unmapped(self.unmapped))
        }
    }
    fn open(&mut self, name: &str) {
        let _ = self.w.write_event(Event::Start(BytesStart::new(name)));
    }
    fn open_ns(&mut self, name: &str, ns: &str) {
        let mut start = BytesStart::new(name);
        start.push_attribute(("xmlns", ns));
        let _ = self.w.write_event(Event::Start(start));
    }
    fn close(&mut self, name: &str) {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }
    fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        let _ = self.w.write_event(Event::Text(BytesText::new(text)));
        self.close(name);
    }
    fn opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.leaf(name, t);
        }
    }
    fn opt_num(&mut self, name: &str, n: Option<i64>) {
        if let Some(n) = n {
            self.leaf(name, &n.to_string());
        }
    }
    fn finish(self) -> Vec<u8> {
        let mut bytes = self.w.into_inner();
        bytes.push(b'\n');
        bytes
    }
}

fn organization(o: &mut Out, name: &str, org: &Organization) {
    o.open(name);
    o.organ("OrganId", &org.organ_id);
    o.opt(
        "OrganizationInCharge",
        org.organization_in_charge.as_deref(),
    );
    o.opt("OrganName", org.organ_name.as_deref());
    o.opt("OrganAdd", org.organ_add.as_deref());
    o.opt("Email", org.email.as_deref());
    o.opt("Telephone", org.telephone.as_deref());
    o.opt("Fax", org.fax.as_deref());
    o.opt("Website", org.website.as_deref());
    o.close(name);
}

fn response_for(o: &mut Out, rf: &ResponseFor) {
    o.open("ResponseFor");
    o.organ("OrganId", &rf.organ_id);
    o.opt("Code", rf.code.as_deref());
    o.opt(
        "PromulgationDate",
        rf.promulgation_date.map(|d| d.to_string()).as_deref(),
    );
    o.document_id("DocumentId", &rf.document_id);
    o.close("ResponseFor");
}

fn trace_list(o: &mut Out, trace: &[TraceHeader], business: Option<&Business>, ns: Option<&str>) {
    if trace.is_empty() && business.is_none() {
        return;
    }
    o.open_in("TraceHeaderList", ns);
    for t in trace {
        o.open("TraceHeader");
        o.organ("OrganId", &t.organ_id);
        o.leaf("Timestamp", &t.timestamp.to_string());
        o.close("TraceHeader");
    }
    if let Some(b) = business {
        o.open("Bussiness");
        o.leaf("BussinessDocType", &b.doc_type.to_string());
        o.opt("BussinessDocReason", b.doc_reason.as_deref());
        o.close("Bussiness");
    }
    o.close("TraceHeaderList");
}

/// Writes an edoc package.
pub fn write_edoc(doc: &NewEdoc) -> Vec<u8> {
    let mut o = Out::new();
    o.open_ns("edXML", EDXML_NS);
    o.open("edXMLEnvelope");
    edoc_header(&mut o, doc);
    edoc_body(&mut o, doc);
    o.close("edXMLEnvelope");
    attachments_encoded(&mut o, doc);
    o.close("edXML");
    o.finish()
}

/// Writes an edoc in the flat `http://www.go.vn/eDoc` variant: the same header under an
/// `edXMLEnvelope` root, attachments inline in `edXMLBody` as `FileName`, `FileType`,
/// `Description`, `Content` (no content ids, no manifest).
pub fn write_edoc_govn(doc: &NewEdoc) -> Vec<u8> {
    let mut o = Out::new();
    o.open_ns("edXMLEnvelope", GOVN_NS);
    edoc_header(&mut o, doc);
    o.open("edXMLBody");
    for (i, a) in doc.attachments.iter().enumerate() {
        o.open("Attachment");
        o.leaf("FileName", &a.attachment_name);
        o.opt("FileType", a.content_type.as_deref());
        o.opt("Description", a.description.as_deref());
        o.leaf("Content", &a.base64_at(i));
        o.close("Attachment");
    }
    o.close("edXMLBody");
    o.close("edXMLEnvelope");
    o.finish()
}

fn edoc_header(o: &mut Out, doc: &NewEdoc) {
    o.open("edXMLHeader");
    message_header(o, &doc.header, None);
    trace_list(o, &doc.trace, doc.business.as_ref(), None);
    o.close("edXMLHeader");
}

fn message_header(o: &mut Out, h: &MessageHeader, ns: Option<&str>) {
    o.open_in("MessageHeader", ns);
    organization(o, "From", &h.from);
    for to in &h.to {
        organization(o, "To", to);
    }
    o.document_id("DocumentId", &h.document_id);
    o.open("Code");
    o.leaf("CodeNumber", &h.code.code_number);
    o.leaf("CodeNotation", &h.code.code_notation);
    o.close("Code");
    o.open("PromulgationInfo");
    o.opt("Place", h.promulgation_info.place.as_deref());
    o.leaf(
        "PromulgationDate",
        &h.promulgation_info.promulgation_date.to_string(),
    );
    o.close("PromulgationInfo");
    o.open("DocumentType");
    o.leaf("Type", &h.document_type.type_.to_string());
    o.opt_num("TypeDetail", h.document_type.type_detail);
    o.opt("TypeName", h.document_type.type_name.as_deref());
    o.close("DocumentType");
    o.leaf("Subject", &h.subject);
    o.opt("Content", h.content.as_deref());
    o.open("SignerInfo");
    o.opt("Competence", h.signer_info.competence.as_deref());
    o.opt("Position", h.signer_info.position.as_deref());
    o.opt("FullName", h.signer_info.full_name.as_deref());
    o.close("SignerInfo");
    o.opt("DueDate", h.due_date.map(|d| d.to_string()).as_deref());
    if !h.to_places.is_empty() {
        o.open("ToPlaces");
        for p in &h.to_places {
            o.leaf("Place", p);
        }
        o.close("ToPlaces");
    }
    let oi = &h.other_info;
    o.open("OtherInfo");
    o.opt_num("Priority", oi.priority);
    o.opt("SphereOfPromulgation", oi.sphere_of_promulgation.as_deref());
    o.opt("TyperNotation", oi.typer_notation.as_deref());
    o.opt_num("PromulgationAmount", oi.promulgation_amount);
    o.opt_num("PageAmount", oi.page_amount);
    o.opt("Direction", oi.direction.as_deref());
    if !oi.appendixes.is_empty() {
        o.open("Appendixes");
        for a in &oi.appendixes {
            o.leaf("Appendix", a);
        }
        o.close("Appendixes");
    }
    o.close("OtherInfo");
    for rf in &h.response_for {
        response_for(o, rf);
    }
    o.opt_num("SteeringType", h.steering_type);
    o.close("MessageHeader");
}

fn edoc_body(o: &mut Out, doc: &NewEdoc) {
    o.open("edXMLBody");
    o.open("edXMLManifest");
    for r in &doc.manifest_or_derived() {
        o.open("Reference");
        o.leaf("ContentId", &r.content_id);
        o.opt("ContentType", r.content_type.as_deref());
        o.opt("Description", r.description.as_deref());
        o.opt("AttachmentName", r.attachment_name.as_deref());
        o.close("Reference");
    }
    o.close("edXMLManifest");
    o.close("edXMLBody");
}

fn attachments_encoded(o: &mut Out, doc: &NewEdoc) {
    if !doc.attachments.is_empty() {
        o.open("AttachmentEncoded");
        for (i, a) in doc.attachments.iter().enumerate() {
            o.open("Attachment");
            o.leaf("ContentId", &a.content_id_at(i));
            o.leaf("AttachmentName", &a.attachment_name);
            o.opt("Description", a.description.as_deref());
            o.opt("ContentType", a.content_type.as_deref());
            o.leaf("ContentTransferEncoded", &a.base64_at(i));
            o.close("Attachment");
        }
        o.close("AttachmentEncoded");
    }
}

/// Writes a status package.
pub fn write_status(st: &StatusPackage) -> Vec<u8> {
    let mut o = Out::new();
    o.open_ns("edXML", EDXML_NS);
    o.open("edXMLEnvelope");
    status_header(&mut o, st);
    o.close("edXMLEnvelope");
    o.close("edXML");
    o.finish()
}

/// Writes a status package in the flat `http://www.go.vn/eDoc` variant.
pub fn write_status_govn(st: &StatusPackage) -> Vec<u8> {
    let mut o = Out::new();
    o.open_ns("edXMLEnvelope", GOVN_NS);
    status_header(&mut o, st);
    o.close("edXMLEnvelope");
    o.finish()
}

fn status_header(o: &mut Out, st: &StatusPackage) {
    o.open("edXMLHeader");
    status_block(o, st, None);
    trace_list(o, &st.trace, None, None);
    o.close("edXMLHeader");
}

fn status_block(o: &mut Out, st: &StatusPackage, ns: Option<&str>) {
    o.open_in("Status", ns);
    organization(o, "From", &st.from);
    response_for(o, &st.response_for);
    let s = &st.staff_info;
    if s.department.is_some() || s.staff.is_some() || s.mobile.is_some() || s.email.is_some() {
        o.open("StaffInfo");
        o.opt("Department", s.department.as_deref());
        o.opt("Staff", s.staff.as_deref());
        o.opt("Mobile", s.mobile.as_deref());
        o.opt("Email", s.email.as_deref());
        o.close("StaffInfo");
    }
    o.leaf("StatusCode", st.status_code.code());
    o.opt("Description", st.description.as_deref());
    o.leaf("Timestamp", &st.timestamp.to_string());
    o.close("Status");
}

/// OrganIds that have no 9-character code in the registry, so a package naming them cannot be
/// written for an e-doc.vn system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no 9-character agency code in the registry for {}", .0.join(", "))]
pub struct Unmapped(pub Vec<String>);

/// The SOAP 1.1 envelope of an e-doc.vn edoc: `MessageHeader` and `TraceHeaderList` in the SOAP
/// header, a `Manifest` in the body whose references point at MIME parts
/// (`xlink:href="cid:..."`); agency codes written as 9-character codes through `codes`. The
/// attachments themselves are the MIME parts the caller packs beside it.
pub fn write_edocvn_envelope(doc: &NewEdoc, codes: &CodeMap) -> Result<Vec<u8>, Unmapped> {
    let mut o = Out::legacy(codes);
    soap_open(&mut o);
    message_header(&mut o, &doc.header, Some(EDOCVN_NS));
    trace_list(&mut o, &doc.trace, doc.business.as_ref(), Some(EDOCVN_NS));
    o.close("SOAP-ENV:Header");
    o.open("SOAP-ENV:Body");
    let mut manifest = BytesStart::new("Manifest");
    manifest.push_attribute(("xmlns", EDOCVN_NS));
    manifest.push_attribute(("xmlns:xlink", XLINK_NS));
    let _ = o.w.write_event(Event::Start(manifest));
    for (i, a) in doc.attachments.iter().enumerate() {
        let mut reference = BytesStart::new("Reference");
        let href = cid_url(&a.content_id_at(i));
        reference.push_attribute(("xlink:href", href.as_str()));
        let _ = o.w.write_event(Event::Start(reference));
        o.leaf("AttachmentName", &a.attachment_name);
        o.opt("ContentType", a.content_type.as_deref());
        o.opt("Description", a.description.as_deref());
        o.close("Reference");
    }
    o.close("Manifest");
    o.close("SOAP-ENV:Body");
    o.close("SOAP-ENV:Envelope");
    o.finish_legacy()
}

/// The SOAP 1.1 envelope of an e-doc.vn status package: `Status` in the SOAP header, an empty
/// body.
pub fn write_edocvn_status_envelope(
    st: &StatusPackage,
    codes: &CodeMap,
) -> Result<Vec<u8>, Unmapped> {
    let mut o = Out::legacy(codes);
    soap_open(&mut o);
    status_block(&mut o, st, Some(EDOCVN_NS));
    trace_list(&mut o, &st.trace, None, Some(EDOCVN_NS));
    o.close("SOAP-ENV:Header");
    o.open("SOAP-ENV:Body");
    o.close("SOAP-ENV:Body");
    o.close("SOAP-ENV:Envelope");
    o.finish_legacy()
}

/// A content id as the `cid:` URL that references its MIME part.
pub fn cid_url(content_id: &str) -> String {
    if content_id.starts_with("cid:") {
        content_id.to_owned()
    } else {
        format!("cid:{content_id}")
    }
}

fn soap_open(o: &mut Out) {
    let mut envelope = BytesStart::new("SOAP-ENV:Envelope");
    envelope.push_attribute(("xmlns:SOAP-ENV", SOAP_NS));
    let _ = o.w.write_event(Event::Start(envelope));
    o.open("SOAP-ENV:Header");
}

/// The status package a recipient sends about a document it received.
pub fn status_reply(
    original: &MessageHeader,
    from: &Organization,
    code: crate::status::StatusCode,
    description: Option<String>,
) -> StatusPackage {
    StatusPackage {
        from: from.clone(),
        response_for: ResponseFor {
            organ_id: original.from.organ_id.clone(),
            code: Some(format!(
                "{}/{}",
                original.code.code_number, original.code.code_notation
            )),
            promulgation_date: Some(original.promulgation_info.promulgation_date),
            document_id: original.document_id.clone(),
        },
        staff_info: StaffInfo::default(),
        status_code: code,
        description,
        timestamp: Timestamp::now(),
        trace: Vec::new(),
        signed: false,
    }
}
