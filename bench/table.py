#!/usr/bin/env python3
"""Markdown tables (medians over clean runs) from the harness's results.tsv.

  table.py RESULTS RUN_ID [RUN_ID...]

Per entry: clean runs / all, median qps, average latency, lost %, server CPU % of one core,
server CPU microseconds per answered query, and that figure as a ratio to gdnsd's in the same
run_id. Runs marked contended (another process was busy) or server-died are left out, as in the
harness's own summary.
"""
import csv
import statistics as st
import sys

ORDER = ["gslbd", "gslbd-gslb", "gslbd-swap", "gdnsd", "gdnsd-dyn", "knot", "nsd", "pdns", "pdns-lua", "floor"]
NAMES = {
    "gslbd": "gslbd (static zone)",
    "gslbd-gslb": "gslbd (pools + controller)",
    "gslbd-swap": "gslbd (pools + controller, 100 publishes/s)",
    "gdnsd": "gdnsd 3.8 (static zone)",
    "gdnsd-dyn": "gdnsd 3.8 (multifo + HTTP checks)",
    "knot": "Knot DNS 3.2",
    "nsd": "NSD 4.6",
    "pdns": "PowerDNS 4.7 (bind backend)",
    "pdns-lua": "PowerDNS 4.7 (Lua ifportup)",
    "floor": "floor: recvmmsg/sendmmsg, canned answer",
}


def clean(r):
    return r["note"].split(",")[0] == "ok" and "contended" not in r["note"]


def us_per_query(r):
    return float(r["srv_cpu_pct"]) / 100 * 1e6 / max(float(r["qps"]), 1)


def table(rows, run_id):
    by = {}
    for r in rows:
        if r["run_id"] == run_id:
            by.setdefault(r["name"], []).append(r)
    if not by:
        return f"(no rows for {run_id})\n"
    med = {}
    for name, rs in by.items():
        ok = [r for r in rs if clean(r)]
        if ok:
            med[name] = st.median(us_per_query(r) for r in ok)
    base = med.get("gdnsd")
    out = [f"run_id `{run_id}`\n",
           "| server | runs | qps | avg latency ms | lost % | server CPU % | µs CPU/query | × gdnsd |",
           "|---|---|---|---|---|---|---|---|"]
    names = sorted(by, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        rs = by[name]
        ok = [r for r in rs if clean(r)]
        if not ok:
            out.append(f"| {NAMES.get(name, name)} | 0/{len(rs)} | — | — | — | — | — | — |")
            continue
        m = lambda k: st.median(float(r[k]) for r in ok)  # noqa: E731
        ratio = f"{med[name] / base:.2f}" if base else "—"
        out.append(f"| {NAMES.get(name, name)} | {len(ok)}/{len(rs)} | {m('qps'):,.0f} | {m('avg_lat_ms'):.3f} | "
                   f"{m('p_lost'):.3f} | {m('srv_cpu_pct'):.0f} | {med[name]:.2f} | {ratio} |")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    for run_id in sys.argv[2:]:
        print(table(rows, run_id))


if __name__ == "__main__":
    main()
