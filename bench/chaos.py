#!/usr/bin/env python3
"""Chaos suite: three gslbd instances, a nats-server, a fake Elchi controller and two probe
targets, with faults this script injects itself, all inside a network namespace it creates
and removes (nothing outside the namespace is touched):

  bench/chaos.py [--binary target/debug/gslbd] [--rounds 1] [--json FILE]   (as root)

Faults: nftables rules that drop one instance's probes of a member, or one instance's
traffic to NATS; tc netem delay and loss on the namespace's loopback (nftables loss where
the kernel has no netem); SIGSTOP/SIGCONT of nats-server and of the controller (a process
of its own); kill -9 of an instance during pushes; a controller that
flaps between a good answer and one whose every record is invalid. After each fault and
after it heals, every instance must answer what the documented rules say (pool quorum
`majority`, local verdicts without NATS, the last good controller data), a checker asks
every instance twice a second all along and fails on any answer outside the phase's
allowed set (checked against the expected state, not just "an answer"), every push that
got a 200 must be answered after the kill, and the time to recover is measured.

Prints the matrix (fault, expected, recovery ms, queries, wrong) and exits 1 on any wrong
answer, lost push or missed expectation. Needs: nats-server, nft (Debian's nftables), tc and
ip (iproute2). Every loop is bounded in count and time.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsclient  # noqa: E402
from loopback import serve  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZONE = "gslb.example.org"
SECRET = "chaos-admin-secret"
CTL_SECRET = "chaos-controller-secret"
CLUSTER_KEY = "chaos-cluster-shared-key"
MEMBERS = {"m1": "127.0.0.2", "m2": "127.0.0.3"}
PROBE_PORT = 8081
CONTROLLER = ("127.0.0.50", 1052)
INSTANCES = ["i1", "i2", "i3"]
DEADLINE = 20.0


def log(*args):
    print(*args, flush=True)


def wait_for(what, predicate, deadline=DEADLINE, step=0.05):
    """Polls until `predicate()` holds; the seconds it took. Fails at the deadline."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline:
            raise AssertionError(f"{what}: not within {deadline:.0f} s")
        time.sleep(step)
    return time.monotonic() - started


# ─── the systems gslbd talks to ─────────────────────────────────────────────────────────


class Controller:
    """A fake Elchi controller in a process of its own (so that SIGSTOP stalls it as it would
    a real one): the zone's records under a version hash, read per request from a state
    file the suite rewrites; `broken` answers a 200 whose every record is invalid (names in
    another zone, `"ips": null`)."""

    def __init__(self, work):
        self.state_file = os.path.join(work, "controller.json")
        self.hash, self.ctl_ip, self.broken = "v1", "192.0.2.10", False
        self.write()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--controller", self.state_file])
        wait_for("the controller listens", self.listening)

    def listening(self):
        try:
            with urllib.request.urlopen(f"http://{CONTROLLER[0]}:{CONTROLLER[1]}/dns/snapshot?zone={ZONE}", timeout=1):
                return True
        except OSError:
            return False

    def write(self):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"hash": self.hash, "ctl_ip": self.ctl_ip, "broken": self.broken}, f)
        os.replace(tmp, self.state_file)

    def set(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)
        self.write()

    def signal(self, sig):
        self.proc.send_signal(sig)


def controller_main(state_file):
    """The controller process: answers from `state_file`, read per request."""

    def answer(path):
        with open(state_file) as f:
            st = json.load(f)
        version = f"{st['hash']}-broken" if st["broken"] else st["hash"]
        if "since=" in path and path.split("since=")[1].split("&")[0] == version:
            return 304, b""
        if st["broken"]:
            records = [
                {"name": "ctl.other.example", "type": "A", "ips": ["192.0.2.66"]},
                {"name": f"ctl.{ZONE}", "type": "A", "ips": None},
            ]
        else:
            records = [{"name": f"ctl.{ZONE}", "type": "A", "ttl": 30, "ips": [st["ctl_ip"]]}]
        body = {"unchanged": False, "zone": ZONE, "version_hash": version, "records": records}
        return 200, json.dumps(body).encode()

    srv = serve(CONTROLLER, answer)
    # Serves until the suite kills it (bounded: an hour at most).
    time.sleep(3600)
    srv.shutdown()


class Target:
    """A member's health endpoint; `down` answers 503."""

    def __init__(self, ip):
        self.down = False
        serve((ip, PROBE_PORT), lambda _: (503, b"down") if self.down else (200, b"ok"))


