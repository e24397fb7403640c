//! Certificate path validation from a signer certificate to configured trust anchors (the
//! Government CA's roots and licensed public CAs), with revocation from CRLs.
//!
//! Checked for every certificate on the path: the issuer's signature, validity at the
//! verification time, RSA key size, and for issuers the CA basic constraint, `keyCertSign` key
//! usage and path length. The signer's key usage, when present, must allow `digitalSignature` or
//! `nonRepudiation`. Revocation: a CRL signed by the certificate's issuer is used when loaded; a
//! CRL past its `nextUpdate` plus the grace period fails closed. Without a CRL the policy decides.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::{FromDer, X509Name};
use x509_parser::public_key::PublicKey;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::revocation::{OcspAnswer, OcspStatus};

/// Deepest chain accepted (signer, intermediates, anchor).
const MAX_PATH: usize = 8;

/// Trust anchors, extra intermediates, CRLs and OCSP answers.
///
/// Paths already built are remembered by the SHA-256 of the signer and its `X509Data`: the same
/// agencies sign again and again, and a path's signatures do not change. Everything that does
/// change (validity at the verification time, key sizes under the policy, revocation) is checked
/// again on every verification. Each newly built path is also noted as a revocation target, so
/// that a fetcher can get its CRLs and OCSP answers ahead of the next package.
#[derive(Debug, Default)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    crls: Vec<LoadedCrl>,
    /// By `(SHA-256 of the issuer's DER, certificate serial)`; checked before they were added.
    ocsp: HashMap<(Vec<u8>, Vec<u8>), OcspAnswer>,
    paths: Mutex<HashMap<Vec<u8>, Arc<Vec<CertFacts>>>>,
    targets: Mutex<Vec<RevocationTarget>>,
}

/// What validation needs from one certificate of a path, read once when the path is built (the
/// DER does not change; the checks against time and policy run on every verification).
#[derive(Debug)]
struct CertFacts {
    der: Vec<u8>,
    /// SHA-256 of the DER: the key of OCSP answers issued for certificates this one issued.
    id: Vec<u8>,
    summary: CertificateSummary,
    subject_raw: Vec<u8>,
    raw_serial: Vec<u8>,
    rsa_bits: Option<usize>,
    /// `None` when the extension is absent.
    key_usage: Option<KeyUsageFacts>,
    /// Basic constraints: `Some(path length limit)` for a CA.
    ca: Option<Option<u32>>,
}

#[derive(Debug, Clone, Copy)]
struct KeyUsageFacts {
    signs_documents: bool,
    signs_certificates: bool,
}

impl CertFacts {
    fn read(der: &[u8]) -> Result<Self, ChainFailure> {
        let cert = parse(der)?;
        let key_usage = cert
            .key_usage()
            .map_err(|e| ChainFailure::BadCertificate(e.to_string()))?
            .map(|ku| KeyUsageFacts {
                signs_documents: ku.value.digital_signature() || ku.value.non_repudiation(),
                signs_certificates: ku.value.key_cert_sign(),
            });
        let ca = cert
            .basic_constraints()
            .map_err(|e| ChainFailure::BadCertificate(e.to_string()))?
            .filter(|b| b.value.ca)
            .map(|b| b.value.path_len_constraint);
        Ok(Self {
            der: der.to_vec(),
            id: sha256(der),
            summary: summary(&cert),
            subject_raw: cert.subject().as_raw().to_vec(),
            raw_serial: cert.raw_serial().to_vec(),
            rsa_bits: key_description(&cert).1,
            key_usage,
            ca,
        })
    }
}

/// A CRL parsed once when loaded; its signature is checked against an issuer on first use.
#[derive(Debug)]
struct LoadedCrl {
    der: Vec<u8>,
    issuer: Vec<u8>,
    this_update: i64,
    next_update: Option<i64>,
    revoked: HashSet<Vec<u8>>,
    /// SHA-256 of the issuer certificates whose key verified this CRL.
    verified_by: Mutex<Vec<Vec<u8>>>,
}

impl LoadedCrl {
    fn parse(der: Vec<u8>) -> Option<Self> {
        let (_, crl) = CertificateRevocationList::from_der(&der).ok()?;
        let issuer = crl.issuer().as_raw().to_vec();
        let this_update = crl.last_update().timestamp();
        let next_update = crl.next_update().map(|t| t.timestamp());
        let revoked = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        Some(Self {
            issuer,
            this_update,
            next_update,
            revoked,
            verified_by: Mutex::new(Vec::new()),
            der,
        })
    }

