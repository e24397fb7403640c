//! Enveloped XML-DSig verification, safe by construction.
//!
//! What is checked, in order, each failure with its own reason code:
//! 1. exactly one `Signature` in the document (several are refused: which one would count?);
//! 2. every algorithm is on the allow-list (no XPath, XSLT or external references);
//! 3. before any digest, some reference covers the whole package: `URI=""` or the id of the root
//!    element, so what the bus routes and delivers is what was signed (no signature wrapping);
//!    ids must be unique;
//! 4. each reference's digest over its canonical form (an empty canonical form is a failure);
//! 5. `SignatureValue` over the canonical `SignedInfo`, with the key of a certificate carried in
//!    `KeyInfo/X509Data`: the signer is the certificate whose key verifies, never merely the one
//!    that comes first. RSA keys under 2048 bits are refused.
//!
//! Certificate path validation and revocation are the caller's next step, on the returned signer.

use base64::Engine;
use lienthong_edxml::dom::{Document, Element};
use lienthong_edxml::model::DSIG_NS;
use ring::digest;
use ring::signature::{self, UnparsedPublicKey};

use crate::c14n::{Algorithm, canonicalize, canonicalize_into};

const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// A signature method: key type and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    RsaSha1,
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
}

impl SignatureMethod {
    pub fn from_uri(uri: &str) -> Option<Self> {
        Some(match uri {
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" => Self::RsaSha1,
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => Self::RsaSha256,
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => Self::RsaSha384,
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => Self::RsaSha512,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => Self::EcdsaP256Sha256,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => Self::EcdsaP384Sha384,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RsaSha1 => "rsa-sha1",
            Self::RsaSha256 => "rsa-sha256",
            Self::RsaSha384 => "rsa-sha384",
            Self::RsaSha512 => "rsa-sha512",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::EcdsaP384Sha384 => "ecdsa-p384-sha384",
        }
    }

    pub fn uses_sha1(self) -> bool {
        self == Self::RsaSha1
    }
}

/// A digest method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMethod {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestMethod {
    pub fn from_uri(uri: &str) -> Option<Self> {
        Some(match uri {
            "http://www.w3.org/2000/09/xmldsig#sha1" => Self::Sha1,
            "http://www.w3.org/2001/04/xmlenc#sha256" => Self::Sha256,
            "http://www.w3.org/2001/04/xmldsig-more#sha384" => Self::Sha384,
            "http://www.w3.org/2001/04/xmlenc#sha512" => Self::Sha512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn ring(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

/// Why a signature was refused. `code()` is stable, for verdicts and statistics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("the package carries no XML-DSig Signature")]
    Unsigned,
    #[error("the package carries {0} Signature elements; exactly one is accepted")]
    SeveralSignatures(usize),
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error("{what} algorithm `{uri}` is not accepted")]
    UnsupportedAlgorithm { what: &'static str, uri: String },
    #[error("transform `{0}` is not accepted (only enveloped-signature and canonicalization)")]
    ForbiddenTransform(String),
    #[error("reference `{0}` is not a same-document reference")]
    ExternalReference(String),
    #[error("reference `{0}` names no element")]
    UnresolvedReference(String),
    #[error("id `{0}` is carried by more than one element")]
    DuplicateId(String),
    #[error(
        "no reference covers the whole package (URI=\"\" or the root's id); the signed part is not what would be delivered"
    )]
    NotCovering,
    #[error("reference `{0}` canonicalizes to nothing")]
    EmptyCanonicalization(String),
    #[error("digest of reference `{uri}` does not match: the signed content was altered")]
    DigestMismatch { uri: String },
    #[error("KeyInfo carries no X509Certificate")]
    NoCertificate,
    #[error("certificate in KeyInfo cannot be read: {0}")]
    BadCertificate(String),
    #[error("RSA key of {bits} bits is weaker than the 2048 bits required")]
    WeakKey { bits: usize },
    #[error("SignatureValue does not verify with any certificate in KeyInfo")]
    BadSignatureValue,
}

impl Failure {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::SeveralSignatures(_) => "several-signatures",
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            Self::ForbiddenTransform(_) => "forbidden-transform",
            Self::ExternalReference(_) => "external-reference",
            Self::UnresolvedReference(_) => "unresolved-reference",
            Self::DuplicateId(_) => "duplicate-id",
            Self::NotCovering => "not-covering",
            Self::EmptyCanonicalization(_) => "empty-canonicalization",
            Self::DigestMismatch { .. } => "digest-mismatch",
            Self::NoCertificate => "no-certificate",
            Self::BadCertificate(_) => "bad-certificate",
            Self::WeakKey { .. } => "weak-key",
            Self::BadSignatureValue => "bad-signature-value",
        }
    }
}

