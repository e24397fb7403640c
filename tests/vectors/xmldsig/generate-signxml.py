#!/usr/bin/env python3
"""Cross-implementation vectors signed by Python's signxml over lxml (an implementation independent
of both lienthong and xmlsec1). The outputs are committed; run this again only to change them:

    pip install signxml && python3 tests/vectors/xmldsig/generate-signxml.py

The unsigned package is the xmlsec1 vector with its signature removed, so every generation signs the
same letter. The signature goes where QCVN 102:2016 puts it (last child of edXMLHeader), through
signxml's placeholder mechanism.
"""
import pathlib

from lxml import etree
from signxml import XMLSigner, methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

HERE = pathlib.Path(__file__).resolve().parent
KEYS = HERE / "keys"
DS = "http://www.w3.org/2000/09/xmldsig#"
ED = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


def unsigned():
    tree = etree.parse(str(HERE / "xmlsec1-rsa-sha256-c14n.edxml"))
    for sig in tree.getroot().iter(f"{{{DS}}}Signature"):
        sig.getparent().remove(sig)
    return tree.getroot()


def sign(name, key, sig, digest, c14n, prefixed=True):
    root = unsigned()
    header = root.find(f"{{{ED}}}edXMLEnvelope/{{{ED}}}edXMLHeader")
    nsmap = {"ds": DS} if prefixed else {None: DS}
    etree.SubElement(header, f"{{{DS}}}Signature", Id="placeholder", nsmap=nsmap)
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=sig,
        digest_algorithm=digest,
        c14n_algorithm=c14n,
    )
    if not prefixed:
        signer.namespaces = {None: DS}
    signed = signer.sign(
        root,
        key=(KEYS / f"{key}.key").read_bytes(),
        cert=(KEYS / f"{key}.pem").read_text(),
        always_add_key_value=False,
    )
    out = HERE / f"signxml-{name}.edxml"
    out.write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
    print("wrote", out.name)


sign(
    "rsa-sha256-exc-c14n",
    "signer",
    SignatureMethod.RSA_SHA256,
    DigestAlgorithm.SHA256,
    CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
)
sign(
    "rsa-sha512-c14n-default-namespace",
    "signer",
    SignatureMethod.RSA_SHA512,
    DigestAlgorithm.SHA512,
    CanonicalizationMethod.CANONICAL_XML_1_0,
    prefixed=False,
)
sign(
    "ecdsa-p384-sha384",
    "ec384-signer",
    SignatureMethod.ECDSA_SHA384,
    DigestAlgorithm.SHA384,
    CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
)
sign(
    "ecdsa-p256-sha256-c14n",
    "ec-signer",
    SignatureMethod.ECDSA_SHA256,
    DigestAlgorithm.SHA256,
    CanonicalizationMethod.CANONICAL_XML_1_0,
)
# signxml digests the comments of a URI="" reference when asked for a WithComments transform; XML-DSig
# (section 4.3.3.3) removes them from such a node-set first. xmlsec1 and lienthong both refuse this one.
sign(
    "comments-digested-under-empty-uri",
    "signer",
    SignatureMethod.RSA_SHA256,
    DigestAlgorithm.SHA256,
    CanonicalizationMethod.CANONICAL_XML_1_0_WITH_COMMENTS,
)

# signxml as most callers use it: every default (Canonical XML 1.1, RSA-SHA256, the signature
# appended to the root element rather than placed in edXMLHeader).
root = unsigned()
signed = XMLSigner(method=methods.enveloped).sign(
    root,
    key=(KEYS / "signer.key").read_bytes(),
    cert=(KEYS / "signer.pem").read_text(),
)
out = HERE / "signxml-defaults-c14n11-signature-at-root.edxml"
out.write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
print("wrote", out.name)

# XAdES-BES, as signing tools for the national SDK produce: SignedProperties (signing time, signer
# certificate digest) in a ds:Object, referenced from SignedInfo beside the whole package.
from signxml.xades import XAdESSigner  # noqa: E402

root = unsigned()
signed = XAdESSigner().sign(
    root,
    key=(KEYS / "signer.key").read_bytes(),
    cert=(KEYS / "signer.pem").read_text(),
)
out = HERE / "signxml-xades-bes.edxml"
out.write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
print("wrote", out.name)
