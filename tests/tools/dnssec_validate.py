#!/usr/bin/env python3
"""Validates one answer of a signed zone independently of gslbd, with dnspython's
dns.dnssec (PyPI: dnspython, cryptography).

Asks SERVER:PORT for the zone's DNSKEY set, checks it against the DS given (the parent's
trust anchor) and its own RRSIG, then asks QNAME QTYPE with DO (and an ECS option when
given) and validates every RRset of the answer and authority sections with that key set.

Prints one JSON object: the answer's records, the ECS scope, what validated. Exit 0 when
everything validated; with --tamper a bit of the first answer record's data is flipped in
the received bytes first, and exit 0 means validation failed, as it must.
"""

import argparse
import json
import socket
import struct
import sys

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def ask(server, port, qname, qtype, ecs=None):
    options = []
    if ecs:
        address, prefix = ecs.split("/")
        options.append(dns.edns.ECSOption(address, int(prefix), 0))
    q = dns.message.make_query(qname, qtype, want_dnssec=True, use_edns=0, payload=1232, options=options)
    q.flags &= ~dns.flags.RD
    wire = q.to_wire()
    with socket.create_connection((server, port), timeout=5) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        need = struct.unpack("!H", read_exact(s, 2))[0]
        return read_exact(s, need)


def read_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def flip_first_answer_bit(wire):
    """Flips the last bit of the first answer record's RDATA, found by walking the message."""
    at = 12
    qd, an = struct.unpack("!HH", wire[4:8])
    assert an > 0, "no answer to tamper with"
    for _ in range(qd):
        at = skip_name(wire, at) + 4
    at = skip_name(wire, at)
    rdlen = struct.unpack("!H", wire[at + 8:at + 10])[0]
    last = at + 10 + rdlen - 1
    return wire[:last] + bytes([wire[last] ^ 1]) + wire[last + 1:]


def skip_name(wire, at):
    while True:
        n = wire[at]
        if n & 0xC0 == 0xC0:
            return at + 2
        at += 1 + n
        if n == 0:
            return at


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("port", type=int)
    p.add_argument("zone")
    p.add_argument("ds", help="the zone's DS RDATA: 'TAG ALG DIGESTTYPE HEX'")
    p.add_argument("qname")
    p.add_argument("qtype")
    p.add_argument("--ecs")
    p.add_argument("--tamper", action="store_true")
    a = p.parse_args()

    zone = dns.name.from_text(a.zone)
    keys = dns.message.from_wire(ask(a.server, a.port, zone, "DNSKEY"))
    dnskey = keys.find_rrset(keys.answer, zone, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    sig = keys.find_rrset(keys.answer, zone, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    anchor = dns.rrset.from_text(zone, 3600, "IN", "DS", a.ds)[0]
    if not any(dns.dnssec.make_ds(zone, k, anchor.digest_type) == anchor for k in dnskey):
        print(json.dumps({"error": "no DNSKEY matches the DS"}))
        return 1
    dns.dnssec.validate(dnskey, sig, {zone: dnskey})

    wire = ask(a.server, a.port, a.qname, a.qtype, a.ecs)
    if a.tamper:
        wire = flip_first_answer_bit(wire)
    reply = dns.message.from_wire(wire)
    scope = None
    for o in reply.options:
        if isinstance(o, dns.edns.ECSOption):
            scope = o.scopelen
    validated = []
    try:
        for section in (reply.answer, reply.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.RRSIG:
                    continue
                if section is reply.authority and rrset.rdtype == dns.rdatatype.NS:
                    continue  # a delegation's NS set is the child's, never signed
                sigs = reply.find_rrset(section, rrset.name, rrset.rdclass, dns.rdatatype.RRSIG, rrset.rdtype)
                dns.dnssec.validate(rrset, sigs, {zone: dnskey})
                validated.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}")
    except (dns.dnssec.ValidationFailure, KeyError) as e:
        print(json.dumps({"error": f"validation failed: {e!r}", "validated": validated}))
        return 0 if a.tamper else 1
    answers = sorted(rd.to_text() for rrset in reply.answer if rrset.rdtype != dns.rdatatype.RRSIG for rd in rrset)
    expires = sorted(rd.expiration for rrset in reply.answer if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset)
    signers = sorted({rd.key_tag for rrset in reply.answer if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset})
    print(json.dumps({"answers": answers, "scope": scope, "validated": validated, "rcode": reply.rcode(),
                      "expires": expires, "key_tags": signers}))
    if a.tamper:
        return 1
    return 0 if validated else 1


if __name__ == "__main__":
    sys.exit(main())
