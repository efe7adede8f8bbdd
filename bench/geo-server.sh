#!/usr/bin/env bash
# The harness's custom command for gslbd as its topology peer (see bench/geo-config.py):
#   geo-server.sh GSLBD_BIN DATA_DIR
# Runs inside the harness (which sets RUN and PORT and pins us to the server core): writes the
# config into $RUN/geo from the harness's geo data, then becomes gslbd.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=$1 DATA=$2
"${PY:-python3}" "$HERE/geo-config.py" "$DATA" "$RUN/geo" "$PORT"
exec "$BIN" --log-level warn run --config "$RUN/geo/gslbd.toml"
