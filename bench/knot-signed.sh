#!/usr/bin/env bash
# The harness's custom command for Knot DNS serving the harness's zone signed by Knot itself
# (automatic signing, ECDSAP256SHA256, NSEC), the peer for gslbd-signed:
#   knot-signed.sh
# Runs inside the harness (which sets RUN, PORT and ZONE_FILE); Knot signs the zone as it
# loads it, before it answers.
set -euo pipefail
mkdir -p "$RUN/db" "$RUN/zones"
cp "$ZONE_FILE" "$RUN/zones/gslb.example.org.zone"
cat > "$RUN/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$PORT
    rundir: $RUN
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $RUN/db
log:
  - target: stderr
    any: warning
policy:
  - id: signed
    algorithm: ecdsap256sha256
    nsec3: off
zone:
  - domain: gslb.example.org
    storage: $RUN/zones
    file: gslb.example.org.zone
    dnssec-signing: on
    dnssec-policy: signed
    zonefile-sync: -1
    journal-content: none
CONF
exec /usr/sbin/knotd -c "$RUN/knot.conf"
