#!/usr/bin/env python3
"""Soak: one gslbd under mixed load for a long time, with everything that changes it going on.

  bench/soak.py [--minutes 30] [--qps 20000] [--binary target/release/gslbd]   (by hand)
  bench/soak.py --minutes 3 --qps 2000 --binary target/debug/gslbd              (CI's form)

Load: dnsperf over UDP (60%), TCP (20%) and DNS over TLS (20%), in one-minute runs. Meanwhile:
a `/notify` push every second (over 100 names in turn, so the data stays the same size; each
name's last acknowledged address must be what DNS answers), a health flip
of a pool member every 10 s, a SIGHUP every minute, dnstap on (to fstrm_capture), a
`/records` scrape every 5 s. A sampler asks 50 times a second over UDP, TCP and DoT in turn
and checks every answer against the expected state (the pool's members after each flip,
allowing the flip's first 2 s; the static and pushed names exactly); its latencies give the
p99 per minute. RSS and open file descriptors are read every 5 s.

Prints per minute: queries answered by dnsperf, lost, non-NOERROR, sampled wrong answers,
sampler p99, RSS and FDs; then the totals. Exits 1 on any lost or wrong answer, a missing
push, or RSS or FDs growing more than 5% from the second minute to the last (medians of the
readings in each). Everything listens on
127.0.0.1; every loop is bounded in count and time.
"""
import argparse
import json
import os
import re
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsclient  # noqa: E402
from loopback import free_port, rss_kib, serve  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZONE = "soak.example"
SECRET = "soak-admin-secret"
MEMBERS = {"m1": "127.0.0.2", "m2": "127.0.0.3"}
STATIC = {"www": "192.0.2.80", "api": "192.0.2.81", "static": "192.0.2.82"}
PUSHED_NAMES = 100


def log(*args):
    print(*args, flush=True)


