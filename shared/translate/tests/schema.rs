//! The JSON Schema in `shared/translate/schema/package.schema.json` describes exactly what the
//! codec writes and reads: for packages with every optional field set, each object's keys are the
//! schema's properties (no more, no fewer), required keys are present and value types agree.

use lienthong_edxml::*;
use lienthong_translate::{Message, from_json, to_json};
use serde_json::Value;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/package.schema.json");
    serde_json::from_slice(&std::fs::read(path).expect("schema file")).expect("schema is JSON")
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/$defs/");
            resolve(root, &root["$defs"][name])
        }
        None => node,
    }
}

fn check(root: &Value, schema: &Value, value: &Value, path: &str) {
    let schema = resolve(root, schema);
    match value {
        Value::Object(map) => {
            assert_eq!(schema["type"], "object", "{path}: the schema says {schema}");
            let properties = schema["properties"].as_object().expect("properties");
            let mut in_schema: Vec<&String> = properties.keys().collect();
            let mut written: Vec<&String> = map.keys().collect();
            in_schema.sort();
            written.sort();
            assert_eq!(
                written, in_schema,
                "{path}: keys written vs. schema properties"
            );
            for required in schema["required"].as_array().into_iter().flatten() {
                let key = required.as_str().expect("name");
                assert!(map.contains_key(key), "{path}: required {key} missing");
            }
            for (key, v) in map {
                check(root, &properties[key], v, &format!("{path}.{key}"));
            }
        }
        Value::Array(items) => {
            assert_eq!(schema["type"], "array", "{path}");
            assert!(
                !items.is_empty(),
                "{path}: the sample should exercise the items"
            );
            for (i, item) in items.iter().enumerate() {
                check(root, &schema["items"], item, &format!("{path}[{i}]"));
            }
        }
        Value::String(s) => {
            if let Some(c) = schema.get("const") {
                assert_eq!(c, value, "{path}");
            } else if let Some(e) = schema.get("enum") {
                assert!(
                    e.as_array().is_some_and(|e| e.contains(value)),
                    "{path}: {s}"
                );
            } else {
                assert_eq!(schema["type"], "string", "{path}");
            }
        }
        Value::Number(n) => {
            assert_eq!(schema["type"], "integer", "{path}");
            assert!(n.is_i64(), "{path}");
        }
        other => panic!("{path}: the codec never writes {other}"),
    }
}

fn full_organization(id: &str) -> Organization {
    Organization {
        organ_id: OrganId::parse(id).expect("organ"),
        organization_in_charge: Some("Văn phòng".into()),
        organ_name: Some("Ủy ban nhân dân tỉnh".into()),
        organ_add: Some("16 Lê Lợi, Huế".into()),
        email: Some("vanphong@example.gov.vn".into()),
        telephone: Some("0234 3822 000".into()),
        fax: Some("0234 3822 001".into()),
        website: Some("https://example.gov.vn".into()),
    }
}

fn full_response_for() -> ResponseFor {
    ResponseFor {
        organ_id: OrganId::parse("000.00.00.G22").expect("organ"),
        code: Some("7816/VPCP-TTĐT".into()),
        promulgation_date: Some(EdxmlDate::parse("2026/11/20").expect("date")),
        document_id: DocumentId::parse("000.00.00.G22,2026/11/20,7816/VPCP-TTĐT").expect("id"),
    }
}

fn full_trace() -> Vec<TraceHeader> {
    vec![TraceHeader {
        organ_id: OrganId::parse("000.00.05.H49").expect("organ"),
        timestamp: Timestamp::parse("2026/11/23 08:00:00").expect("time"),
    }]
}

fn full_edoc() -> NewEdoc {
    let from = OrganId::parse("000.00.00.H49").expect("organ");
    let mut doc = sample::edoc(
        &from,
        &[OrganId::parse("000.00.00.G22").expect("organ")],
        9,
        64,
    );
    let h = &mut doc.header;
    h.from = full_organization("000.00.00.H49");
    h.to = vec![full_organization("000.00.00.G22")];
    h.promulgation_info.place = Some("Huế".into());
    h.document_type.type_detail = Some(2);
    h.document_type.type_name = Some("Công văn".into());
    h.content = Some("Nội dung".into());
    h.signer_info = SignerInfo {
        competence: Some("TM. UBND".into()),
        position: Some("Chủ tịch".into()),
        full_name: Some("Nguyễn Văn A".into()),
    };
    h.due_date = Some(EdxmlDate::parse("2026/12/01").expect("date"));
    h.to_places = vec!["Lưu: VT".into()];
    h.other_info = OtherInfo {
        priority: Some(1),
        sphere_of_promulgation: Some("Toàn tỉnh".into()),
        typer_notation: Some("NVA".into()),
        promulgation_amount: Some(10),
        page_amount: Some(2),
        direction: Some("Chỉ đạo".into()),
        appendixes: vec!["Phụ lục I".into()],
    };
    h.response_for = vec![full_response_for()];
    h.steering_type = Some(1);
    doc.trace = full_trace();
    doc.business = Some(Business {
        doc_type: 2,
        doc_reason: Some("Cập nhật".into()),
    });
    doc.attachments[0].content_id = Some("cid:1".into());
    doc.manifest = Some(vec![ManifestReference {
        content_id: "cid:1".into(),
        content_type: Some("application/pdf".into()),
        description: Some("Văn bản".into()),
        attachment_name: Some("cv-9.pdf".into()),
    }]);
    doc
}

fn full_status() -> StatusPackage {
    StatusPackage {
        from: full_organization("000.00.00.G22"),
        response_for: ResponseFor {
            organ_id: OrganId::parse("000.00.00.H49").expect("organ"),
            ..full_response_for()
        },
        staff_info: StaffInfo {
            department: Some("Văn thư".into()),
            staff: Some("Trần Thị B".into()),
            mobile: Some("0905 000 000".into()),
            email: Some("vanthu@example.gov.vn".into()),
        },
        status_code: StatusCode::parse("03").expect("code"),
        description: Some("Đã tiếp nhận".into()),
        timestamp: Timestamp::parse("2026/11/23 09:00:00").expect("time"),
        trace: full_trace(),
        signed: false,
    }
}

#[test]
fn the_schema_describes_exactly_what_is_written() {
    let root = schema();
    for (message, def) in [
        (Message::Edoc(Box::new(full_edoc())), "edoc"),
        (Message::Status(Box::new(full_status())), "status"),
    ] {
        let bytes = to_json(&message);
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        check(&root, &root["$defs"][def], &value, def);
        // And what is written is read back whole.
        assert_eq!(from_json(&bytes).expect("reads back"), message);
    }
}
