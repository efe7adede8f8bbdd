#!/usr/bin/env python3
"""A random-name flood against a signed zone, beside normal traffic (DNSSEC, issue 25).

Under compact denial every name that does not exist needs a signature of its own, so a flood
of unique random names is a flood of signing work. gslbd bounds it per thread
([dnssec] sign_budget); past the budget such a DO query is answered TC (UDP), never
unsigned, while everything cached (the zone's answers, denials seen before) is answered at
full speed. This measures that: gslbd (release, one UDP worker, pinned to CPU 0) serves a
signed 1,000-name zone; on CPU 1 one dnsperf sends unique random names with DO at its full
rate while another sends the harness's normal mix (90% existing names, 10% a fixed set of
names that do not exist) with DO at a fixed rate, and a sampler checks that normal answers
come in full: NOERROR, not truncated, signed.

    bench/dnssec-flood.py [--binary target/release/gslbd] [--seconds 20] [--normal-qps 20000]
                          [--budget 4000]

Prints both dnsperf summaries, the sampler's share of full answers, the server's CPU (share
of one core) and gslbd's signing counters. Loopback only; every load is bounded in time.
"""

import argparse
import os
import random
import re
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsclient  # noqa: E402
from loopback import free_port  # noqa: E402

ZONE = "gslb.example.org"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(text, name):
    m = re.search(rf"^{re.escape(name)} (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def dnsperf(port, data, seconds, qps=None):
    cmd = ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", data, "-l", str(seconds),
           "-c", "4", "-q", "200", "-D"]
    if qps:
        cmd += ["-Q", str(qps)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def summary(out):
    g = lambda p: (re.search(p, out) or [None, "0"])[1]
    return {"sent": int(g(r"Queries sent:\s+(\d+)")), "completed": int(g(r"Queries completed:\s+(\d+)")),
            "lost": int(g(r"Queries lost:\s+(\d+)")), "qps": float(g(r"Queries per second:\s+([\d.]+)")),
            "noerror": int(g(r"NOERROR (\d+)")), "servfail": int(g(r"SERVFAIL (\d+)"))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/gslbd")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--normal-qps", type=int, default=20000)
    ap.add_argument("--budget", type=int, default=4000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="gslbd-flood.")
    keys = [subprocess.check_output([a.binary, "dnssec", "keygen", ZONE, "--dir", work] + extra, text=True).strip()
            for extra in (["--ksk"], [])]
    records = "".join(f"app{i} 30 IN A 198.18.{i >> 8}.{i & 255}\napp{i} 30 IN A 198.19.{i >> 8}.{i & 255}\n"
                      f"app{i} 30 IN AAAA 2001:db8::{i:x}:1\n" for i in range(1000))
    port, admin = free_port(), free_port()
    with open(f"{work}/gslbd.toml", "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\nudp_workers = 1\n[state]\ndir = "{work}/state"\n'
                f'[admin]\nlisten = "127.0.0.1:{admin}"\nsecret = "flood-bench"\n[dnssec]\nsign_budget = {a.budget}\n'
                f'[[zone]]\nname = "{ZONE}"\nns = ["ns1.{ZONE}"]\nrecords = """\nns1 A 127.0.0.1\n{records}"""\n'
                f'[zone.dnssec]\nkeys = ["{keys[0]}", "{keys[1]}"]\n')
    normal = [f"app{random.randrange(1000)}.{ZONE} {random.choice(['A', 'AAAA'])}" for _ in range(9000)]
    normal += [f"nx{random.randrange(100)}.{ZONE} A" for _ in range(1000)]
    random.shuffle(normal)
    with open(f"{work}/normal.txt", "w") as f:
        f.write("\n".join(normal) + "\n")
    letters = string.ascii_lowercase + string.digits
    with open(f"{work}/flood.txt", "w") as f:
        for _ in range(3_000_000):
            f.write("".join(random.choices(letters, k=12)) + f".{ZONE} A\n")
    server = subprocess.Popen(["taskset", "-c", "0", a.binary, "--log-level", "warn", "run", "--config",
                               f"{work}/gslbd.toml"], stderr=open(f"{work}/server.log", "w"))
    try:
        deadline = time.time() + 20
        while dnsclient.udp(("127.0.0.1", port), f"app0.{ZONE}") is None:
            if time.time() > deadline:
                sys.exit("gslbd did not start")
            time.sleep(0.1)
        # Warm the cache with the normal mix (its denials signed once).
        warm = dnsperf(port, f"{work}/normal.txt", 2, a.normal_qps)
        warm.communicate()
        results = {"full": 0, "partial": []}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                name, qtype = random.choice(normal).split()
                r = dnsclient.udp(("127.0.0.1", port), name, 1 if qtype == "A" else 28, timeout=1.0, dnssec=True)
                if r is not None and r.rcode == 0 and not r.tc and r.rrsigs > 0:
                    results["full"] += 1
                else:
                    results["partial"].append((name, qtype, None if r is None else (r.rcode, r.tc, r.rrsigs)))
                time.sleep(0.005)

        t0, c0 = time.time(), cpu_seconds(server.pid)
        flood = dnsperf(port, f"{work}/flood.txt", a.seconds)
        steady = dnsperf(port, f"{work}/normal.txt", a.seconds, a.normal_qps)
        sampler = threading.Thread(target=sample)
        sampler.start()
        flood_out, _ = flood.communicate()
        steady_out, _ = steady.communicate()
        stop.set()
        sampler.join()
        t1, c1 = time.time(), cpu_seconds(server.pid)
        metrics = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{admin}/metrics", headers={"X-Elchi-Secret": "flood-bench"}), timeout=5).read().decode()
    finally:
        server.terminate()
        server.wait()
    f, n = summary(flood_out), summary(steady_out)
    sampled = results["full"] + len(results["partial"])
    print(f"flood (unique random names, DO, full rate): {f['sent']} sent, {f['completed']} answered, "
          f"{f['qps']:.0f} qps, NOERROR {f['noerror']}")
    print(f"normal (DO, {a.normal_qps} qps offered): {n['sent']} sent, {n['completed']} answered, "
          f"{n['lost']} lost, NOERROR {n['noerror']} ({n['noerror'] / max(n['completed'], 1):.2%}), SERVFAIL {n['servfail']}")
    print(f"sampled normal answers in full (NOERROR, not TC, signed): {results['full']}/{sampled} "
          f"({results['full'] / max(sampled, 1):.2%}); first not full: {results['partial'][:3]}")
    print(f"server CPU: {(c1 - c0) / (t1 - t0):.0%} of one core")
    for name in ["gslbd_dnssec_signatures_total{kind=\"denial\"}", "gslbd_dnssec_budget_exceeded_total",
                 "gslbd_dnssec_truncated_total", "gslbd_dnssec_cache_entries", "gslbd_dnssec_cache_evictions_total"]:
        print(f"{name} {metric(metrics, name)}")
    print(f"budget: {a.budget} signatures/s per answering thread; {a.seconds} s")


if __name__ == "__main__":
    main()