    fn signed_by(&self, issuer: &CertFacts) -> bool {
        if self.issuer != issuer.subject_raw {
            return false;
        }
        if let Ok(seen) = self.verified_by.lock()
            && seen.contains(&issuer.id)
        {
            return true;
        }
        let ok = parse(&issuer.der).is_ok_and(|issuer| {
            CertificateRevocationList::from_der(&self.der)
                .is_ok_and(|(_, crl)| crl.verify_signature(issuer.public_key()).is_ok())
        });
        if ok && let Ok(mut seen) = self.verified_by.lock() {
            seen.push(issuer.id.clone());
        }
        ok
    }
}

/// A certificate whose revocation status a fetcher should keep fresh, with its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationTarget {
    pub cert: Vec<u8>,
    pub issuer: Vec<u8>,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// What to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub min_rsa_bits: usize,
    /// SHA-1 in signatures or certificates: accepted with a warning (the national SDK still emits
    /// it), or refused.
    pub allow_sha1: bool,
    /// Refuse a certificate without revocation data (no CRL of its issuer, no OCSP answer).
    pub require_revocation_data: bool,
    /// How long past `nextUpdate` a CRL or an OCSP answer may still be used.
    pub crl_grace_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_rsa_bits: 2048,
            allow_sha1: true,
            require_revocation_data: false,
            crl_grace_secs: 24 * 3600,
        }
    }
}

/// One certificate of a validated path, as a security officer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub key: String,
    pub signature_algorithm: String,
}

/// How revocation was checked for one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationCheck {
    pub subject: String,
    /// `ocsp`, `crl`, or `none` when neither was there.
    pub source: String,
    pub crl_this_update: Option<i64>,
    pub crl_next_update: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_produced_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_this_update: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_next_update: Option<i64>,
}

/// A path that validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// Signer first, trust anchor last.
    pub chain: Vec<CertificateSummary>,
    pub revocation: Vec<RevocationCheck>,
    pub warnings: Vec<String>,
}

/// Why a path did not validate. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFailure {
    #[error("certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("no path from {0} to a trusted root")]
    Untrusted(String),
    #[error("{subject} expired at {not_after} (Unix time)")]
    Expired { subject: String, not_after: i64 },
    #[error("{subject} is not valid before {not_before} (Unix time)")]
    NotYetValid { subject: String, not_before: i64 },
    #[error("{0} issues certificates but is not a CA (basic constraints)")]
    NotCa(String),
    #[error("{0}: key usage does not allow this use")]
    KeyUsage(String),
    #[error("{subject}: RSA key of {bits} bits is weaker than the {min} required")]
    WeakKey {
        subject: String,
        bits: usize,
        min: usize,
    },
    #[error("{subject} (serial {serial}) is revoked")]
    Revoked { subject: String, serial: String },
    #[error(
        "the CRL of {issuer} is stale: its nextUpdate {next_update} (Unix time) is past the grace period"
    )]
    StaleCrl { issuer: String, next_update: i64 },
    #[error(
        "the OCSP answer for {subject} is stale: its nextUpdate {next_update} (Unix time) is past the grace period, and no fresh CRL covers it"
    )]
    StaleOcsp { subject: String, next_update: i64 },
    #[error(
        "no CRL of {0}'s issuer is loaded and no OCSP answer for it, and the policy requires revocation data"
    )]
    NoRevocationData(String),
    #[error("{0} is signed with SHA-1, which the policy refuses")]
    Sha1Refused(String),
}

impl ChainFailure {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadCertificate(_) => "bad-certificate",
            Self::Untrusted(_) => "untrusted",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not-yet-valid",
            Self::NotCa(_) => "not-ca",
            Self::KeyUsage(_) => "key-usage",
            Self::WeakKey { .. } => "weak-key",
            Self::Revoked { .. } => "revoked",
            Self::StaleCrl { .. } => "stale-crl",
            Self::StaleOcsp { .. } => "stale-ocsp",
            Self::NoRevocationData(_) => "no-revocation-data",
            Self::Sha1Refused(_) => "sha1-refused",
        }
    }
}

/// The certificates of every `.pem`, `.crt`, `.cer` or `.der` file in `dir`, in name order.
fn certificates_in(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::path);
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.path();
        let is_cert = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "pem" | "crt" | "cer" | "der"));
        if is_cert && path.is_file() {
            out.extend(certificates_from(&std::fs::read(&path)?));
        }
    }
    Ok(out)
}