/// A signature that verified cryptographically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub signature_method: SignatureMethod,
    pub canonicalization: String,
    /// `(URI, digest)` of every reference.
    pub references: Vec<(String, DigestMethod)>,
    /// DER of the certificate whose key verified the signature.
    pub signer: Vec<u8>,
    /// DER of the other certificates in `X509Data` (chain candidates).
    pub others: Vec<Vec<u8>>,
    /// Whether SHA-1 was used anywhere (accepted with a warning by default).
    pub uses_sha1: bool,
}

fn malformed(path: &str, reason: impl Into<String>) -> Failure {
    Failure::Malformed {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn dsig_child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    e.elements()
        .find(|c| c.name == name && c.namespace.as_deref() == Some(DSIG_NS))
}

fn dsig_children<'a>(e: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    e.elements()
        .filter(move |c| c.name == name && c.namespace.as_deref() == Some(DSIG_NS))
}

fn collect<'a>(e: &'a Element, pred: &dyn Fn(&Element) -> bool, out: &mut Vec<&'a Element>) {
    if pred(e) {
        out.push(e);
    }
    for c in e.elements() {
        collect(c, pred, out);
    }
}

fn base64(text: &str, path: &str) -> Result<Vec<u8>, Failure> {
    let mut compact = Vec::with_capacity(text.len());
    compact.extend(text.bytes().filter(|b| !b.is_ascii_whitespace()));
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| malformed(path, format!("not base64: {e}")))
}

