//! Revocation data from the network: OCSP responses, CRLs, and the URLs read from certificates.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signer = include_bytes!("../../vectors/xmldsig/keys/signer.pem");
    let root = include_bytes!("../../vectors/xmldsig/keys/root.pem");
    let der = |pem: &[u8]| {
        lienthong_xmldsig::trust::pem_blocks(pem, "CERTIFICATE")
            .and_then(|b| b.into_iter().next())
            .unwrap_or_default()
    };
    let (signer, root) = (der(signer), der(root));
    let _ = lienthong_xmldsig::revocation::check_ocsp_response(data, &signer, &root, 1_800_000_000);
    let _ = lienthong_xmldsig::revocation::crl_urls(data);
    let _ = lienthong_xmldsig::revocation::ocsp_urls(data);
    let mut trust = lienthong_xmldsig::TrustStore::new();
    trust.add_anchor(root);
    trust.add_crl(data);
});
