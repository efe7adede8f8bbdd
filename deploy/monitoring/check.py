#!/usr/bin/env python3
"""Checks the monitoring files (run by check.sh, which .ci/run calls).

- The Prometheus Operator's PrometheusRule (deploy/kubernetes/monitoring/prometheusrule.yaml)
  is gslbd-rules.yaml's groups under a resource header, generated from it (--write
  regenerates it; without it a difference is an error).
- The Grafana dashboard is well formed: unique panel ids, every panel on the prometheus
  datasource variable, every target with a refId and an expression.
- Every dashboard expression, with the Grafana variables replaced, is written as a
  recording rule to the file named by --promql-out, for promtool to parse.
"""
import argparse
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
RULES = HERE / "gslbd-rules.yaml"
DASHBOARD = HERE / "gslbd-dashboard.json"
OPERATOR_RULE = HERE.parent / "kubernetes" / "monitoring" / "prometheusrule.yaml"

HEADER = """\
# Generated from deploy/monitoring/gslbd-rules.yaml by deploy/monitoring/check.sh --write;
# edit that file, not this one (.ci/run fails when they differ).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: gslbd
  labels: {app.kubernetes.io/name: gslbd}
spec:
"""


def operator_rule() -> str:
    text = RULES.read_text()
    groups = text[text.index("\ngroups:") + 1 :]
    return HEADER + "".join("  " + line if line.strip() else line for line in groups.splitlines(True))


def dashboard_exprs(errors: list) -> list:
    board = json.loads(DASHBOARD.read_text())
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in board:
            errors.append(f"dashboard: no {key}")
    variables = {v["name"] for v in board["templating"]["list"]}
    if "datasource" not in variables:
        errors.append("dashboard: no datasource variable")
    ids, exprs = set(), []
    for panel in board["panels"]:
        where = f"dashboard panel {panel.get('id')} ({panel.get('title')!r})"
        if panel.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(panel.get("id"))
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: not on the ${{datasource}} variable")
        refs = set()
        for target in panel.get("targets", []):
            if not target.get("expr") or not target.get("refId") or target["refId"] in refs:
                errors.append(f"{where}: a target without an expression or a unique refId")
            refs.add(target.get("refId"))
            exprs.append((where, target.get("expr", "")))
        if not refs:
            errors.append(f"{where}: no targets")
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*), *\w+\)", var["query"]["query"])
            if not inner:
                errors.append(f"dashboard variable {var['name']}: not label_values(selector, label)")
            else:
                exprs.append((f"dashboard variable {var['name']}", inner.group(1)))
    used = {m for _, e in exprs for m in re.findall(r"\$(\w+)", e)} - {"__rate_interval"}
    for name in sorted(used - variables):
        errors.append(f"dashboard: ${name} is not a variable")
    return exprs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="regenerate the PrometheusRule")
    ap.add_argument("--promql-out", help="write the dashboard's expressions here as rules")
    args = ap.parse_args()
    errors: list = []
    want = operator_rule()
    if args.write:
        OPERATOR_RULE.write_text(want)
    elif OPERATOR_RULE.read_text() != want:
        errors.append(f"{OPERATOR_RULE} differs from {RULES.name}: run deploy/monitoring/check.sh --write")
    exprs = dashboard_exprs(errors)
    if args.promql_out:
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        for i, (where, expr) in enumerate(exprs):
            expr = expr.replace("$__rate_interval", "5m")
            expr = re.sub(r"\$\w+", ".*", expr)
            lines.append(f"      # {where}")
            lines.append(f"      - record: dashboard_expr_{i}")
            lines.append(f"        expr: {json.dumps(expr)}")
        pathlib.Path(args.promql_out).write_text("\n".join(lines) + "\n")
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
