#!/usr/bin/env python3
"""Three gslbd instances x 1,000 probe targets at a 1 s interval, with and without [cluster]
(health observations shared through a local nats-server with JetStream):

  bench/cluster.py GSLBD_BIN [--targets 1000] [--flips 20] [--window 20] [--rounds 3]

Prints per instance and round (local and cluster runs interleaved): CPU (ms per second)
without and with [cluster], the ratios and their median; in the last round NATS messages and
bytes per second in and out (nats-server's /connz); then the time from a target's change at
the endpoint to the same verdict on all three instances (p50/p99 over --flips changes, each
down then up). Everything listens on 127.0.0.0/8: the health endpoint on 127.0.0.2 answers
/h/<k> (503 for the targets being flipped), the instances probe from 127.0.0.41-43.
"""
import argparse
import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopback import free_port  # noqa: E402

FAILING = set()


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            k = path.rsplit("/", 1)[-1]
            code = b"503 Service Unavailable" if k in FAILING else b"200 OK"
            writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError):
        writer.close()


def endpoint(port_box):
    async def main():
        server = await asyncio.start_server(handle, "127.0.0.2", 0)
        port_box.append(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def config(name, source, dns_port, hport, targets, nats_url):
    out = [f'[server]\nlisten = ["127.0.0.1:{dns_port}"]\nudp_workers = 1\n']
    if nats_url:
        out.append(f'[cluster]\nnats = ["{nats_url}"]\ninstance = "{name}"\nprobe_source = "{source}"\n')
    out.append('[state]\ndir = "state-' + name + '"\n')
    out.append('[[zone]]\nname = "gslb.example.org"\nns = ["ns1.gslb.example.org"]\nrecords = "ns1 60 IN A 127.0.0.1\\n"\n')
    for k in range(targets):
        out.append(
            f'[[zone.pool]]\nname = "p{k}"\nwhen_all_down = "nodata"\n[zone.pool.check]\ntype = "http"\nport = {hport}\n'
            f'path = "/h/{k}"\ninterval = "1s"\ntimeout = "500ms"\nrise = 2\nfall = 2\n'
            f'[[zone.pool.member]]\nname = "m"\nipv4 = ["127.0.0.2"]\n'
        )
    return "".join(out)


def ask(port, name):
    msg = struct.pack(">HHHHHH", random.randrange(65536), 0, 1, 0, 0, 0)
    for label in name.split("."):
        msg += bytes([len(label)]) + label.encode()
    msg += b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(msg, ("127.0.0.1", port))
        reply = s.recv(4096)
        return struct.unpack(">H", reply[6:8])[0]  # answer count
    except socket.timeout:
        return None
    finally:
        s.close()


def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def connz(mport):
    data = json.load(urllib.request.urlopen(f"http://127.0.0.1:{mport}/connz"))
    return {c.get("name", ""): c for c in data.get("connections", [])}


def start_instances(bin_, work, hport, targets, nats_url):
    procs, ports = [], []
    for i, name in enumerate("abc"):
        port = free_port()
        path = os.path.join(work, f"{name}{'-cluster' if nats_url else ''}.toml")
        open(path, "w").write(config(name, f"127.0.0.{41 + i}", port, hport, targets, nats_url))
        log = open(path + ".log", "w")
        procs.append(subprocess.Popen([bin_, "--log-level", "warn", "run", "--config", path], cwd=work, stdout=subprocess.DEVNULL, stderr=log))
        ports.append(port)
    for port in ports:
        for _ in range(400):
            if ask(port, "ns1.gslb.example.org") is not None:
                break
            time.sleep(0.05)
    return procs, ports


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--flips", type=int, default=20)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of local and cluster")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    random.seed(7)
    work = tempfile.mkdtemp(prefix="gslbd-cluster-bench.")
    box = []
    threading.Thread(target=endpoint, args=(box,), daemon=True).start()
    while not box:
        time.sleep(0.01)
    hport = box[0]
    nport, mport = free_port(), free_port()
    nats = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nport), "-m", str(mport), "-sd", os.path.join(work, "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    result = {"local": [], "cluster": []}
    try:
        for rnd, mode in [(r, m) for r in range(args.rounds) for m in ("local", "cluster")]:
            last = rnd == args.rounds - 1
            url = f"nats://127.0.0.1:{nport}" if mode == "cluster" else None
            procs, ports = start_instances(args.bin, work, hport, args.targets, url)
            time.sleep(5)  # start-up spread and first probes
            c0 = [cpu_ms(p.pid) for p in procs]
            z0 = connz(mport) if url else {}
            time.sleep(args.window)
            c1 = [cpu_ms(p.pid) for p in procs]
            z1 = connz(mport) if url else {}
            cpu = [(b - a) / args.window for a, b in zip(c0, c1)]
            result[mode].append(cpu)
            print(f"round {rnd + 1} {mode:8} CPU ms/s per instance: " + ", ".join(f"{x:.1f}" for x in cpu))
            if url and last:
                for name in "abc":
                    a, b = z0.get(f"gslbd-{name}", {}), z1.get(f"gslbd-{name}", {})
                    rate = lambda k: (b.get(k, 0) - a.get(k, 0)) / args.window
                    print(f"  NATS gslbd-{name}: in {rate('in_msgs'):.0f} msg/s {rate('in_bytes') / 1000:.1f} kB/s, "
                          f"out {rate('out_msgs'):.0f} msg/s {rate('out_bytes') / 1000:.1f} kB/s")
                times = []
                for k in random.sample(range(args.targets), args.flips):
                    for down in (True, False):
                        (FAILING.add if down else FAILING.discard)(str(k))
                        t0 = time.monotonic()
                        want_zero = down
                        while True:
                            counts = [ask(p, f"p{k}.gslb.example.org") for p in ports]
                            if all(c is not None and (c == 0) == want_zero for c in counts):
                                break
                            if time.monotonic() - t0 > 30:
                                print(f"  target {k}: no agreement after 30 s: {counts}")
                                break
                            time.sleep(0.01)
                        times.append(time.monotonic() - t0)
                times.sort()
                p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
                print(f"  change -> same verdict on all three: p50 {p(0.5):.2f} s, p99 {p(0.99):.2f} s, max {times[-1]:.2f} s "
                      f"over {len(times)} changes (interval 1 s, rise 2, fall 2)")
            stop(procs)
        ratios = sorted(c / l for lr, cr in zip(result["local"], result["cluster"]) for l, c in zip(lr, cr))
        print("CPU with [cluster] / without, per instance and round: " + ", ".join(f"{r:.2f}" for r in ratios)
              + f"; median {ratios[len(ratios) // 2]:.2f}")
    finally:
        nats.terminate()
        nats.wait(10)


if __name__ == "__main__":
    sys.exit(main())
