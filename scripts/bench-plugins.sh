#!/usr/bin/env bash
# Measures Chronik brokers run as separate processes (`chronik serve`), with
# their storage and their consensus engine in process or as plugin
# subprocesses, and prints one markdown table. See docs/BENCHMARKS.md.
#
#   scripts/bench-plugins.sh                  the full matrix, 200000 records each
#   scripts/bench-plugins.sh -n 20000         a quick run (about a minute)
#   scripts/bench-plugins.sh --sizes 1 --variants "wal-inprocess wal-subprocess"
#   scripts/bench-plugins.sh --variants consensus   the four engine pairings
#
# It builds chronik and the Pebble plugin (plugins/examples/storage-pebble)
# into a temporary directory, measures kfake once as the baseline (chronik
# bench --targets kfake, in the bench process), then for each size (1
# broker, and 3 brokers with replication factor 3) and each variant
# (wal-inprocess, wal-subprocess, pebble-subprocess):
#   1. drops the page cache if it can (sync; echo 3 > /proc/sys/vm/drop_caches);
#   2. starts `chronik serve` processes on free loopback ports with fresh
#      data directories (configured with --set: the defaults, fsync always,
#      etcd, the variant's storage.type and storage.plugin.mode);
#   3. reads each broker's storage plugin start time from its log line
#      "storage plugin started" (took: process start, handshake, store open);
#   4. runs `chronik bench --brokers ... --targets external`;
#   5. reads the peak RSS (VmHWM) of each broker process and of its plugin
#      child, then stops them (SIGTERM).
# A variant is STORAGE-MODE, or STORAGE-MODE/ENGINE-MODE to choose the
# consensus engine and where it runs (default etcd-inprocess), e.g.
# wal-inprocess/hashicorp-subprocess; "consensus" stands for the four
# pairings of etcd and hashicorp, in process and as subprocesses, over the
# WAL in process. Per broker values are joined with "/". Ratios are
# records/s over the run of the same size and engine with everything in
# process (wal-inprocess/ENGINE-inprocess).
#
# Options (or the environment variable in brackets):
#   -n, --records N     records per run [RECORDS, default 200000]
#   --sizes "1 3"       broker counts [SIZES]
#   --variants "..."    of wal-inprocess, wal-subprocess, wal-subprocess-mtls,
#                       pebble-subprocess, each with an optional /ENGINE-MODE,
#                       or consensus [VARIANTS, default wal-inprocess wal-subprocess
#                       pebble-subprocess]
#   --dir DIR           where data directories go; must not be tmpfs [BENCH_DIR,
#                       default: a temporary directory, or ./.bench-plugins if /tmp is tmpfs]
#   --no-drop-caches    do not drop the page cache [DROP_CACHES=0]
#   --no-kfake          skip the kfake baseline [KFAKE=0]
#   --keep              keep the binaries, logs and data afterwards
#   -- ARGS             more flags for chronik bench (e.g. -- --partitions 12)
# Needs go, jq and Linux's /proc.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

records=${RECORDS:-200000}
sizes=${SIZES:-"1 3"}
variants=${VARIANTS:-"wal-inprocess wal-subprocess pebble-subprocess"}
base_dir=${BENCH_DIR:-}
drop=${DROP_CACHES:-1}
kfake=${KFAKE:-1}
keep=0
bench_args=()
while [ $# -gt 0 ]; do
  case $1 in
    -n|--records) records=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --dir) base_dir=$2; shift 2 ;;
    --no-drop-caches) drop=0; shift ;;
    --no-kfake) kfake=0; shift ;;
    --keep) keep=1; shift ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-plugins: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
expanded=()
for v in $variants; do
  if [ "$v" = consensus ]; then
    expanded+=(wal-inprocess/etcd-inprocess wal-inprocess/etcd-subprocess wal-inprocess/hashicorp-inprocess wal-inprocess/hashicorp-subprocess)
    continue
  fi
  case ${v%%/*} in
    wal-inprocess|wal-subprocess|wal-subprocess-mtls|pebble-subprocess) ;;
    *) echo "bench-plugins: unknown variant $v" >&2; exit 2 ;;
  esac
  case $v in
    */*)
      case ${v#*/} in
        etcd-inprocess|etcd-subprocess|hashicorp-inprocess|hashicorp-subprocess) ;;
        *) echo "bench-plugins: unknown engine in variant $v" >&2; exit 2 ;;
      esac
      expanded+=("$v") ;;
    *) expanded+=("$v/etcd-inprocess") ;;
  esac
done
variants=${expanded[*]}
command -v jq >/dev/null || { echo "bench-plugins: needs jq" >&2; exit 2; }

if [ -z "$base_dir" ]; then
  if [ "$(stat -f -c %T "${TMPDIR:-/tmp}")" = tmpfs ]; then
    base_dir=$root/.bench-plugins
  else
    base_dir=${TMPDIR:-/tmp}
  fi
