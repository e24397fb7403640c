//! Path validation and revocation on the test PKI of `tests/vectors/xmldsig/keys` (a root, signers
//! under it, and a CRL revoking `other-signer`). Times are taken from the CRL, not the clock, so the
//! tests mean the same thing next year.

use std::path::PathBuf;

use lienthong_xmldsig::trust::{certificates_from, validate};
use lienthong_xmldsig::{ChainFailure, Policy, TrustStore};
use x509_parser::prelude::FromDer;

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/xmldsig/keys")
}

fn cert(name: &str) -> Vec<u8> {
    certificates_from(&std::fs::read(keys().join(name)).expect("pem")).remove(0)
}

fn store(with_crl: bool) -> TrustStore {
    let mut s = TrustStore::new();
    s.add_anchor(cert("root.pem"));
    if with_crl {
        s.add_crl(&std::fs::read(keys().join("root.crl.pem")).expect("crl"));
    }
    s
}

/// (thisUpdate, nextUpdate) of the test CRL.
fn crl_times() -> (i64, i64) {
    let pem = std::fs::read(keys().join("root.crl.pem")).expect("crl");
    let text = String::from_utf8(pem).expect("utf8");
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("b64");
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&der).expect("crl");
    (
        crl.last_update().timestamp(),
        crl.next_update().expect("nextUpdate").timestamp(),
    )
}

#[test]
fn a_signer_under_the_trusted_root_validates_with_a_fresh_crl() {
    let (this_update, _) = crl_times();
    let report = validate(
        &cert("signer.pem"),
        &[],
        &store(true),
        &Policy::default(),
        this_update + 3600,
    )
    .expect("valid");
    assert_eq!(report.chain.len(), 2);
    assert!(
        report.chain[0].subject.contains("Van thu UBND tinh"),
        "{:?}",
        report.chain[0]
    );
    assert!(report.chain[1].subject.contains("Test Root CA"));
    assert_eq!(report.chain[0].key, "rsa-2048");
    assert_eq!(report.revocation[0].source, "crl");
    assert_eq!(report.revocation[0].crl_this_update, Some(this_update));
}

#[test]
fn revoked_expired_and_not_yet_valid_certificates_are_refused() {
    let (this_update, _) = crl_times();
    let at = this_update + 3600;
    let err = validate(
        &cert("other-signer.pem"),
        &[],
        &store(true),
        &Policy::default(),
        at,
    )
    .expect_err("revoked");
    assert!(matches!(err, ChainFailure::Revoked { .. }), "{err}");
    let signer = cert("signer.pem");
    let report =
        validate(&signer, &[], &store(false), &Policy::default(), at).expect("valid without CRL");
    let (nb, na) = (report.chain[0].not_before, report.chain[0].not_after);
    assert!(matches!(
        validate(&signer, &[], &store(false), &Policy::default(), na + 1),
        Err(ChainFailure::Expired { .. })
    ));
    assert!(matches!(
        validate(&signer, &[], &store(false), &Policy::default(), nb - 1),
        Err(ChainFailure::NotYetValid { .. })
    ));
}

#[test]
fn untrusted_roots_and_weak_keys_are_refused() {
    let (this_update, _) = crl_times();
    let mut foreign = TrustStore::new();
    foreign.add_anchor(cert("ec-signer.pem"));
    let err = validate(
        &cert("signer.pem"),
        &[],
        &foreign,
        &Policy::default(),
        this_update,
    )
    .expect_err("untrusted");
    assert!(matches!(err, ChainFailure::Untrusted(_)), "{err}");
    let err = validate(
        &cert("weak-signer.pem"),
        &[],
        &store(false),
        &Policy::default(),
        this_update,
    )
    .expect_err("weak");
    assert!(
        matches!(err, ChainFailure::WeakKey { bits: 1024, .. }),
        "{err}"
    );
}

#[test]
fn a_stale_crl_fails_closed_and_missing_data_follows_the_policy() {
    let (_, next_update) = crl_times();
    let policy = Policy::default();
    let stale = next_update + policy.crl_grace_secs + 1;
    let err = validate(&cert("signer.pem"), &[], &store(true), &policy, stale).expect_err("stale");
    assert!(matches!(err, ChainFailure::StaleCrl { .. }), "{err}");
    // Within the grace period the CRL still counts.
    assert!(
        validate(
            &cert("signer.pem"),
            &[],
            &store(true),
            &policy,
            next_update + 60
        )
        .is_ok()
    );
    let strict = Policy {
        require_revocation_data: true,
        ..policy
    };
    let err = validate(
        &cert("signer.pem"),
        &[],
        &store(false),
        &strict,
        next_update,
    )
    .expect_err("no CRL");
    assert!(matches!(err, ChainFailure::NoRevocationData(_)), "{err}");
}

#[test]
fn expiries_list_anchors_intermediates_and_crls_soonest_first() {
    let mut s = store(true);
    s.add_intermediate(cert("signer.pem"));
    let list = s.expiries();
    let kinds: Vec<_> = list.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 3, "{list:?}");
    // The CRL falls due long before either certificate expires.
    assert_eq!(list[0].kind, lienthong_xmldsig::ExpiryKind::Crl);
    assert_eq!(list[0].at, Some(crl_times().1));
    assert!(list[0].name.contains("CN=Test Root CA"), "{}", list[0].name);
    let root = list
        .iter()
        .find(|e| e.kind == lienthong_xmldsig::ExpiryKind::Anchor)
        .expect("anchor");
    let root_der = cert("root.pem");
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&root_der).expect("root");
    assert_eq!(root.at, Some(parsed.validity().not_after.timestamp()));
    assert!(list.windows(2).all(|w| w[0].at <= w[1].at), "soonest first");
    assert!(
        list.iter()
            .any(|e| e.kind == lienthong_xmldsig::ExpiryKind::Intermediate)
    );
}
