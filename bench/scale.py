#!/usr/bin/env python3
"""Scale figures of one gslbd release build, measured from outside on loopback (issue 11).

A fake Elchi controller serves one zone of N A records; the zone also has a pool whose
member is probed over HTTP every 100 ms (rise/fall 1) on a small endpoint this script
toggles. Real DNS (UDP and TCP) and HTTP are timed client-side.

    cargo build --release && bench/scale.py [--records 1000000] [--pushes 50]
    bench/scale.py --records 100000 --rss-pushes 10000   # RSS before/after one-record pushes
    bench/scale.py --signed                              # the zone signed (DNSSEC): DO queries,
                                                         # a push is visible once it is signed
    bench/scale.py --transfer [--rounds 3]               # AXFR of the zone: time, records, gslbd's
                                                         # RSS during it; Knot DNS bootstrapping
                                                         # from it as a secondary when knotd exists

Prints one line per figure. Every loop is bounded in count and time; everything listens
and sends on 127.0.0.1 only.
"""
import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsclient import read_exact  # noqa: E402
from loopback import free_port, rss_kib, serve  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GSLBD_BINARY measures another build (say, the one before a change) with the same script.
BINARY = os.environ.get("GSLBD_BINARY") or os.path.join(ROOT, "target", "release", "gslbd")
ZONE = "big.example"
SECRET = "scale-secret-1"


# With --signed every query asks with DO, and an answer counts once it carries its RRSIG.
SIGNED = {"on": False}
# With --transfer the zone may be transferred from loopback.
TRANSFER = {"on": False}


def query(name, qtype=1, tcp_port=None, udp_port=None, timeout=2.0):
    """One DNS query; returns (rcode, ancount, answer bytes). Signed: the RRSIGs are not
    counted in ancount, and an answer without one counts as none."""
    msg = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1 if SIGNED["on"] else 0)
    for label in name.rstrip(".").split("."):
        msg += bytes([len(label)]) + label.encode()
    msg += b"\x00" + struct.pack(">HH", qtype, 1)
    if SIGNED["on"]:
        msg += b"\x00" + struct.pack(">HHIH", 41, 1232, 0x8000, 0)
    if tcp_port:
        s = socket.create_connection(("127.0.0.1", tcp_port), timeout=timeout)
        s.sendall(struct.pack(">H", len(msg)) + msg)
        n = struct.unpack(">H", read_exact(s, 2))[0]
        reply = read_exact(s, n)
        s.close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", udp_port))
        reply, _ = s.recvfrom(65535)
        s.close()
    flags, ancount = struct.unpack(">H", reply[2:4])[0], struct.unpack(">H", reply[6:8])[0]
    if SIGNED["on"] and ancount > 0:
        ancount = ancount - 1 if ancount >= 2 else 0
    return flags & 0xF, ancount, reply


