#!/usr/bin/env python3
"""Checks the Dockerfile's runtime stage against what the systemd unit and the binary do
(this machine cannot pull base images, so the image is not built here):

  dist/check-dockerfile.py [GSLBD_BIN]

The runtime stage must run as a non-root user, start `/usr/bin/gslbd run --config
/etc/gslbd/gslbd.toml` (the unit's ExecStart), keep its state in the unit's StateDirectory
(/var/lib/gslbd) as working directory and volume, expose 53/udp, 53/tcp and the admin port,
and check health with `gslbd probe` on /ready; with GSLBD_BIN, the subcommands it names
must exist in that binary.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def stages(text):
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            out.append([])
        out[-1].append((word.upper(), rest.strip()))
    return out


def main():
    errors = []
    runtime = stages(open(os.path.join(ROOT, "Dockerfile")).read())[-1]
    get = lambda k: [v for w, v in runtime if w == k]
    unit = open(os.path.join(HERE, "systemd", "gslbd.service")).read()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
    state_dir = "/var/lib/" + re.search(r"^StateDirectory=(.*)$", unit, re.M).group(1).strip()
    user = (get("USER") or ["root"])[-1].split(":")[0]
    if user in ("root", "0"):
        errors.append(f"USER {user}: the runtime stage must not run as root")
    entry = json.loads((get("ENTRYPOINT") or ["[]"])[-1]) + json.loads((get("CMD") or ["[]"])[-1])
    if entry != exec_start:
        errors.append(f"ENTRYPOINT+CMD {entry} differ from the unit's ExecStart {exec_start}")
    if (get("WORKDIR") or [""])[-1] != state_dir:
        errors.append(f"WORKDIR must be the unit's state directory {state_dir}")
    if not any(state_dir in v for v in get("VOLUME")):
        errors.append(f"VOLUME must hold {state_dir}")
    exposed = " ".join(get("EXPOSE")).split()
    for port in ("53/udp", "53/tcp", "8053/tcp"):
        if port not in exposed:
            errors.append(f"EXPOSE lacks {port}")
    health = " ".join(get("HEALTHCHECK"))
    m = re.search(r"CMD (\[.*\])", health)
    probe = json.loads(m.group(1)) if m else []
    if probe[:2] != [exec_start[0], "probe"] or not any(a.endswith("/ready") for a in probe):
        errors.append(f"HEALTHCHECK must run `{exec_start[0]} probe .../ready`, not {probe}")
    if len(sys.argv) > 1:
        for sub in ({exec_start[1]} | ({probe[1]} if len(probe) > 1 else set())):
            r = subprocess.run([sys.argv[1], sub, "--help"], capture_output=True)
            if r.returncode != 0:
                errors.append(f"the binary has no `{sub}` subcommand")
    for e in errors:
        print(f"Dockerfile: {e}", file=sys.stderr)
    if not errors:
        print("Dockerfile: runtime stage matches the systemd unit and the binary")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
