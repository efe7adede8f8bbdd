#!/usr/bin/env bash
# Checks deploy/monitoring and deploy/kubernetes/monitoring (run by .ci/run):
#  - promtool check rules and promtool test rules (gslbd-rules.test.yaml) on the alerts,
#  - the Grafana dashboard's structure, and every expression in it parsed by promtool,
#  - the PrometheusRule generated from the rule file is up to date (--write regenerates it),
#  - ServiceMonitor and PrometheusRule against the Prometheus Operator's schemas (npm's
#    @kubernetes-models/prometheus-operator, installed into a temporary folder).
# That every gslbd_* metric named here exists is checked by tests/it/monitoring.rs.
#   deploy/monitoring/check.sh [--write]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE="$HERE/../kubernetes/monitoring"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 "$HERE/check.py" ${1:+"$1"} --promql-out "$WORK/dashboard-rules.yaml"
(cd "$HERE" && promtool check rules gslbd-rules.yaml && promtool test rules gslbd-rules.test.yaml)
promtool check rules "$WORK/dashboard-rules.yaml"

python3 - "$KUBE" "$WORK/resources.json" <<'PY'
import json, pathlib, sys, yaml
docs = [yaml.safe_load(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")) if p.name != "kustomization.yaml"]
pathlib.Path(sys.argv[2]).write_text(json.dumps(docs))
PY
(cd "$WORK" && npm install --silent --no-audit --no-fund @kubernetes-models/prometheus-operator@6.0.0 >/dev/null)
cp "$HERE/validate-crds.mjs" "$WORK/"
node "$WORK/validate-crds.mjs" "$WORK/resources.json"
echo "deploy/monitoring: rules, rule tests, dashboard and operator resources check"
