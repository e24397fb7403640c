//! OCSP against an independent implementation: requests built here are answered by `openssl ocsp`
//! (OpenSSL's responder, fed the test CA's database), and the answers are checked here, signed by
//! the CA itself or by a delegated responder. Then the answers decide revocation in path
//! validation, before the CRL, and fail closed when stale.

mod common;

use std::path::Path;

use common::{issue, keys, now, openssl};

use lienthong_xmldsig::revocation::{
    OcspAnswer, OcspError, OcspStatus, check_ocsp_response, crl_urls, ocsp_request, ocsp_urls,
};
use lienthong_xmldsig::trust::{certificates_from, validate};
use lienthong_xmldsig::{ChainFailure, Policy, TrustStore};

fn cert(path: &Path) -> Vec<u8> {
    certificates_from(&std::fs::read(path).expect("pem")).remove(0)
}

/// A CA database in a scratch directory: `signer` valid, `other-signer` revoked, and two responder
/// certificates issued by the root, one for OCSP signing and one without that extended key usage.
struct Ca {
    dir: tempfile::TempDir,
}

impl Ca {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in ["root.pem", "root.key", "signer.pem", "other-signer.pem"] {
            std::fs::copy(keys().join(f), d.join(f)).expect("copy");
        }
        std::fs::write(d.join("index.txt"), "").expect("index");
        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = t\n[t]\ndatabase = index.txt\ndefault_md = sha256\n",
        )
        .expect("cnf");
        let ca = [
            "-config", "ca.cnf", "-keyfile", "root.key", "-cert", "root.pem",
        ];
        openssl(d, &[&["ca"], &ca[..], &["-valid", "signer.pem"]].concat());
        openssl(
            d,
            &[&["ca"], &ca[..], &["-revoke", "other-signer.pem"]].concat(),
        );
        for (name, eku) in [("responder", true), ("impostor", false)] {
            let ext = if eku {
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n"
            } else {
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            };
            issue(d, name, "root", ext, 30);
        }
        Self { dir }
    }

    /// Has `openssl ocsp` answer the request, signing as `signer` (`root`, `responder`, ...).
    fn answer(&self, request: &[u8], signer: &str) -> Vec<u8> {
        let d = self.dir.path();
        std::fs::write(d.join("req.der"), request).expect("request");
        openssl(
            d,
            &[
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "root.pem",
                "-rsigner",
                &format!("{signer}.pem"),
                "-rkey",
                &format!("{signer}.key"),
                "-reqin",
                "req.der",
                "-respout",
                "resp.der",
                "-nmin",
                "60",
            ],
        );
        std::fs::read(d.join("resp.der")).expect("response")
    }

    /// Asks about `cert` (issued by `issuer`), has the CA itself answer, and checks the answer.
    fn checked_answer(&self, cert: &[u8], issuer: &[u8]) -> OcspAnswer {
        let response = self.answer(&ocsp_request(cert, issuer).expect("request"), "root");
        check_ocsp_response(&response, cert, issuer, now()).expect("checked")
    }

    fn cert(&self, name: &str) -> Vec<u8> {
        cert(&self.dir.path().join(format!("{name}.pem")))
    }
}

#[test]
fn openssl_answers_our_requests_and_we_read_its_answers() {
    let ca = Ca::new();
    let (root, signer, revoked) = (ca.cert("root"), ca.cert("signer"), ca.cert("other-signer"));
    let weak = cert(&keys().join("weak-signer.pem"));

    let good = ca.answer(&ocsp_request(&signer, &root).expect("request"), "root");
    let answer = check_ocsp_response(&good, &signer, &root, now()).expect("checked");
    assert_eq!(answer.status, OcspStatus::Good);
    let next = answer.next_update.expect("nextUpdate asked with -nmin");
    assert!(
        (answer.this_update..=answer.this_update + 3700).contains(&next),
        "{answer:?}"
    );
    assert!((now() - answer.produced_at).abs() < 300, "{answer:?}");

    let answer = ca.checked_answer(&revoked, &root);
    assert!(
        matches!(answer.status, OcspStatus::Revoked { at } if (now() - at).abs() < 300),
        "{answer:?}"
    );

    // Not in the CA's database at all.
    let answer = ca.checked_answer(&weak, &root);
    assert_eq!(answer.status, OcspStatus::Unknown);

    // An answer is only good for the certificate it names.
    assert_eq!(
        check_ocsp_response(&good, &revoked, &root, now()),
        Err(OcspError::NotForThisCertificate)
    );
    // A changed byte in the signed part (a second of producedAt) breaks the responder's signature.
    let mut tampered = good.clone();
    let at = tampered
        .windows(2)
        .position(|w| w == [0x18, 0x0f])
        .expect("producedAt")
        + 15;
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        check_ocsp_response(&tampered, &signer, &root, now()),
        Err(OcspError::BadSignature)
    );
    // Garbage is malformed, not a panic.
    assert!(matches!(
        check_ocsp_response(b"\x30\x03\x0a\x01\x03", &signer, &root, now()),
        Err(OcspError::Responder("tryLater"))
    ));
    assert!(matches!(
        check_ocsp_response(b"not der", &signer, &root, now()),
        Err(OcspError::Malformed(_))
    ));
}