/// Verifies the package's enveloped signature.
pub fn verify(document: &Document) -> Result<Verified, Failure> {
    let mut signatures = Vec::new();
    collect(
        &document.root,
        &|e| e.name == "Signature" && e.namespace.as_deref() == Some(DSIG_NS),
        &mut signatures,
    );
    let signature = match signatures.as_slice() {
        [] => return Err(Failure::Unsigned),
        [one] => *one,
        many => return Err(Failure::SeveralSignatures(many.len())),
    };
    let signed_info = dsig_child(signature, "SignedInfo")
        .ok_or_else(|| malformed("Signature/SignedInfo", "is required but missing"))?;

    let c14n_element = dsig_child(signed_info, "CanonicalizationMethod").ok_or_else(|| {
        malformed(
            "Signature/SignedInfo/CanonicalizationMethod",
            "is required but missing",
        )
    })?;
    let c14n_uri = c14n_element.attribute("Algorithm").unwrap_or_default();
    let c14n =
        Algorithm::from_uri(c14n_uri, inclusive_prefixes(c14n_element)).ok_or_else(|| {
            Failure::UnsupportedAlgorithm {
                what: "canonicalization",
                uri: c14n_uri.to_owned(),
            }
        })?;
    let method_uri = dsig_child(signed_info, "SignatureMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or_else(|| {
            malformed(
                "Signature/SignedInfo/SignatureMethod",
                "Algorithm is required",
            )
        })?;
    let method =
        SignatureMethod::from_uri(method_uri).ok_or_else(|| Failure::UnsupportedAlgorithm {
            what: "signature",
            uri: method_uri.to_owned(),
        })?;

    // Ids, checked for uniqueness once.
    let mut with_id = Vec::new();
    collect(&document.root, &|e| id_of(e).is_some(), &mut with_id);

    // Plan every reference before computing any digest: coverage is decided on structure.
    let references: Vec<&Element> = dsig_children(signed_info, "Reference").collect();
    if references.is_empty() {
        return Err(malformed(
            "Signature/SignedInfo/Reference",
            "at least one is required",
        ));
    }
    let mut planned = Vec::with_capacity(references.len());
    let mut covers_root = false;
    for r in &references {
        let uri = r.attribute("URI").unwrap_or_default().to_owned();
        // XPointer forms keep comments (XML-DSig 4.3.3.3); bare forms drop them.
        let xpointer_id = uri
            .strip_prefix("#xpointer(id(")
            .and_then(|rest| rest.strip_suffix("))"))
            .and_then(|quoted| {
                quoted
                    .strip_prefix('\'')
                    .and_then(|q| q.strip_suffix('\''))
                    .or_else(|| quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
            });
        let keep_comments = uri == "#xpointer(/)" || xpointer_id.is_some();
        let target: &Element = if uri.is_empty() || uri == "#xpointer(/)" {
            &document.root
        } else if let Some(id) = xpointer_id.or_else(|| uri.strip_prefix('#')) {
            let matches: Vec<&&Element> = with_id.iter().filter(|e| id_of(e) == Some(id)).collect();
            match matches.as_slice() {
                [] => return Err(Failure::UnresolvedReference(uri)),
                [one] => one,
                _ => return Err(Failure::DuplicateId(id.to_owned())),
            }
        } else {
            return Err(Failure::ExternalReference(uri));
        };
        covers_root |= std::ptr::eq(target, &document.root);
        let (enveloped, algorithm) = transforms(r, keep_comments)?;
        let digest_uri = dsig_child(r, "DigestMethod")
            .and_then(|d| d.attribute("Algorithm"))
            .ok_or_else(|| malformed("Reference/DigestMethod", "Algorithm is required"))?;
        let digest_method =
            DigestMethod::from_uri(digest_uri).ok_or_else(|| Failure::UnsupportedAlgorithm {
                what: "digest",
                uri: digest_uri.to_owned(),
            })?;
        let expected = base64(
            &dsig_child(r, "DigestValue")
                .ok_or_else(|| malformed("Reference/DigestValue", "is required but missing"))?
                .text(),
            "Reference/DigestValue",
        )?;
        planned.push((uri, target, enveloped, algorithm, digest_method, expected));
    }
    if !covers_root {
        return Err(Failure::NotCovering);
    }

    let mut uses_sha1 = method.uses_sha1();
    let mut checked = Vec::with_capacity(planned.len());
    for (uri, target, enveloped, algorithm, digest_method, expected) in planned {
        let exclude = enveloped.then_some(signature);
        // Canonical bytes go straight into the digest: a large package is never copied whole.
        let mut context = digest::Context::new(digest_method.ring());
        if canonicalize_into(document, target, exclude, &algorithm, &mut context) == 0 {
            return Err(Failure::EmptyCanonicalization(uri));
        }
        let actual = context.finish();
        if actual.as_ref() != expected.as_slice() {
            return Err(Failure::DigestMismatch { uri });
        }
        uses_sha1 |= digest_method == DigestMethod::Sha1;
        checked.push((uri, digest_method));
    }

    let signed_bytes = canonicalize(document, signed_info, None, &c14n);
    if signed_bytes.is_empty() {
        return Err(Failure::EmptyCanonicalization("SignedInfo".into()));
    }
    let value = base64(
        &dsig_child(signature, "SignatureValue")
            .ok_or_else(|| malformed("Signature/SignatureValue", "is required but missing"))?
            .text(),
        "Signature/SignatureValue",
    )?;
    let certificates = key_info_certificates(signature)?;
    if certificates.is_empty() {
        return Err(Failure::NoCertificate);
    }
    let mut signer = None;
    for (i, der) in certificates.iter().enumerate() {
        if verifies(der, method, &signed_bytes, &value)? {
            signer = Some(i);
            break;
        }
    }
    let signer = signer.ok_or(Failure::BadSignatureValue)?;
    let mut others = certificates;
    let signer_der = others.remove(signer);
    Ok(Verified {
        signature_method: method,
        canonicalization: c14n_uri.to_owned(),
        references: checked,
        signer: signer_der,
        others,
        uses_sha1,
    })
}

