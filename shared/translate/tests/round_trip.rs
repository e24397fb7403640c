//! Round trips through every codec are lossless for every field: edXML → model → JSON → model →
//! edXML gives back what was written, for generated packages of both kinds (property tests),
//! and malformed JSON is refused at the JSON path of the field.

use lienthong_edxml::*;
use lienthong_translate::edocvn::fault_code;
use lienthong_translate::{
    Message, from_edocvn, from_edxml, from_govn, from_json, to_edocvn, to_edxml, to_govn, to_json,
};
use proptest::prelude::*;

const ORGANS: [&str; 5] = [
    "000.00.00.H49",
    "000.00.00.G22",
    "000.12.05.H49",
    "000.00.05.H49",
    "001.02.03.A01",
];

fn organ(i: usize) -> OrganId {
    OrganId::parse(ORGANS[i % ORGANS.len()]).expect("organ")
}

/// The registry's 9-character codes for the organs above.
fn codes() -> CodeMap {
    let organs: Vec<OrganId> = (0..ORGANS.len()).map(organ).collect();
    let legacy: Vec<String> = (0..ORGANS.len())
        .map(|i| format!("{i:02}.01.H03"))
        .collect();
    CodeMap::new(legacy.iter().map(String::as_str).zip(&organs)).expect("codes")
}

/// Text as agency systems write it: Vietnamese, punctuation and XML's special characters,
/// without leading or trailing white space (edXML readers trim).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[\\p{{L}}\\p{{N}}<>&\"'.,;:()/ -]{{1,{max}}}"))
        .expect("regex")
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("not blank", |s| !s.is_empty())
}

fn opt_text(max: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text(max))
}

fn organization() -> impl Strategy<Value = Organization> {
    (0..ORGANS.len(), opt_text(40), text(60), opt_text(60)).prop_map(|(i, in_charge, name, add)| {
        Organization {
            organ_id: organ(i),
            organization_in_charge: in_charge,
            // Required by QCVN 102 for the sender.
            organ_name: Some(name),
            organ_add: add,
            email: Some("vanthu@example.gov.vn".into()),
            telephone: None,
            fax: None,
            website: None,
        }
    })
}

fn attachment() -> impl Strategy<Value = NewAttachment> {
    (
        text(40),
        proptest::option::of(Just("application/pdf".to_owned())),
        opt_text(40),
        proptest::collection::vec(any::<u8>(), 1..600),
    )
        .prop_map(|(name, content_type, description, data)| NewAttachment {
            content_id: None,
            attachment_name: name,
            content_type,
            description,
            data,
            content_ref: None,
        })
}

fn edoc() -> impl Strategy<Value = NewEdoc> {
    (
        (
            organization(),
            proptest::collection::vec(organization(), 1..4),
            1u64..99_999,
            text(120),
            opt_text(300),
            opt_text(40),
        ),
        (
            proptest::collection::vec(text(30), 0..3),
            proptest::option::of(0i64..=4),
            proptest::collection::vec(text(30), 0..2),
            proptest::option::of((0i64..=3, opt_text(40))),
            proptest::collection::vec(attachment(), 0..3),
            any::<bool>(),
            proptest::collection::vec(0..ORGANS.len(), 0..3),
        ),
    )
        .prop_map(
            |(
                (from, to, number, subject, content, signer),
                (to_places, priority, appendixes, business, attachments, explicit_ids, trace),
            )| {
                let mut doc = sample::edoc(&from.organ_id, &[organ(1)], number, 0);
                doc.header.from = from;
                let mut seen = std::collections::HashSet::new();
                doc.header.to = to
                    .into_iter()
                    .filter(|o| seen.insert(o.organ_id.clone()))
                    .collect();
                doc.header.subject = subject;
                doc.header.content = content;
                doc.header.signer_info.full_name = signer;
                doc.header.to_places = to_places;
                doc.header.other_info.priority = priority;
                doc.header.other_info.appendixes = appendixes;
                doc.business = business.map(|(doc_type, doc_reason)| Business {
                    doc_type,
                    doc_reason,
                });
                doc.trace = trace
                    .into_iter()
                    .map(|i| TraceHeader {
                        organ_id: organ(i),
                        timestamp: Timestamp::parse("2026/11/23 08:30:00").expect("time"),
                    })
                    .collect();
                doc.attachments = attachments
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut a)| {
                        if explicit_ids {
                            a.content_id = Some(format!("att-{i}@example.gov.vn"));
                        }
                        a
                    })
                    .collect();
                doc
            },
        )
}