def ip_of(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def controller_body(records):
    """The fake controller's snapshot: one zone of `records` A records n0..n{records-1}."""
    return json.dumps(
        {
            "zone": ZONE,
            "version_hash": "v1",
            "records": [{"name": f"n{i}.{ZONE}", "type": "A", "ttl": 300, "ips": [ip_of(i)]} for i in range(records)],
        }
    ).encode()


def settled_rss_kib(pid, deadline_s=60):
    """RSS once background work (a state-file rewrite, a fold) has finished and its memory is
    handed back: readings 0.5 s apart until four in a row agree within 1% (or the deadline)."""
    readings = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        readings.append(rss_kib(pid))
        last = readings[-4:]
        if len(last) == 4 and max(last) - min(last) <= 0.01 * max(last):
            return last[-1]
        time.sleep(0.5)
    print(f"# RSS did not settle within {deadline_s} s: {readings[-4:]}")
    return readings[-1]


class Gslbd:
    def __init__(self, records, state_dir, controller_port, health_port, journal=True):
        self.dns = free_port()
        dnssec = ""
        if SIGNED["on"]:
            keys = os.path.join(state_dir, "keys")
            if not os.path.isdir(keys):
                os.makedirs(keys)
                for extra in (["--ksk"], []):
                    subprocess.run([BINARY, "dnssec", "keygen", ZONE, "--dir", keys] + extra, check=True,
                                   stdout=subprocess.DEVNULL)
            stems = sorted({os.path.join(keys, f[: -len(".key")]) for f in os.listdir(keys) if f.endswith(".key")})
            dnssec = "[zone.dnssec]\nkeys = [" + ", ".join(f'"{k}"' for k in stems) + "]\n"
        self.admin = free_port()
        cfg = f"""[server]
listen = ["127.0.0.1:{self.dns}"]
udp_workers = 1
[state]
dir = "{state_dir}"
journal = {"true" if journal else "false"}
[admin]
listen = "127.0.0.1:{self.admin}"
secret = "{SECRET}"
max_body = "64MiB"
[[zone]]
name = "{ZONE}"
ns = ["ns1.{ZONE}"]
[[zone.pool]]
name = "pool"
[zone.pool.check]
type = "http"
port = {health_port}
path = "/health"
interval = "100ms"
timeout = "50ms"
rise = 1
fall = 1
[[zone.pool.member]]
name = "m"
ipv4 = ["127.0.0.1"]
[zone.controller]
endpoint = "http://127.0.0.1:{controller_port}"
secret = "{SECRET}"
sync_interval = "3600s"
timeout = "60s"
max_response_size = "1GiB"
{dnssec}{'[zone.transfer]' + chr(10) + 'allow = ["127.0.0.0/8"]' + chr(10) if TRANSFER["on"] else ""}"""
        self.config = os.path.join(state_dir, "gslbd.toml")
        with open(self.config, "w") as f:
            f.write(cfg)
        self.records = records
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [BINARY, "--log-level", "warn", "run", "--config", self.config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_answering(self, name, deadline=600):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                rcode, an, _ = query(name, udp_port=self.dns, timeout=0.5)
                if rcode == 0 and an > 0:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{name} never answered")

    def notify(self, body):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin}/notify",
            data=json.dumps(body).encode(),
            headers={"X-Elchi-Secret": SECRET, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def push_latency(g, n, tag):
    """/notify of one name -> visible over UDP, client-side (includes the HTTP round trip)."""
    lat, acks = [], []
    for i in range(n):
        name = f"{tag}{i}.{ZONE}"
        t0 = time.monotonic()
        assert g.notify({"records": [{"name": name, "type": "A", "ttl": 30, "ips": ["192.0.2.1"]}]}) == 200
        acks.append(time.monotonic() - t0)
        end = t0 + 30
        while True:
            rcode, an, _ = query(name, udp_port=g.dns)
            if an > 0:
                break
            if time.monotonic() > end:
                raise RuntimeError("push never visible")
        lat.append(time.monotonic() - t0)
    return lat, acks


def flip_latency(g, health, flips=10):
    """Health endpoint toggled -> the pool's answer changes in DNS."""
    out = []
    for i in range(flips):
        up = i % 2 == 1
        t0 = time.monotonic()
        health["status"] = 200 if up else 503
        end = t0 + 30
        while time.monotonic() < end:
            _, an, _ = query(f"pool.{ZONE}", udp_port=g.dns)
            if (an > 0) == up:
                out.append(time.monotonic() - t0)
                break
            time.sleep(0.002)
    return out


def rss_over_pushes(records, pushes):
    """RSS after loading, then after `pushes` one-record pushes (each visible before the next)."""
    body = controller_body(records)
    cport, hport = free_port(), free_port()
    serve(("127.0.0.1", cport), lambda path: (200, body))
    serve(("127.0.0.1", hport), lambda path: (200, b"ok"))
    with tempfile.TemporaryDirectory() as state:
        g = Gslbd(records, state, cport, hport)
        try:
            g.wait_answering(f"n{records - 1}.{ZONE}")
            before = settled_rss_kib(g.proc.pid)
            mid = None
            for i in range(pushes):
                name = f"n{i % records}.{ZONE}"
                assert g.notify({"records": [{"name": name, "type": "A", "ttl": 30, "ips": [ip_of(i + 7)]}]}) == 200
                if i + 1 == pushes // 2:
                    mid = settled_rss_kib(g.proc.pid)
            after = settled_rss_kib(g.proc.pid)
        finally:
            g.stop()
    print(f"rss_before_mib {before / 1024:.1f}")
    if mid is not None:
        print(f"rss_after_{pushes // 2}_pushes_mib {mid / 1024:.1f}")
    print(f"rss_after_{pushes}_pushes_mib {after / 1024:.1f}")
    print(f"rss_growth_pct {100 * (after - before) / before:.1f}")


def run(records, pushes):
    print(f"# records={records} pushes={pushes} signed={SIGNED['on']} binary={BINARY}", flush=True)
    body = controller_body(records)
    controller_up = {"up": True}
    health = {"status": 200}
    cport, hport = free_port(), free_port()
    serve(("127.0.0.1", cport), lambda path: (200, body) if controller_up["up"] else (503, b"down"))
    serve(("127.0.0.1", hport), lambda path: (health["status"], b"ok"))
    results = {}
    with tempfile.TemporaryDirectory() as state:
        g = Gslbd(records, state, cport, hport)
        try:
            results["start_to_last_name_s"] = g.wait_answering(f"n{records - 1}.{ZONE}")
            time.sleep(3)  # the state-file writer and the reclaim thread settle
            rss = rss_kib(g.proc.pid)
            results["rss_mib"] = rss / 1024
            results["rss_bytes_per_record"] = rss * 1024 / records
            lat, acks = push_latency(g, pushes, "p")
            results["push_visible_p50_ms"] = statistics.median(lat) * 1e3
            results["push_visible_p99_ms"] = pct(lat, 99) * 1e3
            results["push_ack_p99_ms"] = pct(acks, 99) * 1e3
            flips = flip_latency(g, health)
            results["flip_visible_median_ms"] = statistics.median(flips) * 1e3
            # TCP latency while pushes run.
            stop = threading.Event()
            tcp = []

            def tcp_loop():
                while not stop.is_set():
                    t0 = time.monotonic()
                    query(f"n1.{ZONE}", tcp_port=g.dns, timeout=10)
                    tcp.append(time.monotonic() - t0)

            t = threading.Thread(target=tcp_loop)
            t.start()
            push_latency(g, max(10, pushes // 2), "t")
            stop.set()
            t.join()
            results["tcp_during_pushes_max_ms"] = max(tcp) * 1e3
            results["tcp_during_pushes_p99_ms"] = pct(tcp, 99) * 1e3
        finally:
            g.stop()
        # Cold start from the state file with the controller down.
        controller_up["up"] = False
        g = Gslbd(records, state, cport, hport)
        try:
            results["cold_start_from_state_s"] = g.wait_answering(f"n{records - 1}.{ZONE}")
        finally:
            g.stop()
    results.update(journal_cost(pushes, hport))
    for k, v in results.items():
        print(f"{k} {v:.3f}", flush=True)


def axfr(port, expected, deadline_s=300):
    """AXFR over TCP: (seconds to the last record, records, messages, bytes). Counts each
    message's ANCOUNT until `expected` records came, then waits briefly for any more."""
    msg = struct.pack(">HHHHHH", 0x4242, 0, 1, 0, 0, 0)
    for label in ZONE.split("."):
        msg += bytes([len(label)]) + label.encode()
    msg += b"\x00" + struct.pack(">HH", 252, 1)
    s = socket.create_connection(("127.0.0.1", port), timeout=deadline_s)
    t0 = time.monotonic()
    s.sendall(struct.pack(">H", len(msg)) + msg)
    records = messages = size = 0
    done = None
    while True:
        try:
            n = struct.unpack(">H", read_exact(s, 2))[0]
        except (socket.timeout, ValueError):
            break
        reply = read_exact(s, n)
        rcode = reply[3] & 0xF
        if rcode:
            raise RuntimeError(f"AXFR refused: rcode {rcode}")
        records += struct.unpack(">H", reply[6:8])[0]
        messages += 1
        size += n
        if records >= expected and done is None:
            done = time.monotonic() - t0
            s.settimeout(0.5)
        if time.monotonic() - t0 > deadline_s:
            raise RuntimeError("AXFR took too long")
    s.close()
    return done, records, messages, size


def knot_bootstrap(dns_port, deadline_s=600):
    """Knot DNS as a secondary of gslbd: seconds its log gives for the AXFR, and its serial
    once loaded. None when knotd is not installed."""
    knotd = "/usr/sbin/knotd" if os.path.exists("/usr/sbin/knotd") else None
    if not knotd:
        return None
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        os.makedirs(os.path.join(d, "db"))
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(
                f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\nlog:\n  - target: stderr\n    any: info\n"
                f"remote:\n  - id: primary\n    address: 127.0.0.1@{dns_port}\n"
                f"database:\n    storage: {d}/db\n"
                f"zone:\n  - domain: {ZONE}\n    storage: {d}\n    file: zone\n    master: primary\n"
                f"    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n"
            )
        log = open(os.path.join(d, "knot.log"), "w+")
        proc = subprocess.Popen([knotd, "-c", os.path.join(d, "knot.conf")], stdout=subprocess.DEVNULL, stderr=log)
        try:
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                log.seek(0)
                for line in log.read().splitlines():
                    if "AXFR, incoming" in line and "finished" in line:
                        # "... finished, 3.21 seconds, 1234 messages, 56789 bytes"
                        return float(line.split("finished, ")[1].split(" seconds")[0])
                time.sleep(0.1)
            raise RuntimeError("knot did not finish the AXFR")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def transfer_figures(records, rounds):
    """AXFR of the zone, `rounds` times: the time to the last record, the records and
    messages, and gslbd's RSS before and at its highest during the transfer."""
    TRANSFER["on"] = True
    print(f"# records={records} rounds={rounds} transfer binary={BINARY}", flush=True)
    body = controller_body(records)
    cport, hport = free_port(), free_port()
    serve(("127.0.0.1", cport), lambda path: (200, body))
    serve(("127.0.0.1", hport), lambda path: (200, b"ok"))
    # The controller's records, the apex NS, the pool's address and the SOA first and last.
    expected = records + 4
    with tempfile.TemporaryDirectory() as state:
        g = Gslbd(records, state, cport, hport)
        try:
            g.wait_answering(f"n{records - 1}.{ZONE}")
            before = settled_rss_kib(g.proc.pid)
            print(f"rss_before_mib {before / 1024:.1f}", flush=True)
            for r in range(rounds):
                peak = [0]
                stop = threading.Event()

                def sample():
                    while not stop.is_set():
                        peak[0] = max(peak[0], rss_kib(g.proc.pid))
                        time.sleep(0.01)

                t = threading.Thread(target=sample)
                t.start()
                took, got, messages, size = axfr(g.dns, expected)
                stop.set()
                t.join()
                if got != expected:
                    raise RuntimeError(f"AXFR gave {got} records, expected {expected}")
                print(
                    f"axfr_round{r} seconds {took:.2f} records {got} messages {messages} mib {size / 2**20:.1f} "
                    f"records_per_s {got / took:.0f} rss_peak_mib {peak[0] / 1024:.1f} "
                    f"rss_peak_over_before_mib {(peak[0] - before) / 1024:.1f}",
                    flush=True,
                )
            after = settled_rss_kib(g.proc.pid)
            print(f"rss_after_mib {after / 1024:.1f}", flush=True)
            knot = knot_bootstrap(g.dns)
            if knot is not None:
                print(f"knot_axfr_seconds {knot:.2f}", flush=True)
        finally:
            g.stop()


def journal_cost(pushes, hport=None):
    """The journal's cost: /notify acknowledgement with and without it, interleaved runs."""
    if hport is None:
        hport = free_port()
        serve(("127.0.0.1", hport), lambda path: (200, b"ok"))
    results = {}
    # Write back what earlier phases left dirty (a million-record state file), so that the
    # journal's fsyncs below wait for its own entries and not for that backlog.
    os.sync()
    small = json.dumps({"zone": ZONE, "version_hash": "v1", "records": []}).encode()
    sport = free_port()
    serve(("127.0.0.1", sport), lambda path: (200, small))
    acks = {True: [], False: []}
    for _ in range(3):
        for journal in (True, False):
            with tempfile.TemporaryDirectory() as state:
                g = Gslbd(0, state, sport, hport, journal=journal)
                try:
                    g.wait_answering(f"pool.{ZONE}")
                    _, a = push_latency(g, pushes, "j")
                    acks[journal] += a
                finally:
                    g.stop()
    results["notify_ack_p50_ms_journal"] = pct(acks[True], 50) * 1e3
    results["notify_ack_p50_ms_no_journal"] = pct(acks[False], 50) * 1e3
    results["notify_ack_p99_ms_journal"] = pct(acks[True], 99) * 1e3
    results["notify_ack_p99_ms_no_journal"] = pct(acks[False], 99) * 1e3
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--pushes", type=int, default=50)
    ap.add_argument("--rss-pushes", type=int, default=0, help="only measure RSS over this many pushes")
    ap.add_argument("--journal-only", action="store_true", help="only measure the journal's cost on /notify")
    ap.add_argument("--signed", action="store_true", help="the zone signed (DNSSEC), queries with DO")
    ap.add_argument("--transfer", action="store_true", help="only measure AXFR of the zone")
    ap.add_argument("--rounds", type=int, default=3, help="AXFR rounds with --transfer")
    a = ap.parse_args()
    SIGNED["on"] = a.signed
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} missing: run cargo build --release")
    if a.transfer:
        transfer_figures(a.records, a.rounds)
    elif a.journal_only:
        for k, v in journal_cost(a.pushes).items():
            print(f"{k} {v:.3f}", flush=True)
    elif a.rss_pushes:
        rss_over_pushes(a.records, a.rss_pushes)
    else:
        run(a.records, a.pushes)
