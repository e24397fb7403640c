//! Packages signed by an independent implementation (xmlsec1, see
//! `tests/vectors/xmldsig/generate.sh`) verify; tampered variants are refused for the right reason.

use std::path::PathBuf;

use base64::Engine;
use lienthong_edxml::dom::read_document;
use lienthong_xmldsig::{Failure, SignatureMethod, verify};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/xmldsig")
}

fn vector(name: &str) -> String {
    std::fs::read_to_string(vectors().join(name)).expect("vector file")
}

fn pem_der(name: &str) -> Vec<u8> {
    let pem = std::fs::read_to_string(vectors().join("keys").join(name)).expect("pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

fn check(xml: &str) -> Result<lienthong_xmldsig::Verified, Failure> {
    verify(&read_document(xml.as_bytes()).expect("well-formed"))
}

#[test]
fn packages_signed_by_xmlsec1_verify() {
    let cases = [
        (
            "xmlsec1-rsa-sha256-c14n.edxml",
            SignatureMethod::RsaSha256,
            "signer.pem",
        ),
        (
            "xmlsec1-rsa-sha1-c14n.edxml",
            SignatureMethod::RsaSha1,
            "signer.pem",
        ),
        (
            "xmlsec1-rsa-sha256-exc-c14n.edxml",
            SignatureMethod::RsaSha256,
            "signer.pem",
        ),
        (
            "xmlsec1-ecdsa-p256-sha256.edxml",
            SignatureMethod::EcdsaP256Sha256,
            "ec-signer.pem",
        ),
        (
            "xmlsec1-rsa-sha512-prefixed-with-comments.edxml",
            SignatureMethod::RsaSha512,
            "signer.pem",
        ),
        (
            "xmlsec1-rsa-sha384-exc-inclusive-namespaces.edxml",
            SignatureMethod::RsaSha384,
            "signer.pem",
        ),
    ];
    for (file, method, cert) in cases {
        let xml = vector(file);
        let verified = check(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(verified.signature_method, method, "{file}");
        assert_eq!(
            verified.signer,
            pem_der(cert),
            "{file}: signer is the certificate whose key verified"
        );
        assert_eq!(
            verified.uses_sha1,
            method == SignatureMethod::RsaSha1,
            "{file}"
        );
        // The same bytes are a valid package for the bus, and it sees the signature.
        let lienthong_edxml::Package::Edoc(edoc) =
            lienthong_edxml::parse(xml.as_bytes()).expect("valid package")
        else {
            panic!("{file}: an edoc")
        };
        assert!(edoc.signed, "{file}");
    }
}

fn refused(xml: &str) -> Failure {
    check(xml).expect_err("must be refused")
}

fn signed() -> String {
    vector("xmlsec1-rsa-sha256-c14n.edxml")
}

#[test]
fn altered_content_attachment_or_recipient_breaks_the_digest() {
    let xml = signed();
    let subject = xml.replace("triển khai", "hủy bỏ");
    assert!(matches!(refused(&subject), Failure::DigestMismatch { .. }));
    let recipient = xml.replacen("000.12.05.H49", "000.13.05.H49", 1);
    assert!(matches!(
        refused(&recipient),
        Failure::DigestMismatch { .. }
    ));
    let start = xml.find("<ContentTransferEncoded>").expect("attachment")
        + "<ContentTransferEncoded>".len();
    let mut attachment = xml.clone();
    let c = if &xml[start + 20..start + 21] == "A" {
        "B"
    } else {
        "A"
    };
    attachment.replace_range(start + 20..start + 21, c);
    assert!(matches!(
        refused(&attachment),
        Failure::DigestMismatch { .. }
    ));
    // Comments are outside what URI="" signs: adding one changes nothing.
    assert!(check(&xml.replacen("<Subject>", "<!-- note --><Subject>", 1)).is_ok());
}

#[test]
fn altered_signature_value_or_a_foreign_certificate_is_refused() {
    let xml = signed();
    let start = xml.find("<SignatureValue>").expect("value") + "<SignatureValue>".len();
    let mut value = xml.clone();
    let c = if &xml[start + 10..start + 11] == "A" {
        "B"
    } else {
        "A"
    };
    value.replace_range(start + 10..start + 11, c);
    assert_eq!(refused(&value), Failure::BadSignatureValue);

    let other = base64::engine::general_purpose::STANDARD.encode(pem_der("other-signer.pem"));
    let s = xml.find("<X509Certificate>").expect("cert") + "<X509Certificate>".len();
    let e = xml.find("</X509Certificate>").expect("cert end");
    let mut foreign = xml.clone();
    foreign.replace_range(s..e, &other);
    assert_eq!(refused(&foreign), Failure::BadSignatureValue);
    // A second certificate next to the signer's does not confuse the choice of signer.
    let both = xml.replacen(
        "</X509Data>",
        &format!("<X509Certificate>{other}</X509Certificate></X509Data>"),
        1,
    );
    let v = check(&both).expect("signer found among several");
    assert_eq!(v.signer, pem_der("signer.pem"));
    assert_eq!(v.others, vec![pem_der("other-signer.pem")]);
}

#[test]
fn structural_attacks_are_refused_before_any_digest() {
    let xml = signed();
    let sig_start = xml.find("<Signature ").expect("sig");
    let sig_end = xml.find("</Signature>").expect("sig end") + "</Signature>".len();
    let signature = &xml[sig_start..sig_end];

    let twice = xml.replacen(
        "</MessageHeader>",
        &format!("</MessageHeader>{signature}"),
        1,
    );
    assert_eq!(refused(&twice), Failure::SeveralSignatures(2));

    let xpath = xml.replacen(
        "<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
        "<Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><XPath>1</XPath></Transform>",
        1,
    );
    assert!(
        matches!(refused(&xpath), Failure::ForbiddenTransform(_)),
        "{:?}",
        refused(&xpath)
    );

    // Wrapping: the reference points at an inner element; what would be delivered is not signed.
    let wrapped = xml
        .replacen("<Reference URI=\"\">", "<Reference URI=\"#body\">", 1)
        .replacen("<edXMLBody>", "<edXMLBody Id=\"body\">", 1);
    assert_eq!(refused(&wrapped), Failure::NotCovering);
    let duplicate = xml
        .replacen("<Reference URI=\"\">", "<Reference URI=\"#x\">", 1)
        .replacen("<edXMLBody>", "<edXMLBody Id=\"x\">", 1)
        .replacen("<edXMLManifest>", "<edXMLManifest Id=\"x\">", 1);
    assert_eq!(refused(&duplicate), Failure::DuplicateId("x".into()));
    let external = xml.replacen(
        "<Reference URI=\"\">",
        "<Reference URI=\"http://example.org/doc\">",
        1,
    );
    assert!(matches!(refused(&external), Failure::ExternalReference(_)));
    let md5 = xml.replacen(
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#md5",
        1,
    );
    assert!(matches!(
        refused(&md5),
        Failure::UnsupportedAlgorithm { what: "digest", .. }
    ));
    let unsigned = format!("{}{}", &xml[..sig_start], &xml[sig_end..]);
    assert_eq!(refused(&unsigned), Failure::Unsigned);
}

#[test]
fn a_weak_rsa_key_is_refused() {
    assert_eq!(
        refused(&vector("xmlsec1-weak-rsa-1024.edxml")),
        Failure::WeakKey { bits: 1024 }
    );
}

#[test]
fn the_root_may_be_referenced_by_its_id() {
    // Same-document reference to the root element is as covering as URI="".
    let xml = signed()
        .replacen("<Reference URI=\"\">", "<Reference URI=\"#pkg\">", 1)
        .replacen("<edXML xmlns=", "<edXML Id=\"pkg\" xmlns=", 1);
    // Adding the Id changed the signed content, so the digest no longer matches, but the
    // reference resolved and covered the root: the failure is the digest, not coverage.
    assert!(matches!(refused(&xml), Failure::DigestMismatch { .. }));
}

#[test]
fn xpointer_references_keep_comments_and_bare_references_drop_them() {
    // xmlsec1 signed these with `#xpointer(/)` and `#xpointer(id('edoc-9'))` and a WithComments
    // transform: the comment in MessageHeader is signed, so changing it breaks the digest.
    for file in [
        "xmlsec1-xpointer-root-with-comments.edxml",
        "xmlsec1-xpointer-id-with-comments.edxml",
    ] {
        let xml = vector(file);
        let verified = check(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(verified.signature_method, SignatureMethod::RsaSha256);
        let altered = xml.replacen("<!-- vào sổ -->", "<!-- chưa vào sổ -->", 1);
        assert_ne!(altered, xml);
        assert!(
            matches!(refused(&altered), Failure::DigestMismatch { .. }),
            "{file}: the comment is covered"
        );
    }
    // With URI="" comments are outside what is signed: changing one changes nothing.
    let bare = signed().replacen("<!-- vào sổ -->", "<!-- chưa vào sổ -->", 1);
    assert_ne!(bare, signed());
    check(&bare).expect("comments are not signed under URI=\"\"");
}
