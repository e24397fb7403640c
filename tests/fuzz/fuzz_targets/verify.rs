//! The signature verifier, as the verifier stage runs it, trusting the test root: no panic, and
//! never `valid` for a package whose signature does not verify by itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn trust() -> &'static lienthong_xmldsig::TrustStore {
    static TRUST: OnceLock<lienthong_xmldsig::TrustStore> = OnceLock::new();
    TRUST.get_or_init(|| {
        let pem = include_bytes!("../../vectors/xmldsig/keys/root.pem");
        let mut t = lienthong_xmldsig::TrustStore::new();
        for der in lienthong_xmldsig::trust::pem_blocks(pem, "CERTIFICATE").unwrap_or_default() {
            t.add_anchor(der);
        }
        t.add_crl(include_bytes!("../../vectors/xmldsig/keys/root.crl.pem"));
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let policy = lienthong_xmldsig::Policy::default();
    let verdict = lienthong_xmldsig::check_package(data, trust(), &policy, 1_800_000_000);
    if verdict.outcome == lienthong_xmldsig::Outcome::Valid {
        let doc = lienthong_edxml::dom::read_document(data).expect("a valid package reads");
        assert!(lienthong_xmldsig::verify(&doc).is_ok(), "valid without a verifying signature");
    }
});