fi
mkdir -p "$base_dir"
work=$(mktemp -d "$base_dir/chronik-bench-plugins-XXXXXX")
pids=() # every broker started and not yet stopped

cleanup() {
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "$keep" = 1 ]; then
    echo "bench-plugins: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

log() { echo "bench-plugins: $*" >&2; }

log "building into $work/bin"
mkdir -p "$work/bin/plugins"
(cd cmd && go build -o "$work/bin/chronik" ./chronik)
(cd plugins/examples/storage-pebble && go build -o "$work/bin/plugins/chronik-storage-pebble" ./cmd/chronik-storage-pebble)
chronik=$work/bin/chronik

drop_caches() {
  [ "$drop" = 1 ] || return 0
  sync
  if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    log "cannot drop the page cache (not root?); going on"
  fi
}

# free_ports N: prints N consecutive free loopback TCP ports.
free_ports() {
  local n=$1 tries base p ok
  for tries in $(seq 50); do
    base=$((20000 + RANDOM % 40000))
    ok=1
    for p in $(seq "$base" $((base + n - 1))); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ok=0; break; fi
    done
    if [ "$ok" = 1 ]; then seq "$base" $((base + n - 1)); return; fi
  done
}

# mib_status PID FIELD: FIELD (VmHWM, VmRSS) of PID in MiB, or "-".
mib_status() {
  local kb
  kb=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null) || true
  if [ -n "$kb" ]; then awk -v k="$kb" 'BEGIN {printf "%.0f", k / 1024}'; else echo -; fi
}

# join SEP ITEM...: the items joined with SEP.
join() { local IFS=$1; shift; echo "$*"; }

results=$work/results.tsv
: >"$results"

if [ "$kfake" = 1 ]; then
  log "kfake: $records records"
  "$chronik" bench --targets kfake --records "$records" --json "${bench_args[@]}" >"$work/kfake.json" 2>"$work/kfake.err" ||
    { cat "$work/kfake.err" >&2; exit 1; }
  jq -r '.results[0] | ["kfake", 1, .produce.records_per_sec, .produce.mb_per_sec, .consume.records_per_sec, .consume.mb_per_sec, .produce.p50_ms, .produce.p99_ms, "-", "-", "-"] | @tsv' \
    "$work/kfake.json" >>"$results"
fi

