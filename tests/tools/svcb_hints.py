#!/usr/bin/env python3
"""Reads a pool's HTTPS (or SVCB) record and its A and AAAA answers for one client with
dnspython, which parses the SVCB wire format independently of gslbd (RFC 9460).

  svcb_hints.py SERVER PORT QNAME [--ecs ADDRESS/PREFIX] [--type HTTPS|SVCB]

Prints one JSON object: "a" and "aaaa" (sorted addresses), "records": per HTTPS/SVCB record
its priority, target, alpn, port, ech (base64), ipv4hint and ipv6hint (sorted), and "scope":
the ECS scope of the HTTPS answer. Exit 1 when an answer does not parse.
"""

import argparse
import base64
import json
import sys

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def ask(server, port, qname, qtype, ecs):
    options = []
    if ecs:
        address, prefix = ecs.split("/")
        options.append(dns.edns.ECSOption(address, int(prefix), 0))
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, options=options)
    q.flags &= ~dns.flags.RD
    return dns.query.udp(q, server, port=port, timeout=5)


def scope_of(m):
    for o in m.options:
        if isinstance(o, dns.edns.ECSOption):
            return o.scopelen
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("port", type=int)
    p.add_argument("qname")
    p.add_argument("--ecs")
    p.add_argument("--type", default="HTTPS")
    a = p.parse_args()
    out = {}
    for key, t in (("a", "A"), ("aaaa", "AAAA")):
        m = ask(a.server, a.port, a.qname, t, a.ecs)
        out[key] = sorted(r.address for rrset in m.answer for r in rrset if rrset.rdtype == dns.rdatatype.from_text(t))
    m = ask(a.server, a.port, a.qname, a.type, a.ecs)
    out["rcode"] = dns.rcode.to_text(m.rcode())
    out["scope"] = scope_of(m)
    records = []
    for rrset in m.answer:
        if rrset.rdtype != dns.rdatatype.from_text(a.type):
            continue
        for r in rrset:
            params = r.params
            get = lambda k: params.get(dns.rdtypes.svcbbase.ParamKey.make(k))
            alpn = get("alpn")
            port = get("port")
            ech = get("ech")
            v4 = get("ipv4hint")
            v6 = get("ipv6hint")
            records.append({
                "priority": r.priority,
                "target": r.target.to_text(),
                "alpn": [x.decode() for x in alpn.ids] if alpn else None,
                "port": port.port if port else None,
                "ech": base64.b64encode(ech.ech).decode() if ech else None,
                "ipv4hint": sorted(str(x) for x in v4.addresses) if v4 else [],
                "ipv6hint": sorted(str(x) for x in v6.addresses) if v6 else [],
                "ttl": rrset.ttl,
            })
    out["records"] = records
    print(json.dumps(out))


if __name__ == "__main__":
    import dns.rcode
    import dns.rdtypes.svcbbase
    sys.exit(main())
