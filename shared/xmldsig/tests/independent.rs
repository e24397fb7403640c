//! Packages signed by two more independent implementations: Python's signxml over lxml (including
//! its defaults: Canonical XML 1.1 and the signature appended to the root)
//! (`tests/vectors/xmldsig/generate-signxml.py`) and the JDK's javax.xml.crypto.dsig
//! (`tests/vectors/xmldsig/GenerateJdk.java`). Each one is checked end to end, as the verifier
//! service checks it: signature, certificate path to the test root, CRL. xmlsec1 verified every
//! one of them when they were generated.

mod common;

use common::{der, store};
use lienthong_xmldsig::{Outcome, Policy, check_package};
use x509_parser::prelude::FromDer;

fn at() -> i64 {
    common::crl_time()
}

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(common::vectors().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const VALID: [(&str, &str, &str); 10] = [
    ("signxml-xades-bes.edxml", "rsa-sha256", "signer.pem"),
    (
        "signxml-defaults-c14n11-signature-at-root.edxml",
        "rsa-sha256",
        "signer.pem",
    ),
    (
        "signxml-rsa-sha256-exc-c14n.edxml",
        "rsa-sha256",
        "signer.pem",
    ),
    (
        "signxml-rsa-sha512-c14n-default-namespace.edxml",
        "rsa-sha512",
        "signer.pem",
    ),
    (
        "signxml-ecdsa-p384-sha384.edxml",
        "ecdsa-p384-sha384",
        "ec384-signer.pem",
    ),
    (
        "signxml-ecdsa-p256-sha256-c14n.edxml",
        "ecdsa-p256-sha256",
        "ec-signer.pem",
    ),
    ("jdk-rsa-sha256-c14n.edxml", "rsa-sha256", "signer.pem"),
    ("jdk-rsa-sha1-c14n.edxml", "rsa-sha1", "signer.pem"),
    (
        "jdk-ecdsa-p256-sha256-exc-c14n-inclusive-namespaces.edxml",
        "ecdsa-p256-sha256",
        "ec-signer.pem",
    ),
    (
        "jdk-rsa-sha512-id-reference.edxml",
        "rsa-sha512",
        "signer.pem",
    ),
];

#[test]
fn packages_signed_by_signxml_and_the_jdk_are_valid_with_the_right_signer() {
    for (file, algorithm, cert) in VALID {
        let bytes = vector(file);
        let v = check_package(&bytes, &store(), &Policy::default(), at());
        assert_eq!(v.outcome, Outcome::Valid, "{file}: {v:?}");
        let signer = v.signer().expect("signer recorded");
        let expected = der(cert, "CERTIFICATE");
        let (_, c) = x509_parser::certificate::X509Certificate::from_der(&expected).expect("cert");
        assert_eq!(signer.subject, c.subject().to_string(), "{file}");
        assert_eq!(v.signature_method.as_deref(), Some(algorithm), "{file}");
        assert_eq!(
            v.warnings.iter().any(|w| w.contains("SHA-1")),
            algorithm == "rsa-sha1",
            "{file}: {v:?}"
        );
        // The bus parses the same bytes as a package and sees that it is signed.
        let lienthong_edxml::Package::Edoc(edoc) =
            lienthong_edxml::parse(&bytes).expect("valid package")
        else {
            panic!("{file}: an edoc")
        };
        assert!(edoc.signed, "{file}");
    }
}

#[test]
fn tampering_with_any_of_them_is_refused_with_the_reason() {
    for (file, _, _) in VALID {
        let text = String::from_utf8(vector(file)).expect("utf-8");
        let cases = [
            ("digest-mismatch", text.replacen("triển khai", "hủy bỏ", 1)),
            (
                "digest-mismatch",
                text.replacen(
                    "<OrganId>000.00.00.G22</OrganId>",
                    "<OrganId>000.00.00.G23</OrganId>",
                    1,
                ),
            ),
        ];
        for (reason, tampered) in cases {
            assert_ne!(tampered, text, "{file}: the tampering applied");
            let v = check_package(tampered.as_bytes(), &store(), &Policy::default(), at());
            assert_eq!(
                (v.outcome, v.reason_code.as_deref()),
                (Outcome::Invalid, Some(reason)),
                "{file}: {v:?}"
            );
        }
        // The signature value itself, altered in its first base64 characters.
        let start =
            text.find("SignatureValue>").expect("signature value") + "SignatureValue>".len();
        let mut altered = text.clone();
        let first = &text[start..start + 4];
        let replacement = if first == "AAAA" { "BBBB" } else { "AAAA" };
        altered.replace_range(start..start + 4, replacement);
        let v = check_package(altered.as_bytes(), &store(), &Policy::default(), at());
        assert_eq!(v.outcome, Outcome::Invalid, "{file}: {v:?}");
        assert_eq!(
            v.reason_code.as_deref(),
            Some("bad-signature-value"),
            "{file}: {v:?}"
        );
    }
}

#[test]
fn comments_digested_under_an_empty_uri_are_refused_as_xmlsec1_refuses_them() {
    // signxml keeps comments in a URI="" reference when its transform is WithComments; XML-DSig
    // removes them first (section 4.3.3.3), so the digest it wrote is not the package's digest.
    let v = check_package(
        &vector("signxml-comments-digested-under-empty-uri.edxml"),
        &store(),
        &Policy::default(),
        at(),
    );
    assert_eq!(
        (v.outcome, v.reason_code.as_deref()),
        (Outcome::Invalid, Some("digest-mismatch")),
        "{v:?}"
    );
}