fn id_of(e: &Element) -> Option<&str> {
    e.attribute("Id")
        .or_else(|| e.attribute("ID"))
        .or_else(|| e.attribute("id"))
}

fn inclusive_prefixes(method: &Element) -> Vec<String> {
    method
        .elements()
        .find(|c| c.name == "InclusiveNamespaces" && c.namespace.as_deref() == Some(EXC_C14N_NS))
        .and_then(|c| c.attribute("PrefixList"))
        .map(|list| list.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The transforms of a reference: whether the signature is enveloped, and the canonicalization
/// (inclusive C14N 1.0 when none is named). Comments take part only when the reference is an
/// XPointer (`#xpointer(/)`, `#xpointer(id('x'))`) and the algorithm keeps them; `URI=""` and
/// `#x` never include them (XML-DSig 4.3.3.3), whatever the algorithm says.
fn transforms(reference: &Element, keep_comments: bool) -> Result<(bool, Algorithm), Failure> {
    let mut enveloped = false;
    let mut algorithm = Algorithm::Inclusive { comments: false };
    if let Some(list) = dsig_child(reference, "Transforms") {
        for t in dsig_children(list, "Transform") {
            let uri = t.attribute("Algorithm").unwrap_or_default();
            if uri == ENVELOPED {
                enveloped = true;
            } else if let Some(a) = Algorithm::from_uri(uri, inclusive_prefixes(t)) {
                let keep = a.comments() && keep_comments;
                algorithm = a.with_comments(keep);
            } else {
                return Err(Failure::ForbiddenTransform(uri.to_owned()));
            }
        }
    }
    Ok((enveloped, algorithm))
}

fn key_info_certificates(signature: &Element) -> Result<Vec<Vec<u8>>, Failure> {
    let mut out = Vec::new();
    if let Some(key_info) = dsig_child(signature, "KeyInfo") {
        for data in dsig_children(key_info, "X509Data") {
            for cert in dsig_children(data, "X509Certificate") {
                out.push(base64(&cert.text(), "KeyInfo/X509Data/X509Certificate")?);
            }
        }
    }
    Ok(out)
}

/// Whether `value` is a signature by the certificate's key over `message`.
fn verifies(
    der: &[u8],
    method: SignatureMethod,
    message: &[u8],
    value: &[u8],
) -> Result<bool, Failure> {
    // Only the public key is needed here; the whole certificate is read when its path is built.
    let spki = crate::der::public_key(der).map_err(|e| Failure::BadCertificate(e.to_string()))?;
    let key = spki.key;
    let algorithm: &'static dyn signature::VerificationAlgorithm = match method {
        SignatureMethod::RsaSha1
        | SignatureMethod::RsaSha256
        | SignatureMethod::RsaSha384
        | SignatureMethod::RsaSha512 => {
            let Some(bits) = spki.rsa_bits else {
                return Ok(false);
            };
            if bits < 2048 {
                return Err(Failure::WeakKey { bits });
            }
            match method {
                SignatureMethod::RsaSha1 => {
                    &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
                }
                SignatureMethod::RsaSha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                SignatureMethod::RsaSha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            }
        }
        SignatureMethod::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
        SignatureMethod::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_FIXED,
    };
    Ok(UnparsedPublicKey::new(algorithm, key)
        .verify(message, value)
        .is_ok())
}