# ─── gslbd ───────────────────────────────────────────────────────────────────────────────


class Instance:
    def __init__(self, n, binary, work):
        self.name, self.n, self.binary = INSTANCES[n], n, binary
        self.dns = ("127.0.0.1", 5301 + n)
        self.admin = ("127.0.0.1", 8001 + n)
        self.source = f"127.0.0.{11 + n}"
        self.nats_ip = f"127.0.0.{21 + n}"
        self.dir = os.path.join(work, self.name)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        members = "".join(
            f'[[zone.pool.member]]\nname = "{m}"\nipv4 = ["{ip}"]\n' for m, ip in MEMBERS.items()
        )
        names = ", ".join(f'"{i}"' for i in INSTANCES)
        config = f"""[server]
listen = ["{self.dns[0]}:{self.dns[1]}"]
udp_workers = 1
[admin]
listen = "{self.admin[0]}:{self.admin[1]}"
secret = "{SECRET}"
[state]
dir = "{self.dir}/state"
[cluster]
nats = ["nats://{self.nats_ip}:4222"]
instance = "{self.name}"
probe_source = "{self.source}"
observation_ttl = "3s"
members = [{names}]
key = "{CLUSTER_KEY}"
[[zone]]
name = "{ZONE}"
ns = ["ns1.{ZONE}"]
records = "ns1 60 IN A 127.0.0.1\\n"
[zone.controller]
endpoint = "http://{CONTROLLER[0]}:{CONTROLLER[1]}"
secret = "{CTL_SECRET}"
sync_interval = "1s"
timeout = "500ms"
[[zone.pool]]
name = "app"
when_all_down = "nodata"
[zone.pool.check]
type = "http"
port = {PROBE_PORT}
path = "/health"
interval = "200ms"
timeout = "150ms"
rise = 1
fall = 1
{members}"""
        self.config = os.path.join(self.dir, "gslbd.toml")
        with open(self.config, "w") as f:
            f.write(config)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "log"), "a")
        self.proc = subprocess.Popen(
            [self.binary, "run", "--config", self.config], stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )
        return wait_for(f"{self.name} answers", lambda: dnsclient.udp(self.dns, f"ns1.{ZONE}", timeout=0.2) is not None)

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)

    def ask(self, name):
        reply = dnsclient.udp(self.dns, name, timeout=0.5)
        return None if reply is None else reply.answer()

    def get(self, path):
        req = urllib.request.Request(f"http://{self.admin[0]}:{self.admin[1]}{path}")
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"null")
        except OSError:
            return None

    def cluster_state(self):
        h = self.get("/health")
        return h.get("cluster") if isinstance(h, dict) else None

    def push(self, name, ip):
        body = json.dumps({"records": [{"name": name, "type": "A", "ips": [ip]}]}).encode()
        req = urllib.request.Request(
            f"http://{self.admin[0]}:{self.admin[1]}/notify",
            data=body,
            headers={"X-Elchi-Secret": SECRET, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None


# ─── the checker ─────────────────────────────────────────────────────────────────────────


class Checker:
    """Asks every instance for the pool and the controller name every 0.25 s and records any
    answer outside what the current phase allows. A timeout is not an answer (counted apart:
    netem drops queries too)."""

    def __init__(self, instances):
        self.instances = instances
        self.allowed = {}
        self.lock = threading.Lock()
        self.asked = self.timeouts = 0
        self.wrong = []
        self.stop = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def allow(self, name, answers, only=None):
        """From now on, `name` may be answered by any of `answers` (on `only` instances)."""
        with self.lock:
            for i in self.instances:
                if only is None or i.name in only:
                    self.allowed[(i.name, name)] = set(answers)

    def run(self):
        while not self.stop.is_set():
            with self.lock:
                allowed = dict(self.allowed)
            for (who, name), ok in allowed.items():
                inst = next(i for i in self.instances if i.name == who)
                if inst.proc is None or inst.proc.poll() is not None:
                    continue
                got = inst.ask(name)
                with self.lock:
                    self.asked += 1
                    if got is None:
                        self.timeouts += 1
                    elif got not in self.allowed.get((who, name), ok):
                        self.wrong.append((time.strftime("%H:%M:%S"), who, name, got, sorted(ok)))
            self.stop.wait(0.25)


def pool(*members):
    return tuple(sorted(MEMBERS[m] for m in members)) if members else "NODATA"


# ─── faults ──────────────────────────────────────────────────────────────────────────────


def nft(*rules):
    """Replaces the chaos table's rules with `rules` (none: no fault)."""
    script = "flush ruleset\ntable inet chaos {\n chain output { type filter hook output priority 0;\n"
    script += "".join(f"  {r}\n" for r in rules) + " }\n}\n"
    subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True)


def netem(spec):
    """tc netem `spec` on the namespace's loopback (None: removed). Returns what was applied:
    a kernel without sch_netem (some VM kernels) gets the loss part from nftables instead
    (`numgen random`), which over TCP also brings retransmission delays."""
    subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], stderr=subprocess.DEVNULL)
    if not spec:
        nft()
        return None
    added = subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", *spec.split()], stderr=subprocess.DEVNULL)
    if added.returncode == 0:
        return f"tc netem {spec}"
    loss = spec.split("loss ")[1].rstrip("%").split()[0] if "loss " in spec else "0"
    nft(f"numgen random mod 100 < {loss} drop")
    return f"nft {loss}% loss (this kernel has no sch_netem)"


