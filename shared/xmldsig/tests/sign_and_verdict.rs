//! Signing for adapters, checked by our verifier and by xmlsec1; verdicts as security officers
//! read them.

mod common;

use std::process::Command;

use common::{crl_time, der, store};

use lienthong_edxml::{OrganId, sample, write_edoc};
use lienthong_xmldsig::{Outcome, Policy, SignError, check_package, sign};

fn package() -> Vec<u8> {
    let from = OrganId::parse("000.00.00.H49").expect("organ");
    let to = [OrganId::parse("000.00.00.G22").expect("organ")];
    write_edoc(&sample::edoc(&from, &to, 77, 2000))
}

#[test]
fn a_package_signed_by_lienthong_verifies_here_and_in_xmlsec1() {
    for (key, cert, method) in [
        ("signer.key", "signer.pem", "rsa-sha256"),
        ("ec-signer.key", "ec-signer.pem", "ecdsa-p256-sha256"),
    ] {
        let original = package();
        let signed = sign(
            &original,
            &der(key, "PRIVATE KEY"),
            &der(cert, "CERTIFICATE"),
        )
        .expect("signed");
        let verdict = check_package(&signed, &store(), &Policy::default(), crl_time());
        assert_eq!(verdict.outcome, Outcome::Valid, "{key}: {verdict:?}");
        assert_eq!(verdict.signature_method.as_deref(), Some(method));
        assert_eq!(verdict.revocation[0].source, "crl");
        // The package itself is untouched around the inserted signature.
        let text = String::from_utf8(signed.clone()).expect("utf8");
        let start = text.find("<Signature ").expect("inserted");
        let end = text.find("</Signature>").expect("end") + "</Signature>".len();
        assert_eq!(
            format!("{}{}", &text[..start], &text[end..]).into_bytes(),
            original
        );

        let file =
            std::env::temp_dir().join(format!("lienthong-signed-{}.edxml", std::process::id()));
        std::fs::write(&file, &signed).expect("write");
        let out = Command::new("xmlsec1")
            .arg("--verify")
            .arg("--trusted-pem")
            .arg(common::vectors().join("keys/root.pem"))
            .arg(&file)
            .output()
            .expect("xmlsec1 is installed (deploy/local/test installs it)");
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "{key}: xmlsec1 refused our signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn signing_refuses_a_certificate_that_does_not_hold_the_key_and_a_signed_package() {
    let err = sign(
        &package(),
        &der("signer.key", "PRIVATE KEY"),
        &der("other-signer.pem", "CERTIFICATE"),
    )
    .expect_err("mismatch");
    assert!(matches!(err, SignError::CertificateMismatch), "{err}");
    let signed = sign(
        &package(),
        &der("signer.key", "PRIVATE KEY"),
        &der("signer.pem", "CERTIFICATE"),
    )
    .expect("signed");
    let err = sign(
        &signed,
        &der("signer.key", "PRIVATE KEY"),
        &der("signer.pem", "CERTIFICATE"),
    )
    .expect_err("twice");
    assert!(matches!(err, SignError::AlreadySigned), "{err}");
}

#[test]
fn verdicts_say_why() {
    let at = crl_time();
    let unsigned = check_package(&package(), &store(), &Policy::default(), at);
    assert_eq!(
        (unsigned.outcome, unsigned.reason_code.as_deref()),
        (Outcome::Unsigned, Some("unsigned"))
    );

    let revoked =
        std::fs::read(common::vectors().join("xmlsec1-revoked-signer.edxml")).expect("vector");
    let v = check_package(&revoked, &store(), &Policy::default(), at);
    assert_eq!(
        (v.outcome, v.reason_code.as_deref()),
        (Outcome::Invalid, Some("revoked")),
        "{v:?}"
    );

    let sha1 =
        std::fs::read(common::vectors().join("xmlsec1-rsa-sha1-c14n.edxml")).expect("vector");
    let v = check_package(&sha1, &store(), &Policy::default(), at);
    assert_eq!(v.outcome, Outcome::Valid, "{v:?}");
    assert!(v.warnings.iter().any(|w| w.contains("SHA-1")), "{v:?}");
    let strict = Policy {
        allow_sha1: false,
        ..Policy::default()
    };
    let v = check_package(&sha1, &store(), &strict, at);
    assert_eq!(v.reason_code.as_deref(), Some("sha1-refused"));

    let good = std::fs::read_to_string(common::vectors().join("xmlsec1-rsa-sha256-c14n.edxml"))
        .expect("vector");
    let v = check_package(
        good.replacen("000.12.05.H49", "000.13.05.H49", 1)
            .as_bytes(),
        &store(),
        &Policy::default(),
        at,
    );
    assert_eq!(v.reason_code.as_deref(), Some("digest-mismatch"));
    let v = check_package(good.as_bytes(), &store(), &Policy::default(), at);
    let signer = v.signer().expect("signer");
    assert!(
        signer.subject.contains("Van thu UBND tinh") && signer.issuer.contains("Test Root CA"),
        "{signer:?}"
    );
    let json = serde_json::to_value(&v).expect("serializable");
    assert_eq!(json["outcome"], "valid");
}
