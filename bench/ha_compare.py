"""HA replica set against etcd's own lock service, on ONE 3-member etcd
cluster on this machine (loopback), one run:

  (a) ldlm-bench `pair` (Lock+Unlock, distinct names) against the primary of
      3 replicas, at each --concurrency level;
  (b) etcd v3lockpb Lock+Unlock pairs (a lease per worker), same levels
      (bench/etcd_load.py, Python grpc.aio over --etcd-processes processes);
  (c) contended hand-off: ldlm-bench `contended` (unlock sent -> next grant
      answered, p50/p99) against the primary, and etcd's own latency for one
      Txn with a single Put;
  (d) failover: a client loops TryLock/Unlock over the replicas (following
      UNAVAILABLE and its `ldlm-primary` trailer); the primary is SIGKILLed;
      time from the kill to the first grant answered; repeated, for each
      --failover-lease.

CPU used by each process group (client, etcd members, replicas) is read from
/proc over each run, so a client-bound run shows.

  bench/ha_compare.py [--duration 8] [--concurrency 16,64] [--failover-rounds 5]
                      [--failover-lease 5s,2s] [--json FILE]
Only loopback; only processes this script started are signalled.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import ha_env  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
commands: list[str] = []


def log(*a):
    print("ha_compare:", *a, file=sys.stderr, flush=True)


def cpu_of(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            pass
    return total


ETCD = None  # the cluster, for its revision around each run
RECORD = True  # add commands to the list (only the first repetition's)


def revision():
    try:
        return ETCD.revision() if ETCD is not None else None
    except RuntimeError:
        return None


def machine_busy():
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_json(cmd, timeout, cpu_groups):
    """Runs cmd (prints one JSON object), returns (object, {group: cores used}).
    The object gains etcd_writes_per_second: etcd revisions over the whole
    command (one per Txn or other write that changed something)."""
    shown = " ".join(cmd).replace(str(REPO) + "/", "").replace(sys.executable, "python3")
    if RECORD:
        commands.append(shown)
    log("+", shown)
    ours = {p for g, pids in cpu_groups.items() if g != "primary" for p in pids}
    before = {g: cpu_of(p) for g, p in cpu_groups.items()}
    ours0, busy0, kids0 = cpu_of(ours), machine_busy(), children_cpu()
    rev0 = revision()
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    after = {g: cpu_of(p) for g, p in cpu_groups.items()}
    ours1, busy1, kids1 = cpu_of(ours), machine_busy(), children_cpu()
    rev1 = revision()
    if r.returncode not in (0, 1) or not r.stdout.strip():
        raise RuntimeError(f"{shown} failed ({r.returncode}): {r.stderr[-1500:]}")
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    # Cores other processes on the machine used meanwhile (other work shares these 2 cores).
    obj["other_processes_cores"] = ((busy1 - busy0) - (ours1 - ours0) - (kids1 - kids0) - 0.0) / wall
    if rev0 is not None and rev1 is not None:
        obj["etcd_revisions"] = rev1 - rev0
        obj["wall_seconds"] = wall
    # cores averaged over the whole command (warm-up included)
    return obj, {g: (after[g] - before[g]) / wall for g in cpu_groups}


class FailoverClient(threading.Thread):
    """TryLock (a new name each time) + Unlock in a loop over the replicas,
    each call with a 0.5 s deadline; records the time of every grant."""

    def __init__(self, addresses, stubs, end):
        super().__init__(daemon=True)
        import grpc
        self.grpc = grpc
        self.pb, self.pbg = stubs
        self.addresses = addresses
        self.channels = {}
        self.target = self.addresses[0]
        self.end = end
        self.grants = []  # (monotonic, address)
        self.errors = {}
        self.stop_flag = threading.Event()

    def stub(self, address):
        if address not in self.channels:
            self.channels[address] = self.grpc.insecure_channel(address, options=[
                ("grpc.enable_retries", 0), ("grpc.initial_reconnect_backoff_ms", 20),
                ("grpc.min_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 100)])
        return self.pbg.LDLMStub(self.channels[address])

    def run(self):
        n = 0
        while not self.stop_flag.is_set() and time.monotonic() < self.end:
            n += 1
            name = f"failover-{os.getpid()}-{n}"
            try:
                r = self.stub(self.target).TryLock(self.pb.TryLockRequest(name=name, lock_timeout_seconds=60), timeout=0.5)
                if r.locked:
                    self.grants.append((time.monotonic(), self.target))
                    self.stub(self.target).Unlock(self.pb.UnlockRequest(name=name, key=r.key), timeout=0.5)
            except self.grpc.RpcError as e:
                code = e.code().name
                self.errors[code] = self.errors.get(code, 0) + 1
                self.target = ha_env.next_target(self.addresses, self.target, e)
                time.sleep(0.002)
        for c in self.channels.values():
            c.close()

    def first_grant_after(self, ts, timeout, killed):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The first grant after ts from another replica: an answer the
            # killed primary sent just before the kill may be read after it.
            found = next(((g, address) for g, address in reversed(self.grants[-200:])
                          if g > ts and address != killed), None)
            if found is not None:
                return next((g, address) for g, address in self.grants if g > ts and address != killed)
            time.sleep(0.01)
        return None


REPLICA_ETCD = "leader"


def leader_first(etcd):
    """The endpoints with the raft leader first: the replicas use the first
    member that answers, and etcd_load talks to the leader too, so both sides
    commit through the leader (a follower forwards each proposal to it)."""
    leader = etcd.wait_for_leader(30)
    followers = [m.endpoint for m in etcd.members if m is not leader]
    if REPLICA_ETCD == "follower":
        return ",".join(followers + [leader.endpoint])
    return ",".join([leader.endpoint] + followers)


def etcd_member_of(pid, etcd):
    """Which etcd member process `pid` holds a connection to (from ss)."""
    ports = {m.client_port: m.name for m in etcd.members}
    try:
        lines = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = set()
    for line in lines:
        if f"pid={pid}," not in line:
            continue
        fields = line.split()
        peer = fields[4] if len(fields) > 4 else ""
        port = int(peer.rsplit(":", 1)[1]) if ":" in peer else 0
        if port in ports:
            found.add(ports[port])
    return ",".join(sorted(found)) or "none"


def replica_set(server_bin, etcd, root, cluster, lease):
    rs = ha_env.ReplicaSet(leader_first(etcd), root / f"replicas-{cluster}", cluster=cluster, replicas=3, lease=lease,
                           reclaim_grace=None, extra_flags=["--log_level", "warn"], binary=server_bin)
    commands.append(" ".join(rs[0].build_args()).replace(str(REPO) + "/", "").replace(str(root), "$run")
                    + "   # and 2 more replicas")
    return rs


def failover(server_bin, etcd, root, lease, rounds, cluster):
    replicas = replica_set(server_bin, etcd, root, cluster, lease)
    replicas.start()
    addresses = [r.address for r in replicas]
    results = []
    try:
        replicas.wait_for_primary(60)
        client = FailoverClient(addresses, ha_env.ldlm_stubs(root / "ldlm-stubs"), time.monotonic() + rounds * 90 + 60)
        client.start()
        for r in range(rounds):
            primary = replicas.wait_for_primary(60)
            time.sleep(2.0)  # the client is granting on the primary
            before = len(client.grants)
            kill_ts = time.monotonic()
            primary.kill()
            got = client.first_grant_after(kill_ts, 60, primary.address)
            if got is None:
                results.append(None)
                log(f"failover lease={lease} round {r + 1}: no grant within 60 s; errors {client.errors}")
            else:
                ms = (got[0] - kill_ts) * 1000
                results.append(ms)
                log(f"failover lease={lease} round {r + 1}: killed {primary.address}, first grant on {got[1]} "
                    f"after {ms:.0f} ms ({before} grants before)")
            primary.start()  # back as a standby
            time.sleep(1.0)
        client.stop_flag.set()
        client.join(5)
        return results, dict(client.errors)
    finally:
        replicas.stop_all()


def machine():
    def sh(c):
        try:
            return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "kernel": platform.release(),
        "commit": sh(f"git -C {REPO} rev-parse --short HEAD"),
        "etcd": sh("etcd --version | head -1"),
        "filesystem": sh(f"stat -f -c %T {REPO}/.build"),
        "python": platform.python_version() + ", grpcio " + sh(f"{sys.executable} -c 'import grpc; print(grpc.__version__)'"),
    }


def fsync_latency(directory, count=200):
    """p50/p99 of a 4 KiB write + fdatasync where etcd keeps its WAL."""
    path = Path(directory) / "fsync-probe"
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Preallocated and synced first, as etcd's WAL segments are: each
        # fdatasync then writes data only, not the file's new size.
        os.posix_fallocate(fd, 0, 4096 * count)
        os.fsync(fd)
        for i in range(count):
            t = time.monotonic()
            os.pwrite(fd, b"x" * 4096, 4096 * i)
            os.fdatasync(fd)
            samples.append(time.monotonic() - t)
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()
    return {"p50_ms": samples[len(samples) // 2] * 1000, "p99_ms": samples[int(len(samples) * 0.99)] * 1000}


def fmt(x, digits=0):
    return "—" if x is None else f"{x:,.{digits}f}"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server-bin", default=os.environ.get("LDLM_SERVER_BIN", str(REPO / ".build/release/ldlm-server")))
    p.add_argument("--bench-bin", default=os.environ.get("LDLM_BENCH", str(REPO / ".build/release/ldlm-bench")))
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--concurrency", default="16,64")
    p.add_argument("--etcd-processes", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3, help="runs of each throughput and hand-off measurement")
    p.add_argument("--failover-rounds", type=int, default=5)
    p.add_argument("--failover-lease", default="5s,2s")
    p.add_argument("--skip", default="", help="comma list of parts to skip: pairs,etcd,handoff,failover")
    p.add_argument("--json", help="also write every number here")
    p.add_argument("--replica-etcd", choices=["leader", "follower"], default="leader",
                   help="the etcd member listed first in the replicas' --ha_etcd_endpoints (the one they use)")
    p.add_argument("--keep-etcd-data", action="store_true", help="leave etcd's data directories in the run directory")
    p.add_argument("--render", metavar="JSON", help="only print the table and facts of a run saved with --json")
    a = p.parse_args(argv)
    if a.render:
        out = json.loads(Path(a.render).read_text())
        levels = sorted(int(k.rsplit("_", 1)[1]) for k in out if k.startswith("ha_pair_"))
        print_report(out, levels, out.get("commands", []), None)
        return 0
    global REPLICA_ETCD
    REPLICA_ETCD = a.replica_etcd
    skip = set(filter(None, a.skip.split(",")))
    levels = [int(x) for x in a.concurrency.split(",")]
    for b in (a.server_bin, a.bench_bin):
        if not os.access(b, os.X_OK) and not {"pairs", "handoff", "failover"} <= skip:
            log(f"no binary at {b}: swift build -c release --product ldlm-server; swift build -c release --product ldlm-bench")
            return 2
    (REPO / ".build").mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ha-compare-", dir=REPO / ".build"))  # on disk: etcd fsyncs here
    log("run directory", root)
    out = {"machine": machine(), "duration": a.duration, "warmup": a.warmup}
    out["machine"]["4 KiB write+fdatasync (preallocated file) on the etcd data disk"] = (lambda f: f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms")(fsync_latency(root))
    etcd = ha_env.EtcdCluster(root / "etcd")
    commands.append(" ".join(etcd.members[0].args()).replace(str(root), "$run") + "   # and etcd1, etcd2")
    etcd.start()
    global ETCD
    ETCD = etcd
    try:
        leader = etcd.wait_for_leader(30).endpoint
        out["etcd_leader"] = leader
        replicas, primary, target = None, None, None
        if not {"pairs", "handoff"} <= skip:
            replicas = replica_set(a.server_bin, etcd, root, "bench", "5s")
            replicas.start()
            primary = replicas.wait_for_primary(60)
            target = primary.address
            leader_name = etcd.wait_for_leader(30).name
            out["primary_etcd_member"] = etcd_member_of(primary.pid, etcd)
            out["etcd_leader_member"] = leader_name
            log(f"primary {target} talks to etcd member(s) {out['primary_etcd_member']}; leader {leader_name}")
        groups = lambda: {"etcd": [m.pid for m in etcd.members],
                          "replicas": [r.pid for r in replicas] if replicas else [],
                          "primary": [primary.pid] if replicas else []}
        bench = lambda scenario, c: [a.bench_bin, "--address", target, "--scenario", scenario, "--connections", str(c),
                                     "--streams", "1", "--duration", str(a.duration), "--warmup", str(a.warmup), "--json"]
        # Each repetition runs every measurement once, ours and etcd's
        # interleaved, so drift on this shared machine hits both sides alike.
        global RECORD
        for rep in range(a.repeat):
            RECORD = rep == 0
            for c in levels:
                if "pairs" not in skip:
                    r, cpu = run_json(bench("pair", c), a.duration + a.warmup + 120, groups())
                    r["cpu_cores"] = cpu
                    out.setdefault(f"ha_pair_{c}", []).append(r)
                    log(f"[{rep + 1}] HA pairs/s c={c}: {r['ops_per_second']:.0f} errors {r['errors']} cpu {cpu}")
                if "etcd" not in skip:
                    cmd = [sys.executable, str(HERE / "etcd_load.py"), "lockpairs", leader, "--concurrency", str(c),
                           "--processes", str(a.etcd_processes), "--duration", str(a.duration), "--warmup", str(a.warmup)]
                    r, cpu = run_json(cmd, a.duration + a.warmup + 120, {"etcd": groups()["etcd"]})
                    r["cpu_cores"] = cpu
                    out.setdefault(f"etcd_lock_{c}", []).append(r)
                    log(f"[{rep + 1}] etcd v3lock pairs/s c={c}: {r['pairs_per_second']:.0f} errors {r['errors']} "
                        f"client cores {r['client_cores']:.2f} etcd {cpu}")
            if "handoff" not in skip:
                r, cpu = run_json(bench("contended", 16), a.duration + a.warmup + 120, groups())
                r["cpu_cores"] = cpu
                out.setdefault("ha_contended_16", []).append(r)
                log(f"[{rep + 1}] HA contended: unlock->grant {r['unlock_sent_to_grant_ms']}")
                cmd = [sys.executable, str(HERE / "etcd_load.py"), "txn-h2load", leader, "--duration", str(a.duration)]
                r, cpu = run_json(cmd, 3 * a.duration + 180, {"etcd": groups()["etcd"]})
                h2_commands = r.pop("commands")
                if RECORD:
                    commands.extend(h2_commands)
                out.setdefault("etcd_txn_h2load", []).append(r)
                log(f"[{rep + 1}] etcd Txn(put) by h2load: {r['txn_put_ms']}; hand-off shaped Txn {r['txn_handoff_shape_ms']}")
                cmd = [sys.executable, str(HERE / "etcd_load.py"), "txn", leader, "--duration", str(a.duration)]
                r, cpu = run_json(cmd, a.duration + 120, {"etcd": groups()["etcd"]})
                out.setdefault("etcd_txn", []).append(r)
                log(f"[{rep + 1}] etcd Txn(put) by Python grpc: {r['txn_put_ms']}")
        RECORD = True
        if replicas:
            replicas.stop_all()
        if "failover" not in skip:
            for lease in a.failover_lease.split(","):
                times, errors = failover(a.server_bin, etcd, root, lease, a.failover_rounds, f"failover{lease}")
                out[f"failover_{lease}"] = {"ms": times, "client_errors": errors}
        ld = etcd.leader()
        out["etcd_leader_at_end"] = ld.name if ld else None
    finally:
        etcd.stop()
        if not a.keep_etcd_data:
            # Hundreds of MB after a full run; the logs stay.
            for m in etcd.members:
                shutil.rmtree(m.data_dir, ignore_errors=True)
    out["commands"] = commands
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    print_report(out, levels, commands, root)
    return 0


def print_report(out, levels, commands, root):
    print(table(out, levels))
    print()
    others = sorted(r["other_processes_cores"] for k, v in out.items() if isinstance(v, list)
                    for r in v if isinstance(r, dict) and "other_processes_cores" in r)
    if others:
        print(f"CPU used during the runs by processes outside the benchmark (this script's own polling, and "
              f"whatever else runs on the machine), of its {os.cpu_count()} cores: median "
              f"{others[len(others) // 2]:.2f} cores, max {others[-1]:.2f}.")
        print()
    if "primary_etcd_member" in out:
        print(f"The primary's etcd connection: {out['primary_etcd_member']}; etcd leader: {out['etcd_leader_member']} "
              f"(at the end: {out.get('etcd_leader_at_end')}); etcd_load talks to the leader ({out['etcd_leader']}).")
        print()
    print("Machine:\n")
    for k, v in out["machine"].items():
        print(f"- {k}: {v}")
    print("\nCommands, in order (`$run` is the run's directory under .build/):\n\n```sh")
    for c in commands:
        print(re.sub(r"/\S*/\.build/ha-compare-[^/\s]+", "$run", c if root is None else c.replace(str(root), "$run")))
    print("```")


def writes(r, count_key):
    """etcd writes (revisions) per second over the command, and pairs per write
    (warm-up included in both, so pairs are scaled to the whole command)."""
    if "etcd_revisions" not in r:
        return ""
    per_second = r["etcd_revisions"] / r["wall_seconds"]
    measured = r[count_key] / r.get("seconds", 1)
    return f"; etcd ≈{per_second:,.0f} writes/s, ≈{measured / per_second:.2f} pairs per write" if per_second else ""


def median_run(runs, rate):
    ordered = sorted(runs, key=lambda r: r[rate])
    return ordered[(len(ordered) - 1) // 2]


def rates(runs, rate):
    return ", ".join(f"{r[rate]:,.0f}" for r in runs)


def table(out, levels):
    rows = ["| measurement | HA (3 replicas, primary) | etcd | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for c in levels:
        hs, es = out.get(f"ha_pair_{c}"), out.get(f"etcd_lock_{c}")
        if not hs or not es:
            continue
        h, e = median_run(hs, "ops_per_second"), median_run(es, "pairs_per_second")
        # Judged on each repetition's own ratio (its two runs were back to back):
        # the median of those, the lower of two.
        each = [x["ops_per_second"] / y["pairs_per_second"] for x, y in zip(hs, es) if y["pairs_per_second"]]
        ratio = sorted(each)[(len(each) - 1) // 2] if each else None
        rows.append(
            f"| Lock+Unlock pairs/s, {c} clients (median of {len(hs)}) | {fmt(h['ops_per_second'])} (runs: "
            f"{rates(hs, 'ops_per_second')}; median run: p50 {h['latency_ms']['p50']:.2f} ms, "
            f"p99 {h['latency_ms']['p99']:.2f} ms, client {h['client_cpu_seconds'] / out['duration']:.2f} cores, "
            f"primary {h['cpu_cores']['primary']:.2f}, etcd {h['cpu_cores']['etcd']:.2f}{writes(h, 'operations')}) | "
            f"{fmt(e['pairs_per_second'])} v3lock (runs: {rates(es, 'pairs_per_second')}; median run: p50 "
            f"{e['pair_latency_ms'].get('p50', 0):.2f} ms, client {e['client_cores']:.2f} cores, etcd "
            f"{e['cpu_cores']['etcd']:.2f}{writes(e, 'pairs')}) | {ratio:.2f}×, median of the repetitions' ratios ("
            f"{', '.join(f'{x:.2f}' for x in each)}) | ≥ 3× | {'met' if ratio and ratio >= 3 else '**not met**'} |")
    hs, ts, pys = out.get("ha_contended_16"), out.get("etcd_txn_h2load"), out.get("etcd_txn")
    if hs and ts:
        for r in hs:
            r["handoff_p50"] = r["unlock_sent_to_grant_ms"]["p50"]
        for r in ts:
            r["txn_p50"] = r["txn_put_ms"]["p50"]
        h, t = median_run(hs, "handoff_p50"), median_run(ts, "txn_p50")
        s = h["unlock_sent_to_grant_ms"]
        tp50 = t["txn_p50"]
        shaped = sorted(r["txn_handoff_shape_ms"]["p50"] for r in ts)
        python = ""
        if pys:
            py50 = sorted(r["txn_put_ms"]["p50"] for r in pys)[(len(pys) - 1) // 2]
            python = f"; Python grpc client: p50 {py50:.2f} ms"
        handoff_runs = ", ".join(f"{r['handoff_p50']:.2f}" for r in hs)
        txn_runs = ", ".join(f"{r['txn_p50']:.2f}" for r in ts)
        rows.append(f"| Contended hand-off, 16 clients on one name: unlock sent → next grant answered, p50 / p99 "
                    f"(median of {len(hs)}) | {s['p50']:.2f} ms / {s['p99']:.2f} ms (p50 runs: "
                    f"{handoff_runs}; {h['ops_per_second']:.0f} pairs/s) | "
                    f"Txn(put) by h2load: p50 {tp50:.2f} ms (runs: {txn_runs}), "
                    f"p99 {t['txn_put_ms']['p99']:.2f} ms (Status round trip p50 {t['status_ms']['p50']:.2f} ms; "
                    f"a Txn shaped like a hand-off, guard + delete + 2 puts: p50 {shaped[(len(shaped) - 1) // 2]:.2f} ms"
                    f"{python}) | {s['p50'] - tp50:+.2f} ms | ≤ Txn p50 + 0.5 ms | "
                    f"{'met' if s['p50'] <= tp50 + 0.5 else '**not met**'} |")
    for key in sorted(k for k in out if k.startswith("failover_")):
        ms = out[key]["ms"]
        shown = ", ".join("none" if x is None else f"{x:,.0f}" for x in ms)
        rows.append(f"| Failover, --ha_lease {key.split('_', 1)[1]}: SIGKILL of the primary → first grant (ms, each run) | "
                    f"{shown} | — | — | — | — |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
