"""A minimal DNS client for the chaos and soak scripts: A/AAAA queries over UDP and TCP and
the answer section read back (standard library only, so the scripts need no pip install)."""

import random
import socket
import struct


def query(name, qtype=1, qid=None, dnssec=False):
    """A query for `name` (type `qtype`, RD clear) and its id; with `dnssec`, an OPT with DO."""
    qid = random.randrange(65536) if qid is None else qid
    head = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if dnssec else 0)
    wire = b"".join(bytes([len(label)]) + label.encode() for label in name.strip(".").split(".")) + b"\0"
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000, 0) if dnssec else b""
    return head + wire + struct.pack(">HH", qtype, 1) + opt, qid


def _skip_name(msg, at):
    while True:
        n = msg[at]
        if n == 0:
            return at + 1
        if n & 0xC0 == 0xC0:
            return at + 2
        at += 1 + n


class Reply:
    """A response: its rcode, TC flag, the A/AAAA addresses of its answer section and how
    many RRSIGs its answer and authority sections carry."""

    def __init__(self, msg):
        self.id, flags, qd, an, ns, _ = struct.unpack(">HHHHHH", msg[:12])
        self.rcode = flags & 0xF
        self.tc = bool(flags & 0x0200)
        at = 12
        for _ in range(qd):
            at = _skip_name(msg, at) + 4
        self.addresses = []
        self.rrsigs = 0
        for i in range(an + ns):
            at = _skip_name(msg, at)
            rtype, _, _, rdlen = struct.unpack(">HHIH", msg[at : at + 10])
            at += 10
            rdata = msg[at : at + rdlen]
            if rtype == 46:
                self.rrsigs += 1
            elif i >= an:
                pass
            elif rtype == 1:
                self.addresses.append(socket.inet_ntop(socket.AF_INET, rdata))
            elif rtype == 28:
                self.addresses.append(socket.inet_ntop(socket.AF_INET6, rdata))
            at += rdlen

    def answer(self):
        """The addresses as a sorted tuple, or the rcode name when there are none."""
        if self.addresses:
            return tuple(sorted(self.addresses))
        return {0: "NODATA", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(self.rcode, f"RCODE{self.rcode}")


def udp(server, name, qtype=1, timeout=1.0, dnssec=False):
    """Asks over UDP; the Reply, or None after `timeout`."""
    msg, qid = query(name, qtype, dnssec=dnssec)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            # A firewall rule that drops the packet makes sendto fail (EPERM): no answer.
            s.sendto(msg, server)
            while True:
                data, _ = s.recvfrom(65535)
                reply = Reply(data)
                if reply.id == qid:
                    return reply
        except (socket.timeout, OSError):
            return None


def tcp(server, name, qtype=1, timeout=2.0):
    """Asks over a new TCP connection; the Reply, or None on timeout or a closed connection."""
    msg, _ = query(name, qtype)
    try:
        with socket.create_connection(server, timeout=timeout) as s:
            s.sendall(struct.pack(">H", len(msg)) + msg)
            head = read_exact(s, 2)
            return Reply(read_exact(s, struct.unpack(">H", head)[0]))
    except (OSError, ValueError):
        return None


def read_exact(s, n):
    """Exactly `n` bytes from the stream `s` (ValueError if it closes first)."""
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ValueError("closed")
        out += chunk
    return out
