#!/usr/bin/env bash
# The bus under load, end to end, against the raw broker ceiling measured in the same run.
#
#   ./deploy/bench/load.sh                 # the three figures of docs/performance.md
#   DOCUMENTS=5000 SIZE=20000 RECIPIENTS=1 WORKERS="1 2 3" ./deploy/bench/load.sh
#   STORE=postgres ./deploy/bench/load.sh  # each bus on a PostgreSQL database of its own
#   KEEP_LOGS=/tmp/load-logs ./deploy/bench/load.sh   # keep the processes' logs
#   TIMELINES=/tmp/timelines ./deploy/bench/load.sh    # every submission of every run, as CSV
#                                          # (due ms, accept ms, submit -> inbox ms, due Unix ms)
#   CHECKPOINT_MS=86400000 BASELINE_CHECKPOINT_MS=86400000 WAL_PAGES=/tmp/pages ./deploy/bench/load.sh
#                                          # checkpoints off, and after each run the pages SQLite
#                                          # wrote per document, by table and index (wal-pages.py)
#   LEDGER=own ./deploy/bench/load.sh      # the ledger in a process of its own, not in each worker
#                                          # (BASELINE_LEDGER=worker keeps it there in the baseline)
#   ONE_PROCESS=1 ./deploy/bench/load.sh   # every role in the gateway's process, as `lienthong up`
#                                          # runs them (the baseline too); no worker processes
#   ONE_PROCESS=1 THREADS=2 BASELINE_ONE_PROCESS=0 BASELINE_THREADS=1 ROUNDS=3 ./deploy/bench/load.sh
#                                          # one process of two threads in turns with a gateway
#                                          # and a worker process of one thread each
#   WORKER_CPU=0.5 WORKERS="1 2 3 4" ./deploy/bench/load.sh
#                                          # each worker process held to half a core (root)
#   OWN_CGROUPS=1 ./deploy/bench/load.sh   # each process in a cgroup of its own (root)
#   FLOOR=1 ./deploy/bench/load.sh         # first the hops alone (lienthong-floor): the floor
#   THREADS= ./deploy/bench/load.sh        # tokio's default threads in each bus process (one
#                                          # per CPU) instead of runtime.worker_threads = 1
#   BASELINE_BIN=/tmp/before ROUNDS=5 ./deploy/bench/load.sh
#                                          # then the baseline and this build in turns, 5 rounds
#                                          # each, and their medians
#   BASELINE_BIN=/tmp/before ROUNDS=5 ROUND_RATE=800 ./deploy/bench/load.sh
#                                          # the rounds scheduled at 800/s: latency in turns
#
# Starts a bus of its own (a fresh SQLite store in a temporary directory, its own queue prefix on
# the local RabbitMQ): one gateway process and worker processes that each run every stage
# (verifier, translator, router, delivery, ledger) as competing consumers. Then, with
# lienthong-load sending signed packages of SIZE bytes over /v1:
#   1. with one worker process, as fast as the bus takes them: documents/s and the fraction of the
#      broker ceiling (persistent messages of the same size, confirms and acks; the median of
#      three measurements of 5,000 messages, each about a second, made one after the other);
#   2. the same bus scheduled at half that rate: latency percentiles from submission to inbox;
#   3. for each count in WORKERS, as fast as the bus takes them: how throughput grows with
#      consumer processes.
# With BASELINE=1 (the default) a first run (as fast as it goes, then at half that rate), on a bus
# of its own, hands every message from stage to stage through the broker (`bus.chain_stages = false`, the design before a process ran its
# stages back to back), so the change is measured against the same broker in the same run.
# BASELINE_CHAIN=true keeps the chain in the baseline, and BASELINE_CACHE=off turns off the
# process's caches of documents and small blobs there (`store.cached_documents = 0`,
# `store.cached_blob_bytes = 0`): the design before them. BASELINE_BIN=PATH runs the baseline
# bus on another build of lienthong (a change that has no switch: build the commit before it,
# copy its target/release/lienthong aside, and name the copy).
# CHECKPOINT_MS sets `store.checkpoint_ms` (SQLite's checkpoints in a task of their own every so
# many ms; 0 leaves them to SQLite, after commits) and BASELINE_CHECKPOINT_MS the baseline's; unset,
# each build's default (a build from before the setting knows no other). SQLITE_SYNCHRONOUS (normal
# or full) and BASELINE_SQLITE_SYNCHRONOUS set `store.sqlite_synchronous` the same way.
# STORE_EXTRA adds lines to the bus's [store] section (for any other setting: say
# STORE_EXTRA='cached_documents = 0'), and BASELINE_STORE_EXTRA to the baseline's (unset:
# the same as STORE_EXTRA). PREFETCH sets `bus.prefetch` (messages each consumer holds at once;
# 128, the default, unless set) and BASELINE_PREFETCH the baseline's.
# HALF_RATE=N schedules the latency runs, the baseline's and the bus's, at N documents/s instead
# of each at half its own rate: both latencies at the same offered load.
# WORKER_CPU=F holds each worker process (the baseline's too) to F of one core, with a CPU quota
# in a cgroup of its own, as a container's CPU limit does (`resources.limits.cpu` in Kubernetes):
# a host where the workers, not the machine, are the limit, to see throughput grow with them.
# It needs root and the kernel's cgroup CPU controller (v1 or v2). After each run it prints how
# often each worker was throttled.
# OWN_CGROUPS=1 runs the gateway, each worker (the ledger's process too) and the load generator
# each in a cgroup of its own, without a limit, as systemd runs each unit and Kubernetes each
# pod: the kernel then shares the CPU between processes, not between their threads.
# FLOOR=1 first drives lienthong-floor the same way: the bus's hops with none of its work (HTTP
# in, the package published with a confirm, a consumer publishing the inbox notice with a confirm
# before its ack; no credential, XML, signature, store or ledger), FLOOR_DOCUMENTS of them (20000).
# No bus with the same interface and promises carries more on this machine. Then the same with the
# documents' work (parse, verify, translate with the bus's code; still nothing stored): what is
# left between that and the bus is the store, the ledger and the stages' orchestration.
# THREADS (1 unless set; empty for tokio's default, one per CPU) is each bus process's
# `runtime.worker_threads`, BASELINE_THREADS the baseline's (THREADS unless set). It is given as
# LIENTHONG_RUNTIME_WORKER_THREADS and as TOKIO_WORKER_THREADS, which builds from before the
# setting honour.
# After each run it prints what a document cost each process (and the broker) per kind of thread:
# CPU time, time runnable but waiting for a CPU, context switches, minor page faults (read from
# /proc), and what a document costs the broker in ceiling messages.
# Every run also checks the recipient's inbox over /v1 (every document exactly once) and fails
# if anything is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
STORE=${STORE:-sqlite}
case $STORE in
sqlite) ./deploy/local/ensure-services ;;
postgres) ./deploy/local/ensure-services --postgres ;;
*)
    echo "STORE is sqlite or postgres, not $STORE" >&2
    exit 2
    ;;
