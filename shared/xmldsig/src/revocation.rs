//! Revocation data fetched ahead of time: where to get it (CRL distribution points, OCSP
//! responders named in Authority Information Access), OCSP requests (RFC 6960), and the checking
//! of OCSP responses. No IO here: the verifier service fetches, this module decides what the
//! bytes mean.
//!
//! An OCSP response is accepted only when it answers for exactly the certificate asked about
//! (issuer name hash, issuer key hash, serial) and is signed by the issuer itself or by a
//! responder certificate that the issuer signed for `id-kp-OCSPSigning`, valid at the time of
//! checking.

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::AlgorithmIdentifier;

use crate::der::{expect, read, tlv};

const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// Why OCSP bytes could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("OCSP response is malformed: {0}")]
    Malformed(&'static str),
    #[error("OCSP responder answered {0}")]
    Responder(&'static str),
    #[error("OCSP response does not answer for this certificate")]
    NotForThisCertificate,
    #[error("OCSP response signature does not verify with the issuer or an authorized responder")]
    BadSignature,
}

/// The status an OCSP responder gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum OcspStatus {
    Good,
    Revoked { at: i64 },
    Unknown,
}

/// A checked OCSP answer for one certificate (Unix times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcspAnswer {
    pub status: OcspStatus,
    pub produced_at: i64,
    pub this_update: i64,
    pub next_update: Option<i64>,
}

fn cert(der: &[u8]) -> Result<X509Certificate<'_>, OcspError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| OcspError::BadCertificate(e.to_string()))
}

fn http(uri: &str) -> Option<String> {
    (uri.starts_with("http://") || uri.starts_with("https://")).then(|| uri.to_owned())
}

/// The HTTP(S) URLs of the CRL distribution points of a certificate.
pub fn crl_urls(cert_der: &[u8]) -> Vec<String> {
    let Ok(c) = cert(cert_der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in c.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    urls.extend(names.iter().filter_map(|n| match n {
                        GeneralName::URI(u) => http(u),
                        _ => None,
                    }));
                }
            }
        }
    }
    urls
}

/// The HTTP(S) URLs of the OCSP responders of a certificate (Authority Information Access).
pub fn ocsp_urls(cert_der: &[u8]) -> Vec<String> {
    let Ok(c) = cert(cert_der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in c.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in aia.iter() {
                if desc.access_method.to_id_string() == OID_AD_OCSP
                    && let GeneralName::URI(u) = &desc.access_location
                {
                    urls.extend(http(u));
                }
            }
        }
    }
    urls
}

/// GeneralizedTime `YYYYMMDDHHMMSS[.fff]Z` as Unix time.
fn generalized_time(content: &[u8]) -> Result<i64, OcspError> {
    let bad = OcspError::Malformed("bad GeneralizedTime");
    let s = std::str::from_utf8(content).map_err(|_| bad.clone())?;
    if s.len() < 15 || !s.ends_with('Z') || !s[..14].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().map_err(|_| bad.clone());
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad);
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn digest(alg: &'static ring::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(alg, data).as_ref().to_vec()
}

/// The issuer's key as CertID hashes it: the subjectPublicKey BIT STRING's bits.
fn issuer_key_bits<'a>(issuer: &'a X509Certificate<'_>) -> &'a [u8] {
    &issuer.public_key().subject_public_key.data
}

/// An OCSP request (RFC 6960) for one certificate, CertID hashed with SHA-1 as responders
/// universally expect. No nonce: answers are fetched ahead of time and cached until their
/// `nextUpdate`, which a nonce would defeat.
pub fn ocsp_request(cert_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, OcspError> {
    let c = cert(cert_der)?;
    let issuer = cert(issuer_der)?;
    let alg = tlv(0x30, &[tlv(0x06, OID_SHA1), vec![0x05, 0x00]].concat());
    let name_hash = tlv(
        0x04,
        &digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            issuer.subject().as_raw(),
        ),
    );
    let key_hash = tlv(
        0x04,
        &digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            issuer_key_bits(&issuer),
        ),
    );
    let serial = tlv(0x02, c.raw_serial());
    let cert_id = tlv(0x30, &[alg, name_hash, key_hash, serial].concat());
    let request = tlv(0x30, &cert_id);
    let request_list = tlv(0x30, &request);
    let tbs = tlv(0x30, &request_list);
    Ok(tlv(0x30, &tbs))
}

