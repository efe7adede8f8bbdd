#!/usr/bin/env bash
# dnsperf side by side: gslbd and the peer servers (Knot, NSD, gdnsd, PowerDNS) on loopback,
# each pinned to one core with dnsperf on the other, using the harness in ../shared/bench.
#
#   bench/run.sh [REPS] [ENTRY...]
#   QPS_CAP=80000 bench/run.sh 3              # the fixed-rate table (README "Performance")
#   bench/run.sh 3                            # saturation (dnsperf unlimited)
#   bench/table.sh                            # both, then the markdown tables
#
# ENTRY is a harness peer (knot nsd gdnsd gdnsd-dyn gdnsd-geo pdns pdns-lua) or one of ours:
#   gslbd         the harness's zone file served as static records
#   gslbd-gslb    the same names from health-checked pools (half) and an Elchi controller (half)
#   gslbd-swap    gslbd-gslb plus a /notify change, i.e. a publish (overlay compile and swap), every 10 ms (100 per second)
#   gslbd-geo     the harness's topology map (gdnsd-geo's): every appN a geo pool over its 4
#                 datacenters, 2,020 client networks; run it with the harness's ECS option:
#                 DNSPERF_EXTRA="-E 8:000118000a2a07" bench/run.sh 5 gslbd gslbd-geo gdnsd-geo floor
#                 (bench/geo-compare.py checks that it answers as gdnsd-geo, ECS scopes included)
#   gslbd-dnstap  gslbd plus [log] dnstap of every query and response to fstrm_capture (Debian's
#                 fstrm-bin) on a Unix socket; compare with gslbd at a fixed rate:
#                 QPS_CAP=80000 bench/run.sh 5 gslbd gslbd-dnstap floor
#                 (the frames fstrm_capture wrote are in the run's server.log)
#   gslbd-rrl     gslbd with [rrl] on but never triggered (rates above dnsperf's): the cost of
#                 accounting every response: QPS_CAP=80000 bench/run.sh 5 gslbd gslbd-rrl floor
#   gslbd-signed  gslbd with the zone signed online (bench/signed-server.sh: a KSK and a ZSK,
#                 ECDSAP256SHA256); knot-signed is Knot signing the same zone (bench/knot-signed.sh).
#                 Send DO with every query: the warm-cache cost of signed answers against the
#                 same zone unsigned and against Knot:
#                 DNSPERF_EXTRA=-D QPS_CAP=80000 bench/run.sh 5 gslbd gslbd-signed knot knot-signed floor
#   gslbd-all     the harness's names as pools of 4 members, `select = "all"` (bench/select-server.sh)
#   gslbd-hash    the same pools with `select = "hash"`, 2 of 4 members ranked per query by the
#                 client's network: the cost of consistent hashing against pre-encoded answers:
#                 QPS_CAP=80000 bench/run.sh 5 gslbd-all gslbd-hash floor
#                 (with DNSPERF_EXTRA="-E 8:000118000a2a07" the key is the ECS subnet instead)
#   floor         examples/udp_floor: recvmmsg + flip QR + sendmmsg, no DNS work at all; the
#                 kernel's share of every server's CPU per query on this machine
#   ENTRY@base    any gslbd entry run with the binary BASE_BIN (say, a build of the commit
#                 before a change) instead of this checkout's, interleaved in the same rounds:
#                 BASE_BIN=/tmp/before/gslbd QPS_CAP=80000 bench/run.sh 5 gdnsd gslbd gslbd@base floor
# Default entries: gdnsd gdnsd-dyn knot nsd pdns gslbd gslbd-gslb gslbd-swap floor. Each round
# runs every entry once (interleaved), a contended run (another process busy) is retried.
# Needs dnsperf and the peers (see ../shared/bench/README.md for the apt line). Builds the
# release binaries first. Prints the harness's median table; raw rows go to $RESULTS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench}"
[ -x "$HARNESS/run-peers.sh" ] || { echo "harness not found at $HARNESS (set HARNESS=)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "dnsperf is not installed (apt-get install dnsperf)" >&2; exit 1; }

REPS="${1:-3}"
shift || true
ENTRIES=("$@")
[ ${#ENTRIES[@]} -gt 0 ] || ENTRIES=(gdnsd gdnsd-dyn knot nsd pdns gslbd gslbd-gslb gslbd-swap floor)

cargo build --release --manifest-path "$ROOT/Cargo.toml" --bin gslbd --example udp_floor >&2
BIN="$ROOT/target/release/gslbd"
FLOOR="$ROOT/target/release/examples/udp_floor"
PORT="${GSLBD_PORT:-5399}"
CFG_DIR="$(mktemp -d /tmp/gslbd-bench.XXXXXX)"
trap 'rm -rf "$CFG_DIR"' EXIT
DATA_DIR="${DATA:-/tmp/dnsbench/data}"
sed -e "s#@PORT@#$PORT#g" -e "s#@DATA@#$DATA_DIR#g" "$ROOT/bench/gslbd.toml.in" > "$CFG_DIR/gslbd.toml"

export RUN_ID="${RUN_ID:-gslbd-$(date -u +%Y%m%dT%H%M%SZ)}"
export RESULTS="${RESULTS:-/tmp/dnsbench/results.tsv}"
RETRIES="${RETRIES:-2}"

# The harness's own 'all' loop would apply one LABEL to every custom run, so interleave here.
run_with_retries() {
  local rc=0 try
  for try in $(seq 0 "$RETRIES"); do
    "$@" && return 0
    rc=$?
    [ "$rc" = 3 ] || break
    echo "bench: contended run of $*, retrying ($try)" >&2
  done
  [ "$rc" = 3 ] || echo "bench: run failed (rc $rc): $*" >&2
}
run_entry() {  # entry round
  local e=$1 h="$HARNESS/run-peers.sh"
  if [[ "$e" == *@base ]]; then
    [ -x "${BASE_BIN:-}" ] || { echo "bench: $e needs BASE_BIN, an executable gslbd" >&2; return 1; }
    # The same entry with the other binary; its rows are labelled ENTRY@base.
    BIN="$BASE_BIN" run_entry "${e%@base}" "$2" "$e"
    return
  fi
  local label="${3:-$e}"
  case "$e" in
    gslbd) REP=$2 LABEL=$label run_with_retries "$h" custom "$BIN --log-level warn run --config $CFG_DIR/gslbd.toml" "$PORT";;
    gslbd-gslb) REP=$2 LABEL=$label HEALTH=1 run_with_retries "$h" custom "$ROOT/bench/gslb-server.sh $BIN 0" "$PORT";;
    gslbd-swap) REP=$2 LABEL=$label HEALTH=1 run_with_retries "$h" custom "$ROOT/bench/gslb-server.sh $BIN 10" "$PORT"
      cat "${RUNROOT:-/tmp/dnsbench/run}/$label/gslb/swaps.txt" 2>/dev/null || echo "bench: no swap count" >&2;;
    gslbd-dnstap) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/dnstap-server.sh $BIN $CFG_DIR/gslbd.toml" "$PORT"
      grep -ho "wrote [0-9]* frames" "${RUNROOT:-/tmp/dnsbench/run}/$label/server.log" 2>/dev/null || echo "bench: no dnstap frame count" >&2;;
    gslbd-rrl) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/rrl-server.sh $BIN $CFG_DIR/gslbd.toml" "$PORT";;
    gslbd-geo) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/geo-server.sh $BIN @DATA@" "$PORT";;
    gslbd-signed) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/signed-server.sh $BIN $CFG_DIR/gslbd.toml" "$PORT";;
    gslbd-all) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/select-server.sh $BIN all" "$PORT";;
    gslbd-hash) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/select-server.sh $BIN hash" "$PORT";;
    knot-signed) REP=$2 LABEL=$label run_with_retries "$h" custom "$ROOT/bench/knot-signed.sh" "$PORT";;
    floor) REP=$2 LABEL=floor run_with_retries "$h" custom "$FLOOR 127.0.0.1:@PORT@" "$PORT";;
    *) REP=$2 run_with_retries "$h" "$e";;
  esac
}
echo "run_id=$RUN_ID reps=$REPS entries=${ENTRIES[*]} qps_cap=${QPS_CAP:-none} results=$RESULTS"
for r in $(seq 1 "$REPS"); do
  for e in "${ENTRIES[@]}"; do
    run_entry "$e" "$r"
  done
done
"$HARNESS/run-peers.sh" summary "$RESULTS" "$RUN_ID"
