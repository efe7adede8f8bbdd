#!/usr/bin/env bash
# The harness's custom command for gslbd with response rate limiting on but never
# triggered (every account is checked and updated, no response is limited):
#   rrl-server.sh GSLBD_BIN CONFIG
# Runs inside the harness (which sets RUN): CONFIG plus an [rrl] whose rates dnsperf's one
# source cannot reach, then becomes gslbd.
set -euo pipefail
BIN=$1 CFG=$2
{ cat "$CFG"; printf '\n[rrl]\nresponses_per_second = 1000000\nwindow = 1\n'; } > "$RUN/gslbd.toml"
exec "$BIN" --log-level warn run --config "$RUN/gslbd.toml"
