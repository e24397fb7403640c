//! JSON for REST adapters: every field of an edoc or a status package, in a flat, documented
//! shape (`shared/translate/schema/package.schema.json`). Names are the edXML element names in
//! lowerCamelCase; attachments carry their content in base64 (`data`).
//!
//! Reading checks the JSON shape first (an error names the JSON path, e.g.
//! `header.to[1].organId`), then applies the very rules edXML packages are held to, reporting
//! each broken rule at its JSON path. So a package is acceptable in JSON exactly when it is
//! acceptable in edXML.

use base64::Engine;
use lienthong_edxml::{
    Business, Code, DocumentId, DocumentType, EdxmlDate, ManifestReference, MessageHeader,
    NewAttachment, NewEdoc, OrganId, Organization, OtherInfo, PackageError, PromulgationInfo,
    ResponseFor, SignerInfo, StaffInfo, StatusCode, StatusPackage, Timestamp, TraceHeader,
    Violation,
};
use serde::{Deserialize, Serialize};

use lienthong_edxml::source::{Base64Check, ContentRef, Encoding, Range};

use crate::Message;

/// The JSON Schema (draft 2020-12) of the packages this module reads and writes.
pub const SCHEMA: &str = include_str!("../schema/package.schema.json");

/// Why JSON could not be read: each problem at its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|v| format!("{}: {}", v.path, v.rule)).collect::<Vec<_>>().join("; "))]
pub struct JsonError(pub Vec<Violation>);