/// Whether a CertID (its content) names `cert` issued by `issuer`.
fn cert_id_matches(
    content: &[u8],
    c: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<bool, OcspError> {
    let (alg, rest) = expect(content, 0x30, "CertID hash algorithm")?;
    let (oid, _) = expect(alg.content, 0x06, "CertID hash algorithm OID")?;
    let hash: &'static ring::digest::Algorithm = match oid.content {
        OID_SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        OID_SHA256 => &ring::digest::SHA256,
        _ => return Ok(false),
    };
    let (name_hash, rest) = expect(rest, 0x04, "CertID issuerNameHash")?;
    let (key_hash, rest) = expect(rest, 0x04, "CertID issuerKeyHash")?;
    let (serial, _) = expect(rest, 0x02, "CertID serialNumber")?;
    Ok(
        name_hash.content == digest(hash, issuer.subject().as_raw()).as_slice()
            && key_hash.content == digest(hash, issuer_key_bits(issuer)).as_slice()
            && serial.content == c.raw_serial(),
    )
}

fn is_ocsp_signer(responder: &X509Certificate<'_>) -> bool {
    responder
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.ocsp_signing)
}

/// Checks an OCSP response for `cert` issued by `issuer` at Unix time `at` and returns what it
/// says. Freshness (`nextUpdate`) is the caller's policy; validity of a delegated responder's
/// certificate at `at` is checked here.
pub fn check_ocsp_response(
    response: &[u8],
    cert_der: &[u8],
    issuer_der: &[u8],
    at: i64,
) -> Result<OcspAnswer, OcspError> {
    let c = cert(cert_der)?;
    let issuer = cert(issuer_der)?;

    let (outer, _) = expect(response, 0x30, "OCSPResponse")?;
    let (status, rest) = expect(outer.content, 0x0a, "responseStatus")?;
    match status.content {
        [0] => {}
        [1] => return Err(OcspError::Responder("malformedRequest")),
        [2] => return Err(OcspError::Responder("internalError")),
        [3] => return Err(OcspError::Responder("tryLater")),
        [5] => return Err(OcspError::Responder("sigRequired")),
        [6] => return Err(OcspError::Responder("unauthorized")),
        _ => return Err(OcspError::Responder("an unknown status")),
    }
    let (bytes, _) = expect(rest, 0xa0, "responseBytes")?;
    let (bytes, _) = expect(bytes.content, 0x30, "ResponseBytes")?;
    let (kind, rest) = expect(bytes.content, 0x06, "responseType")?;
    if kind.content != OID_OCSP_BASIC {
        return Err(OcspError::Malformed(
            "responseType is not id-pkix-ocsp-basic",
        ));
    }
    let (basic, _) = expect(rest, 0x04, "response OCTET STRING")?;
    let (basic, _) = expect(basic.content, 0x30, "BasicOCSPResponse")?;
    let (tbs, rest) = expect(basic.content, 0x30, "tbsResponseData")?;
    let (sig_alg, rest) = read(rest)?;
    let (_, sig_alg) = AlgorithmIdentifier::from_der(sig_alg.whole)
        .map_err(|_| OcspError::Malformed("signatureAlgorithm"))?;
    let (sig_value, rest) = expect(rest, 0x03, "signature")?;
    let (&unused_bits, bits) = sig_value
        .content
        .split_first()
        .ok_or(OcspError::Malformed("signature"))?;
    let bit_string = x509_parser::asn1_rs::BitString::new(unused_bits, bits);

    // The issuer signs, or a responder the issuer authorized for OCSP signing.
    let verifies = |key: &x509_parser::x509::SubjectPublicKeyInfo<'_>| {
        x509_parser::verify::verify_signature(key, &sig_alg, &bit_string, tbs.whole).is_ok()
    };
    let mut signed = verifies(issuer.public_key());
    if !signed && !rest.is_empty() {
        let (certs, _) = expect(rest, 0xa0, "certs")?;
        let (sequence, _) = expect(certs.content, 0x30, "certs SEQUENCE")?;
        let mut list = sequence.content;
        while !list.is_empty() && !signed {
            let (one, next) = read(list)?;
            list = next;
            let Ok((_, responder)) = X509Certificate::from_der(one.whole) else {
                continue;
            };
            let valid_now = responder.validity().not_before.timestamp() <= at
                && at <= responder.validity().not_after.timestamp();
            signed = valid_now
                && responder.issuer().as_raw() == issuer.subject().as_raw()
                && responder
                    .verify_signature(Some(issuer.public_key()))
                    .is_ok()
                && is_ocsp_signer(&responder)
                && verifies(responder.public_key());
        }
    }
    if !signed {
        return Err(OcspError::BadSignature);
    }

    let mut fields = tbs.content;
    let (first, rest) = read(fields)?;
    fields = if first.tag == 0xa0 { rest } else { fields }; // version
    let (responder_id, rest) = read(fields)?;
    if responder_id.tag != 0xa1 && responder_id.tag != 0xa2 {
        return Err(OcspError::Malformed("responderID"));
    }
    let (produced, rest) = expect(rest, 0x18, "producedAt")?;
    let produced_at = generalized_time(produced.content)?;
    let (responses, _) = expect(rest, 0x30, "responses")?;
    let mut list = responses.content;
    while !list.is_empty() {
        let (single, next) = expect(list, 0x30, "SingleResponse")?;
        list = next;
        let (cert_id, rest) = expect(single.content, 0x30, "CertID")?;
        if !cert_id_matches(cert_id.content, &c, &issuer)? {
            continue;
        }
        let (status, rest) = read(rest)?;
        let status = match status.tag {
            0x80 => OcspStatus::Good,
            0xa1 => {
                let (when, _) = expect(status.content, 0x18, "revocationTime")?;
                OcspStatus::Revoked {
                    at: generalized_time(when.content)?,
                }
            }
            0x82 => OcspStatus::Unknown,
            _ => return Err(OcspError::Malformed("certStatus")),
        };
        let (this_update, rest) = expect(rest, 0x18, "thisUpdate")?;
        let this_update = generalized_time(this_update.content)?;
        let next_update = match read(rest) {
            Ok((t, _)) if t.tag == 0xa0 => {
                let (time, _) = expect(t.content, 0x18, "nextUpdate")?;
                Some(generalized_time(time.content)?)
            }
            _ => None,
        };
        return Ok(OcspAnswer {
            status,
            produced_at,
            this_update,
            next_update,
        });
    }
    Err(OcspError::NotForThisCertificate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times() {
        assert_eq!(generalized_time(b"19700101000000Z"), Ok(0));
        assert_eq!(generalized_time(b"20261123120000Z"), Ok(1_795_435_200));
        assert_eq!(generalized_time(b"20000229235959Z"), Ok(951_868_799));
        assert!(generalized_time(b"20261323120000Z").is_err());
        assert!(generalized_time(b"2026112312000Z").is_err());
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let encoded = tlv(0x04, &content);
            let (t, rest) = read(&encoded).expect("reads back");
            assert_eq!((t.tag, t.content.len(), rest.len()), (0x04, len, 0));
        }
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(read(&[0x30, 0x05, 1]).is_err());
    }
}
