#!/usr/bin/env bash
# A large package end to end, each service in a process of its own, and each one's peak memory.
#
#   ./deploy/bench/large-package.sh            # a 500 MB package
#   SIZE_MB=100 ./deploy/bench/large-package.sh
#
# Starts gateway, verifier, translator, router, delivery and ledger as separate
# `lienthong serve` processes on a fresh SQLite store (files for blobs) and the local RabbitMQ,
# with the demo registry (the Government Office receives e-doc.vn, the commune JSON, the province
# edXML). It signs a SIZE_MB package from the province to both, sends it with the CLI (streamed
# from disk), waits until both copies are delivered, fetches the original and each rendition with
# the CLI (streamed to disk), checks the original byte for byte, and prints each process's peak
# resident memory (VmHWM) against the package size, with the time each step took. A second pass
# in the same run reads every attachment into memory (the baseline: what the services did before
# large attachments stayed in the package).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MB="${SIZE_MB:-500}"
./deploy/local/ensure-services >/dev/null
cargo build --release --bin lienthong >/dev/null 2>&1 || cargo build --release --bin lienthong
BIN="$PWD/target/release/lienthong"

run() { # THRESHOLD LABEL: one pass; prints its steps and appends "role kb" lines to $results
threshold="$1"
label="$2"
work=$(mktemp -d)
prefix="lt-bench-$$-$label"
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$prefix\." || true); do
    rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/lienthong.toml" <<TOML
[store]
url = "sqlite://$work/lienthong.db"
blobs = { kind = "files", dir = "$work/blobs" }
large_attachment_bytes = $threshold

[bus]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
prefix = "$prefix"
queue_type = "classic"

[gateway]
listen = "127.0.0.1:$port"
document_stages = ["verifier", "translator", "router"]
max_package_bytes = $(( (SIZE_MB + 64) * 1024 * 1024 ))

[registry]
seed = "$PWD/config/demo/agencies.json"

[verifier]
trust_dir = "$PWD/config/demo/trust"
bus_organ_id = "000.00.05.H49"

[translator]
bus_organ_id = "000.00.05.H49"
TOML
cfg="$work/lienthong.toml"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# The registry and the systems first (one process creates the schema).
export RUST_LOG=warn
"$BIN" admin --config "$cfg" registry-import config/demo/agencies.json >/dev/null
"$BIN" admin --config "$cfg" system-add hue --name "UBND tỉnh" --organ 000.00.00.H49 --secret s-hue >/dev/null
"$BIN" admin --config "$cfg" system-add vpcp --name VPCP --organ 000.00.00.G22 --secret s-vpcp >/dev/null
"$BIN" admin --config "$cfg" system-add xa --name "UBND xã" --organ 000.12.05.H49 --secret s-xa >/dev/null

declare -A pid_of
for role in gateway verifier translator router delivery ledger; do
  "$BIN" serve --config "$cfg" "$role" >"$work/$role.log" 2>&1 &
  pid_of[$role]=$!
  pids+=($!)
done
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

# A package of about SIZE_MB: the attachment's base64 makes up nearly all of it.
t=$(now)
"$BIN" sample --from 000.00.00.H49 --to 000.00.00.G22 --to 000.12.05.H49 --number 1 \
  --attachment-bytes $((SIZE_MB * 1000000 * 3 / 4)) -o "$work/big.edxml"
"$BIN" sign "$work/big.edxml" --key tests/vectors/xmldsig/keys/signer.key \
  --cert tests/vectors/xmldsig/keys/signer.pem -o "$work/big.signed.edxml" >/dev/null
size=$(stat -c %s "$work/big.signed.edxml")
echo "package: $size bytes, signed ($(since "$t") to make)"

export LIENTHONG_URL="http://127.0.0.1:$port"
as() { LIENTHONG_SYSTEM_ID="$1" LIENTHONG_SECRET="s-$1" "$BIN" "${@:2}"; }
t=$(now)
doc=$(as hue send "$work/big.signed.edxml")
echo "sent (accepted, spooled, stored): $(since "$t")"
t=$(now)
until as hue sent "$doc" | grep -q '"delivery": "delivered"' &&
      ! as hue sent "$doc" | grep -Eq '"delivery": "(accepted|routed)"'; do
  if as hue sent "$doc" | grep -q '"delivery": "failed"'; then
    echo "delivery failed:"; as hue sent "$doc"; exit 1
  fi
  sleep 0.5
done
echo "verified, translated (e-doc.vn, JSON, edXML), routed, delivered: $(since "$t")"
t=$(now)
as vpcp fetch "$doc" -o "$work/original.edxml" >/dev/null
cmp -s "$work/original.edxml" "$work/big.signed.edxml" && echo "original fetched byte for byte: $(since "$t")"
t=$(now)
as vpcp fetch "$doc" -o "$work/vpcp.mime" --rendition >/dev/null
as xa fetch "$doc" -o "$work/xa.json" --rendition >/dev/null
echo "renditions fetched: e-doc.vn $(stat -c %s "$work/vpcp.mime") bytes, JSON $(stat -c %s "$work/xa.json") bytes ($(since "$t"))"

for role in gateway verifier translator router delivery ledger; do
  echo "$label $role $(awk '/VmHWM/ { print $2 }' "/proc/${pid_of[$role]}/status") $size" >>"$results"
done
cleanup
trap - EXIT
}

results=$(mktemp)
echo "== attachments over 1 MiB left in the stored package (the default)"
run 1048576 streamed
echo "== baseline, same run: every attachment read into memory (large_attachment_bytes = 1 TiB)"
run 1099511627776 whole
echo
printf "%-11s %16s %16s\n" "service" "streamed" "baseline"
for role in gateway verifier translator router delivery ledger; do
  awk -v r="$role" '
    $2 == r && $1 == "streamed" { s = $3; size = $4 }
    $2 == r && $1 == "whole" { w = $3 }
    END { printf "%-11s %7.1f MB %5.2fx %7.1f MB %5.2fx\n", r, s / 1024, s * 1024 / size, w / 1024, w * 1024 / size }' "$results"
done
echo "(peak resident memory, VmHWM, and as a multiple of the package size)"
rm -f "$results"