# run SIZE VARIANT: one measurement, appended to $results.
run() {
  local n=$1 variant=$2 dir=$work/$1-${2//\//-} i
  local svariant=${variant%%/*} evariant=${variant#*/}
  local storage=${svariant%%-*} mode=${svariant#*-}
  local sets=(--set "storage.type=$storage" --set "plugins.dir=$work/bin/plugins"
    --set "consensus.type=${evariant%%-*}" --set "consensus.plugin.mode=${evariant#*-}")
  case $mode in
    inprocess) sets+=(--set storage.plugin.mode=inprocess) ;;
    subprocess) sets+=(--set storage.plugin.mode=subprocess) ;;
    subprocess-mtls) sets+=(--set storage.plugin.mode=subprocess --set storage.plugin.auto_mtls=true) ;;
  esac
  mkdir -p "$dir"
  mapfile -t ports < <(free_ports $((2 * n)))
  [ "${#ports[@]}" = $((2 * n)) ] || { log "no free ports"; exit 1; }
  local kafka=() raft=() run_pids=()
  for i in $(seq 0 $((n - 1))); do
    raft+=("127.0.0.1:${ports[$i]}")
    kafka+=("127.0.0.1:${ports[$((n + i))]}")
  done
  drop_caches
  log "$n broker(s), $variant: starting"
  for i in $(seq 0 $((n - 1))); do
    local peers=() j
    for j in $(seq 0 $((n - 1))); do
      [ "$j" = "$i" ] || peers+=("$((j + 1))=${raft[$j]}/${kafka[$j]}")
    done
    local args=(serve --set "node.id=$((i + 1))" --set "node.data_dir=$dir/node-$((i + 1))"
      --set "cluster.listen=${raft[$i]}" --set "protocol.listen=${kafka[$i]}" --set "kafka.advertised=${kafka[$i]}"
      --set "broker.default_replication_factor=$n" --set "telemetry.prometheus_listen="
      --set telemetry.log_format=json --set telemetry.log_level=info "${sets[@]}")
    if [ "$n" -gt 1 ]; then args+=(--set "cluster.peers=$(join , "${peers[@]}")"); fi
    # Not through $(...): the broker must be a child of this shell.
    (cd "$dir" && exec "$chronik" "${args[@]}" >"$dir/broker-$((i + 1)).log" 2>&1) &
    run_pids+=($!)
    pids+=($!)
  done
  local deadline=$((SECONDS + 120))
  for i in $(seq 0 $((n - 1))); do
    until grep -q '"msg":"broker started"' "$dir/broker-$((i + 1)).log" 2>/dev/null; do
      if ! kill -0 "${run_pids[$i]}" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
        log "broker $((i + 1)) did not start:"; tail -20 "$dir/broker-$((i + 1)).log" >&2; exit 1
      fi
      sleep 0.1
    done
  done
  local starts=() plugin_pids=()
  for i in $(seq 0 $((n - 1))); do
    local took=() kind line
    for kind in storage consensus; do
      line=$(jq -c --arg m "$kind plugin started" 'select(.msg == $m)' "$dir/broker-$((i + 1)).log" 2>/dev/null | head -1)
      if [ -n "$line" ]; then took+=("$(jq -r '.took / 1e6 | round' <<<"$line")"); fi
    done
    if [ "${#took[@]}" -gt 0 ]; then starts+=("$(join + "${took[@]}")"); else starts+=(-); fi
    plugin_pids+=("$(pgrep -P "${run_pids[$i]}" | tr '\n' ' ' || true)")
  done
  log "$n broker(s), $variant: bench, $records records"
  local addrs
  addrs=$(join , "${kafka[@]}")
  if ! "$chronik" bench --brokers "$addrs" --targets external --replication-factor "$n" --records "$records" --json \
    "${bench_args[@]}" >"$dir/bench.json" 2>"$dir/bench.err"; then
    cat "$dir/bench.err" >&2; exit 1
  fi
  local broker_rss=() plugin_rss=()
  for i in $(seq 0 $((n - 1))); do
    broker_rss+=("$(mib_status "${run_pids[$i]}" VmHWM)")
    local rss=() pp
    for pp in ${plugin_pids[$i]}; do rss+=("$(mib_status "$pp" VmHWM)"); done
    if [ "${#rss[@]}" -gt 0 ]; then plugin_rss+=("$(join + "${rss[@]}")"); else plugin_rss+=(-); fi
  done
  for p in "${run_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${run_pids[@]}"; do
    deadline=$((SECONDS + 30))
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -le $deadline ]; do sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    local k
    for k in "${!pids[@]}"; do [ "${pids[$k]}" = "$p" ] && unset 'pids[k]'; done
  done
  local start_col=-
  if [ "$mode" != inprocess ] || [ "${evariant#*-}" != inprocess ]; then start_col=$(join / "${starts[@]}"); fi
  jq -r --arg t "$variant" --arg n "$n" --arg s "$start_col" --arg b "$(join / "${broker_rss[@]}")" --arg p "$(join / "${plugin_rss[@]}")" \
    '.results[0] | [$t, $n, .produce.records_per_sec, .produce.mb_per_sec, .consume.records_per_sec, .consume.mb_per_sec, .produce.p50_ms, .produce.p99_ms, $s, $b, $p] | @tsv' \
    "$dir/bench.json" >>"$results"
  log "$n broker(s), $variant: done"
}

for n in $sizes; do
  for v in $variants; do
    run "$n" "$v"
  done
done

echo
echo "$records records of 1024 bytes per run; $(nproc) CPUs; $(uname -r); data in $base_dir"
echo
echo "| brokers | storage/engine | produce MB/s | consume MB/s | p50 ms | p99 ms | produce vs in process | consume vs in process | plugin start ms | broker RSS MiB | plugin RSS MiB |"
echo "|--------:|---------|-------------:|-------------:|-------:|-------:|----:|----:|----:|----:|----:|"
awk -F'\t' '
  function engine(v) { sub(/^[^\/]*\//, "", v); sub(/-.*/, "", v); return v }
  { row[NR] = $0; if ($1 ~ /^wal-inprocess\/[a-z]+-inprocess$/) { base_p[$2 engine($1)] = $3; base_c[$2 engine($1)] = $5 } }
  function ratio(v, b) { return b > 0 ? sprintf("%.2fx", v / b) : "-" }
  END {
    for (i = 1; i <= NR; i++) {
      split(row[i], f, "\t")
      plugin = f[11]
      if (f[1] == "kfake") plugin = "-"
      k = f[2] engine(f[1])
      printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s |\n",
        f[1] == "kfake" ? "-" : f[2], f[1], f[4], f[6], f[7], f[8],
        f[1] == "kfake" ? "-" : ratio(f[3], base_p[k]), f[1] == "kfake" ? "-" : ratio(f[5], base_c[k]),
        f[9], f[10], plugin
    }
  }' "$results"
echo
echo "broker RSS: peak (VmHWM) of each chronik serve process; plugin RSS: of its plugin children (storage+consensus); plugin start: from each \"plugin started\" log line (storage+consensus). kfake runs inside chronik bench."