esac
PG=${PG:-postgres://postgres@127.0.0.1:5432}

DOCUMENTS=${DOCUMENTS:-3000}
SIZE=${SIZE:-20000}
RECIPIENTS=${RECIPIENTS:-1}
WORKERS=${WORKERS:-"1 2 3"}
AMQP=${AMQP:-amqp://guest:guest@127.0.0.1:5672/%2f}
CONCURRENCY=${CONCURRENCY:-32}
BASELINE=${BASELINE:-1}
BASELINE_CHAIN=${BASELINE_CHAIN:-false}
BASELINE_CACHE=${BASELINE_CACHE:-on}
CHECKPOINT_MS=${CHECKPOINT_MS:-}
HALF_RATE=${HALF_RATE:-}
BASELINE_CHECKPOINT_MS=${BASELINE_CHECKPOINT_MS:-$CHECKPOINT_MS}
LEDGER=${LEDGER:-worker}
ONE_PROCESS=${ONE_PROCESS:-0}
BASELINE_ONE_PROCESS=${BASELINE_ONE_PROCESS:-$ONE_PROCESS}
WORKER_CPU=${WORKER_CPU:-}
OWN_CGROUPS=${OWN_CGROUPS:-0}
FLOOR=${FLOOR:-0}
FLOOR_DOCUMENTS=${FLOOR_DOCUMENTS:-20000}
THREADS=${THREADS-1}
BASELINE_THREADS=${BASELINE_THREADS-$THREADS}
ROUNDS=${ROUNDS:-0}
ROUND_RATE=${ROUND_RATE:-}
TIMELINES=${TIMELINES:-}
WAL_PAGES=${WAL_PAGES:-}
SQLITE_SYNCHRONOUS=${SQLITE_SYNCHRONOUS:-}
BASELINE_SQLITE_SYNCHRONOUS=${BASELINE_SQLITE_SYNCHRONOUS-$SQLITE_SYNCHRONOUS}
STORE_EXTRA=${STORE_EXTRA:-}
BASELINE_STORE_EXTRA=${BASELINE_STORE_EXTRA-$STORE_EXTRA}
# SQLITE_SYNCHRONOUS is a line of STORE_EXTRA, named for the runs that compare it.
if [[ -n $SQLITE_SYNCHRONOUS ]]; then
    STORE_EXTRA="sqlite_synchronous = \"$SQLITE_SYNCHRONOUS\""$'\n'"$STORE_EXTRA"
fi
if [[ -n $BASELINE_SQLITE_SYNCHRONOUS ]]; then
    BASELINE_STORE_EXTRA="sqlite_synchronous = \"$BASELINE_SQLITE_SYNCHRONOUS\""$'\n'"$BASELINE_STORE_EXTRA"
fi
PREFETCH=${PREFETCH:-128}
BASELINE_PREFETCH=${BASELINE_PREFETCH:-$PREFETCH}
documents=$DOCUMENTS
base_workers=1
if [[ $ONE_PROCESS == 1 ]]; then
    WORKERS=0
    LEDGER=worker
fi
BASELINE_LEDGER=${BASELINE_LEDGER:-$LEDGER}
if [[ $BASELINE_ONE_PROCESS == 1 ]]; then
    BASELINE_LEDGER=worker
    base_workers=0
fi
# Whether the bus being started runs every role in the gateway's process (ONE_PROCESS,
# BASELINE_ONE_PROCESS).
one_process=$ONE_PROCESS

cargo build --release --bin lienthong --bin lienthong-load --bin lienthong-floor
bin=$repo/target/release
# The binary the bus runs; the baseline's may be another build (BASELINE_BIN).
lienthong=$bin/lienthong
BASELINE_BIN=${BASELINE_BIN:-$lienthong}

tmp=$(mktemp -d)
prefix="bench-$$"
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
# The run's queues go with it, so runs do not pile up on the shared broker. (rabbitmqctl reads
# standard input: without </dev/null the first delete swallowed the rest of the list.)
drop_queues() {
    rabbitmqctl list_queues name --quiet 2>/dev/null | grep "^${prefix}[.-]" |
        while read -r q; do rabbitmqctl delete_queue "$q" </dev/null >/dev/null 2>&1 || true; done
}
databases=()
drop_databases() {
    for db in "${databases[@]}"; do psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
}
# KEEP_LOGS=DIR keeps the processes' logs there.
keep_logs() {
    if [[ -n ${KEEP_LOGS:-} ]]; then
        mkdir -p "$KEEP_LOGS"
        cp "$tmp"/*.log "$KEEP_LOGS"/ 2>/dev/null || true
    fi
}
# WORKER_CPU, OWN_CGROUPS: the processes' cgroups, removed at the end (once they are empty).
cgroups=()
cgroup_dir=""
drop_cgroups() {
    for dir in "${cgroups[@]}"; do rmdir "$dir" 2>/dev/null || true; done
}
trap 'stop_all; drop_cgroups; keep_logs; drop_queues; drop_databases; rm -rf "$tmp"' EXIT

gateway_port=18480
# write_config NAME PREFIX CHAIN CACHE CHECKPOINT EXTRA PREFETCH: a bus of its own (store, blobs,
# queue prefix), its systems set up; CACHE on or off; CHECKPOINT `store.checkpoint_ms`, empty for
# the build's default; EXTRA more lines for [store]; PREFETCH `bus.prefetch`. The store is a
# SQLite file, or with STORE=postgres a database.
write_config() {
    local name=$1 bus_prefix=$2 chain=$3 cache=$4 checkpoint=$5 extra=${6:-} prefetch=${7:-128}
    local store_extra="" url="sqlite://$tmp/$name.db"
    if [[ $STORE == postgres ]]; then
        # A database of its own, dropped at the end.
        local db="${name}_$$"
        psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
        databases+=("$db")
        url="$PG/$db"
    fi
    if [[ $cache == off ]]; then store_extra=$'cached_documents = 0\ncached_blob_bytes = 0'; fi
    if [[ -n $checkpoint ]]; then store_extra+=$'\n'"checkpoint_ms = $checkpoint"; fi
    if [[ -n $extra ]]; then store_extra+=$'\n'"$extra"; fi
    cat >"$tmp/$name.toml" <<EOF
[store]
url = "$url"
blobs = { kind = "files", dir = "$tmp/$name-blobs" }
$store_extra

[bus]
url = "$AMQP"
prefix = "$bus_prefix"
queue_type = "quorum"
prefetch = $prefetch
chain_stages = $chain

[gateway]
listen = "127.0.0.1:$gateway_port"
document_stages = ["verifier", "translator", "router"]
max_package_bytes = 67108864

[registry]
seed = "$repo/config/demo/agencies.json"

[verifier]
trust_dir = "$repo/config/demo/trust"
crl_files = []
signature = "optional"
bus_organ_id = "000.00.05.H49"

[translator]
bus_organ_id = "000.00.05.H49"
EOF
    # The sender (the province's system) and the recipients' systems.
    "$lienthong" admin --config "$tmp/$name.toml" registry-import "$repo/config/demo/agencies.json" >/dev/null
    "$lienthong" admin --config "$tmp/$name.toml" system-add bench-sender --name "Bench sender" \
        --organ 000.00.00.H49 --secret bench-sender-secret >/dev/null
    for ((i = 0; i < RECIPIENTS; i++)); do
        code=${recipients[$i]}
        "$lienthong" admin --config "$tmp/$name.toml" registry-add "$code" --name "Bench recipient $i" \
            --parent 000.00.00.H49 >/dev/null
        "$lienthong" admin --config "$tmp/$name.toml" system-add "bench-r$i" --name "Bench recipient $i" \
            --organ "$code" --secret "bench-r$i-secret" >/dev/null
    done
}

recipients=("000.00.21.H49" "000.00.22.H49" "000.00.23.H49" "000.00.24.H49")
to_args=()
check_args=()
for ((i = 0; i < RECIPIENTS; i++)); do
    to_args+=(--to "${recipients[$i]}")
    check_args+=(--check-inbox "bench-r$i:bench-r$i-secret")
done
write_config bench "$prefix" true on "$CHECKPOINT_MS" "$STORE_EXTRA" "$PREFETCH"
config=bench
bus_prefix=$prefix

metrics_urls=()
# The environment of the bus's processes: their threads (THREADS, BASELINE_THREADS).
threads=$THREADS
bus_env() {
    if [[ -n $threads ]]; then
        echo "LIENTHONG_RUNTIME_WORKER_THREADS=$threads" "TOKIO_WORKER_THREADS=$threads"
    fi
}
start_gateway() {
    local roles=(gateway)
    if [[ $one_process == 1 ]]; then roles+=(verifier translator router delivery ledger); fi
    # shellcheck disable=SC2046 # bus_env's words are separate assignments
    env $(bus_env) LIENTHONG_METRICS_LISTEN=127.0.0.1:18490 "$lienthong" serve --config "$tmp/$config.toml" "${roles[@]}" \
        >"$tmp/gateway.log" 2>&1 &
    pids+=($!)
    watched=("gateway=$!")
    metrics_urls+=(--metrics "http://127.0.0.1:18490/metrics")
    if [[ $OWN_CGROUPS == 1 ]]; then in_cgroup "$config-gateway" "$!"; fi
}
# With ledger=own the ledger runs in a process of its own (port 18489), not in the workers.
ledger=$LEDGER
start_ledger() {
    if [[ $ledger == own ]]; then
        # shellcheck disable=SC2046
        env $(bus_env) LIENTHONG_METRICS_LISTEN=127.0.0.1:18489 "$lienthong" serve --config "$tmp/$config.toml" ledger \
            >"$tmp/ledger.log" 2>&1 &
        pids+=($!)
        watched+=("ledger=$!")
        metrics_urls+=(--metrics "http://127.0.0.1:18489/metrics")
        if [[ $OWN_CGROUPS == 1 ]]; then in_cgroup "$config-ledger" "$!"; fi
        wait_ready 18489
    fi
}
add_worker() {
    local n=$1 roles=(verifier translator router delivery)
    if [[ $ledger != own ]]; then roles+=(ledger); fi
    # shellcheck disable=SC2046
    env $(bus_env) LIENTHONG_METRICS_LISTEN=127.0.0.1:$((18490 + n)) "$lienthong" serve --config "$tmp/$config.toml" \
        "${roles[@]}" >"$tmp/worker-$n.log" 2>&1 &
    pids+=($!)
    watched+=("worker$n=$!")
    metrics_urls+=(--metrics "http://127.0.0.1:$((18490 + n))/metrics")
    if [[ -n $WORKER_CPU || $OWN_CGROUPS == 1 ]]; then in_cgroup "$config-worker$n" "$!" "$WORKER_CPU"; fi
}
# in_cgroup NAME PID [CPU]: PID (all its threads, and those it starts) in a cgroup of its own,
# as a systemd unit or a pod runs; with CPU, held to that share of one core per 100 ms period.
# PID empty: the cgroup only, in $cgroup_dir.
declare -A capped
in_cgroup() {
    local name=$1 pid=$2 cpu=${3:-} quota=-1 dir
    if [[ -n $cpu ]]; then quota=$(python3 -c "print(int(float('$cpu') * 100000))"); fi
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        # cgroup v2: the CPU controller is enabled for the root's children, then cpu.max.
        dir=/sys/fs/cgroup/lienthong-bench-$$-$name
        grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
            echo +cpu 2>/dev/null >/sys/fs/cgroup/cgroup.subtree_control || true
    elif [[ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
        dir=/sys/fs/cgroup/cpu/lienthong-bench-$$-$name
    else
        echo "WORKER_CPU, OWN_CGROUPS: no cgroup CPU controller under /sys/fs/cgroup" >&2
        exit 2
    fi
    if [[ ! -d $dir ]]; then
        if ! mkdir "$dir" 2>/dev/null; then
            echo "WORKER_CPU, OWN_CGROUPS: could not make the cgroup $dir (it needs root)" >&2
            exit 2
        fi
        cgroups+=("$dir")
    fi
    if [[ -f $dir/cpu.max ]]; then
        echo "${quota/#-1/max} 100000" >"$dir/cpu.max"
    elif [[ -f $dir/cpu.cfs_quota_us ]]; then
        echo 100000 >"$dir/cpu.cfs_period_us"
        echo "$quota" >"$dir/cpu.cfs_quota_us"
    else
        echo "WORKER_CPU, OWN_CGROUPS: the cgroup $dir has no CPU controller enabled" >&2
        exit 2
    fi
    if [[ -n $cpu ]]; then capped[$dir]=1; fi
    cgroup_dir=$dir
    if [[ -n $pid ]]; then echo "$pid" >"$dir/cgroup.procs"; fi
}
# With WORKER_CPU, after each run: how often each worker's quota ran out in it, of the 100 ms
# periods in which it ran, those it spent its quota in and waited for the next.
declare -A seen_periods seen_throttled
throttled() {
    local dir periods throttled
    for dir in "${cgroups[@]}"; do
        [[ -d $dir && -n ${capped[$dir]:-} ]] || continue
        periods=$(awk '$1 == "nr_periods" {print $2}' "$dir/cpu.stat")
        throttled=$(awk '$1 == "nr_throttled" {print $2}' "$dir/cpu.stat")
        echo "== ${dir##*-"$$"-}: throttled in $((throttled - ${seen_throttled[$dir]:-0})) of $((periods - ${seen_periods[$dir]:-0})) periods of 100 ms"
        seen_periods[$dir]=$periods
        seen_throttled[$dir]=$throttled
    done
}
wait_ready() {
    for port in "$@"; do
        for _ in $(seq 1 100); do
            if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then continue 2; fi
            sleep 0.2
        done
        echo "the process on port $port did not become ready; logs in $tmp" >&2
        cat "$tmp"/*.log >&2
        exit 1
    done
}

# The processes whose threads lienthong-load accounts for (CPU, waiting for a CPU, context
# switches per document), the broker among them.
broker_pid=$(pgrep -o -f beam.smp || true)
# WAL_PAGES: the last copy of each bus's store (by config name).
declare -A wal_copied
load() {
    local w watch=()
    for w in "${watched[@]}"; do watch+=(--watch "$w"); done
    if [[ -n $broker_pid ]]; then watch+=(--watch "broker=$broker_pid"); fi
    # TIMELINES=DIR: each run's submissions, one CSV line each, named after its summary.
    local a prev="" run="" timeline=()
    for a in "$@"; do
        if [[ $prev == --summary ]]; then run=$(basename "$a" .json); fi
        prev=$a
    done
    if [[ -n $TIMELINES ]]; then
        mkdir -p "$TIMELINES"
        timeline=(--timeline "$TIMELINES/$run.csv")
    fi
    local load_cgroup=""
    if [[ $OWN_CGROUPS == 1 ]]; then
        in_cgroup load ""
        load_cgroup=$cgroup_dir
    fi
    (
        # The load generator in a cgroup of its own too: the client, not one of the bus's.
        if [[ -n $load_cgroup ]]; then echo "$BASHPID" >"$load_cgroup/cgroup.procs"; fi
        exec "$bin/lienthong-load" --url "http://127.0.0.1:$target_port" --system bench-sender \
            --secret bench-sender-secret --from 000.00.00.H49 "${to_args[@]}" "${check_args[@]}" \
            --amqp "$AMQP" --prefix "$bus_prefix" --size "$SIZE" --sign "$repo/tests/vectors/xmldsig/keys/signer" \
            --documents "$documents" --concurrency "$CONCURRENCY" "${metrics_urls[@]}" "${watch[@]}" \
            "${timeline[@]}" "$@"
    )
    throttled
    # SQLite: what the database and its write-ahead log take on disk now (the checkpointer
    # starts the log again from the top under load; docs/performance.md).
    if [[ $STORE == sqlite && -f "$tmp/$config.db" ]]; then
        echo "  SQLite on disk: database $(du -m "$tmp/$config.db" | cut -f1) MiB, write-ahead log $(du -m "$tmp/$config.db-wal" 2>/dev/null | cut -f1) MiB"
        # WAL_PAGES=DIR: the store and its log as they are now, and the pages written for each
        # document by table and index (wal-pages.py; meaningful with checkpoints off, say
        # CHECKPOINT_MS=86400000, so the log holds every page written since the bus started).
        # Counted from the copy after the run before on the same bus, if any.
        if [[ -n $WAL_PAGES ]]; then
            mkdir -p "$WAL_PAGES/$run"
            cp "$tmp/$config.db" "$tmp/$config.db-wal" "$WAL_PAGES/$run/"
            local earlier=${wal_copied[$config]:-}
            echo "  pages written in this run (wal-pages.py):"
            # A diagnostic: when it cannot count (a checkpoint restarted the log), the run goes on.
            "$repo/deploy/bench/wal-pages.py" "$WAL_PAGES/$run/$config.db" ${earlier:+"$earlier"} 2>&1 |
                sed 's/^/    /' || true
            wal_copied[$config]=$WAL_PAGES/$run/$config.db
        fi
    fi
}

echo "== lienthong on $(nproc) cores, $(uname -r); RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?')"
target_port=$gateway_port
floors=()
# floor NAME [ARGS...]: lienthong-floor under the same load, with no metrics, no ledger and no
# inbox over /v1 (it keeps none); its figures are added to the summary.
floor() {
    local name=$1 floor_port=18470
    shift
    "$bin/lienthong-floor" --listen "127.0.0.1:$floor_port" --amqp "$AMQP" --prefix "$prefix-$name" \
        --prefetch 32 "${to_args[@]}" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    watched=("floor=$!")
    if [[ $OWN_CGROUPS == 1 ]]; then in_cgroup "$name" "$!"; fi
    wait_ready "$floor_port"
    local saved_checks=("${check_args[@]}")
    check_args=()
    target_port=$floor_port
    bus_prefix=$prefix-$name
    # Many more documents than the bus's runs: the floor carries them ten to twenty times faster.
    documents=$FLOOR_DOCUMENTS
    load --no-ledger --summary "$tmp/$name.json"
    documents=$DOCUMENTS
    floors+=("- $(python3 -c "import json;d=json.load(open('$tmp/$name.json'));print('%.1f %.3f %.1f' % (d['documentsPerSecond'], d['fractionOfCeiling'], d['ceilingPerSecond']))")")
    check_args=("${saved_checks[@]}")
    target_port=$gateway_port
    bus_prefix=$prefix
    stop_all
    drop_cgroups
    cgroups=()
}
if [[ $FLOOR == 1 ]]; then
    echo
    echo "== floor: the hops alone (lienthong-floor: HTTP in, two confirmed broker messages, no work)"
    floor floor
    echo
    echo "== floor with the work: the hops, and parse, verify and translate with the bus's code (no store)"
    floor floor-work --work "$repo/config/demo/trust"
fi
# start_baseline_sized: a bus the size the baseline runs at (a gateway, and one worker process
# unless one_process), ready.
start_baseline_sized() {
    start_gateway
    start_ledger
    if [[ $one_process == 1 ]]; then
        wait_ready 18490
    else
        add_worker 1
        wait_ready 18490 18491
    fi
}
baseline=""
if [[ $BASELINE == 1 ]]; then
    lienthong=$BASELINE_BIN
    write_config baseline "$prefix-base" "$BASELINE_CHAIN" "$BASELINE_CACHE" "$BASELINE_CHECKPOINT_MS" "$BASELINE_STORE_EXTRA" "$BASELINE_PREFETCH"
    config=baseline
    bus_prefix=$prefix-base
    ledger=$BASELINE_LEDGER
    threads=$BASELINE_THREADS
    one_process=$BASELINE_ONE_PROCESS
    start_baseline_sized
    echo
    echo "== baseline: $BASELINE_BIN, chain_stages = $BASELINE_CHAIN, caches $BASELINE_CACHE, checkpoint_ms ${BASELINE_CHECKPOINT_MS:-default}, store extra [${BASELINE_STORE_EXTRA//$'\n'/; }], prefetch $BASELINE_PREFETCH, ledger in $BASELINE_LEDGER process, $base_workers worker process(es), threads ${BASELINE_THREADS:-default}"
    load --summary "$tmp/baseline.json"
    baseline=$(python3 -c "import json;d=json.load(open('$tmp/baseline.json'));print('%.1f %.3f %.1f' % (d['documentsPerSecond'], d['fractionOfCeiling'], d['ceilingPerSecond']))")
    base_half=${HALF_RATE:-$(python3 -c "import json;print(round(json.load(open('$tmp/baseline.json'))['documentsPerSecond'] / 2, 1))")}
    echo
    echo "== baseline, scheduled at half its rate ($base_half/s)"
    load --rate "$base_half" --ceiling-messages 0 --summary "$tmp/baseline-half.json"
    stop_all
    drop_cgroups
    cgroups=()
    lienthong=$bin/lienthong
    ledger=$LEDGER
    threads=$THREADS
    one_process=$ONE_PROCESS
    metrics_urls=()
    config=bench
    bus_prefix=$prefix
fi
start_gateway
start_ledger
started=0
summary=()
for workers in $WORKERS; do
    while ((started < workers)); do
        started=$((started + 1))
        add_worker "$started"
    done
    ports=(18490)
    for ((n = 1; n <= started; n++)); do ports+=($((18490 + n))); done
    wait_ready "${ports[@]}"
    echo
    echo "== $workers worker process(es), as fast as the bus takes them (checkpoint_ms ${CHECKPOINT_MS:-default}, store extra [${STORE_EXTRA//$'\n'/; }], prefetch $PREFETCH, threads ${THREADS:-default})"
    load --summary "$tmp/max-$workers.json"
    rate=$(python3 -c "import json;print(json.load(open('$tmp/max-$workers.json'))['documentsPerSecond'])")
    summary+=("$workers $(python3 -c "import json;d=json.load(open('$tmp/max-$workers.json'));print('%.1f %.3f %.1f' % (d['documentsPerSecond'], d['fractionOfCeiling'], d['ceilingPerSecond']))")")
    if [[ $workers == "$(echo "$WORKERS" | awk '{print $1}')" ]]; then
        half=${HALF_RATE:-$(python3 -c "print(round($rate / 2, 1))")}
        echo
        echo "== $workers worker process(es), scheduled at half that rate ($half/s)"
        load --rate "$half" --ceiling-messages 0 --summary "$tmp/half.json"
    fi
done

echo
echo "== throughput by worker processes (1 gateway process besides${WORKER_CPU:+; each worker held to $WORKER_CPU of a core})"
printf '%-8s %14s %12s %18s\n' workers documents/s "x ceiling" "ceiling msg/s"
if ((${#floors[@]} == 2)); then
    # shellcheck disable=SC2086
    printf '%-8s %14s %12s %18s   (the floor: the hops alone, lienthong-floor)\n' ${floors[0]}
    # shellcheck disable=SC2086
    printf '%-8s %14s %12s %18s   (the hops and the work, no store: lienthong-floor --work)\n' ${floors[1]}
fi
if [[ -n $baseline ]]; then
    # shellcheck disable=SC2086
    printf '%-8s %14s %12s %18s   (baseline: chain_stages = %s, caches %s, ledger in %s process)\n' $base_workers $baseline "$BASELINE_CHAIN" "$BASELINE_CACHE" "$BASELINE_LEDGER"
fi
for row in "${summary[@]}"; do
    # shellcheck disable=SC2086
    printf '%-8s %14s %12s %18s\n' $row
done

# ROUNDS=N (with the baseline): then N rounds more as fast as the bus takes them, the baseline's
# bus and this build's in turns, each with one worker process, on the stores of the runs above.
# A shared host's speed drifts by a fifth within minutes, more than most changes are worth; in
# turns, both builds see the same drift, and the rounds' medians show what one run of each may
# not. The ceiling is measured in every round too: it gauges the host's speed at that moment.
# The baseline goes first in odd rounds and second in even ones, and each round also measures a
# ceiling of its own with no bus running ("x round": both builds against the same figure).
# ROUND_RATE=N schedules the rounds at N documents/s instead (no ceiling then): the latency of
# both builds at the same offered load, in turns, since one run of each says little about a tail.
if [[ $BASELINE == 1 && $ROUNDS -gt 0 ]]; then
    stop_all
    rounds_json=()
    for ((round = 1; round <= ROUNDS; round++)); do
        # Which goes first alternates: a run can leave the broker and the disk slower or
        # quicker for the one after it (its queues' logs compacted, its store's pages written
        # back), and the ceiling measured before each run would follow.
        order="baseline bench"
        if ((round % 2 == 0)); then order="bench baseline"; fi
        # One ceiling for the round too, measured with no bus running: each run's own is
        # measured just after its bus starts, on the store and the broker the run before left,
        # and it was the lower for whichever went second (docs/performance.md); the fraction of
        # this one compares the two builds of a round against the same figure.
        if [[ -z $ROUND_RATE ]]; then
            echo
            echo "== round $round of $ROUNDS: the broker ceiling, no bus running"
            "$bin/lienthong-load" --ceiling-only --amqp "$AMQP" --size "$SIZE" \
                --summary "$tmp/round-$round-ceiling.json"
        fi
        for which in $order; do
            if [[ $which == baseline ]]; then
                lienthong=$BASELINE_BIN ledger=$BASELINE_LEDGER threads=$BASELINE_THREADS bus_prefix=$prefix-base
                one_process=$BASELINE_ONE_PROCESS
            else
                lienthong=$bin/lienthong ledger=$LEDGER threads=$THREADS bus_prefix=$prefix
                one_process=$ONE_PROCESS
            fi
            config=$which
            metrics_urls=()
            start_baseline_sized
            echo
            if [[ -n $ROUND_RATE ]]; then
                echo "== round $round of $ROUNDS: $which, scheduled at $ROUND_RATE/s"
                load --rate "$ROUND_RATE" --ceiling-messages 0 --summary "$tmp/round-$round-$which.json"
            else
                echo "== round $round of $ROUNDS: $which"
                load --summary "$tmp/round-$round-$which.json"
            fi
            stop_all
            rounds_json+=("$tmp/round-$round-$which.json")
        done
    done
    echo
    bus_workers=1
    if [[ $ONE_PROCESS == 1 ]]; then bus_workers=0; fi
    echo "== in turns: $ROUNDS rounds of each, $base_workers worker process(es) in the baseline, $bus_workers in this build's bus"
    python3 - "${rounds_json[@]}" <<'PYEOF'
import json, statistics, sys
import os
rows = {"baseline": [], "bench": []}
# "x ceiling" and "ceiling msg/s": each run's own, measured just after its bus started; "x round":
# the fraction of the round's ceiling, measured with no bus running, the same for both builds.
print(f"{'round':<6} {'build':<9} {'documents/s':>12} {'x ceiling':>10} {'ceiling msg/s':>14} {'x round':>8} {'CPU ms/doc':>11} {'broker ms/doc':>14} {'p50 ms':>8} {'p99 ms':>8}")
for i, path in enumerate(sys.argv[1:]):
    d = json.load(open(path))
    which = "baseline" if path.endswith("-baseline.json") else "bench"
    rows[which].append(d)
    name = "baseline" if which == "baseline" else "this"
    for q in ("p50", "p99"):
        d[q] = (d.get("latencyMs") or {}).get(q)
    round_ceiling = os.path.join(os.path.dirname(path), f"round-{i // 2 + 1}-ceiling.json")
    if os.path.exists(round_ceiling) and d.get("documentsPerSecond") is not None:
        d["fractionOfRound"] = d["documentsPerSecond"] / json.load(open(round_ceiling))["ceilingPerSecond"]
    f = lambda k, fmt: (fmt % d[k]) if d.get(k) is not None else "-"
    print(f"{i // 2 + 1:<6} {name:<9} {f('documentsPerSecond', '%.1f'):>12} {f('fractionOfCeiling', '%.3f'):>10} "
          f"{f('ceilingPerSecond', '%.1f'):>14} {f('fractionOfRound', '%.3f'):>8} {f('cpuMsPerDocument', '%.2f'):>11} {f('brokerCpuMsPerDocument', '%.2f'):>14} "
          f"{f('p50', '%.1f'):>8} {f('p99', '%.1f'):>8}")
def med(which, key):
    v = [d[key] for d in rows[which] if d.get(key) is not None]
    return statistics.median(v) if v else float("nan")
def m(which, key, fmt):
    """The median as text; "-" for a figure the rounds did not measure (the ceiling, in
    scheduled rounds)."""
    v = med(which, key)
    return "-" if v != v else fmt % v
for which, name in (("baseline", "baseline"), ("bench", "this")):
    print(f"{'median':<6} {name:<9} {m(which, 'documentsPerSecond', '%.1f'):>12} {m(which, 'fractionOfCeiling', '%.3f'):>10} "
          f"{m(which, 'ceilingPerSecond', '%.1f'):>14} {m(which, 'fractionOfRound', '%.3f'):>8} {m(which, 'cpuMsPerDocument', '%.2f'):>11} {m(which, 'brokerCpuMsPerDocument', '%.2f'):>14} "
          f"{m(which, 'p50', '%.1f'):>8} {m(which, 'p99', '%.1f'):>8}")
b, t = med("baseline", "documentsPerSecond"), med("bench", "documentsPerSecond")
cb, ct = med("baseline", "cpuMsPerDocument"), med("bench", "cpuMsPerDocument")
lb, lt = med("baseline", "p99"), med("bench", "p99")
print(f"this build against the baseline, medians: documents/s {100 * (t / b - 1):+.1f}%, CPU per document {100 * (ct / cb - 1):+.1f}%, "
      f"p99 {lb:.1f} -> {lt:.1f} ms")
PYEOF
fi