/// What an edXML reader sees of a written edoc: content ids and the manifest spelled out.
fn as_read(mut doc: NewEdoc) -> NewEdoc {
    doc.manifest = Some(doc.manifest_or_derived());
    for (i, a) in doc.attachments.iter_mut().enumerate() {
        a.content_id = Some(a.content_id_at(i));
    }
    doc
}

fn status() -> impl Strategy<Value = StatusPackage> {
    (
        organization(),
        0..ORGANS.len(),
        prop_oneof![Just("01"), Just("02"), Just("03"), Just("05"), Just("06")],
        opt_text(200),
        opt_text(40),
    )
        .prop_map(|(from, answered, code, description, staff)| StatusPackage {
            from,
            response_for: ResponseFor {
                organ_id: organ(answered),
                code: Some("7816/VPCP-TTĐT".into()),
                promulgation_date: Some(EdxmlDate::parse("2026/11/23").expect("date")),
                document_id: DocumentId::parse(&format!(
                    "{},2026/11/23,7816/VPCP-TTĐT",
                    organ(answered)
                ))
                .expect("document id"),
            },
            staff_info: StaffInfo {
                department: Some("Văn thư".into()),
                staff,
                mobile: None,
                email: None,
            },
            status_code: StatusCode::parse(code).expect("code"),
            description,
            timestamp: Timestamp::parse("2026/11/23 09:15:00").expect("time"),
            trace: Vec::new(),
            signed: false,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn edocs_survive_edxml_and_json_in_any_order(doc in edoc()) {
        let message = Message::Edoc(Box::new(doc.clone()));
        let read = Message::Edoc(Box::new(as_read(doc)));

        // edXML → model: every field, attachments byte for byte.
        let from_xml = from_edxml(&to_edxml(&message)).expect("valid edXML");
        prop_assert_eq!(&from_xml, &read);
        // JSON → model: exactly what was written.
        let from_js = from_json(&to_json(&message)).expect("valid JSON");
        prop_assert_eq!(&from_js, &message);
        // edXML → JSON → edXML.
        let there_and_back = from_edxml(&to_edxml(&from_json(&to_json(&from_xml)).expect("json"))).expect("xml");
        prop_assert_eq!(&there_and_back, &read);
    }

    #[test]
    fn status_packages_survive_edxml_json_and_govn(st in status()) {
        let message = Message::Status(Box::new(st));
        prop_assert_eq!(&from_edxml(&to_edxml(&message)).expect("valid edXML"), &message);
        prop_assert_eq!(&from_json(&to_json(&message)).expect("valid JSON"), &message);
        prop_assert_eq!(&from_govn(&to_govn(&message)).expect("valid go.vn"), &message);
    }

    #[test]
    fn edocs_survive_govn_except_for_content_ids_and_the_manifest(doc in edoc()) {
        // What go.vn carries: everything but content ids and the manifest.
        let mut flat = doc.clone();
        flat.manifest = None;
        for a in &mut flat.attachments {
            a.content_id = None;
        }
        let flat = Message::Edoc(Box::new(flat));
        prop_assert_eq!(&from_govn(&to_govn(&flat)).expect("valid go.vn"), &flat);
        // edXML → go.vn → edXML: the ids come back as cid:1, cid:2... with a derived manifest.
        let message = Message::Edoc(Box::new(doc));
        let through = from_edxml(&to_edxml(&from_govn(&to_govn(&message)).expect("go.vn"))).expect("edXML");
        let Message::Edoc(flat) = flat else { unreachable!() };
        prop_assert_eq!(through, Message::Edoc(Box::new(as_read(*flat))));
    }

    /// An edXML recipient's rendition kept as the package and edits (`lienthong_edxml::splice`)
    /// reads as the rendition encoded from the message with the hops appended, signed or not.
    #[test]
    fn edxml_packages_spliced_read_as_encoded_with_the_hops(
        doc in edoc(),
        st in status(),
        signed in any::<bool>(),
        hop_count in 1..4usize,
    ) {
        let hops: Vec<TraceHeader> = (0..hop_count)
            .map(|i| TraceHeader {
                organ_id: organ(i + 2),
                timestamp: Timestamp::parse(&format!("2026/12/07 10:0{i}:00")).expect("time"),
            })
            .collect();
        for message in [Message::Edoc(Box::new(doc.clone())), Message::Status(Box::new(st.clone()))] {
            let mut package = String::from_utf8(to_edxml(&message)).expect("utf-8");
            if signed {
                let at = package.find("</edXMLHeader>").expect("a header");
                package.insert_str(
                    at,
                    "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><SignedInfo/></Signature>",
                );
            }
            let edits = splice::trace_edits(package.as_bytes(), true, &hops).expect("edits");
            let base: std::sync::Arc<dyn source::Source> = std::sync::Arc::new(package.into_bytes());
            let spliced = splice::Spliced::new(base, &edits).expect("fits").to_vec().expect("reads");
            prop_assert!(!String::from_utf8_lossy(&spliced).contains("Signature"));
            let mut expected = message.clone();
            for hop in &hops {
                lienthong_translate::append_trace(&mut expected, hop.clone());
            }
            let expected = from_edxml(&to_edxml(&expected)).expect("encoded");
            prop_assert_eq!(from_edxml(&spliced).expect("valid edXML"), expected);
        }
    }

    #[test]
    fn edocs_and_statuses_survive_edocvn_except_for_the_manifest(doc in edoc(), st in status()) {
        let codes = codes();
        // e-doc.vn carries content ids (as cid: references to MIME parts) but no manifest of its
        // own: the references are the attachments.
        let mut expected = as_read(doc.clone());
        expected.manifest = None;
        // Every MIME part has a type: an attachment without one is application/octet-stream.
        // Content ids become cid: URLs.
        for a in &mut expected.attachments {
            a.content_type.get_or_insert_with(|| "application/octet-stream".into());
            a.content_id = a.content_id.as_deref().map(write::cid_url);
        }
        let message = Message::Edoc(Box::new(doc));
        let entity = to_edocvn(&message, &codes).expect("every organ has a code");
        let read = from_edocvn(&entity, &codes).expect("valid e-doc.vn");
        prop_assert_eq!(&read, &Message::Edoc(Box::new(expected)));
        // The 9-character codes are what is written.
        let text = String::from_utf8_lossy(&entity);
        prop_assert!(!text.contains("<OrganId>000."), "no 13-character code written");
        let status = Message::Status(Box::new(st));
        let entity = to_edocvn(&status, &codes).expect("codes");
        prop_assert_eq!(&from_edocvn(&entity, &codes).expect("valid e-doc.vn status"), &status);
    }
}

#[test]
fn malformed_edocvn_is_refused_with_legacy_error_codes() {
    let codes = codes();
    let doc = sample::edoc(&organ(0), &[organ(1)], 7, 40);
    let good = to_edocvn(&Message::Edoc(Box::new(doc.clone())), &codes).expect("entity");
    let text = String::from_utf8(good.clone()).expect("utf-8");
    let faults = |bytes: &[u8]| -> Vec<String> {
        match from_edocvn(bytes, &codes) {
            Err(PackageError::Invalid(v)) => v.iter().map(fault_code).collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    };
    // A missing subject: N. (missing) at its SOAP path.
    let no_subject = text.replace(&format!("<Subject>{}</Subject>", doc.header.subject), "");
    assert!(faults(no_subject.as_bytes()).contains(&"N.Header/MessageHeader/Subject".to_owned()));
    // A 9-character code the registry does not know: M. at the OrganId.
    let unknown = text.replace(
        "<OrganId>01.01.H03</OrganId>",
        "<OrganId>99.99.H99</OrganId>",
    );
    let f = faults(unknown.as_bytes());
    assert!(
        f.contains(&"M.Header/MessageHeader/To[1]/OrganId".to_owned()),
        "{f:?}"
    );
    // An over-long subject: R.
    let long = text.replace(
        &format!("<Subject>{}</Subject>", doc.header.subject),
        &format!("<Subject>{}</Subject>", "x".repeat(501)),
    );
    assert!(faults(long.as_bytes()).contains(&"R.Header/MessageHeader/Subject".to_owned()));
    // A non-integer priority: T.
    let typed = text.replace("<Priority>0</Priority>", "<Priority>urgent</Priority>");
    assert!(
        faults(typed.as_bytes()).contains(&"T.Header/MessageHeader/OtherInfo/Priority".to_owned())
    );
    // A reference to a part that is not in the message.
    let dangling = text.replace("xlink:href=\"cid:1\"", "xlink:href=\"cid:9\"");
    assert_eq!(
        faults(dangling.as_bytes()),
        ["M.Body/Manifest/Reference[1]/@xlink:href"]
    );
    // A truncated MIME entity: unreadable, said so.
    let cut = &good[..good.len() - 20];
    assert_eq!(faults(cut), ["M.MIME"]);
    // An agency without a code cannot be written for an e-doc.vn system.
    let stranger = sample::edoc(
        &OrganId::parse("000.77.00.H49").expect("organ"),
        &[organ(1)],
        8,
        8,
    );
    let err = to_edocvn(&Message::Edoc(Box::new(stranger)), &codes).expect_err("unmapped");
    assert_eq!(err.0, ["000.77.00.H49"]);
}

fn sample_json() -> serde_json::Value {
    let doc = sample::edoc(&organ(0), &[organ(1), organ(2)], 101, 40);
    serde_json::from_slice(&to_json(&Message::Edoc(Box::new(doc)))).expect("json")
}

fn refused(value: &serde_json::Value) -> Vec<Violation> {
    match from_json(value.to_string().as_bytes()) {
        Err(e) => e.0,
        Ok(m) => panic!("accepted: {m:?}"),
    }
}

#[test]
fn malformed_json_is_refused_at_the_path_of_the_field() {
    let mut v = sample_json();
    v["header"]["to"][1]["organId"] = "12.05.H49".into();
    let errors = refused(&v);
    assert_eq!(errors[0].path, "header.to[1].organId", "{errors:?}");

    let mut v = sample_json();
    v["header"]["promulgationInfo"]["promulgationDate"] = "2026-11-23".into();
    assert_eq!(
        refused(&v)[0].path,
        "header.promulgationInfo.promulgationDate"
    );

    let mut v = sample_json();
    v["attachments"][0]["data"] = "not base64!".into();
    assert_eq!(refused(&v)[0].path, "attachments[0].data");

    // An edXML rule, reported at the JSON path: the subject must not be empty.
    let mut v = sample_json();
    v["header"]["subject"] = "".into();
    let errors = refused(&v);
    assert!(
        errors.iter().any(|e| e.path == "header.subject"),
        "{errors:?}"
    );

    // Shape errors name the field.
    let mut v = sample_json();
    v["header"]["subjekt"] = "typo".into();
    let errors = refused(&v);
    assert!(errors[0].rule.contains("subjekt"), "{errors:?}");
    let mut v = sample_json();
    v["header"]
        .as_object_mut()
        .expect("object")
        .remove("documentId");
    assert!(refused(&v)[0].rule.contains("documentId"));
    let mut v = sample_json();
    v["messageType"] = "letter".into();
    assert_eq!(refused(&v)[0].path, "messageType");
    assert!(from_json(b"{not json").is_err());
}

#[test]
fn malformed_govn_is_refused_at_the_path_of_the_element() {
    let doc = sample::edoc(&organ(0), &[organ(1)], 7, 30);
    let good = String::from_utf8(to_govn(&Message::Edoc(Box::new(doc)))).expect("utf-8");
    let cases = [
        (
            good.replacen("<FileName>cv-7.pdf</FileName>", "", 1),
            "edXMLBody/Attachment[1]/FileName",
        ),
        (
            good.replacen("<Content>JVBER", "<Content>@@JVBER", 1),
            "edXMLBody/Attachment[1]/Content",
        ),
        (
            good.replacen(
                "<OrganId>000.00.00.G22</OrganId>",
                "<OrganId>G22</OrganId>",
                1,
            ),
            "edXMLHeader/MessageHeader/To[1]/OrganId",
        ),
        (
            good.replacen("http://www.go.vn/eDoc", "urn:other", 1),
            "edXMLEnvelope",
        ),
    ];
    for (xml, path) in cases {
        assert_ne!(xml, good, "{path}: the damage applied");
        match from_govn(xml.as_bytes()) {
            Err(PackageError::Invalid(v)) => {
                assert!(v.iter().any(|v| v.path == path), "{path}: {v:?}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}