fn violation(path: &str, rule: impl Into<String>) -> JsonError {
    JsonError(vec![Violation {
        path: path.to_owned(),
        rule: rule.into(),
    }])
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrganizationJson {
    organ_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organization_in_charge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organ_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organ_add: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    telephone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fax: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    website: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CodeJson {
    code_number: String,
    code_notation: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PromulgationInfoJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    place: Option<String>,
    promulgation_date: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DocumentTypeJson {
    #[serde(rename = "type")]
    type_: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    type_detail: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    type_name: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignerInfoJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    competence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    full_name: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OtherInfoJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sphere_of_promulgation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typer_notation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promulgation_amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    appendixes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResponseForJson {
    organ_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promulgation_date: Option<String>,
    document_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeaderJson {
    from: OrganizationJson,
    to: Vec<OrganizationJson>,
    document_id: String,
    code: CodeJson,
    promulgation_info: PromulgationInfoJson,
    document_type: DocumentTypeJson,
    subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(default)]
    signer_info: SignerInfoJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to_places: Vec<String>,
    #[serde(default)]
    other_info: OtherInfoJson,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    response_for: Vec<ResponseForJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steering_type: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TraceJson {
    organ_id: String,
    timestamp: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BusinessJson {
    doc_type: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doc_reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManifestJson {
    content_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attachment_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AttachmentJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_id: Option<String>,
    attachment_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// The content, base64.
    data: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EdocJson {
    message_type: String,
    header: HeaderJson,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    trace: Vec<TraceJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    business: Option<BusinessJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<Vec<ManifestJson>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<AttachmentJson>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StaffInfoJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatusJson {
    message_type: String,
    from: OrganizationJson,
    response_for: ResponseForJson,
    #[serde(default)]
    staff_info: StaffInfoJson,
    status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    timestamp: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    trace: Vec<TraceJson>,
}

// --- model → JSON ------------------------------------------------------------------------------

fn organization_json(o: &Organization) -> OrganizationJson {
    OrganizationJson {
        organ_id: o.organ_id.to_string(),
        organization_in_charge: o.organization_in_charge.clone(),
        organ_name: o.organ_name.clone(),
        organ_add: o.organ_add.clone(),
        email: o.email.clone(),
        telephone: o.telephone.clone(),
        fax: o.fax.clone(),
        website: o.website.clone(),
    }
}

fn response_for_json(r: &ResponseFor) -> ResponseForJson {
    ResponseForJson {
        organ_id: r.organ_id.to_string(),
        code: r.code.clone(),
        promulgation_date: r.promulgation_date.map(|d| d.to_string()),
        document_id: r.document_id.to_string(),
    }
}

fn trace_json(trace: &[TraceHeader]) -> Vec<TraceJson> {
    trace
        .iter()
        .map(|t| TraceJson {
            organ_id: t.organ_id.to_string(),
            timestamp: t.timestamp.to_string(),
        })
        .collect()
}

fn edoc_json(e: &NewEdoc) -> EdocJson {
    let h = &e.header;
    EdocJson {
        message_type: "edoc".into(),
        header: HeaderJson {
            from: organization_json(&h.from),
            to: h.to.iter().map(organization_json).collect(),
            document_id: h.document_id.to_string(),
            code: CodeJson {
                code_number: h.code.code_number.clone(),
                code_notation: h.code.code_notation.clone(),
            },
            promulgation_info: PromulgationInfoJson {
                place: h.promulgation_info.place.clone(),
                promulgation_date: h.promulgation_info.promulgation_date.to_string(),
            },
            document_type: DocumentTypeJson {
                type_: h.document_type.type_,
                type_detail: h.document_type.type_detail,
                type_name: h.document_type.type_name.clone(),
            },
            subject: h.subject.clone(),
            content: h.content.clone(),
            signer_info: SignerInfoJson {
                competence: h.signer_info.competence.clone(),
                position: h.signer_info.position.clone(),
                full_name: h.signer_info.full_name.clone(),
            },
            due_date: h.due_date.map(|d| d.to_string()),
            to_places: h.to_places.clone(),
            other_info: OtherInfoJson {
                priority: h.other_info.priority,
                sphere_of_promulgation: h.other_info.sphere_of_promulgation.clone(),
                typer_notation: h.other_info.typer_notation.clone(),
                promulgation_amount: h.other_info.promulgation_amount,
                page_amount: h.other_info.page_amount,
                direction: h.other_info.direction.clone(),
                appendixes: h.other_info.appendixes.clone(),
            },
            response_for: h.response_for.iter().map(response_for_json).collect(),
            steering_type: h.steering_type,
        },
        trace: trace_json(&e.trace),
        business: e.business.as_ref().map(|b| BusinessJson {
            doc_type: b.doc_type,
            doc_reason: b.doc_reason.clone(),
        }),
        manifest: e.manifest.as_ref().map(|m| {
            m.iter()
                .map(|r| ManifestJson {
                    content_id: r.content_id.clone(),
                    content_type: r.content_type.clone(),
                    description: r.description.clone(),
                    attachment_name: r.attachment_name.clone(),
                })
                .collect()
        }),
        attachments: e
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| AttachmentJson {
                content_id: a.content_id.clone(),
                attachment_name: a.attachment_name.clone(),
                content_type: a.content_type.clone(),
                description: a.description.clone(),
                data: a.base64_at(i),
            })
            .collect(),
    }
}

fn status_json(s: &StatusPackage) -> StatusJson {
    StatusJson {
        message_type: "status".into(),
        from: organization_json(&s.from),
        response_for: response_for_json(&s.response_for),
        staff_info: StaffInfoJson {
            department: s.staff_info.department.clone(),
            staff: s.staff_info.staff.clone(),
            mobile: s.staff_info.mobile.clone(),
            email: s.staff_info.email.clone(),
        },
        status_code: s.status_code.code().to_owned(),
        description: s.description.clone(),
        timestamp: s.timestamp.to_string(),
        trace: trace_json(&s.trace),
    }
}

/// Writes a message as JSON (UTF-8, no insignificant white space).
pub fn to_json(message: &Message) -> Vec<u8> {
    let value = match message {
        Message::Edoc(e) => serde_json::to_vec(&edoc_json(e)),
        Message::Status(s) => serde_json::to_vec(&status_json(s)),
    };
    // Plain structs of strings and numbers always serialize.
    value.unwrap_or_default()
}

// --- JSON → model ------------------------------------------------------------------------------

/// Collects the shape errors of one conversion, each at its JSON path.
#[derive(Default)]
struct Fields(Vec<Violation>);

impl Fields {
    fn fail(&mut self, path: &str, rule: impl Into<String>) {
        self.0.push(Violation {
            path: path.to_owned(),
            rule: rule.into(),
        });
    }
    fn organ_id(&mut self, path: &str, s: &str) -> Option<OrganId> {
        OrganId::parse(s).map_err(|e| self.fail(path, e.0)).ok()
    }
    fn document_id(&mut self, path: &str, s: &str) -> Option<DocumentId> {
        DocumentId::parse(s).map_err(|e| self.fail(path, e.0)).ok()
    }
    fn date(&mut self, path: &str, s: &str) -> Option<EdxmlDate> {
        EdxmlDate::parse(s).map_err(|e| self.fail(path, e.0)).ok()
    }
    fn timestamp(&mut self, path: &str, s: &str) -> Option<Timestamp> {
        Timestamp::parse(s).map_err(|e| self.fail(path, e.0)).ok()
    }
    fn organization(&mut self, path: &str, o: OrganizationJson) -> Option<Organization> {
        Some(Organization {
            organ_id: self.organ_id(&format!("{path}.organId"), &o.organ_id)?,
            organization_in_charge: o.organization_in_charge,
            organ_name: o.organ_name,
            organ_add: o.organ_add,
            email: o.email,
            telephone: o.telephone,
            fax: o.fax,
            website: o.website,
        })
    }
    fn response_for(&mut self, path: &str, r: ResponseForJson) -> Option<ResponseFor> {
        let organ_id = self.organ_id(&format!("{path}.organId"), &r.organ_id);
        let promulgation_date = match r.promulgation_date {
            Some(d) => Some(self.date(&format!("{path}.promulgationDate"), &d)?),
            None => None,
        };
        let document_id = self.document_id(&format!("{path}.documentId"), &r.document_id);
        Some(ResponseFor {
            organ_id: organ_id?,
            code: r.code,
            promulgation_date,
            document_id: document_id?,
        })
    }
    fn trace(&mut self, trace: Vec<TraceJson>) -> Vec<TraceHeader> {
        trace
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let organ_id = self.organ_id(&format!("trace[{i}].organId"), &t.organ_id);
                let timestamp = self.timestamp(&format!("trace[{i}].timestamp"), &t.timestamp);
                Some(TraceHeader {
                    organ_id: organ_id?,
                    timestamp: timestamp?,
                })
            })
            .collect()
    }
}

fn edoc_from(j: EdocJson, spills: &[(usize, Range)]) -> Result<NewEdoc, JsonError> {
    let mut f = Fields::default();
    let h = j.header;
    let from = f.organization("header.from", h.from);
    let to: Vec<Organization> =
        h.to.into_iter()
            .enumerate()
            .filter_map(|(i, o)| f.organization(&format!("header.to[{i}]"), o))
            .collect();
    let document_id = f.document_id("header.documentId", &h.document_id);
    let promulgation_date = f.date(
        "header.promulgationInfo.promulgationDate",
        &h.promulgation_info.promulgation_date,
    );
    let due_date = h
        .due_date
        .and_then(|d| f.date("header.dueDate", &d).map(Some))
        .flatten();
    let response_for: Vec<ResponseFor> = h
        .response_for
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| f.response_for(&format!("header.responseFor[{i}]"), r))
        .collect();
    let trace = f.trace(j.trace);
    let mut attachments = Vec::with_capacity(j.attachments.len());
    for (i, a) in j.attachments.into_iter().enumerate() {
        // Left in the package it came in: checked as base64 a chunk at a time, never held.
        if let Some((_, range)) = spills.iter().find(|(n, _)| *n == i)
            && a.data == lienthong_edxml::spill::marker(i)
        {
            // Strict base64: JSON strings hold no line breaks.
            match Base64Check::range(range, false) {
                Ok(_) => attachments.push(NewAttachment {
                    content_id: a.content_id,
                    attachment_name: a.attachment_name,
                    content_type: a.content_type,
                    description: a.description,
                    data: Vec::new(),
                    content_ref: Some(ContentRef {
                        range: range.clone(),
                        encoding: Encoding::Base64Text,
                    }),
                }),
                Err(why) => f.fail(&format!("attachments[{i}].data"), why),
            }
            continue;
        }
        match base64::engine::general_purpose::STANDARD.decode(a.data.as_bytes()) {
            Ok(data) => attachments.push(NewAttachment {
                content_id: a.content_id,
                attachment_name: a.attachment_name,
                content_type: a.content_type,
                description: a.description,
                data,
                content_ref: None,
            }),
            Err(e) => f.fail(
                &format!("attachments[{i}].data"),
                format!("is not base64: {e}"),
            ),
        }
    }
    let (Some(from), Some(document_id), Some(promulgation_date), true) =
        (from, document_id, promulgation_date, f.0.is_empty())
    else {
        return Err(JsonError(f.0));
    };
    Ok(NewEdoc {
        header: MessageHeader {
            from,
            to,
            document_id,
            code: Code {
                code_number: h.code.code_number,
                code_notation: h.code.code_notation,
            },
            promulgation_info: PromulgationInfo {
                place: h.promulgation_info.place,
                promulgation_date,
            },
            document_type: DocumentType {
                type_: h.document_type.type_,
                type_detail: h.document_type.type_detail,
                type_name: h.document_type.type_name,
            },
            subject: h.subject,
            content: h.content,
            signer_info: SignerInfo {
                competence: h.signer_info.competence,
                position: h.signer_info.position,
                full_name: h.signer_info.full_name,
            },
            due_date,
            to_places: h.to_places,
            other_info: OtherInfo {
                priority: h.other_info.priority,
                sphere_of_promulgation: h.other_info.sphere_of_promulgation,
                typer_notation: h.other_info.typer_notation,
                promulgation_amount: h.other_info.promulgation_amount,
                page_amount: h.other_info.page_amount,
                direction: h.other_info.direction,
                appendixes: h.other_info.appendixes,
            },
            response_for,
            steering_type: h.steering_type,
        },
        trace,
        business: j.business.map(|b| Business {
            doc_type: b.doc_type,
            doc_reason: b.doc_reason,
        }),
        manifest: j.manifest.map(|m| {
            m.into_iter()
                .map(|r| ManifestReference {
                    content_id: r.content_id,
                    content_type: r.content_type,
                    description: r.description,
                    attachment_name: r.attachment_name,
                })
                .collect()
        }),
        attachments,
    })
}

fn status_from(j: StatusJson) -> Result<StatusPackage, JsonError> {
    let mut f = Fields::default();
    let from = f.organization("from", j.from);
    let response_for = f.response_for("responseFor", j.response_for);
    let status_code = StatusCode::parse(&j.status_code)
        .map_err(|e| f.fail("statusCode", e.0))
        .ok();
    let timestamp = f.timestamp("timestamp", &j.timestamp);
    let trace = f.trace(j.trace);
    let (Some(from), Some(response_for), Some(status_code), Some(timestamp), true) =
        (from, response_for, status_code, timestamp, f.0.is_empty())
    else {
        return Err(JsonError(f.0));
    };
    Ok(StatusPackage {
        from,
        response_for,
        staff_info: StaffInfo {
            department: j.staff_info.department,
            staff: j.staff_info.staff,
            mobile: j.staff_info.mobile,
            email: j.staff_info.email,
        },
        status_code,
        description: j.description,
        timestamp,
        trace,
        signed: false,
    })
}

/// Where serde stopped, as a JSON path from the error's line and column is not available: the
/// message names the field for missing and unknown fields, and the type expected otherwise.
fn shape_error(e: &serde_json::Error) -> JsonError {
    violation(
        "$",
        format!(
            "{} (line {}, column {})",
            e.to_string().split(" at line ").next().unwrap_or_default(),
            e.line(),
            e.column()
        ),
    )
}

/// Reads a message from JSON: the shape, then every rule an edXML package is held to, each
/// broken one reported at its JSON path.
pub fn from_json(bytes: &[u8]) -> Result<Message, JsonError> {
    from_json_slim(bytes, &[])
}

/// [`from_json`] for a package read from a source: `attachments[n].data` strings over
/// `threshold` bytes are left in it (see [`crate::json_spill`]).
pub fn from_json_source(
    source: std::sync::Arc<dyn lienthong_edxml::source::Source>,
    threshold: u64,
) -> Result<Message, JsonError> {
    let slim = crate::json_spill::slim_json(source, threshold)?;
    from_json_slim(&slim.json, &slim.spills)
}

fn from_json_slim(bytes: &[u8], spills: &[(usize, Range)]) -> Result<Message, JsonError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| shape_error(&e))?;
    let kind = value
        .get("messageType")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| violation("messageType", "is required: `edoc` or `status`"))?;
    let message = match kind {
        "edoc" => {
            let j: EdocJson = serde_json::from_value(value).map_err(|e| shape_error(&e))?;
            Message::Edoc(Box::new(edoc_from(j, spills)?))
        }
        "status" => {
            let j: StatusJson = serde_json::from_value(value).map_err(|e| shape_error(&e))?;
            Message::Status(Box::new(status_from(j)?))
        }
        other => {
            return Err(violation(
                "messageType",
                format!("`{other}` is neither `edoc` nor `status`"),
            ));
        }
    };
    // The edXML rules (required fields, lengths, consistency of manifest and attachments...)
    // apply to the edXML rendering; their paths are mapped back to JSON.
    // Attachments left in the package are written as markers and read back as the ranges they
    // stand for, so the rules (base64 included) are checked without holding them.
    let dense: Vec<Range> = match &message {
        Message::Edoc(e) => e
            .attachments
            .iter()
            .map(|a| match &a.content_ref {
                Some(c) => c.range.clone(),
                None => Range {
                    source: std::sync::Arc::new(Vec::new()),
                    offset: 0,
                    len: 0,
                },
            })
            .collect(),
        Message::Status(_) => Vec::new(),
    };
    match lienthong_edxml::parse_slim(&crate::to_edxml(&message), &dense) {
        Ok(_) => Ok(message),
        Err(PackageError::Invalid(violations)) => Err(JsonError(
            violations
                .into_iter()
                .map(|v| Violation {
                    path: json_path(&v.path),
                    rule: v.rule,
                })
                .collect(),
        )),
        Err(PackageError::Parse(e)) => Err(violation("$", e.to_string())),
    }
}

/// An edXML path (`edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId`) as the JSON path of
/// the same field (`header.to[1].organId`).
pub fn json_path(edxml: &str) -> String {
    let mut rest = edxml;
    let mut out = String::new();
    for (prefix, replacement) in [
        ("edXMLEnvelope/edXMLHeader/MessageHeader", "header"),
        ("edXMLEnvelope/edXMLHeader/Status", ""),
        (
            "edXMLEnvelope/edXMLHeader/TraceHeaderList/TraceHeader",
            "trace",
        ),
        (
            "edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness",
            "business",
        ),
        (
            "edXMLEnvelope/edXMLHeader/TraceHeaderList/Business",
            "business",
        ),
        (
            "edXMLEnvelope/edXMLBody/edXMLManifest/Reference",
            "manifest",
        ),
        ("AttachmentEncoded/Attachment", "attachments"),
    ] {
        if let Some(r) = rest.strip_prefix(prefix) {
            out.push_str(replacement);
            rest = r;
            break;
        }
    }
    let mut segments = rest.split('/').filter(|s| !s.is_empty()).peekable();
    // An index right after a prefix belongs to it (`trace[1]`).
    if let Some(first) = segments.peek()
        && first.starts_with('[')
    {
        out.push_str(&index(first));
        segments.next();
    }
    if out.is_empty() && rest == edxml {
        return edxml.to_owned();
    }
    let mut previous = String::new();
    for segment in segments {
        let (name, idx) = match segment.find('[') {
            Some(i) => (&segment[..i], Some(&segment[i..])),
            None => (segment, None),
        };
        // Lists whose item element is dropped in JSON: ToPlaces/Place[n] → toPlaces[n-1].
        let collapses = matches!(
            (previous.as_str(), name),
            ("ToPlaces", "Place") | ("Appendixes", "Appendix")
        );
        let field = match name {
            "ContentTransferEncoded" => "data".to_owned(),
            "BussinessDocType" | "BusinessDocType" => "docType".to_owned(),
            "BussinessDocReason" | "BusinessDocReason" => "docReason".to_owned(),
            "Type" => "type".to_owned(),
            other => lower_camel(other),
        };
        if !collapses {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&field);
        }
        if let Some(idx) = idx {
            out.push_str(&index(idx));
        }
        previous = name.to_owned();
    }
    out
}

/// `[2]` (1-based, XPath) as `[1]` (0-based, JSON).
fn index(xpath: &str) -> String {
    xpath
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<usize>()
        .map(|n| format!("[{}]", n.saturating_sub(1)))
        .unwrap_or_else(|_| xpath.to_owned())
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::json_path;

    #[test]
    fn edxml_paths_become_json_paths() {
        for (edxml, json) in [
            (
                "edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId",
                "header.to[1].organId",
            ),
            (
                "edXMLEnvelope/edXMLHeader/MessageHeader/Subject",
                "header.subject",
            ),
            (
                "edXMLEnvelope/edXMLHeader/MessageHeader/ToPlaces/Place[3]",
                "header.toPlaces[2]",
            ),
            (
                "edXMLEnvelope/edXMLHeader/MessageHeader/DocumentType/Type",
                "header.documentType.type",
            ),
            (
                "edXMLEnvelope/edXMLHeader/TraceHeaderList/TraceHeader[1]/Timestamp",
                "trace[0].timestamp",
            ),
            (
                "edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/BussinessDocType",
                "business.docType",
            ),
            (
                "edXMLEnvelope/edXMLBody/edXMLManifest/Reference[2]/ContentId",
                "manifest[1].contentId",
            ),
            (
                "AttachmentEncoded/Attachment[1]/ContentTransferEncoded",
                "attachments[0].data",
            ),
            ("edXMLEnvelope/edXMLHeader/Status/StatusCode", "statusCode"),
            (
                "edXMLEnvelope/edXMLHeader/Status/ResponseFor/DocumentId",
                "responseFor.documentId",
            ),
        ] {
            assert_eq!(json_path(edxml), json, "{edxml}");
        }
    }
}
