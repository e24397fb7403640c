//! Just enough DER for OCSP and for reading a certificate's public key without a full parse.

use crate::revocation::OcspError;

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// One element: its tag, its content, the whole encoding, and what follows.
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub whole: &'a [u8],
}

pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), OcspError> {
    let bad = OcspError::Malformed("truncated DER");
    let (&tag, rest) = input.split_first().ok_or(bad.clone())?;
    if tag & 0x1f == 0x1f {
        return Err(OcspError::Malformed("multi-byte tags are not used in OCSP"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(bad.clone())?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(OcspError::Malformed("bad DER length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(bad);
    }
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            content,
            whole: &input[..header + len],
        },
        after,
    ))
}

pub(crate) fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), OcspError> {
    let (t, rest) = read(input)?;
    if t.tag != tag {
        return Err(OcspError::Malformed(what));
    }
    Ok((t, rest))
}

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A certificate's public key, read straight from the DER (subjectPublicKeyInfo).
pub(crate) struct PublicKeyBits<'a> {
    /// The key's BIT STRING content, without the unused-bits byte: what ring verifies with.
    pub key: &'a [u8],
    /// Modulus size when the key is RSA.
    pub rsa_bits: Option<usize>,
}

pub(crate) fn public_key(cert: &[u8]) -> Result<PublicKeyBits<'_>, OcspError> {
    let (cert, _) = expect(cert, 0x30, "Certificate")?;
    let (tbs, _) = expect(cert.content, 0x30, "tbsCertificate")?;
    let (first, rest) = read(tbs.content)?;
    let rest = if first.tag == 0xa0 {
        expect(rest, 0x02, "serialNumber")?.1
    } else if first.tag == 0x02 {
        rest
    } else {
        return Err(OcspError::Malformed("serialNumber"));
    };
    let (_, rest) = expect(rest, 0x30, "signature")?;
    let (_, rest) = expect(rest, 0x30, "issuer")?;
    let (_, rest) = expect(rest, 0x30, "validity")?;
    let (_, rest) = expect(rest, 0x30, "subject")?;
    let (spki, _) = expect(rest, 0x30, "subjectPublicKeyInfo")?;
    let (algorithm, rest) = expect(spki.content, 0x30, "algorithm")?;
    let (oid, _) = expect(algorithm.content, 0x06, "algorithm OID")?;
    let (bits, _) = expect(rest, 0x03, "subjectPublicKey")?;
    let key = match bits.content.split_first() {
        Some((0, key)) => key,
        _ => return Err(OcspError::Malformed("subjectPublicKey")),
    };
    let rsa_bits = if oid.content == OID_RSA_ENCRYPTION {
        let (rsa, _) = expect(key, 0x30, "RSAPublicKey")?;
        let (modulus, _) = expect(rsa.content, 0x02, "modulus")?;
        let n = modulus.content;
        let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
        let n = &n[start..];
        Some(match n.first() {
            Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
            None => 0,
        })
    } else {
        None
    };
    Ok(PublicKeyBits { key, rsa_bits })
}
