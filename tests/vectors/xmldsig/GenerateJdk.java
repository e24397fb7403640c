// Cross-implementation vectors signed by the JDK's XML-DSig (javax.xml.crypto.dsig, Apache
// Santuario inside the JDK), the stack the national Java SDK builds on. The outputs are committed;
// run this again only to change them (JDK 11 or later, from this directory):
//
//     java GenerateJdk.java
//
// The unsigned package is the xmlsec1 vector with its signature removed. The signature is appended
// to edXMLHeader, where QCVN 102:2016 puts it.

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import javax.xml.crypto.dsig.CanonicalizationMethod;
import javax.xml.crypto.dsig.DigestMethod;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.SignedInfo;
import javax.xml.crypto.dsig.Transform;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMSignContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.KeyInfoFactory;
import javax.xml.crypto.dsig.spec.C14NMethodParameterSpec;
import javax.xml.crypto.dsig.spec.ExcC14NParameterSpec;
import javax.xml.crypto.dsig.spec.TransformParameterSpec;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

public class GenerateJdk {
    static final String DS = XMLSignature.XMLNS;
    static final String ED = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

    public static void main(String[] args) throws Exception {
        sign("rsa-sha256-c14n", "signer", "RSA", SignatureMethod.RSA_SHA256, DigestMethod.SHA256,
                CanonicalizationMethod.INCLUSIVE, null, false);
        // The national SDK still emits SHA-1: accepted with a recorded warning unless refused by policy.
        sign("rsa-sha1-c14n", "signer", "RSA", SignatureMethod.RSA_SHA1, DigestMethod.SHA1,
                CanonicalizationMethod.INCLUSIVE, null, false);
        sign("ecdsa-p256-sha256-exc-c14n-inclusive-namespaces", "ec-signer", "EC",
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", DigestMethod.SHA256,
                CanonicalizationMethod.EXCLUSIVE, List.of("#default"), false);
        sign("rsa-sha512-id-reference", "signer", "RSA", SignatureMethod.RSA_SHA512, DigestMethod.SHA512,
                CanonicalizationMethod.EXCLUSIVE, null, true);
    }

    static Document unsigned() throws Exception {
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        dbf.setNamespaceAware(true);
        dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        Document doc;
        try (FileInputStream in = new FileInputStream("xmlsec1-rsa-sha256-c14n.edxml")) {
            doc = dbf.newDocumentBuilder().parse(in);
        }
        Node sig = doc.getElementsByTagNameNS(DS, "Signature").item(0);
        Node before = sig.getPreviousSibling();
        sig.getParentNode().removeChild(sig);
        // xmlsec1's template sat right after MessageHeader; put the whitespace back the way it was.
        if (before != null && before.getNodeType() == Node.TEXT_NODE && before.getTextContent().isBlank()) {
            before.getParentNode().removeChild(before);
        }
        return doc;
    }

    static void sign(String name, String key, String keyAlg, String sigAlg, String digestAlg, String c14n,
            List<String> prefixes, boolean idReference) throws Exception {
        Document doc = unsigned();
        Element root = doc.getDocumentElement();
        String uri = "";
        if (idReference) {
            root.setAttributeNS(null, "Id", "edoc-2024");
            root.setIdAttributeNS(null, "Id", true);
            uri = "#edoc-2024";
        }
        XMLSignatureFactory f = XMLSignatureFactory.getInstance("DOM");
        List<Transform> transforms = new ArrayList<>();
        transforms.add(f.newTransform(Transform.ENVELOPED, (TransformParameterSpec) null));
        C14NMethodParameterSpec spec = prefixes == null ? null : new ExcC14NParameterSpec(prefixes);
        if (c14n.equals(CanonicalizationMethod.EXCLUSIVE)) {
            transforms.add(f.newTransform(c14n, (TransformParameterSpec) spec));
        }
        Reference ref = f.newReference(uri, f.newDigestMethod(digestAlg, null), transforms, null, null);
        SignedInfo si = f.newSignedInfo(f.newCanonicalizationMethod(c14n, spec),
                f.newSignatureMethod(sigAlg, null), List.of(ref));

        X509Certificate cert;
        try (FileInputStream in = new FileInputStream("keys/" + key + ".pem")) {
            cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        String pem = Files.readString(Path.of("keys/" + key + ".key"));
        byte[] der = Base64.getMimeDecoder().decode(
                pem.replaceAll("-----[A-Z ]+-----", ""));
        PrivateKey priv = KeyFactory.getInstance(keyAlg).generatePrivate(new PKCS8EncodedKeySpec(der));

        KeyInfoFactory kif = f.getKeyInfoFactory();
        KeyInfo ki = kif.newKeyInfo(List.of(kif.newX509Data(List.of(cert))));
        Element header = (Element) doc.getElementsByTagNameNS(ED, "edXMLHeader").item(0);
        DOMSignContext ctx = new DOMSignContext(priv, header);
        ctx.setDefaultNamespacePrefix("ds");
        f.newXMLSignature(si, ki).sign(ctx);

        File out = new File("jdk-" + name + ".edxml");
        try (FileOutputStream o = new FileOutputStream(out)) {
            TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(o));
        }
        System.out.println("wrote " + out.getName());
    }
}
