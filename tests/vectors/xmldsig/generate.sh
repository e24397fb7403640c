#!/usr/bin/env bash
# Regenerates the cross-implementation XML-DSig vectors: packages signed by xmlsec1 (libxmlsec1,
# an independent implementation) with test keys made here by openssl. The signxml and JDK vectors
# have their own generators beside this one (generate-signxml.py, GenerateJdk.java). The outputs are committed;
# run this again only to change them (needs: openssl, xmlsec1, and a built `lienthong` binary).
set -euo pipefail
cd "$(dirname "$0")"
BIN=${LIENTHONG_BIN:-../../../target/debug/lienthong}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

issue() { # name keyopts subject
  openssl req -new -newkey "$2" -nodes -keyout "keys/$1.key" -out "$work/$1.csr" -subj "$3" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n' > "$work/ext"
  openssl x509 -req -in "$work/$1.csr" -CA keys/root.pem -CAkey keys/root.key -CAcreateserial \
    -out "keys/$1.pem" -days 3650 -sha256 -extfile "$work/ext" 2>/dev/null
  rm -f keys/root.srl
}

mkdir -p keys
if [ ! -f keys/root.pem ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout keys/root.key -out keys/root.pem -days 7300 \
    -subj "/C=VN/O=Test Government CA/CN=Test Root CA" -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  issue signer rsa:2048 "/C=VN/O=UBND tinh Thua Thien Hue/CN=Van thu UBND tinh"
  issue ec-signer ec:<(openssl ecparam -name prime256v1) "/C=VN/O=UBND tinh Thua Thien Hue/CN=Van thu EC"
  issue weak-signer rsa:1024 "/C=VN/O=Test/CN=Weak key"
  issue other-signer rsa:2048 "/C=VN/O=Test/CN=Someone else"
fi
# Added later: a P-384 signer (used by the signxml vectors).
[ -f keys/ec384-signer.pem ] || issue ec384-signer ec:<(openssl ecparam -name secp384r1) "/C=VN/O=So Noi vu/CN=Van thu P-384"

# A CRL from the root that revokes other-signer (and not signer).
if [ ! -f keys/root.crl.pem ]; then
  : > "$work/index.txt"; echo 01 > "$work/crlnumber"
  cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = test
[ test ]
database = $work/index.txt
crlnumber = $work/crlnumber
default_md = sha256
default_crl_days = 30
CNF
  openssl ca -config "$work/ca.cnf" -keyfile keys/root.key -cert keys/root.pem -revoke keys/other-signer.pem 2>/dev/null
  openssl ca -config "$work/ca.cnf" -keyfile keys/root.key -cert keys/root.pem -gencrl -out keys/root.crl.pem 2>/dev/null
fi

"$BIN" sample --from 000.00.00.H49 --to 000.00.00.G22 --to 000.12.05.H49 --number 2024 \
  --attachment-bytes 3000 -o "$work/package.edxml"
# A comment in the header: signatures over URI="" never include comments.
sed -i 's#<MessageHeader>#<MessageHeader><!-- vào sổ -->#' "$work/package.edxml"

DS=http://www.w3.org/2000/09/xmldsig#
C14N=http://www.w3.org/TR/2001/REC-xml-c14n-20010315
EXC=http://www.w3.org/2001/10/xml-exc-c14n#
MORE=http://www.w3.org/2001/04/xmldsig-more#

template() { # out prefix sigalg c14n refc14n digest [prefixlist]
  local p=$2 pre="" inc=""
  [ -n "$p" ] && pre="$p:"
  [ -n "${7:-}" ] && inc="<ec:InclusiveNamespaces xmlns:ec=\"$EXC\" PrefixList=\"$7\"/>"
  local reft=""
  [ -n "$5" ] && reft="<${pre}Transform Algorithm=\"$5\">$([ "$5" = "$EXC" ] && echo "$inc" || true)</${pre}Transform>"
  local ns="xmlns=\"$DS\""
  [ -n "$p" ] && ns="xmlns:$p=\"$DS\""
  local sig="<${pre}Signature $ns><${pre}SignedInfo><${pre}CanonicalizationMethod Algorithm=\"$4\">$([ "$4" = "$EXC" ] && echo "$inc" || true)</${pre}CanonicalizationMethod><${pre}SignatureMethod Algorithm=\"$3\"/><${pre}Reference URI=\"\"><${pre}Transforms><${pre}Transform Algorithm=\"${DS}enveloped-signature\"/>$reft</${pre}Transforms><${pre}DigestMethod Algorithm=\"$6\"/><${pre}DigestValue/></${pre}Reference></${pre}SignedInfo><${pre}SignatureValue/><${pre}KeyInfo><${pre}X509Data/></${pre}KeyInfo></${pre}Signature>"
  python3 - "$work/package.edxml" "$1" "$sig" <<'PY'
import sys
src, out, sig = sys.argv[1:]
text = open(src, encoding="utf-8").read()
open(out, "w", encoding="utf-8").write(text.replace("</MessageHeader>", "</MessageHeader>" + sig, 1))
PY
}

sign() { # name key template
  xmlsec1 --sign --privkey-pem "keys/$2.key,keys/$2.pem" --output "$1.edxml" "$3"
}

template "$work/t1" "" "${MORE}rsa-sha256" "$C14N" "" "http://www.w3.org/2001/04/xmlenc#sha256"
sign xmlsec1-rsa-sha256-c14n signer "$work/t1"
template "$work/t2" "" "${DS}rsa-sha1" "$C14N" "$C14N" "${DS}sha1"
sign xmlsec1-rsa-sha1-c14n signer "$work/t2"
template "$work/t3" "" "${MORE}rsa-sha256" "$EXC" "$EXC" "http://www.w3.org/2001/04/xmlenc#sha256"
sign xmlsec1-rsa-sha256-exc-c14n signer "$work/t3"
template "$work/t4" "" "${MORE}ecdsa-sha256" "$C14N" "" "http://www.w3.org/2001/04/xmlenc#sha256"
sign xmlsec1-ecdsa-p256-sha256 ec-signer "$work/t4"
template "$work/t5" "ds" "${MORE}rsa-sha512" "${C14N}#WithComments" "" "http://www.w3.org/2001/04/xmlenc#sha512"
sign xmlsec1-rsa-sha512-prefixed-with-comments signer "$work/t5"
template "$work/t6" "ds" "${MORE}rsa-sha384" "$EXC" "$EXC" "${MORE}sha384" "#default"
sign xmlsec1-rsa-sha384-exc-inclusive-namespaces signer "$work/t6"
template "$work/t7" "" "${MORE}rsa-sha256" "$C14N" "" "http://www.w3.org/2001/04/xmlenc#sha256"
sign xmlsec1-weak-rsa-1024 weak-signer "$work/t7"
sign xmlsec1-revoked-signer other-signer "$work/t1"

# XPointer references keep comments (XML-DSig 4.3.3.3), unlike URI="" and "#id".
xpointer() { # out uri [root-id]
  python3 - "$work/package.edxml" "$1" "$2" "${3:-}" <<'PY'
import sys
src, out, uri, root_id = sys.argv[1:]
ds = "http://www.w3.org/2000/09/xmldsig#"
sig = (f'<Signature xmlns="{ds}"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
       f'<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><Reference URI="{uri}"><Transforms>'
       f'<Transform Algorithm="{ds}enveloped-signature"/><Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"/></Transforms>'
       f'<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference></SignedInfo>'
       f'<SignatureValue/><KeyInfo><X509Data/></KeyInfo></Signature>')
text = open(src, encoding="utf-8").read().replace("</MessageHeader>", "</MessageHeader>" + sig, 1)
if root_id:
    text = text.replace("<edXML xmlns=", f'<edXML Id="{root_id}" xmlns=', 1)
open(out, "w", encoding="utf-8").write(text)
PY
}
xpointer "$work/t8" "#xpointer(/)"
sign xmlsec1-xpointer-root-with-comments signer "$work/t8"
xpointer "$work/t9" "#xpointer(id('edoc-9'))" edoc-9
xmlsec1 --sign --id-attr:Id edXML --privkey-pem keys/signer.key,keys/signer.pem \
  --output xmlsec1-xpointer-id-with-comments.edxml "$work/t9"

for f in xmlsec1-*.edxml; do
  case "$f" in *weak* | *revoked*) continue ;; esac
  xmlsec1 --verify --id-attr:Id edXML --trusted-pem keys/root.pem "$f" >/dev/null 2>&1 || { echo "xmlsec1 cannot verify its own $f" >&2; exit 1; }
done
echo "vectors written"
