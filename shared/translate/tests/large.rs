//! Attachments left in their package (over the spill threshold) translate to the same packages as
//! attachments read whole, in every format, streamed from a file.

use std::sync::Arc;

use lienthong_edxml::source::{FileSource, Source};
use lienthong_edxml::{OrganId, sample};
use lienthong_translate::{CodeMap, Format, Message, decode, decode_source, encode, encode_to};

fn codes(organs: &[OrganId]) -> CodeMap {
    let legacy: Vec<String> = organs.iter().map(|o| o.as_str()[4..].to_owned()).collect();
    CodeMap::new(legacy.iter().map(String::as_str).zip(organs)).expect("codes")
}

#[test]
fn a_large_attachment_translates_from_a_file_as_it_does_from_memory() {
    let organs = [
        OrganId::parse("000.00.00.H49").expect("organ"),
        OrganId::parse("000.00.00.G22").expect("organ"),
    ];
    let codes = codes(&organs);
    let mut doc = sample::edoc(&organs[0], &organs[1..], 3, 2 * 1024 * 1024 + 7);
    // Binary content, not just the sample's filler.
    for (i, b) in doc.attachments[0].data.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    for from in Format::ALL {
        translates_the_same(&doc, from, &codes);
    }
}

fn translates_the_same(doc: &lienthong_edxml::NewEdoc, from: Format, codes: &CodeMap) {
    let codes = codes.clone();
    let package = encode(from, &Message::Edoc(Box::new(doc.clone())), &codes).expect("package");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("package");
    std::fs::write(&path, &package).expect("write");
    let file: Arc<dyn Source> = Arc::new(FileSource::open(&path).expect("open"));

    let whole = decode(from, &package, &codes).expect("whole");
    let spilled = decode_source(from, file, 64 * 1024, &codes).expect("spilled");
    let Message::Edoc(e) = &spilled else {
        panic!("not an edoc")
    };
    assert!(e.attachments[0].content_ref.is_some(), "left in the file");
    assert!(e.attachments[0].data.is_empty(), "not held");

    for format in Format::ALL {
        let mut streamed = Vec::new();
        encode_to(format, &spilled, &codes, &mut streamed).expect("streamed");
        let from_memory = encode(format, &whole, &codes).expect("encoded");
        if format != Format::Edocvn {
            // (e-doc.vn's MIME boundary depends on what it was computed over.)
            assert_eq!(streamed, from_memory, "{from} -> {format}: the same bytes");
        }
        assert_eq!(
            decode(format, &streamed, &codes).expect("reads back"),
            decode(format, &from_memory, &codes).expect("reads back"),
            "{from} -> {format}: the same package"
        );
    }
}

#[test]
fn a_base64_mime_part_is_left_in_the_package_and_checked() {
    use base64::Engine;
    use lienthong_translate::edocvn::{ENVELOPE_ID, unpack};
    let organs = [
        OrganId::parse("000.00.00.H49").expect("organ"),
        OrganId::parse("000.00.00.G22").expect("organ"),
    ];
    let codes = codes(&organs);
    let doc = sample::edoc(&organs[0], &organs[1..], 4, 300_000);
    let entity = encode(Format::Edocvn, &Message::Edoc(Box::new(doc)), &codes).expect("entity");
    let (envelope, parts) = unpack(&entity).expect("parts");
    // The same package with its attachment as a base64 part in 76-character lines.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&parts[0].data);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    let build = |body: &str| {
        let mut e = format!("MIME-Version: 1.0\r\nContent-Type: multipart/related; type=\"text/xml\"; start=\"<{ENVELOPE_ID}>\"; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/xml\r\nContent-ID: <{ENVELOPE_ID}>\r\n\r\n").into_bytes();
        e.extend_from_slice(&envelope);
        e.extend_from_slice(
            format!(
                "\r\n--b1\r\nContent-Type: application/pdf\r\nContent-ID: <{}>\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b1--\r\n",
                parts[0].content_id
            )
            .as_bytes(),
        );
        e
    };
    let with_base64 = build(&lines.join("\r\n"));
    let source: Arc<dyn Source> = Arc::new(with_base64.clone());
    let spilled = decode_source(Format::Edocvn, source, 1024, &codes).expect("spilled");
    let whole = decode(Format::Edocvn, &with_base64, &codes).expect("whole");
    let mut streamed = Vec::new();
    encode_to(Format::Edxml, &spilled, &codes, &mut streamed).expect("streamed");
    // (The base64 keeps its line breaks, which edXML allows: compare the packages.)
    assert_eq!(
        decode(Format::Edxml, &streamed, &codes).expect("edXML"),
        decode(
            Format::Edxml,
            &encode(Format::Edxml, &whole, &codes).expect("edXML"),
            &codes
        )
        .expect("edXML")
    );
    // Broken base64 in a part left in the package is refused, naming the part.
    let mut damaged = lines.join("\r\n");
    damaged.replace_range(100..101, "*");
    let broken = build(&damaged);
    let source: Arc<dyn Source> = Arc::new(broken);
    let err = decode_source(Format::Edocvn, source, 1024, &codes).expect_err("broken");
    assert!(err.to_string().contains("not valid base64"), "{err}");
}

#[test]
fn a_package_with_too_many_mime_parts_is_refused_before_they_are_read() {
    let mut entity =
        b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"b\"\r\n\r\n".to_vec();
    for n in 0..10_001 {
        entity.extend_from_slice(format!("--b\r\nContent-ID: <{n}>\r\n\r\nx\r\n").as_bytes());
    }
    entity.extend_from_slice(b"--b--\r\n");
    let source: Arc<dyn Source> = Arc::new(entity);
    let err = lienthong_translate::edocvn::unpack_source(source, 1024).expect_err("too many");
    assert!(
        err.to_string().contains("more than 10000 MIME parts"),
        "{err}"
    );
}
