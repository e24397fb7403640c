//! Writes packages. Used by adapters that build packages (the CLI, tests, the load generator) and by
//! the bus when it speaks for itself; packages received from agencies are never rewritten.

use base64::Engine;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

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
    /// The content id written for the attachment at `index`.
    pub fn content_id_at(&self, index: usize) -> String {
        self.content_id
            .clone()
            .unwrap_or_else(|| format!("cid:{}", index + 1))
    }
}

struct Out {
    w: Writer<Vec<u8>>,
}

impl Out {
    fn new() -> Self {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Self { w }
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
    o.leaf("OrganId", org.organ_id.as_str());
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
    o.leaf("OrganId", rf.organ_id.as_str());
    o.opt("Code", rf.code.as_deref());
    o.opt(
        "PromulgationDate",
        rf.promulgation_date.map(|d| d.to_string()).as_deref(),
    );
    o.leaf("DocumentId", rf.document_id.as_str());
    o.close("ResponseFor");
}

fn trace_list(o: &mut Out, trace: &[TraceHeader], business: Option<&Business>) {
    if trace.is_empty() && business.is_none() {
        return;
    }
    o.open("TraceHeaderList");
    for t in trace {
        o.open("TraceHeader");
        o.leaf("OrganId", t.organ_id.as_str());
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
    for a in &doc.attachments {
        o.open("Attachment");
        o.leaf("FileName", &a.attachment_name);
        o.opt("FileType", a.content_type.as_deref());
        o.opt("Description", a.description.as_deref());
        o.leaf(
            "Content",
            &base64::engine::general_purpose::STANDARD.encode(&a.data),
        );
        o.close("Attachment");
    }
    o.close("edXMLBody");
    o.close("edXMLEnvelope");
    o.finish()
}

fn edoc_header(o: &mut Out, doc: &NewEdoc) {
    let h = &doc.header;
    o.open("edXMLHeader");
    o.open("MessageHeader");
    organization(o, "From", &h.from);
    for to in &h.to {
        organization(o, "To", to);
    }
    o.leaf("DocumentId", h.document_id.as_str());
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
    trace_list(o, &doc.trace, doc.business.as_ref());
    o.close("edXMLHeader");
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
            o.leaf(
                "ContentTransferEncoded",
                &base64::engine::general_purpose::STANDARD.encode(&a.data),
            );
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
    o.open("Status");
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
    trace_list(o, &st.trace, None);
    o.close("edXMLHeader");
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
