#!/usr/bin/env bash
# The harness's custom command for gslbd-all and gslbd-hash (bench/run.sh): the harness's
# names app0..app999 as pools of 4 members each (A in 198.18-21.x.y, AAAA in 2001:db8::/32,
# check "none"), answered with `select = SELECT`:
#   select-server.sh GSLBD_BIN all    every member in each answer (pre-encoded, no pick)
#   select-server.sh GSLBD_BIN hash   2 of the 4 ranked per query by the client's /24
# Runs inside the harness (which sets RUN and PORT and pins us to the server core).
set -euo pipefail
BIN=$1 SELECT=$2
mkdir -p "$RUN/select"
python3 - "$RUN/select/gslbd.toml" "$PORT" "$SELECT" <<'PY'
import sys
out, port, select = sys.argv[1], sys.argv[2], sys.argv[3]
zone = "gslb.example.org"
lines = ["[server]", f'listen = ["127.0.0.1:{port}"]', "udp_workers = 1", "",
         "[[zone]]", f'name = "{zone}"', f'ns = ["ns1.{zone}", "ns2.{zone}"]', 'records = """',
         "ns1 3600 IN A 127.0.0.1", "ns2 3600 IN A 127.0.0.2"]
lines += [f"cname{j} 30 IN CNAME app{j * 7 % 1000}" for j in range(10)]
lines += ['"""']
for i in range(1000):
    lines += ["[[zone.pool]]", f'name = "app{i}"', f'select = "{select}"', "ttl = 30"]
    if select == "hash":
        lines += ["max_answers = 2"]
    lines += ["[zone.pool.check]", 'type = "none"']
    for m in range(4):
        lines += ["[[zone.pool.member]]", f'name = "m{m}"', f'ipv4 = ["198.{18 + m}.{i >> 8}.{i & 255}"]',
                  f'ipv6 = ["2001:db8::{i:x}:{m + 1}"]']
open(out, "w").write("\n".join(lines) + "\n")
PY
exec "$BIN" --log-level warn run --config "$RUN/select/gslbd.toml"
