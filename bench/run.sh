#!/usr/bin/env bash
# dnsperf side by side: gslbd and the peer servers (Knot, NSD, gdnsd, PowerDNS) on loopback,
# each pinned to one core with dnsperf on the other, using the harness in ../shared/bench.
#
#   bench/run.sh [REPS] [PEER...]        default: 3 rounds of knot nsd gdnsd custom(gslbd)
#   QPS_CAP=80000 bench/run.sh 3 gdnsd knot nsd
#
# Needs: dnsperf and the peers (see ../shared/bench/README.md for the apt line). Builds the
# release binary first. Prints the harness's median table; raw rows go to $RESULTS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench}"
[ -x "$HARNESS/run-peers.sh" ] || { echo "harness not found at $HARNESS (set HARNESS=)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "dnsperf is not installed (apt-get install dnsperf)" >&2; exit 1; }

REPS="${1:-3}"
shift || true
PEERS=("$@")
[ ${#PEERS[@]} -gt 0 ] || PEERS=(knot nsd gdnsd)

cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$ROOT/target/release/gslbd"
PORT="${GSLBD_PORT:-5399}"
CFG_DIR="$(mktemp -d /tmp/gslbd-bench.XXXXXX)"
trap 'rm -rf "$CFG_DIR"' EXIT
DATA_DIR="${DATA:-/tmp/dnsbench/data}"
sed -e "s#@PORT@#$PORT#g" -e "s#@DATA@#$DATA_DIR#g" "$ROOT/bench/gslbd.toml.in" > "$CFG_DIR/gslbd.toml"

export RUN_ID="${RUN_ID:-gslbd-$(date -u +%Y%m%dT%H%M%SZ)}"
export RESULTS="${RESULTS:-/tmp/dnsbench/results.tsv}"
CMD="$BIN --log-level warn run --config $CFG_DIR/gslbd.toml"
RETRIES="${RETRIES:-2}"

# The harness's own 'all' loop would apply LABEL to every peer, so interleave here:
# each round runs every peer, then gslbd; a contended run (exit 3) is retried.
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
echo "run_id=$RUN_ID reps=$REPS peers=${PEERS[*]} gslbd results=$RESULTS"
for r in $(seq 1 "$REPS"); do
  for p in "${PEERS[@]}"; do
    REP=$r run_with_retries "$HARNESS/run-peers.sh" "$p"
  done
  REP=$r LABEL=gslbd run_with_retries "$HARNESS/run-peers.sh" custom "$CMD" "$PORT"
done
"$HARNESS/run-peers.sh" summary "$RESULTS" "$RUN_ID"
