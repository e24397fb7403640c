//! Behaviour of the package parser and writer on whole packages.

use lienthong_edxml::sample;
use lienthong_edxml::*;
use proptest::prelude::*;

fn organ(s: &str) -> OrganId {
    OrganId::parse(s).expect("valid organ id")
}

fn letter() -> NewEdoc {
    sample::edoc(
        &organ("000.00.00.H49"),
        &[organ("000.00.00.G22"), organ("000.12.05.H49")],
        7816,
        300,
    )
}

fn violations(bytes: &[u8]) -> Vec<Violation> {
    match parse(bytes) {
        Err(PackageError::Invalid(v)) => v,
        other => panic!("expected violations, got {other:?}"),
    }
}

fn rule_for<'a>(v: &'a [Violation], path: &str) -> &'a str {
    v.iter()
        .find(|v| v.path == path)
        .map(|v| v.rule.as_str())
        .unwrap_or_else(|| panic!("no violation at {path}: {v:?}"))
}

#[test]
fn written_edoc_parses_back_to_the_same_header() {
    let doc = letter();
    let bytes = write_edoc(&doc);
    let Package::Edoc(parsed) = parse(&bytes).expect("valid") else {
        panic!("expected an edoc")
    };
    assert_eq!(parsed.header, doc.header);
    assert_eq!(parsed.attachments.len(), 1);
    assert_eq!(parsed.attachments[0].size, 300);
    assert_eq!(parsed.manifest[0].content_id, "cid:1");
    assert!(!parsed.signed);
}

#[test]
fn written_status_parses_back() {
    let doc = letter();
    let from = Organization::new(organ("000.00.00.G22"), "Văn phòng Chính phủ");
    let st = write::status_reply(
        &doc.header,
        &from,
        StatusCode::Accepted,
        Some("Đã vào sổ".into()),
    );
    let Package::Status(parsed) = parse(&write_status(&st)).expect("valid") else {
        panic!("expected a status")
    };
    assert_eq!(*parsed, st);
}

#[test]
fn accepts_prefixed_namespace_and_business_spellings() {
    let xml = String::from_utf8(write_edoc(&letter())).expect("utf8");
    let prefixed = xml
        .replace("<edXML xmlns=", "<edXML:edXML xmlns:edXML=")
        .replace("</edXML>", "</edXML:edXML>");
    // Every element must carry the prefix when no default namespace is declared.
    let prefixed = regex_lite_prefix(&prefixed);
    assert!(
        matches!(parse(prefixed.as_bytes()), Ok(Package::Edoc(_))),
        "{prefixed}"
    );
}

