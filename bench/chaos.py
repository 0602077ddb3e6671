"""Mutual-exclusion checker under chaos: many client processes take, renew and
release a few contended locks while this script SIGKILLs and SIGSTOPs them and
SIGKILLs and restarts the server; then bench/chaos_check.py checks the
recorded history offline and prints `OK` or `VIOLATIONS n`.

With --ha: a 3-member etcd cluster and a replica set of 3 servers
(--ha_etcd_endpoints ...) instead of one server; the chaos SIGKILLs the
primary every 15-30 s (--server-restart-every 22.5) and starts it again as a
replica; workers are given every replica's address and follow UNAVAILABLE
(and its `ldlm-primary` trailer) to the primary; the locks they hold stay
theirs across a failover (reclaimed by Renew), so holds are checked as with a
state file, and fencing tokens must keep increasing across failovers.

Exit status: 0 only when the check found no violation (2: the run itself failed).
Only loopback, and only processes this script started are signalled.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import chaos_check  # noqa: E402


class RunFailed(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("duration", type=float, help="seconds of chaos")
    p.add_argument("--server-bin", default=os.environ.get("LDLM_SERVER_BIN", str(REPO / ".build/debug/ldlm-server")))
    p.add_argument("--workers", type=int, default=8, help="client processes alive at a time")
    p.add_argument("--names", type=int, default=4, help="lock names they contend for")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-dir", help="keep the history here (default: a new temporary directory)")
    p.add_argument("--no-server-restarts", action="store_true", help="never SIGKILL the server")
    p.add_argument("--server-restart-every", type=float, default=None, metavar="SECONDS",
                   help="mean time between server SIGKILLs and restarts (each gap drawn from 0.5x to 1.5x; "
                        "default 20; with --ha: 22.5, gaps from 0.67x to 1.33x, i.e. 15-30 s)")
    p.add_argument("--ha", action="store_true", help="a replica set over a 3-member etcd cluster; SIGKILL the primary")
    p.add_argument("--ha-replicas", type=int, default=3)
    p.add_argument("--ha-lease", default="5s", help="--ha_lease of the replicas")
    p.add_argument("--ha-reclaim-grace", default=None, help="--ha_reclaim_grace of the replicas (default: the server's)")
    p.add_argument("--no-state-file", action="store_true",
                   help="restart the server without --state_file (every lock is lost with it)")
    p.add_argument("--debug-fault", help="start the server with --debug_fault (to see the checker catch it)")
    return p.parse_args(argv)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def generate_stubs(out: Path):
    for proto in ("ldlm.proto", "ldlm_admin.proto"):
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'Protos'}", f"--python_out={out}",
                        f"--grpc_python_out={out}", str(REPO / "Protos" / proto)], check=True, timeout=60)


class Chaos:
    def __init__(self, args, run_dir: Path):
        self.args = args
        self.run_dir = run_dir
        self.rng = random.Random(args.seed)
        self.port = free_port()
        self.admin_password = secrets.token_hex(8)
        self.names = [f"chaos-{i}" for i in range(args.names)]
        self.events = open(run_dir / "events.jsonl", "a", buffering=1)
        self.server = None
        self.epoch = 0
        self.workers = {}  # name -> Popen
        self.stopped = {}  # name -> monotonic time to continue it
        self.incarnations = 0
        self.state_file = args.ha or (not args.no_server_restarts and not args.no_state_file)
        self.etcd = None
        self.replicas = None
        self.killed = None  # the replica last SIGKILLed, started again after a pause
        self.end = time.monotonic() + args.duration
        self.next_server_kill = time.monotonic() + self.server_restart_gap()

    def event(self, kind, **fields):
        self.events.write(json.dumps({"t": kind, "ts": time.monotonic(), **fields}) + "\n")
        self.events.flush()

    # -- server --------------------------------------------------------------

    def start_replica_set(self):
        """--ha: etcd and the replicas once; each later 'start' is the primary's
        successor (its epoch begins at the old primary's kill)."""
        import ha_env
        self.epoch += 1
        self.event("server_start", epoch=self.epoch)
        self.etcd = ha_env.EtcdCluster(self.run_dir / "etcd").start()
        extra = ["--admin_password", self.admin_password, "--log_level", "info", "--default_lock_timeout", "3s"]
        if self.args.debug_fault:
            extra += ["--debug_fault", self.args.debug_fault]
        self.replicas = ha_env.ReplicaSet(self.etcd, self.run_dir / "replicas", cluster="chaos",
                                          replicas=self.args.ha_replicas, lease=self.args.ha_lease,
                                          reclaim_grace=self.args.ha_reclaim_grace, extra_flags=extra,
                                          binary=self.args.server_bin)
        try:
            self.replicas.start()
            self.replicas.wait_for_primary(60)
        except (RuntimeError, TimeoutError) as error:
            raise RunFailed(f"the replica set did not start: {error}") from None
        self.target = ",".join(r.address for r in self.replicas)

    def kill_primary(self):
        try:
            primary = self.replicas.wait_for_primary(30)
        except TimeoutError as error:
            raise RunFailed(f"no primary to kill: {error}") from None
        self.event("server_kill", epoch=self.epoch, address=primary.address)
        primary.kill()
        self.epoch += 1
        # Whatever is answered from here on is the successor's.
        self.event("server_start", epoch=self.epoch)
        self.killed = primary

    def restart_killed(self):
        self.event("replica_start", address=self.killed.address)
        try:
            self.killed.start()
        except RuntimeError as error:
            raise RunFailed(f"a killed replica did not start again: {error}") from None
        self.killed = None

    def start_server(self):
        self.epoch += 1
        command = [self.args.server_bin, "--listen_address", f"127.0.0.1:{self.port}",
                   "--admin_password", self.admin_password, "--log_level", "info"]
        if self.state_file:
            command += ["--state_file", str(self.run_dir / "state"), "--default_lock_timeout", "3s"]
        if self.args.debug_fault:
            command += ["--debug_fault", self.args.debug_fault]
        log = open(self.run_dir / f"server-{self.epoch}.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDLM_")}
        # Before the spawn: whatever happens after it is this server's (the
        # previous one is dead by now).
        self.event("server_start", epoch=self.epoch)
        self.server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if not wait_for_port(self.port, 15, self.server):
            self.server.kill()
            self.server.wait()
            output = Path(log.name).read_text(errors="replace").strip()
            raise RunFailed(f"the server did not start: {output[-500:]}")

    def kill_server(self):
        self.event("server_kill", epoch=self.epoch)
        self.server.kill()
        self.server.wait()

    # -- workers -------------------------------------------------------------

    def spawn(self):
        self.incarnations += 1
        name = f"w{self.incarnations:04d}"
        proc = subprocess.Popen([
            sys.executable, str(HERE / "chaos_worker.py"), str(self.run_dir / "protos"),
            self.target, self.admin_password, str(self.run_dir / f"{name}.jsonl"),
            repr(self.end), str(self.rng.getrandbits(32)), ",".join(self.names),
        ])
        self.workers[name] = proc
        self.event("spawn", worker=name, pid=proc.pid)

    def signal_worker(self, name, sig, kind):
        proc = self.workers[name]
        if proc.poll() is not None:
            return False
        self.event(kind, worker=name)  # before the signal: a lower bound for what it causes
        proc.send_signal(sig)
        return True

    def step(self, now):
        for name, until in list(self.stopped.items()):
            if now >= until:
                self.signal_worker(name, signal.SIGCONT, "cont")
                del self.stopped[name]
        for name, proc in list(self.workers.items()):
            if proc.poll() is not None:
                del self.workers[name]
                self.stopped.pop(name, None)
        while len(self.workers) < self.args.workers and now < self.end - 2:
            self.spawn()
        running = [n for n in self.workers if n not in self.stopped]
        r = self.rng.random()
        if r < 0.12 and running:
            name = self.rng.choice(running)
            if self.signal_worker(name, signal.SIGKILL, "kill"):
                self.workers[name].wait()
        elif r < 0.27 and running:
            name = self.rng.choice(running)
            if self.signal_worker(name, signal.SIGSTOP, "stop"):
                self.stopped[name] = now + self.rng.uniform(0.3, 4.0)
        if self.args.ha:
            if not self.args.no_server_restarts and now >= self.next_server_kill and now < self.end - 10:
                self.kill_primary()
                time.sleep(self.rng.uniform(0, 1.0))
                self.restart_killed()
                self.next_server_kill = time.monotonic() + self.server_restart_gap()
        elif not self.args.no_server_restarts and now >= self.next_server_kill and now < self.end - 5:
            self.kill_server()
            time.sleep(self.rng.uniform(0, 1.0))
            self.start_server()
            self.next_server_kill = time.monotonic() + self.server_restart_gap()

    def server_restart_gap(self):
        # Bounded gaps, so that a run of a few gaps always restarts the server.
        if self.args.ha:
            return self.rng.uniform(2 / 3, 4 / 3) * (self.args.server_restart_every or 22.5)
        return self.rng.uniform(0.5, 1.5) * (self.args.server_restart_every or 20.0)

    def run(self):
        (self.run_dir / "protos").mkdir()
        generate_stubs(self.run_dir / "protos")
        self.event("config", state_file=self.state_file, names=self.names, duration=self.args.duration,
                   workers=self.args.workers, debug_fault=self.args.debug_fault, ha=self.args.ha)
        try:
            if self.args.ha:
                self.start_replica_set()
                # The duration counts from a serving primary (etcd and 3 replicas take a few seconds).
                self.end = time.monotonic() + self.args.duration
                self.next_server_kill = time.monotonic() + self.server_restart_gap()
            else:
                self.target = f"127.0.0.1:{self.port}"
                self.start_server()
            while (now := time.monotonic()) < self.end:
                self.step(now)
                time.sleep(self.rng.uniform(0.1, 0.5))
            for name in list(self.stopped):
                self.signal_worker(name, signal.SIGCONT, "cont")
            # Workers finish their last call (deadlines of at most 4 s) and unlock.
            give_up = time.monotonic() + 15
            for name, proc in self.workers.items():
                try:
                    proc.wait(timeout=max(0.1, give_up - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.signal_worker(name, signal.SIGKILL, "kill")
                    proc.wait()
        finally:
            for proc in self.workers.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if self.replicas is not None:
                self.replicas.stop_all()
            if self.etcd is not None:
                self.etcd.stop()
            if self.server is not None and self.server.poll() is None:
                self.server.terminate()
                try:
                    self.server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.server.kill()
                    self.server.wait()
        self.event("done")


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if not os.access(args.server_bin, os.X_OK):
        print(f"chaos: no server binary at {args.server_bin} (build it, or set --server-bin)", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = random.randrange(2**32)
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="ldlm-chaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"chaos: {args.duration:g} s, {args.workers} workers on {args.names} names, seed {args.seed}, "
          f"{'primary kills' if args.ha else 'server restarts'} {'off' if args.no_server_restarts else 'on'}"
          f"{f', {args.ha_replicas} replicas, --ha_lease {args.ha_lease}' if args.ha else ''}, history in {run_dir}",
          flush=True)
    try:
        Chaos(args, run_dir).run()
    except RunFailed as error:
        print(f"chaos: {error}", file=sys.stderr)
        return 2
    return chaos_check.report(chaos_check.load(run_dir))


if __name__ == "__main__":
    sys.exit(main())
