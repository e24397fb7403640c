#!/usr/bin/env bash
# Signature verification throughput: lienthong in-process against `xmlsec1 --verify --repeat N`,
# on the same packages (signed by xmlsec1 with the test PKI), about 20 KB and about 5 MB, in the
# same run. Then the peak memory of verifying one 50 MB package.
#   ./deploy/bench/verify-vs-xmlsec1.sh [N_SMALL] [N_LARGE]      (ROUNDS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
n_small=${1:-2000}
n_large=${2:-200}
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

# One round times xmlsec1 then lienthong on the same file; ROUNDS rounds alternate the two so that
# both see the same machine (a shared host's speed drifts), and the medians are compared.
rounds=${ROUNDS:-5}
run() { # name n
  local f="$work/$1.edxml" n=$2 size xs=() ls=() t0 t1 ours
  size=$(stat -c %s "$f")
  for _ in $(seq 1 "$rounds"); do
    t0=$(date +%s.%N)
    xmlsec1 --verify --repeat "$n" --trusted-pem "$keys/root.pem" "$f" >/dev/null 2>&1
    t1=$(date +%s.%N)
    xs+=("$(python3 -c "print($n/($t1-$t0))")")
    ours=$("$bench" "$f" "$work/trust" "$n")
    ls+=("$(echo "$ours" | sed -n 's/.* = \([0-9.]*\) packages\/s.*/\1/p')")
  done
  python3 - "$size" "${xs[*]}" "${ls[*]}" <<'PY'
import statistics, sys
size = int(sys.argv[1])
x = [float(v) for v in sys.argv[2].split()]
l = [float(v) for v in sys.argv[3].split()]
mx, ml = statistics.median(x), statistics.median(l)
print(f"{size} bytes, median of {len(x)} rounds: xmlsec1 {mx:.1f} packages/s | "
      f"lienthong {ml:.1f} packages/s ({ml * size / 1e6:.0f} MB/s) | ratio {ml / mx:.2f}x")
print(f"  per round, ratio: {' '.join(f'{b / a:.2f}' for a, b in zip(x, l))}")
PY
}

make_signed small 12000
make_signed large 3600000
run small "$n_small"
run large "$n_large"

make_signed huge 37000000
peak=$( { /usr/bin/time -v "$bench" "$work/huge.edxml" "$work/trust" 1 >/dev/null; } 2>&1 | sed -n 's/.*Maximum resident set size (kbytes): //p')
echo "$(stat -c %s "$work/huge.edxml") bytes: peak RSS verifying once: ${peak} KiB"