#[test]
fn a_delegated_responder_needs_the_ocsp_signing_purpose_from_the_issuer() {
    let ca = Ca::new();
    let (root, signer) = (ca.cert("root"), ca.cert("signer"));
    let request = ocsp_request(&signer, &root).expect("request");

    let delegated = ca.answer(&request, "responder");
    let answer = check_ocsp_response(&delegated, &signer, &root, now()).expect("delegated");
    assert_eq!(answer.status, OcspStatus::Good);

    let impostor = ca.answer(&request, "impostor");
    assert_eq!(
        check_ocsp_response(&impostor, &signer, &root, now()),
        Err(OcspError::BadSignature)
    );
    // A responder's certificate counts only while it is valid.
    assert_eq!(
        check_ocsp_response(&delegated, &signer, &root, now() + 40 * 86_400),
        Err(OcspError::BadSignature)
    );
}

#[test]
fn ocsp_answers_decide_revocation_before_the_crl_and_fail_closed_when_stale() {
    let ca = Ca::new();
    let (root, signer, revoked) = (ca.cert("root"), ca.cert("signer"), ca.cert("other-signer"));
    let good = ca.checked_answer(&signer, &root);
    let bad = ca.checked_answer(&revoked, &root);
    let mut store = TrustStore::new();
    store.add_anchor(root.clone());
    store.add_ocsp_answer(&signer, &root, good);
    store.add_ocsp_answer(&revoked, &root, bad);
    let strict = Policy {
        require_revocation_data: true,
        ..Policy::default()
    };

    let report = validate(&signer, &[], &store, &strict, now()).expect("good by OCSP");
    assert_eq!(report.revocation[0].source, "ocsp");
    assert_eq!(
        report.revocation[0].ocsp_this_update,
        Some(good.this_update)
    );
    assert!(matches!(
        validate(&revoked, &[], &store, &strict, now()),
        Err(ChainFailure::Revoked { .. })
    ));

    // Past nextUpdate plus the grace period, with no CRL to fall back on: refused, never "good".
    let later = good.next_update.expect("nextUpdate") + strict.crl_grace_secs + 1;
    let err = validate(&signer, &[], &store, &strict, later).expect_err("stale");
    assert_eq!(err.code(), "stale-ocsp", "{err}");

    // The paths just built are what a fetcher should keep fresh.
    let targets = store.take_revocation_targets();
    assert!(targets.iter().any(|t| t.cert == signer && t.issuer == root));
    assert!(store.take_revocation_targets().is_empty(), "taken once");
}

#[test]
fn urls_come_from_the_certificates_extensions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for f in ["root.pem", "root.key"] {
        std::fs::copy(keys().join(f), d.join(f)).expect("copy");
    }
    std::fs::write(
        d.join("ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         crlDistributionPoints=URI:http://crl.example.gov.vn/root.crl,URI:ldap://ldap.example/cn=x\n\
         authorityInfoAccess=OCSP;URI:http://ocsp.example.gov.vn,caIssuers;URI:http://ca.example.gov.vn/root.cer\n",
    )
    .expect("ext");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "s.key",
            "-out",
            "s.csr",
            "-subj",
            "/CN=s",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "s.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "s.pem",
            "-extfile",
            "ext",
        ],
    );
    let s = cert(&d.join("s.pem"));
    assert_eq!(crl_urls(&s), vec!["http://crl.example.gov.vn/root.crl"]);
    assert_eq!(ocsp_urls(&s), vec!["http://ocsp.example.gov.vn"]);
    let plain = cert(&keys().join("signer.pem"));
    assert!(crl_urls(&plain).is_empty() && ocsp_urls(&plain).is_empty());
}
