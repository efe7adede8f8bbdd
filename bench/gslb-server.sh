#!/usr/bin/env bash
# The harness's custom command for the GSLB variants of gslbd (see bench/gslb.py):
#   gslb-server.sh GSLBD_BIN SWAP_MS
# Runs inside the harness (which sets RUN and PORT and pins us to the server core): writes the
# config into $RUN, starts the fake controller (and, with SWAP_MS > 0, the /notify swapper) on
# the client core, then becomes gslbd. The harness stops gslbd and then its children by PID.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=$1 SWAP_MS=${2:-0}
ADMIN_PORT=${GSLB_ADMIN_PORT:-5390} CTRL_PORT=${GSLB_CONTROLLER_PORT:-5391}
PY=${PY:-python3}
"$PY" "$HERE/gslb.py" config "$RUN/gslb" "$PORT" "$ADMIN_PORT" "$CTRL_PORT"
taskset -c "${CLIENT_CPU:-1}" "$PY" "$HERE/gslb.py" serve "$RUN/gslb" "$CTRL_PORT" "$ADMIN_PORT" "$SWAP_MS" \
  > "$RUN/gslb/helper.log" 2>&1 &
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$CTRL_PORT") 2>/dev/null && break
  sleep 0.05
done
exec "$BIN" --log-level warn run --config "$RUN/gslb/gslbd.toml"
