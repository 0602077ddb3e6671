"""Processes for the HA benchmarks (bench/ha_compare.py, bench/chaos.py --ha):
a 3-member etcd cluster on free loopback ports and ldlm-server replicas over
it, started and stopped by PID; and the client side of a replica set: which
replica is primary, and where an UNAVAILABLE answer says to go
(`ldlm-primary` trailer).

Uses Tests/interop/ha_cluster.py's etcd cluster when that module is there;
this file keeps only what the benchmarks need on top.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL: only the process we started (by its PID)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class EtcdCluster:
    """Three etcd members, data on disk under `root` (not tmpfs: fsync counts)."""

    def __init__(self, root: Path, members=3, heartbeat_ms=100, election_ms=1000):
        self.root = Path(root)
        self.members = members
        self.heartbeat_ms, self.election_ms = heartbeat_ms, election_ms
        self.client_ports = [free_port() for _ in range(members)]
        self.peer_ports = [free_port() for _ in range(members)]
        self.procs = []

    @property
    def endpoints(self):
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    def command(self, i):
        initial = ",".join(f"e{j}=http://127.0.0.1:{p}" for j, p in enumerate(self.peer_ports))
        return ["etcd", "--name", f"e{i}", "--data-dir", str(self.root / f"etcd-{i}"),
                "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--heartbeat-interval", str(self.heartbeat_ms), "--election-timeout", str(self.election_ms),
                "--log-level", "warn"]

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(self.members):
            log = open(self.root / f"etcd-{i}.log", "ab")
            self.procs.append(subprocess.Popen(self.command(i), stdout=log, stderr=subprocess.STDOUT))
        for i, port in enumerate(self.client_ports):
            if not wait_for_port(port, 20, self.procs[i]):
                raise RuntimeError(f"etcd member {i} did not listen: {(self.root / f'etcd-{i}.log').read_text()[-800:]}")
        self.wait_leader(30)
        return self

    def leader(self):
        """Client endpoint of the raft leader, or None."""
        import etcd_stubs
        import grpc
        rpc_pb2, rpc_grpc, _, _ = etcd_stubs.load(stub_dir())
        for endpoint in self.endpoints:
            with grpc.insecure_channel(endpoint) as channel:
                try:
                    s = rpc_grpc.MaintenanceStub(channel).Status(rpc_pb2.StatusRequest(), timeout=2)
                except grpc.RpcError:
                    continue
                if s.leader and s.leader == s.header.member_id:
                    return endpoint
        return None

    def wait_leader(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (e := self.leader()) is not None:
                return e
            time.sleep(0.2)
        raise RuntimeError("the etcd cluster elected no leader")

    def stop(self):
        for p in self.procs:
            stop(p)


def stub_dir():
    return os.environ.get("ETCD_STUB_DIR") or str(Path(tempfile.gettempdir()) / f"ldlm-etcd-stubs-{os.getuid()}")


def ldlm_stubs(out: Path):
    """ldlm.proto and ldlm_admin.proto Python stubs in `out`, importable."""
    out = Path(out)
    if not (out / "ldlm_pb2_grpc.py").exists():
        out.mkdir(parents=True, exist_ok=True)
        for proto in ("ldlm.proto", "ldlm_admin.proto"):
            subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'Protos'}", f"--python_out={out}",
                            f"--grpc_python_out={out}", str(REPO / "Protos" / proto)], check=True, timeout=60)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    import ldlm_pb2, ldlm_pb2_grpc  # noqa: E401
    return ldlm_pb2, ldlm_pb2_grpc


def primary_hint(error):
    """host:port from an UNAVAILABLE answer's `ldlm-primary` trailer, or None."""
    try:
        for key, value in error.trailing_metadata() or ():
            if key == "ldlm-primary":
                return value if isinstance(value, str) else value.decode()
    except Exception:
        pass
    return None


class Replicas:
    """N ldlm-server replicas of one cluster over `etcd`. Each replica keeps its
    port across restarts (its advertised address)."""

    def __init__(self, server_bin, etcd: EtcdCluster, root: Path, n=3, cluster="bench", lease="5s",
                 reclaim_grace=None, extra=(), admin_password=None, log_level="info"):
        self.server_bin, self.etcd, self.root = server_bin, etcd, Path(root)
        self.ports = [free_port() for _ in range(n)]
        self.cluster, self.lease, self.reclaim_grace = cluster, lease, reclaim_grace
        self.extra, self.admin_password, self.log_level = list(extra), admin_password, log_level
        self.procs = [None] * n
        self.starts = [0] * n
        self.stubs = ldlm_stubs(self.root / "ldlm-stubs")

    @property
    def addresses(self):
        return [f"127.0.0.1:{p}" for p in self.ports]

    def command(self, i):
        c = [self.server_bin, "--listen_address", self.addresses[i], "--log_level", self.log_level,
             "--ha_etcd_endpoints", ",".join(self.etcd.endpoints), "--ha_cluster", self.cluster,
             "--ha_advertise_address", self.addresses[i], "--ha_lease", self.lease]
        if self.reclaim_grace:
            c += ["--ha_reclaim_grace", self.reclaim_grace]
        if self.admin_password:
            c += ["--admin_password", self.admin_password]
        return c + self.extra

    def start(self, i, wait=True):
        self.starts[i] += 1
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / f"replica-{i}.{self.starts[i]}.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDLM_")}
        self.procs[i] = subprocess.Popen(self.command(i), stdout=log, stderr=subprocess.STDOUT, env=env)
        if wait and not wait_for_port(self.ports[i], 20, self.procs[i]):
            raise RuntimeError(f"replica {i} did not listen: {self.log_tail(i)}")
        return self.procs[i]

    def log_tail(self, i, chars=1500):
        return (self.root / f"replica-{i}.{self.starts[i]}.log").read_text(errors="replace")[-chars:]

    def start_all(self):
        for i in range(len(self.ports)):
            self.start(i)
        return self

    def kill(self, i):
        """SIGKILL replica i (our child), reaped."""
        p = self.procs[i]
        p.kill()
        p.wait()

    def probe(self, i, timeout=1.0):
        """'primary', ('standby', hint) or ('down', code) for replica i."""
        import grpc
        pb, pbg = self.stubs
        with grpc.insecure_channel(self.addresses[i]) as channel:
            try:
                pbg.LDLMStub(channel).Renew(pb.RenewRequest(name="ha-bench-probe", key="none", lock_timeout_seconds=1),
                                            timeout=timeout)
                return "primary", None
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and (hint := primary_hint(e)) is not None:
                    return "standby", hint
                return "down", e.code().name

    def primary(self, timeout=30.0):
        """Index of the replica that answers as primary (waits up to timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, p in enumerate(self.procs):
                if p is not None and p.poll() is None and self.probe(i)[0] == "primary":
                    return i
            time.sleep(0.1)
        raise RuntimeError("no replica became primary; logs:\n" + "\n".join(
            f"--- replica {i}\n{self.log_tail(i, 600)}" for i in range(len(self.procs)) if self.procs[i]))

    def stop(self):
        for p in self.procs:
            stop(p)