/// Certificates (PEM, possibly several per file, or DER) from bytes.
pub fn certificates_from(bytes: &[u8]) -> Vec<Vec<u8>> {
    pem_blocks(bytes, "CERTIFICATE").unwrap_or_else(|| vec![bytes.to_vec()])
}

/// The DER of every PEM block labelled `label` (`CERTIFICATE`, `PRIVATE KEY`, `X509 CRL`), or
/// `None` when the bytes are not PEM.
pub fn pem_blocks(bytes: &[u8], label: &str) -> Option<Vec<Vec<u8>>> {
    use base64::Engine;
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    if !text.contains(&begin) {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let b64: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    Some(out)
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_anchor(&mut self, der: Vec<u8>) {
        self.anchors.push(der);
    }

    pub fn add_intermediate(&mut self, der: Vec<u8>) {
        self.intermediates.push(der);
    }

    /// A CRL, PEM (`X509 CRL`) or DER.
    /// A CRL, PEM (`X509 CRL`) or DER; bytes that are not a CRL are ignored (its signature is
    /// checked against the issuer when used).
    pub fn add_crl(&mut self, bytes: &[u8]) {
        let blocks = pem_blocks(bytes, "X509 CRL").unwrap_or_else(|| vec![bytes.to_vec()]);
        self.crls
            .extend(blocks.into_iter().filter_map(LoadedCrl::parse));
    }

    /// An OCSP answer for `cert` issued by `issuer`, already checked by
    /// [`crate::revocation::check_ocsp_response`].
    pub fn add_ocsp_answer(&mut self, cert: &[u8], issuer: &[u8], answer: OcspAnswer) {
        let Ok(c) = parse(cert) else { return };
        self.ocsp
            .insert((sha256(issuer), c.raw_serial().to_vec()), answer);
    }

    /// Paths built since the last call, as (certificate, issuer) pairs: what a revocation fetcher
    /// should keep fresh.
    pub fn take_revocation_targets(&self) -> Vec<RevocationTarget> {
        self.targets
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    /// The configured anchors and intermediates (their own CRL distribution points are targets
    /// for a fetcher too).
    pub fn certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.anchors
            .iter()
            .chain(self.intermediates.iter())
            .map(Vec::as_slice)
    }

    /// Every certificate file (`.pem`, `.crt`, `.cer`, `.der`) in `dir` as an anchor, and the
    /// given CRL files.
    pub fn load(anchors_dir: &Path, crl_files: &[&Path]) -> std::io::Result<Self> {
        let mut store = Self::new();
        for der in certificates_in(anchors_dir)? {
            store.add_anchor(der);
        }
        for crl in crl_files {
            store.add_crl(&std::fs::read(crl)?);
        }
        Ok(store)
    }

    /// Every certificate file in `dir` as an intermediate CA: for signers whose `X509Data` carries
    /// only their own certificate. Intermediates are never trusted by themselves; a path must
    /// still end at an anchor.
    pub fn load_intermediates(&mut self, dir: &Path) -> std::io::Result<()> {
        for der in certificates_in(dir)? {
            self.add_intermediate(der);
        }
        Ok(())
    }

    pub fn anchors(&self) -> usize {
        self.anchors.len()
    }

    /// When each trusted certificate expires and each CRL is due for renewal, soonest first:
    /// what operators and security officers must renew before signatures start failing.
    pub fn expiries(&self) -> Vec<Expiry> {
        let certs = |ders: &[Vec<u8>], kind: ExpiryKind| -> Vec<Expiry> {
            ders.iter()
                .filter_map(|der| parse(der).ok())
                .map(|c| Expiry {
                    kind,
                    name: name(c.subject()),
                    issuer: name(c.issuer()),
                    at: Some(c.validity().not_after.timestamp()),
                })
                .collect()
        };
        let mut out = certs(&self.anchors, ExpiryKind::Anchor);
        out.extend(certs(&self.intermediates, ExpiryKind::Intermediate));
        out.extend(self.crls.iter().map(|crl| {
            let issuer = X509Name::from_der(&crl.issuer)
                .map(|(_, n)| name(&n))
                .unwrap_or_else(|_| "?".to_owned());
            Expiry {
                kind: ExpiryKind::Crl,
                name: issuer.clone(),
                issuer,
                at: crl.next_update,
            }
        }));
        // A CRL without nextUpdate never falls due: last.
        out.sort_by_key(|e| e.at.unwrap_or(i64::MAX));
        out
    }
}

/// What [`TrustStore::expiries`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryKind {
    /// A trust anchor (the Government CA, a licensed CA): its notAfter.
    Anchor,
    /// A configured intermediate CA: its notAfter.
    Intermediate,
    /// A CRL: its nextUpdate.
    Crl,
}

