//! Large attachments left in the package (spilled, see `lienthong_edxml::spill`) are verified
//! exactly as if they had been read: every vector of the independent implementations gets the
//! same verdict whatever the spill threshold, a package with a large attachment verifies from a
//! file, and damage inside a spilled attachment is caught.

mod common;

use std::sync::Arc;

use common::*;
use lienthong_edxml::source::{FileSource, Source};
use lienthong_edxml::{OrganId, sample, write_edoc};
use lienthong_xmldsig::{Outcome, Policy, check_package, check_package_source};

fn verdicts_agree(bytes: &[u8], name: &str) {
    let store = store();
    let policy = Policy::default();
    let at = crl_time();
    let whole = check_package(bytes, &store, &policy, at);
    for threshold in [0, 8, 4096] {
        let source: Arc<dyn Source> = Arc::new(bytes.to_vec());
        let spilled = check_package_source(source, threshold, &store, &policy, at);
        assert_eq!(
            (spilled.outcome, spilled.reason_code.clone()),
            (whole.outcome, whole.reason_code.clone()),
            "{name}, threshold {threshold}: {:?} / {:?}",
            spilled.reason,
            whole.reason
        );
    }
}

#[test]
fn every_vector_gets_the_same_verdict_with_its_attachments_spilled() {
    let mut n = 0;
    for entry in std::fs::read_dir(vectors()).expect("vectors") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("edxml") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("vector");
        verdicts_agree(&bytes, &path.display().to_string());
        n += 1;
    }
    assert!(n >= 20, "{n} vectors");
}

fn signed_with_large_attachment() -> Vec<u8> {
    let from = OrganId::parse("000.00.00.H49").expect("organ");
    let to = [OrganId::parse("000.00.00.G22").expect("organ")];
    let package = write_edoc(&sample::edoc(&from, &to, 1, 3 * 1024 * 1024));
    lienthong_xmldsig::sign(
        &package,
        &der("signer.key", "PRIVATE KEY"),
        &der("signer.pem", "CERTIFICATE"),
    )
    .expect("signed")
}

#[test]
fn a_large_attachment_is_verified_from_a_file_and_damage_inside_it_is_caught() {
    let bytes = signed_with_large_attachment();
    verdicts_agree(&bytes, "3 MB attachment");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("package.edxml");
    std::fs::write(&path, &bytes).expect("write");
    let file: Arc<dyn Source> = Arc::new(FileSource::open(&path).expect("open"));
    let verdict = check_package_source(file, 1024 * 1024, &store(), &Policy::default(), crl_time());
    assert_eq!(verdict.outcome, Outcome::Valid, "{:?}", verdict.reason);

    // One base64 character changed in the middle of the attachment.
    let mut damaged = bytes.clone();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let start = text.find("<ContentTransferEncoded>").expect("attachment") + 1024 * 1024;
    damaged[start] = if damaged[start] == b'A' { b'B' } else { b'A' };
    verdicts_agree(&damaged, "damaged");
    let source: Arc<dyn Source> = Arc::new(damaged);
    let verdict = check_package_source(source, 1024, &store(), &Policy::default(), crl_time());
    assert_eq!(verdict.reason_code.as_deref(), Some("digest-mismatch"));
}
