#!/usr/bin/env bash
# The harness's custom command for gslbd serving the harness's zone signed (DNSSEC online
# signing, a KSK and a ZSK, ECDSAP256SHA256):
#   signed-server.sh GSLBD_BIN CONFIG [ALGORITHM]
# Runs inside the harness (which sets RUN): makes the keys in RUN, appends [zone.dnssec] to
# CONFIG, then becomes gslbd. Send DO with every query (DNSPERF_EXTRA=-D) to get signatures.
set -euo pipefail
BIN=$1 CFG=$2 ALG=${3:-ECDSAP256SHA256}
KSK=$("$BIN" dnssec keygen gslb.example.org --ksk --algorithm "$ALG" --dir "$RUN")
ZSK=$("$BIN" dnssec keygen gslb.example.org --algorithm "$ALG" --dir "$RUN")
{ cat "$CFG"; printf '\n[state]\ndir = "%s/state"\n[zone.dnssec]\nkeys = ["%s", "%s"]\n' "$RUN" "$KSK" "$ZSK"; } > "$RUN/gslbd.toml"
exec "$BIN" --log-level warn run --config "$RUN/gslbd.toml"