/// One certificate's or CRL's date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    pub kind: ExpiryKind,
    /// The certificate's subject, or the CRL's issuer.
    pub name: String,
    pub issuer: String,
    /// Unix seconds: notAfter, or nextUpdate (none: the CRL names no next update).
    pub at: Option<i64>,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, ChainFailure> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| ChainFailure::BadCertificate(e.to_string()))
}

fn name(n: &X509Name<'_>) -> String {
    n.to_string()
}

fn key_description(cert: &X509Certificate<'_>) -> (String, Option<usize>) {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => (format!("rsa-{}", rsa.key_size()), Some(rsa.key_size())),
        Ok(PublicKey::EC(ec)) => (format!("ec-{}", ec.key_size()), None),
        _ => ("other".to_owned(), None),
    }
}

fn signature_algorithm(cert: &X509Certificate<'_>) -> String {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        other => other.to_owned(),
    }
}

fn summary(cert: &X509Certificate<'_>) -> CertificateSummary {
    CertificateSummary {
        subject: name(cert.subject()),
        issuer: name(cert.issuer()),
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key: key_description(cert).0,
        signature_algorithm: signature_algorithm(cert),
    }
}

/// Validates the path from `signer` (with `others` from the signature's `X509Data` as candidate
/// intermediates) to an anchor, at Unix time `at`.
pub fn validate(
    signer: &[u8],
    others: &[Vec<u8>],
    store: &TrustStore,
    policy: &Policy,
    at: i64,
) -> Result<ChainReport, ChainFailure> {
    let key = {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(signer);
        for o in others {
            ctx.update(&(o.len() as u64).to_be_bytes());
            ctx.update(o);
        }
        ctx.finish().as_ref().to_vec()
    };
    let cached = store.paths.lock().ok().and_then(|p| p.get(&key).cloned());
    let path = match cached {
        Some(path) => path,
        None => {
            let signer_cert = parse(signer)?;
            let mut pool: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
            pool.extend(store.intermediates.iter().map(Vec::as_slice));
            let ders = build(signer, &pool, store, 0)
                .ok_or_else(|| ChainFailure::Untrusted(name(signer_cert.subject())))?;
            let path = Arc::new(
                ders.iter()
                    .map(|d| CertFacts::read(d))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            if let Ok(mut paths) = store.paths.lock() {
                // Bounded: a flood of distinct signers cannot grow it without limit.
                if paths.len() >= 10_000 {
                    paths.clear();
                }
                paths.insert(key, Arc::clone(&path));
            }
            if let Ok(mut targets) = store.targets.lock()
                && targets.len() < 10_000
            {
                targets.extend(ders.windows(2).map(|pair| RevocationTarget {
                    cert: pair[0].clone(),
                    issuer: pair[1].clone(),
                }));
            }
            path
        }
    };

    let mut warnings = Vec::new();
    let mut chain = Vec::with_capacity(path.len());
    let mut revocation = Vec::new();
    for (i, cert) in path.iter().enumerate() {
        let s = &cert.summary;
        if s.not_after < at {
            return Err(ChainFailure::Expired {
                subject: s.subject.clone(),
                not_after: s.not_after,
            });
        }
        if s.not_before > at {
            return Err(ChainFailure::NotYetValid {
                subject: s.subject.clone(),
                not_before: s.not_before,
            });
        }
        if let Some(bits) = cert.rsa_bits
            && bits < policy.min_rsa_bits
        {
            return Err(ChainFailure::WeakKey {
                subject: s.subject.clone(),
                bits,
                min: policy.min_rsa_bits,
            });
        }
        let is_anchor = i == path.len() - 1;
        if s.signature_algorithm == "sha1WithRSAEncryption" && !is_anchor {
            if !policy.allow_sha1 {
                return Err(ChainFailure::Sha1Refused(s.subject.clone()));
            }
            warnings.push(format!("{} is signed with SHA-1", s.subject));
        }
        if i == 0 {
            if cert.key_usage.is_some_and(|ku| !ku.signs_documents) {
                return Err(ChainFailure::KeyUsage(s.subject.clone()));
            }
        } else {
            let Some(path_len) = cert.ca else {
                return Err(ChainFailure::NotCa(s.subject.clone()));
            };
            // Intermediate CAs below this one on the path (the signer does not count).
            let below = u32::try_from(i - 1).unwrap_or(u32::MAX);
            if path_len.is_some_and(|max| below > max) {
                return Err(ChainFailure::NotCa(format!(
                    "{} (path length exceeded)",
                    s.subject
                )));
            }
            if cert.key_usage.is_some_and(|ku| !ku.signs_certificates) {
                return Err(ChainFailure::KeyUsage(s.subject.clone()));
            }
        }
        if !is_anchor {
            revocation.push(check_revocation(cert, &path[i + 1], store, policy, at)?);
        }
        chain.push(s.clone());
    }
    Ok(ChainReport {
        chain,
        revocation,
        warnings,
    })
}

/// Depth-first search for a path to an anchor; issuers are matched by name and by signature.
fn build(
    cert_der: &[u8],
    pool: &[&[u8]],
    store: &TrustStore,
    depth: usize,
) -> Option<Vec<Vec<u8>>> {
    if store.anchors.iter().any(|a| a.as_slice() == cert_der) {
        return Some(vec![cert_der.to_vec()]);
    }
    if depth >= MAX_PATH {
        return None;
    }
    let cert = parse(cert_der).ok()?;
    let issued_by = |candidate: &[u8]| -> bool {
        parse(candidate).is_ok_and(|issuer| {
            issuer.subject().as_raw() == cert.issuer().as_raw()
                && cert.verify_signature(Some(issuer.public_key())).is_ok()
        })
    };
    for anchor in &store.anchors {
        if issued_by(anchor) {
            return Some(vec![cert_der.to_vec(), anchor.clone()]);
        }
    }
    for candidate in pool {
        if *candidate == cert_der || !issued_by(candidate) {
            continue;
        }
        if let Some(mut rest) = build(candidate, pool, store, depth + 1) {
            rest.insert(0, cert_der.to_vec());
            return Some(rest);
        }
    }
    None
}

/// OCSP first when a fresh answer is there (it is the more recent word), then the issuer's CRL.
/// Stale data fails closed; missing data follows the policy.
fn check_revocation(
    cert: &CertFacts,
    issuer: &CertFacts,
    store: &TrustStore,
    policy: &Policy,
    at: i64,
) -> Result<RevocationCheck, ChainFailure> {
    let subject = cert.summary.subject.clone();
    let serial = cert.raw_serial.as_slice();
    let mut stale_ocsp = None;
    if let Some(answer) = store.ocsp.get(&(issuer.id.clone(), serial.to_vec())) {
        let fresh_until = answer.next_update.unwrap_or(answer.this_update) + policy.crl_grace_secs;
        if at > fresh_until {
            stale_ocsp = Some(answer.next_update.unwrap_or(answer.this_update));
        } else {
            match answer.status {
                OcspStatus::Revoked { .. } => {
                    return Err(ChainFailure::Revoked {
                        subject,
                        serial: cert.summary.serial.clone(),
                    });
                }
                OcspStatus::Good => {
                    return Ok(RevocationCheck {
                        subject,
                        source: "ocsp".into(),
                        crl_this_update: None,
                        crl_next_update: None,
                        ocsp_produced_at: Some(answer.produced_at),
                        ocsp_this_update: Some(answer.this_update),
                        ocsp_next_update: answer.next_update,
                    });
                }
                // The responder does not know it: the CRL decides.
                OcspStatus::Unknown => {}
            }
        }
    }
    let crl = store
        .crls
        .iter()
        .filter(|c| c.signed_by(issuer))
        .max_by_key(|c| c.this_update);
    let Some(crl) = crl else {
        if let Some(next_update) = stale_ocsp {
            return Err(ChainFailure::StaleOcsp {
                subject,
                next_update,
            });
        }
        if policy.require_revocation_data {
            return Err(ChainFailure::NoRevocationData(subject));
        }
        return Ok(RevocationCheck {
            subject,
            source: "none".into(),
            crl_this_update: None,
            crl_next_update: None,
            ocsp_produced_at: None,
            ocsp_this_update: None,
            ocsp_next_update: None,
        });
    };
    if let Some(next) = crl.next_update
        && at > next + policy.crl_grace_secs
    {
        return Err(ChainFailure::StaleCrl {
            issuer: issuer.summary.subject.clone(),
            next_update: next,
        });
    }
    if crl.revoked.contains(serial) {
        return Err(ChainFailure::Revoked {
            subject,
            serial: cert.summary.serial.clone(),
        });
    }
    Ok(RevocationCheck {
        subject,
        source: "crl".into(),
        crl_this_update: Some(crl.this_update),
        crl_next_update: crl.next_update,
        ocsp_produced_at: None,
        ocsp_this_update: None,
        ocsp_next_update: None,
    })
}
