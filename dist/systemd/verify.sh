#!/usr/bin/env bash
# Checks dist/systemd/gslbd.service with `systemd-analyze verify` (run by .ci/run). The unit
# names /usr/bin/gslbd, which a build machine lacks, so a copy naming an existing executable
# is verified; any message at all (verify exits 0 on unknown keys) fails the check.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-/bin/true}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
sed "s#/usr/bin/gslbd#$BIN#" "$HERE/gslbd.service" > "$WORK/gslbd.service"
OUT="$(systemd-analyze verify "$WORK/gslbd.service" 2>&1)" || { echo "$OUT" >&2; exit 1; }
if [ -n "$OUT" ]; then
  echo "systemd-analyze verify reported:" >&2
  echo "$OUT" >&2
  exit 1
fi
echo "dist/systemd/gslbd.service: verified"
