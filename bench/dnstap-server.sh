#!/usr/bin/env bash
# The harness's custom command for gslbd logging every exchange to dnstap:
#   dnstap-server.sh GSLBD_BIN CONFIG
# Runs inside the harness (which sets RUN, pins us to the server core and kills our
# descendants afterwards): starts fstrm_capture (Debian's fstrm-bin, a real Frame Streams
# receiver) on a Unix socket in $RUN, writing to /dev/null on the client's core (CLIENT_CPU)
# so the server core's CPU per query is gslbd's alone, then becomes gslbd with CONFIG plus
# [log] dnstap. fstrm_capture's "wrote N frames" lands in the server log at the end.
set -euo pipefail
BIN=$1 CFG=$2
command -v fstrm_capture >/dev/null || { echo "fstrm_capture missing (apt-get install fstrm-bin)" >&2; exit 1; }
SOCK="$RUN/dnstap.sock"
taskset -c "${CLIENT_CPU:-1}" fstrm_capture -t protobuf:dnstap.Dnstap -u "$SOCK" -w /dev/null &
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "fstrm_capture did not listen on $SOCK" >&2; exit 1; }
{ cat "$CFG"; printf '\n[log]\ndnstap = "unix:%s"\n' "$SOCK"; } > "$RUN/gslbd.toml"
exec "$BIN" --log-level warn run --config "$RUN/gslbd.toml"