def health_target(ip, port, state):
    """The pool member's endpoint: 503 while `state["down"]`."""
    serve((ip, port), lambda _: (503, b"ok") if state["down"] else (200, b"ok"))


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.dns, self.dot, self.admin, self.probe = free_port(), free_port(), free_port(), free_port()
        self.flip = {"down": False}
        health_target(MEMBERS["m1"], self.probe, self.flip)
        health_target(MEMBERS["m2"], self.probe, {"down": False})
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=soak.example", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem"],
            check=True, stderr=subprocess.DEVNULL,
        )
        self.tap = subprocess.Popen(
            ["fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", f"{work}/tap.sock", "-w", "/dev/null"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{work}/tap.sock"):
            if time.monotonic() > deadline:
                sys.exit("fstrm_capture did not listen")
            time.sleep(0.05)
        records = "".join(f"{n} 300 IN A {ip}\\n" for n, ip in STATIC.items())
        config = f"""[server]
listen = ["127.0.0.1:{self.dns}"]
udp_workers = 2
tls_listen = ["127.0.0.1:{self.dot}"]
tls_cert = "{work}/cert.pem"
tls_key = "{work}/key.pem"
[admin]
listen = "127.0.0.1:{self.admin}"
secret = "{SECRET}"
[state]
dir = "{work}/state"
[log]
dnstap = "unix:{work}/tap.sock"
[[zone]]
name = "{ZONE}"
ns = ["ns1.{ZONE}"]
records = "ns1 300 IN A 127.0.0.1\\n{records}"
[[zone.pool]]
name = "app"
[zone.pool.check]
type = "http"
port = {self.probe}
path = "/health"
interval = "500ms"
timeout = "400ms"
rise = 1
fall = 1
[[zone.pool.member]]
name = "m1"
ipv4 = ["{MEMBERS['m1']}"]
[[zone.pool.member]]
name = "m2"
ipv4 = ["{MEMBERS['m2']}"]
"""
        self.config = f"{work}/gslbd.toml"
        with open(self.config, "w") as f:
            f.write(config)
        self.log = open(f"{work}/gslbd.log", "w")
        self.proc = subprocess.Popen([args.binary, "run", "--config", self.config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while dnsclient.udp(("127.0.0.1", self.dns), f"www.{ZONE}", timeout=0.2) is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit("gslbd did not start")
        with open(f"{work}/queries", "w") as f:
            for _ in range(20):
                for n in list(STATIC) + ["app", "ns1"]:
                    f.write(f"{n}.{ZONE} A\n")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.pushed = []  # (name, ip, acknowledged at)
        self.push_failures = 0
        self.flipped_at = 0.0
        self.samples = []  # (minute, latency ms, wrong?)
        self.wrong = []
        self.scrapes = self.scrape_failures = 0
        self.hups = 0
        self.resources = []  # (seconds, rss KiB, fds)
        self.started = time.monotonic()

    # ─── background activity ────────────────────────────────────────────────────────────

    def http(self, method, path, body=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin}{path}",
            data=body,
            method=method,
            headers={"X-Elchi-Secret": SECRET, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return None, b""

    def every(self, seconds, action):
        def loop():
            while not self.stop.wait(seconds):
                action()

        threading.Thread(target=loop, daemon=True).start()

    def push(self):
        # A hundred names, each pushed again with a new address every 100 s: the zone's data
        # stays the same size, so RSS measures the server, not the data it was given.
        n = len(self.pushed) + self.push_failures
        name, ip = f"push{n % PUSHED_NAMES}.{ZONE}", f"198.51.{(n >> 8) & 255}.{n & 255}"
        body = json.dumps({"records": [{"name": name, "type": "A", "ips": [ip]}]}).encode()
        status, _ = self.http("POST", "/notify", body)
        with self.lock:
            if status == 200:
                self.pushed.append((name, ip, time.monotonic()))
            else:
                self.push_failures += 1

    def flip_health(self):
        with self.lock:
            self.flip["down"] = not self.flip["down"]
            self.flipped_at = time.monotonic()

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)
        self.hups += 1

    def scrape(self):
        status, body = self.http("GET", f"/records?zone={ZONE}&limit=100")
        self.scrapes += 1
        if status != 200 or b'"records"' not in body:
            self.scrape_failures += 1

    def measure(self):
        self.resources.append((time.monotonic() - self.started, rss_kib(self.proc.pid), fds(self.proc.pid)))

    # ─── the sampler ────────────────────────────────────────────────────────────────────

    def expected(self, name):
        """The answers `name` may get now."""
        short = name.split(".")[0]
        if short in STATIC:
            return {(STATIC[short],)}
        if short == "app":
            with self.lock:
                down, recent = self.flip["down"], time.monotonic() - self.flipped_at < 2.0
            both, one = tuple(sorted(MEMBERS.values())), (MEMBERS["m2"],)
            now = one if down else both
            return {both, one} if recent else {now}
        with self.lock:
            latest = [ip for n, ip, _ in self.pushed if n == name]
        return {(latest[-1],)} if latest else None

    def dot_query(self, name):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        msg, _ = dnsclient.query(name)
        try:
            with socket.create_connection(("127.0.0.1", self.dot), timeout=2) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(struct.pack(">H", len(msg)) + msg)
                    n = struct.unpack(">H", dnsclient.read_exact(s, 2))[0]
                    return dnsclient.Reply(dnsclient.read_exact(s, n))
        except (OSError, ValueError):
            return None

    def sampler(self):
        k = 0
        while not self.stop.is_set():
            k += 1
            names = [f"{n}.{ZONE}" for n in STATIC] + [f"app.{ZONE}"]
            with self.lock:
                if self.pushed:
                    names.append(self.pushed[-1][0] if k % 2 else self.pushed[k % len(self.pushed)][0])
            name = names[k % len(names)]
            transport = ("udp", "tcp", "dot")[k % 3]
            # What may be answered: the expected state when asked or when answered (a push
            # acknowledged meanwhile changes it).
            before = self.expected(name)
            started = time.monotonic()
            if transport == "udp":
                reply = dnsclient.udp(("127.0.0.1", self.dns), name, timeout=2)
            elif transport == "tcp":
                reply = dnsclient.tcp(("127.0.0.1", self.dns), name)
            else:
                reply = self.dot_query(name)
            ms = (time.monotonic() - started) * 1000
            minute = int((time.monotonic() - self.started) // 60)
            after = self.expected(name)
            want = None if before is None and after is None else (before or set()) | (after or set())
            got = None if reply is None else reply.answer()
            wrong = got is None or (want is not None and got not in want)
            if wrong:
                self.wrong.append((round(time.monotonic() - self.started, 1), transport, name, got, want))
            self.samples.append((minute, ms, wrong))
            self.stop.wait(0.02)

    # ─── dnsperf ────────────────────────────────────────────────────────────────────────

    def dnsperf(self, mode, qps, seconds):
        port = self.dot if mode == "dot" else self.dns
        cmd = ["dnsperf", "-m", mode, "-s", "127.0.0.1", "-p", str(port), "-d", f"{self.work}/queries",
               "-l", str(seconds), "-Q", str(qps), "-c", "4" if mode != "udp" else "1", "-q", "200", "-t", "2"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout

        def number(label):
            m = re.search(label + r":\s+(\d+)", out)
            return int(m.group(1)) if m else 0

        codes = dict(re.findall(r"(\w+) \d+ \(([\d.]+)%\)", out.split("Response codes:")[1].split("\n")[0])) if "Response codes:" in out else {}
        noerror = float(codes.get("NOERROR", "0"))
        return {"sent": number("Queries sent"), "done": number("Queries completed"), "lost": number("Queries lost"),
                "noerror_pct": noerror}

    def run(self):
        a = self.args
        threading.Thread(target=self.sampler, daemon=True).start()
        self.every(1, self.push)
        self.every(10, self.flip_health)
        self.every(60, self.hup)
        self.every(5, self.scrape)
        self.every(5, self.measure)
        self.measure()
        shares = {"udp": 0.6, "tcp": 0.2, "dot": 0.2}
        minutes = []
        log(f"{'min':>3} {'answered':>10} {'lost':>6} {'!NOERROR':>8} {'wrong':>5} {'p99 ms':>7} {'RSS MiB':>8} {'FDs':>5}")
        for minute in range(a.minutes):
            runs = {}
            threads = [
                threading.Thread(target=lambda m=m, s=s: runs.__setitem__(m, self.dnsperf(m, max(1, int(a.qps * s)), 60)))
                for m, s in shares.items()
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            done = sum(r["done"] for r in runs.values())
            lost = sum(r["lost"] for r in runs.values())
            bad = sum(round(r["done"] * (100 - r["noerror_pct"]) / 100) for r in runs.values())
            lat = sorted(ms for m, ms, _ in self.samples if m == minute)
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
            wrong = sum(1 for m, _, w in self.samples if m == minute and w)
            _, rss, fd = self.resources[-1]
            minutes.append({"minute": minute + 1, "answered": done, "lost": lost, "not_noerror": bad, "wrong": wrong,
                            "p99_ms": round(p99, 2), "rss_kib": rss, "fds": fd})
            log(f"{minute + 1:>3} {done:>10} {lost:>6} {bad:>8} {wrong:>5} {p99:>7.2f} {rss / 1024:>8.1f} {fd:>5}")
        self.stop.set()
        time.sleep(1)
        return minutes

    def verify_pushes(self):
        """The names whose last acknowledged push is not what DNS answers."""
        last = {n: ip for n, ip, _ in self.pushed}
        missing = []
        for n, ip in last.items():
            reply = dnsclient.udp(("127.0.0.1", self.dns), n, timeout=1)
            if reply is None or reply.answer() != (ip,):
                missing.append(n)
        return missing

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tap.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    p.add_argument("--binary", default=os.path.join(target, "release", "gslbd"))
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--qps", type=int, default=20000)
    p.add_argument("--json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="gslbd-soak-") as work:
        soak = Soak(args, work)
        try:
            minutes = soak.run()
            missing = soak.verify_pushes()
        finally:
            soak.close()
        res = soak.resources

        def median(lo, hi, i):
            values = [r[i] for r in res if lo <= r[0] < hi] or [res[-1][i]]
            return statistics.median(values)

        # Growth, not jitter: the median of the last minute's readings against the second
        # minute's (the first warms up; open descriptors move with the clients' connections).
        end = res[-1][0]
        second = (median(60, 120, 1), median(60, 120, 2))
        last = (median(end - 60, end + 1, 1), median(end - 60, end + 1, 2))
        rss_growth = (last[0] - second[0]) / second[0] * 100
        fd_growth = (last[1] - second[1]) / second[1] * 100
        lost = sum(m["lost"] for m in minutes)
        bad = sum(m["not_noerror"] for m in minutes)
        log(f"queries answered {sum(m['answered'] for m in minutes)}, lost {lost}, not NOERROR {bad}")
        log(f"sampled {len(soak.samples)} (UDP/TCP/DoT), wrong {len(soak.wrong)}")
        log(f"pushes acknowledged {len(soak.pushed)}, refused {soak.push_failures}, not answered at the end {len(missing)}")
        log(f"SIGHUPs {soak.hups}, config reloads logged {open(work + '/gslbd.log').read().count('config reloaded')}, /records scrapes {soak.scrapes} ({soak.scrape_failures} failed)")
        log(f"RSS start {res[0][1] / 1024:.1f} MiB, minute 2 {second[0] / 1024:.1f} MiB, last minute {last[0] / 1024:.1f} MiB: {rss_growth:+.1f}%")
        log(f"FDs start {res[0][2]}, minute 2 {second[1]:.0f}, last minute {last[1]:.0f}: {fd_growth:+.1f}%")
        for w in soak.wrong[:10]:
            log("WRONG", *w)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"minutes": minutes, "resources": res, "wrong": soak.wrong, "missing": missing}, f, indent=1)
        failed = lost or bad or soak.wrong or missing or soak.push_failures or soak.scrape_failures or rss_growth > 5 or fd_growth > 5
        if failed:
            log("SOAK FAILED")
            with open(work + "/gslbd.log") as f:
                log("".join(f.readlines()[-20:]))
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