/// Adds `edXML:` to every element name except the already-prefixed root.
fn regex_lite_prefix(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if rest.starts_with('?') || rest.starts_with("edXML:") || rest.starts_with("/edXML:") {
            continue;
        }
        if let Some(r) = rest.strip_prefix('/') {
            out.push_str("/edXML:");
            rest = r;
        } else {
            out.push_str("edXML:");
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn names_each_missing_required_element() {
    let xml = String::from_utf8(write_edoc(&letter())).expect("utf8");
    let broken = xml.replace(
        &format!("<Subject>{}</Subject>", letter().header.subject),
        "",
    );
    let v = violations(broken.as_bytes());
    assert_eq!(
        rule_for(&v, "edXMLEnvelope/edXMLHeader/MessageHeader/Subject"),
        "is required but missing"
    );
}

#[test]
fn refuses_duplicate_recipients_naming_the_second() {
    let mut doc = letter();
    doc.header.to.push(doc.header.to[0].clone());
    let v = violations(&write_edoc(&doc));
    let rule = rule_for(&v, "edXMLEnvelope/edXMLHeader/MessageHeader/To[3]/OrganId");
    assert!(rule.contains("more than once"), "{rule}");
}

#[test]
fn refuses_a_package_without_recipients() {
    let mut doc = letter();
    doc.header.to.clear();
    let v = violations(&write_edoc(&doc));
    assert!(rule_for(&v, "edXMLEnvelope/edXMLHeader/MessageHeader/To").contains("at least one"));
}

#[test]
fn counts_lengths_in_characters_not_bytes() {
    let mut doc = letter();
    // 500 Vietnamese characters take more than 500 bytes but are allowed.
    doc.header.subject = "Đ".repeat(500);
    assert!(parse(&write_edoc(&doc)).is_ok());
    doc.header.subject = "Đ".repeat(501);
    let v = violations(&write_edoc(&doc));
    let rule = rule_for(&v, "edXMLEnvelope/edXMLHeader/MessageHeader/Subject");
    assert!(
        rule.contains("501 characters") && rule.contains("500 allowed"),
        "{rule}"
    );
}

#[test]
fn checks_decree_30_limits_on_code_and_signer() {
    let mut doc = letter();
    doc.header.code.code_number = "123456789012".into();
    doc.header.signer_info.full_name = Some("N".repeat(51));
    let v = violations(&write_edoc(&doc));
    rule_for(
        &v,
        "edXMLEnvelope/edXMLHeader/MessageHeader/Code/CodeNumber",
    );
    rule_for(
        &v,
        "edXMLEnvelope/edXMLHeader/MessageHeader/SignerInfo/FullName",
    );
}

#[test]
fn refuses_malformed_organ_ids_dates_and_status_codes() {
    let xml = String::from_utf8(write_edoc(&letter())).expect("utf8");
    let broken = xml
        .replacen(
            "<OrganId>000.00.00.G22</OrganId>",
            "<OrganId>G22</OrganId>",
            1,
        )
        .replace(
            &format!(
                "<PromulgationDate>{}</PromulgationDate>",
                letter().header.promulgation_info.promulgation_date
            ),
            "<PromulgationDate>2024-01-31</PromulgationDate>",
        );
    let v = violations(broken.as_bytes());
    assert!(
        rule_for(&v, "edXMLEnvelope/edXMLHeader/MessageHeader/To[1]/OrganId")
            .contains("DDD.CC.BB.Lnn")
    );
    assert!(
        rule_for(
            &v,
            "edXMLEnvelope/edXMLHeader/MessageHeader/PromulgationInfo/PromulgationDate"
        )
        .contains("yyyy/MM/dd")
    );

    let doc = letter();
    let from = Organization::new(organ("000.00.00.G22"), "VPCP");
    let st = write::status_reply(&doc.header, &from, StatusCode::Accepted, None);
    let xml = String::from_utf8(write_status(&st)).expect("utf8");
    let v = violations(
        xml.replace("<StatusCode>03</StatusCode>", "<StatusCode>07</StatusCode>")
            .as_bytes(),
    );
    assert!(
        rule_for(&v, "edXMLEnvelope/edXMLHeader/Status/StatusCode").contains("not a status code")
    );
}

#[test]
fn refuses_manifest_references_without_attachment_and_bad_base64() {
    let xml = String::from_utf8(write_edoc(&letter())).expect("utf8");
    let broken = xml.replacen(
        "<ContentId>cid:1</ContentId>",
        "<ContentId>cid:9</ContentId>",
        1,
    );
    let v = violations(broken.as_bytes());
    assert!(
        rule_for(
            &v,
            "edXMLEnvelope/edXMLBody/edXMLManifest/Reference[1]/ContentId"
        )
        .contains("names no attachment")
    );

    let start = xml
        .find("<ContentTransferEncoded>")
        .expect("has attachment")
        + "<ContentTransferEncoded>".len();
    let mut bad = xml.clone();
    bad.replace_range(start..start + 1, "*");
    let v = violations(bad.as_bytes());
    assert!(
        rule_for(&v, "AttachmentEncoded/Attachment[1]/ContentTransferEncoded").contains("base64")
    );
}

#[test]
fn distinguishes_not_xml_from_not_conformant() {
    assert!(matches!(
        parse(b"%PDF-1.4 not xml"),
        Err(PackageError::Parse(_))
    ));
    let v = violations(br#"<edXML xmlns="urn:other"><edXMLEnvelope/></edXML>"#);
    assert!(v[0].rule.contains("namespace"));
    let v = violations(br#"<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader/></edXMLEnvelope></edXML>"#);
    assert!(v[0].rule.contains("MessageHeader"));
}

#[test]
fn parse_as_checks_the_declared_message_type() {
    let bytes = write_edoc(&letter());
    let err = parse_as(&bytes, MessageType::Status).expect_err("must be refused");
    assert!(err.to_string().contains("messageType is `status`"), "{err}");
    assert!(parse_as(&bytes, MessageType::Edoc).is_ok());
}

#[test]
fn detects_an_enveloped_signature() {
    let xml = String::from_utf8(write_edoc(&letter())).expect("utf8");
    let signed = xml.replace(
        "</MessageHeader>",
        r#"</MessageHeader><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>"#,
    );
    let Package::Edoc(e) = parse(signed.as_bytes()).expect("valid") else {
        panic!()
    };
    assert!(e.signed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_valid_header_text_round_trips(
        subject in "[\\p{L}\\p{N} <>&\"'.,;:()/-]{1,200}",
        content in proptest::option::of("[\\p{L}\\p{N} <>&\"'\n-]{1,300}"),
        number in 1u64..99_999_999_999,
        priority in 0i64..=4,
    ) {
        let mut doc = letter();
        doc.header.subject = subject.trim().to_owned();
        prop_assume!(!doc.header.subject.is_empty());
        doc.header.content = content.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        doc.header.code.code_number = number.to_string();
        doc.header.other_info.priority = Some(priority);
        let Package::Edoc(parsed) = parse(&write_edoc(&doc)).expect("valid") else { panic!() };
        prop_assert_eq!(parsed.header, doc.header);
    }
}

#[test]
fn read_edoc_gives_back_every_attachment_byte_for_byte_and_refuses_a_status() {
    let doc = letter();
    let whole = read_edoc(&write_edoc(&doc)).expect("valid edoc");
    assert_eq!(whole.header, doc.header);
    assert_eq!(whole.attachments.len(), 1);
    assert_eq!(whole.attachments[0].data, doc.attachments[0].data);
    assert_eq!(whole.attachments[0].content_id.as_deref(), Some("cid:1"));
    let manifest = whole.manifest.expect("manifest read");
    assert_eq!(manifest[0].content_id, "cid:1");

    let status = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/demo/status-01-vpcp.edxml"
    ))
    .expect("demo status");
    match read_edoc(&status) {
        Err(PackageError::Invalid(v)) => assert!(v[0].rule.contains("status package"), "{v:?}"),
        other => panic!("a status is not an edoc: {other:?}"),
    }
}

#[test]
fn packages_read_from_a_source_with_attachments_left_in_it_are_the_same_packages() {
    use std::sync::Arc;

    use lienthong_edxml::source::Source;

    let from = OrganId::parse("000.00.00.H49").expect("organ");
    let to = [OrganId::parse("000.00.00.G22").expect("organ")];
    let bytes = write_edoc(&lienthong_edxml::sample::edoc(&from, &to, 5, 300_000));
    let whole = parse(&bytes).expect("valid");
    for threshold in [0, 8, 1 << 20] {
        let source: Arc<dyn Source> = Arc::new(bytes.clone());
        assert_eq!(
            lienthong_edxml::parse_source(source, threshold).expect("valid"),
            whole,
            "threshold {threshold}"
        );
    }
    // Broken base64 inside a spilled attachment is named as when it is read whole.
    let text = String::from_utf8(bytes).expect("utf-8");
    let at = text.find("<ContentTransferEncoded>").expect("attachment") + 200_000;
    let mut broken = text.into_bytes();
    broken[at] = b'*';
    let whole = parse(&broken).expect_err("broken");
    let source: Arc<dyn Source> = Arc::new(broken);
    let spilled = lienthong_edxml::parse_source(source, 1024).expect_err("broken");
    assert_eq!(spilled, whole);
    assert!(
        spilled.to_string().contains("ContentTransferEncoded"),
        "{spilled}"
    );
}
