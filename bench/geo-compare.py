#!/usr/bin/env python3
"""Asks gslbd (configured by geo-config.py) and the harness's gdnsd-geo the same questions
with an EDNS Client Subnet option, for many client subnets, and compares the answers and the
ECS scopes.

  geo-compare.py GSLBD_BIN HARNESS_DIR DATA_DIR [SUBNETS] [SEED]

Starts both servers on loopback (gdnsd-geo on 5308, gslbd on 5398), then for SUBNETS
(default 400) client subnets — /24s and /20s inside the map's networks, at their edges and in
the gaps between them, /16s and /8s, addresses outside 10/8, and IPv6 /48s — asks a random
appN for A and AAAA and prints every difference and a summary. Exits 1 on any difference.
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

GDNSD_PORT, GSLBD_PORT = 5308, 5398


def query(name, qtype, family, addr_bytes, source):
    msg = struct.pack(">HHHHHH", random.randrange(65536), 0, 1, 0, 0, 1)
    for label in name.rstrip(".").split("."):
        msg += bytes([len(label)]) + label.encode()
    msg += b"\0" + struct.pack(">HH", qtype, 1)
    data = addr_bytes[: (source + 7) // 8]
    option = struct.pack(">HHHBB", 8, 4 + len(data), family, source, 0) + data
    msg += b"\0" + struct.pack(">HHIH", 41, 1232, 0, len(option)) + option
    return msg


def name_end(msg, at):
    while True:
        n = msg[at]
        if n & 0xC0 == 0xC0:
            return at + 2
        if n == 0:
            return at + 1
        at += 1 + n


def parse(msg):
    """(rcode, sorted answer rdata hex, ECS scope or None)."""
    rcode = msg[3] & 0xF
    qd, an, ns, ar = struct.unpack(">HHHH", msg[4:12])
    at = 12
    for _ in range(qd):
        at = name_end(msg, at) + 4
    answers, scope = [], None
    for i in range(an + ns + ar):
        at = name_end(msg, at)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[at : at + 10])
        rdata = msg[at + 10 : at + 10 + rdlen]
        if i < an:
            answers.append((rtype, rdata.hex()))
        if rtype == 41:
            o = 0
            while o + 4 <= len(rdata):
                code, olen = struct.unpack(">HH", rdata[o : o + 4])
                if code == 8:
                    scope = rdata[o + 7]
                o += 4 + olen
        at += 10 + rdlen
    return rcode, sorted(answers), scope


def ask(port, packet):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        for _ in range(3):
            s.sendto(packet, ("127.0.0.1", port))
            try:
                return parse(s.recv(4096))
            except socket.timeout:
                continue
        return None
    finally:
        s.close()


def wait_port(port):
    for _ in range(200):
        if ask(port, query("ns1.gslb.example.org", 1, 1, bytes(4), 0)):
            return True
        time.sleep(0.05)
    return False


def subnets(nets, count):
    """Client subnets (family, address bytes, source prefix) spread over the interesting cases."""
    out = []
    v4 = [n for n in nets if ":" not in n]
    for i in range(count):
        kind = i % 8
        net, prefix = random.choice(v4).split("/")
        base = int.from_bytes(socket.inet_aton(net), "big")
        size = 1 << (32 - int(prefix))
        if kind in (0, 1):  # inside a network
            addr, source = base + random.randrange(size), random.choice([24, 20, 28])
        elif kind == 2:  # just past a network's end
            addr, source = base + size + random.randrange(256), 24
        elif kind == 3:  # just before its start
            addr, source = max(base - 1 - random.randrange(256), 0), 24
        elif kind == 4:  # anywhere in 10/8, coarse
            addr, source = (10 << 24) + random.randrange(1 << 24), random.choice([16, 12, 8])
        elif kind == 5:  # outside the map
            addr, source = random.choice([(11 << 24), (192 << 24) + (2 << 8), (100 << 24)]) + random.randrange(1 << 16), 24
        elif kind == 6:  # IPv6
            a = bytes([0x20, 0x01, 0x0D, 0xB8, random.randrange(256), random.randrange(256)]) + bytes(10)
            out.append((2, a, 48))
            continue
        else:  # a whole network's own prefix
            addr, source = base, int(prefix)
        mask = (0xFFFFFFFF << (32 - source)) & 0xFFFFFFFF if source else 0
        out.append((1, ((addr & mask) & 0xFFFFFFFF).to_bytes(4, "big"), source))
    return out


def main():
    gslbd, harness, data = sys.argv[1], sys.argv[2], sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 400
    random.seed(int(sys.argv[5]) if len(sys.argv) > 5 else 12)
    work = tempfile.mkdtemp(prefix="geo-compare.")
    run = os.path.join(work, "gdnsd-geo")
    os.makedirs(os.path.join(run, "zones"))
    for f in os.listdir(os.path.join(harness, "peers", "gdnsd-geo")):
        text = open(os.path.join(harness, "peers", "gdnsd-geo", f)).read()
        text = text.replace("@RUN@", run).replace("@DATA@", data).replace("@PORT@", str(GDNSD_PORT))
        open(os.path.join(run, f), "w").write(text)
    zone = open(os.path.join(data, "gslb.example.org.gdnsd-geo.zone")).read()
    open(os.path.join(run, "zones", "gslb.example.org"), "w").write(zone)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "geo-config.py"), data, os.path.join(work, "gslbd"), str(GSLBD_PORT)], check=True)
    procs = [
        subprocess.Popen(["/usr/sbin/gdnsd", "-c", run, "start"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "gdnsd.log"), "w")),
        subprocess.Popen([gslbd, "--log-level", "warn", "run", "--config", os.path.join(work, "gslbd", "gslbd.toml")],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "gslbd.log"), "w")),
    ]
    try:
        if not (wait_port(GDNSD_PORT) and wait_port(GSLBD_PORT)):
            print(f"a server did not start; logs in {work}", file=sys.stderr)
            return 2
        nets = [l.split()[0] for l in open(os.path.join(data, "geo-nets.txt")) if l.strip() and not l.startswith("dc ")]
        same = differ = v6_scope_only = 0
        scopes = {}
        for family, addr, source in subnets(nets, count):
            name = f"app{random.randrange(1000)}.gslb.example.org"
            for qtype in (1, 28):
                packet = query(name, qtype, family, addr, source)
                a, b = ask(GDNSD_PORT, packet), ask(GSLBD_PORT, packet)
                shown = socket.inet_ntop(socket.AF_INET if family == 1 else socket.AF_INET6, addr.ljust(4 if family == 1 else 16, b"\0"))
                if a == b:
                    same += 1
                    scopes[(a[2] if a else None)] = scopes.get(a[2] if a else None, 0) + 1
                elif family == 2 and a and b and a[:2] == b[:2] and b[2] == 0:
                    # gdnsd looks 6to4 (2002::/16) and Teredo (2001::/32) clients up by their
                    # embedded IPv4 address, so its IPv6 scopes stop short of those ranges;
                    # gslbd answers all of IPv6 from the map's IPv6 networks (none here), so
                    # every IPv6 client gets the same answer and the scope is 0.
                    v6_scope_only += 1
                else:
                    differ += 1
                    print(f"DIFF {name} type {qtype} {shown}/{source}: gdnsd-geo {a} gslbd {b}")
        print(f"{same + differ + v6_scope_only} questions ({count} subnets x A, AAAA): {same} identical (answers and ECS scope), "
              f"{v6_scope_only} IPv6 with the same answer where gslbd's scope is 0 (gdnsd maps 6to4/Teredo into IPv4), {differ} different")
        print("scopes seen: " + ", ".join(f"/{k}: {v}" for k, v in sorted(scopes.items(), key=lambda kv: (kv[0] is None, kv[0]))))
        return 1 if differ else 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
