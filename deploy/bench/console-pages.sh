#!/usr/bin/env bash
# The console's pages at national scale: on the store the search benchmark seeded
# (`cargo bench -p lienthong-store --bench search [-- DOCUMENTS]`, which leaves
# target/bench-search/search.db), runs the gateway and the console, signs in, and times each
# page (median of 7, milliseconds) against the same request made to the gateway's /admin API
# directly (the baseline, in the same run): what the console adds is the difference.
#
#   ./deploy/bench/console-pages.sh [path/to/search.db]
set -euo pipefail
cd "$(dirname "$0")/../.."
db=${1:-target/bench-search/search.db}
[ -f "$db" ] || { echo "no $db: run cargo bench -p lienthong-store --bench search first" >&2; exit 2; }
./deploy/local/ensure-services >/dev/null
cargo build --release --bin lienthong -q
bin=./target/release/lienthong

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw_port=$(free_port); console_port=$(free_port)
token=$(python3 -c "import secrets; print(secrets.token_hex(32))")
digest=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
password="bench-password-$(date +%s)"
user_entry=$(printf '%s\n' "$password" | $bin admin console-user bench --role operator --password-stdin --iterations 10000)
cat > "$work/bench.toml" <<EOF
[store]
url = "sqlite://$(realpath "$db")"
blobs = { kind = "files", dir = "$work/blobs" }
[bus]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
prefix = "bench-console-$$"
queue_type = "classic"
[gateway]
listen = "127.0.0.1:$gw_port"
operator_tokens_sha256 = ["$digest"]
security_tokens_sha256 = ["$digest"]
[console]
listen = "127.0.0.1:$console_port"
operator_token = "$token"
security_token = "$token"
$user_entry
EOF
$bin serve --config "$work/bench.toml" gateway console >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$console_port/healthz" >/dev/null && break; sleep 1; done

gw="http://127.0.0.1:$gw_port"
console="http://127.0.0.1:$console_port"
curl -s -c "$work/jar" -o /dev/null --data-urlencode "name=bench" --data-urlencode "password=$password" "$console/login"
newest=$(curl -s -H "Authorization: Bearer $token" "$gw/admin/documents?limit=1")
doc=$(printf '%s' "$newest" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"][0]; print(d["docId"])')
agency=$(printf '%s' "$newest" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"][0]; print(d["from"])')
documents=$(curl -s -H "Authorization: Bearer $token" "$gw/admin/documents?docId=$doc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
next=$(curl -s -H "Authorization: Bearer $token" "$gw/admin/documents?agency=$agency" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"] or "")')
day=$(python3 -c 'import time; print(time.strftime("%Y/%m/%d", time.gmtime(1767225600 + 86400 * 180)))')

median_ms() { # url [curl args...]
  local url=$1; shift
  for _ in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w '%{time_total}\n' "$@" "$url"; done |
    sort -n | sed -n 4p | awk '{ printf "%.2f", $1 * 1000 }'
}

echo "store: $db; newest document $doc from $agency (found: $documents)"
printf '\nmedian of 7 runs, milliseconds\n%-34s %12s %12s\n' "page" "gateway API" "console"
while IFS='|' read -r label api page; do
  a=$(median_ms "$gw$api" -H "Authorization: Bearer $token")
  c=$(median_ms "$console$page" -b "$work/jar")
  printf '%-34s %12s %12s\n' "$label" "$a" "$c"
done <<EOF
newest documents|/admin/documents|/documents
by docId|/admin/documents?docId=$doc|/documents?docId=$doc
by agency|/admin/documents?agency=$agency|/documents?agency=$agency
by agency, next page|/admin/documents?agency=$agency&before=$next|/documents?agency=$agency&before=$next
one day|/admin/documents?fromDate=$day&toDate=$day|/documents?fromDate=$day&toDate=$day
a document's trace|/admin/documents/$doc/trace|/documents/$doc
failed deliveries|/admin/failed?limit=200|/failed
audit log|/admin/audit?limit=500|/audit
EOF
