//! Paths through intermediate CAs, as the Government CA issues: root → subordinate CA → signer.
//! The hierarchy is made by openssl in a scratch directory (the test root signs the subordinate).
//! Intermediates come from the signature's `X509Data` or from configuration; basic constraints
//! and path length are enforced on them.

mod common;

use common::{issue, keys, now};

use lienthong_xmldsig::trust::{certificates_from, pem_blocks};
use lienthong_xmldsig::{Outcome, Policy, TrustStore, check_package, sign};

const CA: &str =
    "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
const LEAF: &str =
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n";

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in ["root.pem", "root.key"] {
            std::fs::copy(keys().join(f), d.join(f)).expect("copy");
        }
        issue(d, "sub-ca", "root", CA, 2);
        issue(d, "clerk", "sub-ca", LEAF, 2);
        // pathlen:0 forbids sub-ca to issue another CA: everything under it is refused.
        issue(d, "sub-sub-ca", "sub-ca", CA, 2);
        issue(d, "deep-clerk", "sub-sub-ca", LEAF, 2);
        // A leaf certificate is no issuer.
        issue(d, "leaf-as-ca-clerk", "clerk", LEAF, 2);
        Self { dir }
    }

    fn der(&self, name: &str) -> Vec<u8> {
        certificates_from(&std::fs::read(self.dir.path().join(format!("{name}.pem"))).expect("pem"))
            .remove(0)
    }

    /// A package signed by `name`, with `extra` certificates added to its `X509Data` (outside
    /// what the signature covers, as signing tools add chains).
    fn signed(&self, name: &str, extra: &[&str]) -> Vec<u8> {
        let key = pem_blocks(
            &std::fs::read(self.dir.path().join(format!("{name}.key"))).expect("key"),
            "PRIVATE KEY",
        )
        .expect("pem")
        .remove(0);
        let from = lienthong_edxml::OrganId::parse("000.00.00.H49").expect("organ");
        let to = [lienthong_edxml::OrganId::parse("000.00.00.G22").expect("organ")];
        let package =
            lienthong_edxml::write_edoc(&lienthong_edxml::sample::edoc(&from, &to, 9, 500));
        let signed = String::from_utf8(sign(&package, &key, &self.der(name)).expect("signed"))
            .expect("utf-8");
        let mut added = String::new();
        for e in extra {
            use base64::Engine;
            added += &format!(
                "<X509Certificate>{}</X509Certificate>",
                base64::engine::general_purpose::STANDARD.encode(self.der(e))
            );
        }
        signed
            .replacen("</X509Data>", &format!("{added}</X509Data>"), 1)
            .into_bytes()
    }
}

fn root_only() -> TrustStore {
    let mut s = TrustStore::new();
    s.add_anchor(
        certificates_from(&std::fs::read(keys().join("root.pem")).expect("root")).remove(0),
    );
    s
}

#[test]
fn a_path_through_an_intermediate_from_x509data_or_from_configuration() {
    let pki = Pki::new();
    let policy = Policy::default();

    let v = check_package(
        &pki.signed("clerk", &["sub-ca"]),
        &root_only(),
        &policy,
        now(),
    );
    assert_eq!(v.outcome, Outcome::Valid, "{v:?}");
    let names: Vec<&str> = v.chain.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names[0].contains("clerk")
            && names[1].contains("sub-ca")
            && names[2].contains("Test Root CA")
    );
    assert_eq!(
        v.revocation.len(),
        2,
        "the signer and the intermediate are both checked"
    );

    // Only the signer in X509Data: untrusted unless the intermediate is configured.
    let bare = pki.signed("clerk", &[]);
    let v = check_package(&bare, &root_only(), &policy, now());
    assert_eq!(v.reason_code.as_deref(), Some("untrusted"), "{v:?}");
    let mut configured = root_only();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        pki.dir.path().join("sub-ca.pem"),
        dir.path().join("sub-ca.pem"),
    )
    .expect("copy");
    configured.load_intermediates(dir.path()).expect("load");
    let v = check_package(&bare, &configured, &policy, now());
    assert_eq!(v.outcome, Outcome::Valid, "{v:?}");

    // An intermediate is never an anchor: without the root, nothing validates.
    let mut no_root = TrustStore::new();
    no_root.load_intermediates(dir.path()).expect("load");
    let v = check_package(&bare, &no_root, &policy, now());
    assert_eq!(v.reason_code.as_deref(), Some("untrusted"), "{v:?}");
}

#[test]
fn path_length_and_basic_constraints_bind_intermediates() {
    let pki = Pki::new();
    let policy = Policy::default();
    let v = check_package(
        &pki.signed("deep-clerk", &["sub-sub-ca", "sub-ca"]),
        &root_only(),
        &policy,
        now(),
    );
    assert_eq!(v.reason_code.as_deref(), Some("not-ca"), "{v:?}");
    assert!(
        v.reason
            .as_deref()
            .is_some_and(|r| r.contains("path length")),
        "{v:?}"
    );

    let v = check_package(
        &pki.signed("leaf-as-ca-clerk", &["clerk", "sub-ca"]),
        &root_only(),
        &policy,
        now(),
    );
    assert_eq!(v.reason_code.as_deref(), Some("not-ca"), "{v:?}");
}
