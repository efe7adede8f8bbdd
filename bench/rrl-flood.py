#!/usr/bin/env python3
"""A simulated reflection flood against response rate limiting.

One source address sends one query at a fixed rate (examples/udp_flood, open loop: it does
not wait for answers, as a spoofed flood does not) to gslbd pinned to one core, the flood
on the other. Interleaved rounds of two runs:

  normal  gslbd without [rrl]: every query answered in full
  flood   gslbd with [rrl] at its defaults (20/s per network, name and type; slip 2)

For each run: the share of queries answered in full, the share slipped (TC), and gslbd's
CPU microseconds per query it received (its utime+stime over the queries it answered,
slipped or dropped, from its own metrics). The issue's bounds: flood answers <= 5% in
full, and its CPU per received query <= normal's.

  bench/rrl-flood.py target/release/gslbd target/release/examples/udp_flood \
      [--qps 100000] [--seconds 10] [--rounds 3]
"""
import argparse, json, os, statistics, subprocess, tempfile, time, urllib.request

PORT, ADMIN = 5398, 8098
ZONE = """
[[zone]]
name = "gslb.example.org"
ns = ["ns1.gslb.example.org"]
records = \"\"\"
ns1 60 IN A 192.0.2.53
app 60 IN A 192.0.2.10
app 60 IN A 192.0.2.11
\"\"\"
"""


def config(rrl):
    text = (f'[server]\nlisten = ["127.0.0.1:{PORT}"]\nudp_workers = 1\n'
            f'[admin]\nlisten = "127.0.0.1:{ADMIN}"\nsecret = "bench-secret"\n')
    if rrl:
        text += "[rrl]\n"
    return text + ZONE


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def metrics():
    text = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5).read().decode()
    answered = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("gslbd_queries_total{"))
    dropped = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                  if l.startswith("gslbd_rrl_limited_total{") and 'action="dropped"' in l)
    return answered, dropped


def run(gslbd, flood, rrl, qps, seconds):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gslbd.toml")
        open(path, "w").write(config(rrl))
        srv = subprocess.Popen(["taskset", "-c", "0", gslbd, "--log-level", "warn", "run", "--config", path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    metrics()
                    break
                except Exception:
                    if time.time() > deadline:
                        raise SystemExit("gslbd did not start")
                    time.sleep(0.05)
            a0, d0 = metrics()
            t0 = cpu_ticks(srv.pid)
            out = subprocess.run(["taskset", "-c", "1", flood, f"127.0.0.1:{PORT}", str(qps), str(seconds),
                                  "app.gslb.example.org"], capture_output=True, text=True, check=True,
                                 timeout=seconds + 30).stdout
            t1 = cpu_ticks(srv.pid)
            a1, d1 = metrics()
        finally:
            srv.terminate()
            srv.wait(timeout=10)
    got = json.loads(out)
    received = (a1 - a0) + (d1 - d0)
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "sent": got["sent"], "received": int(received),
        "full": got["full"] / got["sent"], "slipped": got["truncated"] / got["sent"],
        "us_per_query": (t1 - t0) / hz * 1e6 / max(received, 1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gslbd")
    ap.add_argument("flood")
    ap.add_argument("--qps", type=int, default=100000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rows = {"normal": [], "flood": []}
    for r in range(a.rounds):
        for mode in ("normal", "flood"):
            row = run(a.gslbd, a.flood, mode == "flood", a.qps, a.seconds)
            rows[mode].append(row)
            print(f"round {r + 1} {mode:6s} sent={row['sent']} received={row['received']} "
                  f"full={row['full']:.4f} slipped={row['slipped']:.4f} us/query={row['us_per_query']:.2f}", flush=True)
    ratios = [f["us_per_query"] / n["us_per_query"] for n, f in zip(rows["normal"], rows["flood"])]
    med = lambda mode, k: statistics.median(x[k] for x in rows[mode])
    print(f"median: normal {med('normal', 'us_per_query'):.2f} us/query, full {med('normal', 'full'):.4f}; "
          f"flood {med('flood', 'us_per_query'):.2f} us/query, full {med('flood', 'full'):.4f}, "
          f"slipped {med('flood', 'slipped'):.4f}; flood/normal CPU per received query "
          f"{statistics.median(ratios):.2f} (per round {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
