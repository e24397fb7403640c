#!/usr/bin/env bash
# Signature verification throughput: lienthong in-process against `xmlsec1 --verify --repeat N`,
# on the same packages (signed by xmlsec1 with the test PKI), about 20 KB and about 5 MB, in the
# same run. Then the peak memory of verifying one 50 MB package.
#   ./deploy/bench/verify-vs-xmlsec1.sh [N_SMALL] [N_LARGE]
set -euo pipefail
cd "$(dirname "$0")/../.."
n_small=${1:-1000}
n_large=${2:-10}
keys=tests/vectors/xmldsig/keys
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v xmlsec1 >/dev/null || { echo "xmlsec1 is needed: apt-get install xmlsec1" >&2; exit 1; }
cargo build --release --bin lienthong -q
cargo bench -p lienthong-xmldsig --bench verify --no-run -q 2>/dev/null
bench=$(ls -t target/release/deps/verify-* | grep -v '\.d$' | head -1)
mkdir -p "$work/trust" && cp $keys/root.pem "$work/trust/"

make_signed() { # name attachment-bytes
  ./target/release/lienthong sample --from 000.00.00.H49 --to 000.00.00.G22 --number 1 \
    --attachment-bytes "$2" -o "$work/$1.plain"
  python3 - "$work/$1.plain" "$work/$1.tpl" <<'PY'
import sys
t = open(sys.argv[1], encoding="utf-8").read()
sig = ('<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>'
       '<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
       '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
       '<Reference URI=""><Transforms><Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></Transforms>'
       '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference></SignedInfo>'
       '<SignatureValue/><KeyInfo><X509Data/></KeyInfo></Signature>')
open(sys.argv[2], "w", encoding="utf-8").write(t.replace("</MessageHeader>", "</MessageHeader>" + sig, 1))
PY
  xmlsec1 --sign --privkey-pem "$keys/signer.key,$keys/signer.pem" --output "$work/$1.edxml" "$work/$1.tpl"
}

run() { # name n
  local f="$work/$1.edxml" n=$2 size
  size=$(stat -c %s "$f")
  local t0 t1
  t0=$(date +%s.%N)
  xmlsec1 --verify --repeat "$n" --trusted-pem "$keys/root.pem" "$f" >/dev/null 2>&1
  t1=$(date +%s.%N)
  local x ours
  x=$(python3 -c "print(f'{$n/($t1-$t0):.1f}')")
  ours=$("$bench" "$f" "$work/trust" "$n")
  local l
  l=$(echo "$ours" | sed -n 's/.* = \([0-9.]*\) packages\/s.*/\1/p')
  echo "$size bytes: xmlsec1 $x packages/s | $ours"
  python3 -c "print(f'  ratio lienthong/xmlsec1: {$l/$x:.2f}x')"
}

make_signed small 12000
make_signed large 3600000
run small "$n_small"
run large "$n_large"

make_signed huge 37000000
peak=$( { /usr/bin/time -v "$bench" "$work/huge.edxml" "$work/trust" 1 >/dev/null; } 2>&1 | sed -n 's/.*Maximum resident set size (kbytes): //p')
echo "$(stat -c %s "$work/huge.edxml") bytes: peak RSS verifying once: ${peak} KiB"