class Suite:
    def __init__(self, binary, work):
        self.work = work
        self.controller = Controller(work)
        self.targets = {m: Target(ip) for m, ip in MEMBERS.items()}
        self.nats = subprocess.Popen(
            [nats_binary(), "-js", "-a", "0.0.0.0", "-p", "4222", "-sd", os.path.join(work, "nats")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.instances = [Instance(n, binary, work) for n in range(3)]
        for i in self.instances:
            i.start()
        self.checker = Checker(self.instances)
        self.rows = []
        self.failures = []
        self.notes = []

    def everyone(self, name, want, only=None):
        """Waits until every instance (or those in `only`) answers `name` with `want`."""
        who = [i for i in self.instances if only is None or i.name in only]
        return wait_for(f"{name} -> {want} on {[i.name for i in who]}", lambda: all(i.ask(name) == want for i in who))

    def phase(self, fault, expected, inject, heal, settle):
        """Injects a fault, waits for the expected state, heals it and waits for the state
        after; records the recovery time (heal to the state after) and wrong answers."""
        wrong_before, asked_before = len(self.checker.wrong), self.checker.asked
        row = {"fault": fault, "expected": expected}
        try:
            row["effect_ms"] = round(inject() * 1000)
            row["recovery_ms"] = round(heal() * 1000)
            settle()
        except AssertionError as e:
            self.failures.append(f"{fault}: {e}")
            row["error"] = str(e)
        row["queries"] = self.checker.asked - asked_before
        row["wrong"] = len(self.checker.wrong) - wrong_before
        self.rows.append(row)
        log(f"{fault:<44} {row.get('effect_ms', '-'):>7} {row.get('recovery_ms', '-'):>9} {row['queries']:>7} {row['wrong']:>5}  {expected}")

    def run(self, rounds):
        c, app, ctl = self.checker, f"app.{ZONE}", f"ctl.{ZONE}"
        both, only2 = pool("m1", "m2"), pool("m2")
        self.everyone(app, both)
        self.everyone(ctl, ("192.0.2.10",))
        for i in self.instances:
            wait_for(f"{i.name} cluster ok", lambda i=i: i.cluster_state() == "ok")
        c.allow(app, {both})
        c.allow(ctl, {("192.0.2.10",)})
        log(f"{'fault':<44} {'effect':>7} {'recovery':>9} {'queries':>7} {'wrong':>5}  expected (ms)")
        for _ in range(rounds):
            self.round(app, ctl, both, only2)
        c.stop.set()
        return not self.failures and not c.wrong

    def round(self, app, ctl, both, only2):
        c = self.checker

        # A member goes down at its endpoint: every instance drops it; back: every one has it.
        def down():
            c.allow(app, {both, only2})
            self.targets["m1"].down = True
            return self.everyone(app, only2)

        def up():
            self.targets["m1"].down = False
            return self.everyone(app, both)

        self.phase("member m1 down at its endpoint", "all drop m1, then all answer it", down, up, lambda: c.allow(app, {both}))

        # One instance cannot reach m1: its own probe says down, the majority says up.
        def cut_one():
            nft(f"ip saddr {self.instances[0].source} ip daddr {MEMBERS['m1']} drop")
            # i1's own verdict flips; the answers must not.
            return wait_for("i1 sees m1 down", lambda: self.observed_down(self.instances[0], "m1"))

        self.phase("nft: i1's probes of m1 dropped", "majority up: all keep m1", cut_one, lambda: self.heal_nft(), lambda: None)

        # Two of three cannot reach m1: the majority says down, on the third instance too.
        def cut_two():
            c.allow(app, {both, only2})
            nft(*(f"ip saddr {i.source} ip daddr {MEMBERS['m1']} drop" for i in self.instances[:2]))
            return self.everyone(app, only2)

        def heal_two():
            nft()
            return self.everyone(app, both)

        self.phase("nft: i1, i2 probes of m1 dropped", "majority down: all drop m1 (i3 too)", cut_two, heal_two, lambda: c.allow(app, {both}))

        # i1 cut from NATS: it decides alone (and says so). Then m2 fails for i2's and i3's
        # probes only: they (a majority of the two left) drop it, i1 keeps it by its own
        # probe. Healed: shared again, everyone answers both.
        m1_only = pool("m1")

        def cut_nats():
            ip = self.instances[0].nats_ip
            cut = [f"ip daddr {ip} tcp dport 4222 drop", f"ip saddr {ip} tcp sport 4222 drop"]
            nft(*cut)
            took = wait_for("i1 cluster degraded", lambda: self.instances[0].cluster_state() == "degraded")
            c.allow(app, {both, m1_only}, only=["i2", "i3"])
            nft(*cut, *(f"ip saddr {i.source} ip daddr {MEMBERS['m2']} drop" for i in self.instances[1:]))
            self.everyone(app, m1_only, only=["i2", "i3"])
            self.everyone(app, both, only=["i1"])
            return took

        def heal_nats():
            nft()
            took = wait_for("i1 cluster ok", lambda: self.instances[0].cluster_state() == "ok", deadline=30)
            self.everyone(app, both)
            return took

        self.phase(
            "nft: i1 <-> NATS dropped, then m2 for i2, i3",
            "i1 alone keeps m2 (local), i2, i3 drop it",
            cut_nats,
            heal_nats,
            lambda: c.allow(app, {both}),
        )

        # Delay and loss on every packet, the probes' too: a probe that loses its packets
        # fails (fall 1, 150 ms timeout), so by the rules a member may drop out for a while;
        # nothing else may be answered, and once healed every instance answers both again.
        def slow():
            c.allow(app, {both, pool("m1"), pool("m2"), pool()})
            applied = netem("delay 50ms 20ms loss 5%")
            self.notes.append(f"netem phase: {applied}")
            time.sleep(3)
            return self.everyone(app, both)

        def fast():
            netem(None)
            return self.everyone(app, both)

        self.phase(
            "tc netem: 50±20 ms delay, 5% loss",
            "failed probes may drop a member, nothing else; then both",
            slow,
            fast,
            lambda: c.allow(app, {both}),
        )

        # NATS frozen: writes time out and every instance falls back to its own verdicts
        # (answers unchanged: every probe agrees); thawed: shared again.
        def freeze_nats():
            self.nats.send_signal(signal.SIGSTOP)
            return wait_for("every instance falls back", lambda: all(i.cluster_state() == "degraded" for i in self.instances), deadline=30)

        def thaw_nats():
            self.nats.send_signal(signal.SIGCONT)
            return wait_for("every instance shares again", lambda: all(i.cluster_state() == "ok" for i in self.instances), deadline=30)

        self.phase("SIGSTOP nats-server until all fall back", "local verdicts, answers unchanged", freeze_nats, thaw_nats, lambda: None)

        # The controller stopped (SIGSTOP): syncs time out (`/health` says the last sync
        # failed); the last good data keeps serving; SIGCONT: the next sync succeeds.
        def freeze_ctl():
            self.controller.signal(signal.SIGSTOP)
            return wait_for("syncs fail", lambda: all(self.sync_status(i) == "failed" for i in self.instances))

        def thaw_ctl():
            self.controller.signal(signal.SIGCONT)
            return wait_for("syncs succeed", lambda: all(self.sync_status(i) == "success" for i in self.instances))

        self.phase("SIGSTOP controller until syncs fail", "last good data kept", freeze_ctl, thaw_ctl, lambda: None)

        # The controller flaps between a new good answer and an all-invalid one: the broken
        # one is refused, so the name is always the old or the new address, never NXDOMAIN.
        new_ip = "192.0.2.20" if self.controller.ctl_ip == "192.0.2.10" else "192.0.2.10"
        old_ip = self.controller.ctl_ip

        def flap():
            c.allow(ctl, {(old_ip,), (new_ip,)})
            for k in range(10):
                self.controller.set(broken=(k % 2 == 1), hash=f"flap{k}", ctl_ip=new_ip)
                time.sleep(0.5)
            return 5.0

        def steady():
            self.controller.set(broken=False, hash=f"steady-{new_ip}", ctl_ip=new_ip)
            return self.everyone(ctl, (new_ip,))

        self.phase("controller flaps good/all-invalid", "broken refused: old or new, never NXDOMAIN", flap, steady, lambda: c.allow(ctl, {(new_ip,)}))

        # kill -9 during pushes: every acknowledged push is answered after the restart.
        victim = self.instances[2]
        acked = []

        def kill_during_pushes():
            stop = threading.Event()

            def pusher():
                k = 0
                while not stop.is_set() and k < 2000:
                    name = f"p{int(time.time() * 1000)}-{k}.{ZONE}"
                    if victim.push(name, "198.51.100.7") == 200:
                        acked.append(name)
                    k += 1

            t = threading.Thread(target=pusher)
            t.start()
            time.sleep(1.5)
            victim.kill()
            stop.set()
            t.join(timeout=10)
            return len(acked) / 1000  # shown as the count of acknowledged pushes

        def restart():
            return victim.start()

        def all_there():
            missing = [n for n in acked if victim.ask(n) != ("198.51.100.7",)]
            if missing or not acked:
                raise AssertionError(f"{len(missing)} of {len(acked)} acknowledged pushes lost: {missing[:3]}")

        self.phase("kill -9 i3 during /notify pushes", "every acknowledged push answered", kill_during_pushes, restart, all_there)
        self.rows[-1]["acknowledged_pushes"] = len(acked)
        self.notes.append("kill -9 row: effect = acknowledged pushes before the kill, recovery = restart to answering")

    def observed_down(self, inst, member):
        """Whether `inst`'s own observation of `member` (in its /records) says down."""
        req = urllib.request.Request(
            f"http://{inst.admin[0]}:{inst.admin[1]}/records?name=app",
            headers={"X-Elchi-Secret": SECRET},
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                recs = json.loads(r.read())
        except OSError:
            return False
        for r in recs.get("records", []):
            if r.get("member") == member:
                own = [o for o in r.get("observations", []) if o.get("instance") == inst.name]
                return bool(own) and own[0].get("health") == "down"
        return False

    def sync_status(self, inst):
        h = inst.get(f"/health?zone={ZONE}")
        return h.get("last_sync_status") if isinstance(h, dict) else None

    def heal_nft(self):
        nft()
        return wait_for("i1 sees m1 up", lambda: not self.observed_down(self.instances[0], "m1"))

    def close(self):
        for i in self.instances:
            if i.proc and i.proc.poll() is None:
                i.kill(signal.SIGTERM)
        self.nats.send_signal(signal.SIGCONT)
        self.nats.kill()
        self.controller.signal(signal.SIGCONT)
        self.controller.proc.kill()
        nft()
        netem(None)


def nats_binary():
    return "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else "nats-server"


def inside(args):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory(prefix="gslbd-chaos-") as work:
        suite = Suite(args.binary, work)
        try:
            ok = suite.run(args.rounds)
        finally:
            suite.close()
        c = suite.checker
        log(f"queries {c.asked}, timeouts {c.timeouts} (netem and kills), wrong {len(c.wrong)}")
        for n in sorted(set(suite.notes)):
            log(n)
        for w in c.wrong[:20]:
            log("WRONG", *w)
        for f in suite.failures:
            log("FAILED", f)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rows": suite.rows, "queries": c.asked, "timeouts": c.timeouts, "wrong": c.wrong}, f, indent=1)
        if not ok:
            for i in suite.instances:
                log(f"--- {i.name} log tail")
                with open(os.path.join(i.dir, "log")) as f:
                    log("".join(f.readlines()[-15:]))
        return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug", "gslbd"))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--json")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--controller", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.controller:
        controller_main(args.controller)
        return
    args.binary = os.path.abspath(args.binary)
    if args.inside:
        sys.exit(inside(args))
    if os.geteuid() != 0:
        sys.exit("bench/chaos.py needs root (a network namespace, nft, tc)")
    ns = f"gslbd-chaos-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cmd = ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inside", "--binary", args.binary, "--rounds", str(args.rounds)]
        if args.json:
            cmd += ["--json", os.path.abspath(args.json)]
        code = subprocess.run(cmd).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    sys.exit(code)


if __name__ == "__main__":
    main()
