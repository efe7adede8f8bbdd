#!/usr/bin/env bash
# Validates deploy/kubernetes (run by .ci/run): every manifest against the Kubernetes
# schemas bundled with PyPI's kubernetes-validate (offline, --strict: unknown fields are
# errors), the kustomization's resources exist, and the ConfigMap's gslbd.toml passes
# `gslbd check` with the Secret's variables set.
#   deploy/kubernetes/validate.sh GSLBD_BIN
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Resolved before the cd below: CI passes a path relative to the checkout.
BIN="$(readlink -f "$1")"
[ -x "$BIN" ] || { echo "validate.sh: $1 is not an executable gslbd" >&2; exit 1; }
# Run as a module so a pip that installs scripts outside PATH still works; Debian's own
# python3 refuses plain pip installs (PEP 668), hence the second form.
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  python3 -m pip install -q kubernetes-validate 2>/dev/null \
    || python3 -m pip install -q --break-system-packages kubernetes-validate
fi
cd "$HERE"
for f in $(sed -n 's/^  - \(.*\.yaml\)$/\1/p' kustomization.yaml); do
  [ -f "$f" ] || { echo "kustomization.yaml lists $f, which does not exist" >&2; exit 1; }
done
for f in *.yaml; do
  [ "$f" = kustomization.yaml ] && continue
  python3 -m kubernetes_validate --strict --quiet "$f"
done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/gslbd.toml" <<'PY'
import re, sys
text = open("configmap.yaml").read()
body = text.split("gslbd.toml: |\n", 1)[1]
lines = [l[4:] if l.startswith("    ") else l.strip() for l in body.splitlines()]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
GSLBD_ADMIN_SECRET="$(sed -n 's/^  GSLBD_ADMIN_SECRET: //p' secret.yaml)" "$BIN" check --config "$WORK/gslbd.toml" >/dev/null
echo "deploy/kubernetes: manifests valid, config checks"
