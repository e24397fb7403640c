//! The verdict on one package: everything a security officer needs to audit the decision.

use serde::{Deserialize, Serialize};

use crate::trust::{
    CertificateSummary, ChainReport, Policy, RevocationCheck, TrustStore, validate,
};
use crate::verify::{Failure, verify};

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Signature and certificate path verified.
    Valid,
    /// A signature is there and does not verify, or its certificate is not trusted.
    Invalid,
    /// No signature at all.
    Unsigned,
}

/// A verdict, as stored and as printed by `lienthong verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Stable code of the reason (`digest-mismatch`, `revoked`, ...), absent when valid.
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    /// Unix time of the verification.
    pub verified_at: i64,
    pub signature_method: Option<String>,
    pub canonicalization: Option<String>,
    pub digest_methods: Vec<String>,
    /// Signer first, trust anchor last (empty when the signature itself failed).
    pub chain: Vec<CertificateSummary>,
    pub revocation: Vec<RevocationCheck>,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        self.outcome == Outcome::Valid
    }

    /// The signer's certificate, when the path validated.
    pub fn signer(&self) -> Option<&CertificateSummary> {
        self.chain.first()
    }

    /// The verdict on a package whose format has no place for an XML signature (JSON).
    pub fn unsignable(at: i64, reason: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Unsigned,
            ..Self::refused(at, "unsigned", reason.into())
        }
    }

    fn refused(at: i64, code: &str, reason: String) -> Self {
        Self {
            outcome: Outcome::Invalid,
            reason_code: Some(code.to_owned()),
            reason: Some(reason),
            verified_at: at,
            signature_method: None,
            canonicalization: None,
            digest_methods: Vec::new(),
            chain: Vec::new(),
            revocation: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Verifies a package's signature and its signer's certificate path at Unix time `at`.
pub fn check_package(bytes: &[u8], store: &TrustStore, policy: &Policy, at: i64) -> Verdict {
    match lienthong_edxml::dom::read_document(bytes) {
        Ok(d) => check_document(&d, store, policy, at),
        Err(e) => Verdict::refused(at, "malformed", e.to_string()),
    }
}

/// [`check_package`] for a package read from `source`, its attachment texts over
/// `spill_threshold` bytes read back from it a chunk at a time (into the digest) rather than
/// held.
pub fn check_package_source(
    source: std::sync::Arc<dyn lienthong_edxml::source::Source>,
    spill_threshold: u64,
    store: &TrustStore,
    policy: &Policy,
    at: i64,
) -> Verdict {
    check_package_source_keeping_tree(source, spill_threshold, store, policy, at).0
}

/// [`check_package_source`], giving back the package's tree as well when it could be read, for a
/// caller that would otherwise read it again (the translator maps it with
/// `lienthong_edxml::read_whole_document`).
pub fn check_package_source_keeping_tree(
    source: std::sync::Arc<dyn lienthong_edxml::source::Source>,
    spill_threshold: u64,
    store: &TrustStore,
    policy: &Policy,
    at: i64,
) -> (Verdict, Option<lienthong_edxml::dom::Document>) {
    match lienthong_edxml::dom::read_document_source(source, spill_threshold) {
        Ok(d) => (check_document(&d, store, policy, at), Some(d)),
        Err(e) => (Verdict::refused(at, "malformed", e.to_string()), None),
    }
}

fn check_document(
    document: &lienthong_edxml::dom::Document,
    store: &TrustStore,
    policy: &Policy,
    at: i64,
) -> Verdict {
    let verified = match verify(document) {
        Ok(v) => v,
        Err(Failure::Unsigned) => {
            return Verdict {
                outcome: Outcome::Unsigned,
                reason_code: Some("unsigned".into()),
                ..Verdict::refused(at, "unsigned", Failure::Unsigned.to_string())
            };
        }
        Err(f) => return Verdict::refused(at, f.code(), f.to_string()),
    };
    let mut verdict = Verdict {
        signature_method: Some(verified.signature_method.name().to_owned()),
        canonicalization: Some(verified.canonicalization.clone()),
        digest_methods: verified
            .references
            .iter()
            .map(|(_, d)| d.name().to_owned())
            .collect(),
        ..Verdict::refused(at, "", String::new())
    };
    if verified.uses_sha1 {
        if !policy.allow_sha1 {
            verdict.reason_code = Some("sha1-refused".into());
            verdict.reason = Some("the signature uses SHA-1, which the policy refuses".into());
            return verdict;
        }
        verdict.warnings.push(
            "the signature uses SHA-1 (accepted by policy; ask the sender to move to SHA-256)"
                .into(),
        );
    }
    match validate(&verified.signer, &verified.others, store, policy, at) {
        Ok(ChainReport {
            chain,
            revocation,
            warnings,
        }) => {
            verdict.outcome = Outcome::Valid;
            verdict.reason_code = None;
            verdict.reason = None;
            verdict.chain = chain;
            verdict.revocation = revocation;
            verdict.warnings.extend(warnings);
        }
        Err(f) => {
            verdict.reason_code = Some(f.code().to_owned());
            verdict.reason = Some(f.to_string());
        }
    }
    verdict
}
