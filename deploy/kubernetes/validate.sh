#!/usr/bin/env bash
# Validates deploy/kubernetes (run by .ci/run): each kustomization (base, daemonset,
# monitoring) is rendered with `kubectl kustomize`, every core resource it renders is checked
# against the Kubernetes schemas bundled with PyPI's kubernetes-validate (offline, --strict:
# unknown fields are errors), and the ConfigMap's gslbd.toml passes `gslbd check` with the
# Secret's variables set. The Prometheus Operator resources (ServiceMonitor, PrometheusRule)
# are checked against the operator's schemas by deploy/monitoring/check.sh.
#   deploy/kubernetes/validate.sh GSLBD_BIN
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Resolved before the cd below: CI passes a path relative to the checkout.
BIN="$(readlink -f "$1")"
[ -x "$BIN" ] || { echo "validate.sh: $1 is not an executable gslbd" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "validate.sh: kubectl (for kubectl kustomize) is missing" >&2; exit 1; }
# Run as a module so a pip that installs scripts outside PATH still works; Debian's own
# python3 refuses plain pip installs (PEP 668), hence the second form.
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  python3 -m pip install -q kubernetes-validate 2>/dev/null \
    || python3 -m pip install -q --break-system-packages kubernetes-validate
fi
cd "$HERE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for overlay in base daemonset monitoring; do
  kubectl kustomize "$overlay" > "$WORK/$overlay.yaml"
  # One file per core resource; the operator's kinds are outside these schemas.
  python3 - "$WORK/$overlay.yaml" "$WORK/$overlay" <<'PY'
import pathlib, sys, yaml
out = pathlib.Path(sys.argv[2]); out.mkdir()
for i, doc in enumerate(yaml.safe_load_all(open(sys.argv[1]))):
    if doc and not doc["apiVersion"].startswith("monitoring.coreos.com/"):
        (out / f"{i}-{doc['kind']}.yaml").write_text(yaml.safe_dump(doc))
PY
  for f in "$WORK/$overlay"/*.yaml; do
    python3 -m kubernetes_validate --strict --quiet "$f" || { echo "in $overlay: $(basename "$f")" >&2; exit 1; }
  done
  echo "deploy/kubernetes/$overlay: $(ls "$WORK/$overlay" | wc -l) resources valid"
done
python3 - "$WORK/gslbd.toml" <<'PY'
import sys
text = open("base/configmap.yaml").read()
body = text.split("gslbd.toml: |\n", 1)[1]
lines = [l[4:] if l.startswith("    ") else l.strip() for l in body.splitlines()]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
GSLBD_ADMIN_SECRET="$(sed -n 's/^  GSLBD_ADMIN_SECRET: //p' base/secret.yaml)" "$BIN" check --config "$WORK/gslbd.toml" >/dev/null
echo "deploy/kubernetes: the ConfigMap's config checks"
