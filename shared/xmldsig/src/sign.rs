//! Signing, for adapters that cannot sign: an enveloped signature over the whole package
//! (`Reference URI=""`, C14N 1.0, SHA-256) with RSA PKCS#1 v1.5 SHA-256 or ECDSA P-256 SHA-256,
//! placed at the end of `edXMLHeader` (of the SOAP `Header` in an e-doc.vn envelope). The rest of
//! the package is left byte for byte as it was.

use base64::Engine;
use lienthong_edxml::dom::{Element, read_document};
use lienthong_edxml::model::DSIG_NS;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

use crate::c14n::{Algorithm, canonicalize};

const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the package is not readable XML: {0}")]
    Package(String),
    #[error("the package has no edXMLHeader (nor SOAP Header) to hold the signature")]
    NoHeader,
    #[error("the package is already signed")]
    AlreadySigned,
    #[error("the key is neither an RSA (2048 bits or more) nor a P-256 PKCS#8 private key")]
    UnsupportedKey,
    #[error("the certificate does not hold the key's public key")]
    CertificateMismatch,
    #[error("signing failed")]
    Crypto,
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// Signs `package` with a PKCS#8 private key (DER) and its certificate (DER).
pub fn sign(package: &[u8], key_pkcs8: &[u8], certificate: &[u8]) -> Result<Vec<u8>, SignError> {
    let rng = SystemRandom::new();
    let key = match RsaKeyPair::from_pkcs8(key_pkcs8) {
        Ok(k) => Key::Rsa(k),
        Err(_) => Key::Ec(
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, key_pkcs8, &rng)
                .map_err(|_| SignError::UnsupportedKey)?,
        ),
    };
    let (_, cert) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|_| SignError::CertificateMismatch)?;
    let public = match &key {
        Key::Rsa(k) => k.public().as_ref().to_vec(),
        Key::Ec(k) => k.public_key().as_ref().to_vec(),
    };
    if cert.public_key().subject_public_key.data.as_ref() != public.as_slice() {
        return Err(SignError::CertificateMismatch);
    }
    let method = match key {
        Key::Rsa(_) => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        Key::Ec(_) => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    };

    let text = std::str::from_utf8(package).map_err(|e| SignError::Package(e.to_string()))?;
    let document = read_document(package).map_err(|e| SignError::Package(e.to_string()))?;
    if contains_signature(&document.root) {
        return Err(SignError::AlreadySigned);
    }
    let at = header_end(text, "edXMLHeader")
        .or_else(|| header_end(text, "Header"))
        .ok_or(SignError::NoHeader)?;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        &canonicalize(
            &document,
            &document.root,
            None,
            &Algorithm::Inclusive { comments: false },
        ),
    );
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let signed_info = format!(
        "<SignedInfo><CanonicalizationMethod Algorithm=\"{C14N}\"/><SignatureMethod Algorithm=\"{method}\"/>\
         <Reference URI=\"\"><Transforms><Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/></Transforms>\
         <DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><DigestValue>{}</DigestValue></Reference></SignedInfo>",
        b64(digest.as_ref())
    );
    let placeholder = "SIGNATURE-VALUE";
    let element = format!(
        "<Signature xmlns=\"{DSIG_NS}\">{signed_info}<SignatureValue>{placeholder}</SignatureValue>\
         <KeyInfo><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></Signature>",
        b64(certificate)
    );
    let mut out = String::with_capacity(text.len() + element.len() + 512);
    out.push_str(&text[..at]);
    out.push_str(&element);
    out.push_str(&text[at..]);

    // SignedInfo is canonicalized in place, exactly as a verifier will see it.
    let placed = read_document(out.as_bytes()).map_err(|e| SignError::Package(e.to_string()))?;
    let info = find_signed_info(&placed.root).ok_or(SignError::Crypto)?;
    let message = canonicalize(
        &placed,
        info,
        None,
        &Algorithm::Inclusive { comments: false },
    );
    let value = match key {
        Key::Rsa(k) => {
            let mut sig = vec![0u8; k.public().modulus_len()];
            k.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                .map_err(|_| SignError::Crypto)?;
            sig
        }
        Key::Ec(k) => k
            .sign(&rng, &message)
            .map_err(|_| SignError::Crypto)?
            .as_ref()
            .to_vec(),
    };
    Ok(out.replacen(placeholder, &b64(&value), 1).into_bytes())
}

fn contains_signature(e: &Element) -> bool {
    (e.name == "Signature" && e.namespace.as_deref() == Some(DSIG_NS))
        || e.elements().any(contains_signature)
}

fn find_signed_info(e: &Element) -> Option<&Element> {
    if e.name == "SignedInfo" && e.namespace.as_deref() == Some(DSIG_NS) {
        return Some(e);
    }
    e.elements().find_map(find_signed_info)
}

/// Byte offset of the last `</name>` (or `</prefix:name>`) end tag.
fn header_end(text: &str, name: &str) -> Option<usize> {
    let mut search = text.len();
    let tail = format!("{name}>");
    while let Some(i) = text[..search].rfind(&tail) {
        let before = &text[..i];
        if before.ends_with("</") {
            return Some(i - 2);
        }
        if let Some(lt) = before.rfind("</") {
            let prefix = &before[lt + 2..];
            if prefix.ends_with(':')
                && prefix[..prefix.len() - 1]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                return Some(lt);
            }
        }
        search = i;
    }
    None
}
