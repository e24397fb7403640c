//! What the signature tests share: the test PKI of `tests/vectors/xmldsig`, a store trusting its
//! root, a time inside its CRL's validity, and openssl for certificates made at test time.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use lienthong_xmldsig::TrustStore;
use lienthong_xmldsig::trust::pem_blocks;
use x509_parser::prelude::FromDer;

pub fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/xmldsig")
}

pub fn keys() -> PathBuf {
    vectors().join("keys")
}

/// The first PEM block labelled `label` of a file under `keys/`, as DER.
pub fn der(file: &str, label: &str) -> Vec<u8> {
    pem_blocks(&std::fs::read(keys().join(file)).expect("pem"), label)
        .expect("pem block")
        .remove(0)
}

/// Trusts the test root; knows its CRL (which revokes `other-signer`).
pub fn store() -> TrustStore {
    let mut s = TrustStore::new();
    s.add_anchor(der("root.pem", "CERTIFICATE"));
    s.add_crl(&std::fs::read(keys().join("root.crl.pem")).expect("crl"));
    s
}

/// A time inside the test CRL's validity, so verdicts do not depend on today's date.
pub fn crl_time() -> i64 {
    let d = der("root.crl.pem", "X509 CRL");
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&d).expect("crl");
    crl.last_update().timestamp() + 3600
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Runs openssl in `dir` and fails the test with its message if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (deploy/local/ensure-services --xmlsec1 installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issues `name` (an RSA key and its certificate, `name.key` and `name.pem` in `dir`), signed by
/// `issuer`, with the given extensions, valid for `days` from now.
pub fn issue(dir: &Path, name: &str, issuer: &str, ext: &str, days: u32) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/O=Test/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}
