#!/usr/bin/env bash
# The README "Performance" tables in one go: the fixed-rate run (QPS_CAP=80000) and the
# saturation run, both with every entry of bench/run.sh interleaved over REPS rounds, then the
# markdown tables with medians and ratios to gdnsd.
#   bench/table.sh [REPS]        (default 3; about 25 s per entry and round, ~25 min in all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPS="${1:-3}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
export RESULTS="${RESULTS:-/tmp/dnsbench/results.tsv}"
RUN_ID="fixed80k-$STAMP" QPS_CAP=80000 "$ROOT/bench/run.sh" "$REPS"
RUN_ID="saturation-$STAMP" QPS_CAP= "$ROOT/bench/run.sh" "$REPS"
python3 "$ROOT/bench/table.py" "$RESULTS" "fixed80k-$STAMP" "saturation-$STAMP"
