"""A 3-member etcd 3.4 cluster and ldlm-server replica sets on 127.0.0.1,
for the HA interop tests and for benchmark scripts.

Importable without pytest (it only needs grpcio and grpcio-health-checking)::

    from ha_cluster import EtcdCluster, ReplicaSet

    with EtcdCluster("/tmp/work") as etcd, \\
         ReplicaSet(etcd, "/tmp/work", cluster="bench", replicas=3, lease="2s") as rs:
        primary = rs.wait_for_primary(timeout=15)
        ...  # primary.address is "127.0.0.1:PORT"

Every process is started with ``subprocess.Popen`` and stopped by its PID
(``stop()`` / ``kill()`` / ``stop_all()``), never by name.  Logs go to files
in the work directory (``member.log_path`` / ``replica.log_path``).

etcd is driven over its v3 JSON gateway on the client URL (etcd 3.4 serves
``/v3/...`` there): ``/health``, ``POST /v3/maintenance/status`` (leader),
``POST /v3/kv/range`` (reading the cluster's keys).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers import kill_and_reap, pb_string_field

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

ETCD_BIN = os.environ.get("ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"


def server_bin() -> str:
    """``$LDLM_SERVER_BIN``, else the repository's debug build."""
    return os.environ.get("LDLM_SERVER_BIN", str(REPO / ".build" / "debug" / "ldlm-server"))


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all bound at once, so no duplicates)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, timeout: float, interval: float = 0.05):
    """Calls ``pred`` until it returns truthy or ``timeout`` s pass.
    Returns ``(last value, elapsed seconds)``."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        v = pred()
        now = time.monotonic()
        if v or now >= deadline:
            return v, now - start
        time.sleep(min(interval, max(0.0, deadline - now)))


def _b64(s: str | bytes) -> str:
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key with this prefix"."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"


def _http_json(url: str, body: dict | None = None, timeout: float = 2.0) -> tuple[int, dict | None]:
    """GET (body None) or POST JSON.  Returns (status, parsed JSON or None);
    status 0 when the connection failed."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


class _Proc:
    """Common PID-based process control."""

    proc: subprocess.Popen | None = None
    log_path: Path

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig) -> None:
        if self.running():
            os.kill(self.proc.pid, sig)

    def sigstop(self) -> None:
        self.signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> int | None:
        """SIGKILL (after SIGCONT, in case it is stopped) and reap."""
        if self.proc is None:
            return None
        return kill_and_reap(self.proc)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGCONT + SIGTERM, wait up to ``timeout``, then SIGKILL.  Returns
        the exit code, or None when it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        try:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def poll(self):
        """Popen-like, so a test harness can treat this as a process."""
        return self.proc.poll() if self.proc else 0

    def send_signal(self, sig):
        self.signal(sig)

    def logs(self, tail: int | None = None) -> str:
        try:
            data = self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""
        if tail is not None and len(data) > tail:
            data = "...\n" + data[-tail:]
        return data


# --------------------------------------------------------------------------
# etcd
# --------------------------------------------------------------------------

class EtcdMember(_Proc):
    def __init__(self, cluster: "EtcdCluster", name: str, client_port: int, peer_port: int):
        self.cluster = cluster
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = cluster.work_dir / f"{name}.etcd"
        self.log_path = cluster.work_dir / f"{name}.log"
        self.proc = None
        self.starts = 0

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        """host:port, as ``--ha_etcd_endpoints`` takes it."""
        return f"127.0.0.1:{self.client_port}"

    def args(self) -> list[str]:
        c = self.cluster
        return [
            ETCD_BIN,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", c.initial_cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", c.token,
            "--heartbeat-interval", str(c.heartbeat_ms),
            "--election-timeout", str(c.election_ms),
            "--logger", "zap",
            "--log-outputs", "stderr",
            # a busy test machine: no snapshot churn, small backend
            "--snapshot-count", "100000",
            "--quota-backend-bytes", str(256 * 1024 * 1024),
        ]

    def start(self) -> None:
        assert not self.running(), f"{self.name} is running"
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts + 1}: {' '.join(self.args())}\n".encode())
        log.flush()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                     cwd=str(self.cluster.work_dir))
        log.close()
        self.starts += 1

    def restart(self) -> None:
        """Start again with the same data dir and ports (after kill/stop)."""
        if self.running():
            self.kill()
        self.start()

    # -- v3 JSON gateway on this member's client URL --------------------
    def health(self, timeout: float = 1.0) -> bool:
        status, body = _http_json(self.client_url + "/health", timeout=timeout)
        return status == 200 and bool(body) and body.get("health") in ("true", True)

    def status(self, timeout: float = 1.0) -> dict | None:
        """``POST /v3/maintenance/status``: ``{"header": {"member_id": ...},
        "leader": ..., ...}`` (uint64 as strings), None when unreachable."""
        status, body = _http_json(self.client_url + "/v3/maintenance/status", {}, timeout=timeout)
        return body if status == 200 and body else None

    def member_id(self, timeout: float = 1.0) -> str | None:
        st = self.status(timeout)
        return st["header"]["member_id"] if st else None

    def range_ok(self, timeout: float = 1.0) -> bool:
        """A linearizable Range through this member (needs a quorum)."""
        status, body = _http_json(self.client_url + "/v3/kv/range", {"key": _b64("ha_cluster/health")}, timeout=timeout)
        return status == 200 and body is not None and "header" in body


class EtcdCluster:
    """``size`` etcd members on free 127.0.0.1 ports, data in ``work_dir``.

    Heartbeat 100 ms / election timeout 1000 ms by default: a busy 2-core
    machine does not cause spurious elections, and a killed leader is replaced
    within about 1-2 s."""

    def __init__(self, work_dir: str | os.PathLike | None = None, size: int = 3,
                 heartbeat_ms: int = 100, election_ms: int = 1000, token: str | None = None):
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="ha-etcd-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.token = token or f"ha-test-{os.getpid()}-{time.monotonic_ns()}"
        ports = free_ports(2 * size)
        self.members = [EtcdMember(self, f"etcd{i}", ports[2 * i], ports[2 * i + 1]) for i in range(size)]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "EtcdCluster":
        for m in self.members:
            m.start()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0, members: list[EtcdMember] | None = None) -> float:
        """Waits until every running member (or ``members``) answers /health
        and a linearizable Range, and one of them is the leader.  Returns the
        seconds waited; raises RuntimeError on timeout."""
        def ok():
            ms = members if members is not None else [m for m in self.members if m.running()]
            if not ms:
                return False
            for m in ms:
                if not m.running():
                    raise RuntimeError(f"etcd member {m.name} exited (rc={m.proc.returncode}):\n{m.logs(tail=4000)}")
            return all(m.health() and m.range_ok() for m in ms) and self.leader() is not None

        good, waited = wait_until(ok, timeout, interval=0.1)
        if not good:
            raise RuntimeError(f"etcd cluster not healthy within {timeout}s:\n" + self.describe())
        return waited

    def stop(self) -> None:
        """Stops every member by PID (SIGTERM, then SIGKILL)."""
        for m in self.members:
            m.stop(timeout=5)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "EtcdCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- queries ---------------------------------------------------------------
    @property
    def endpoints(self) -> str:
        """``127.0.0.1:P1,127.0.0.1:P2,...`` for ``--ha_etcd_endpoints``."""
        return ",".join(m.endpoint for m in self.members)

    def running_members(self) -> list[EtcdMember]:
        return [m for m in self.members if m.running()]

    def leader(self) -> EtcdMember | None:
        """The member the running members agree is the leader, if any."""
        statuses = {m.name: m.status() for m in self.running_members()}
        ids = {st["header"]["member_id"]: name for name, st in statuses.items() if st}
        leaders = {st.get("leader") for st in statuses.values() if st and st.get("leader") not in (None, "0")}
        if len(leaders) != 1:
            return None
        name = ids.get(leaders.pop())
        return next((m for m in self.members if m.name == name), None)

    def wait_for_leader(self, timeout: float = 10.0, not_member: EtcdMember | None = None) -> EtcdMember:
        def find():
            ld = self.leader()
            return ld if ld is not None and ld is not not_member and ld.running() else None

        ld, _ = wait_until(find, timeout, interval=0.1)
        if ld is None:
            raise RuntimeError(f"no etcd leader within {timeout}s:\n" + self.describe())
        return ld

    def followers(self) -> list[EtcdMember]:
        ld = self.leader()
        return [m for m in self.running_members() if m is not ld]

    def _any_client_url(self) -> str:
        for m in self.running_members():
            if m.health(timeout=0.5):
                return m.client_url
        running = self.running_members()
        if not running:
            raise RuntimeError("no etcd member is running")
        return running[0].client_url

    def get_prefix(self, prefix: str, timeout: float = 2.0) -> dict[str, str]:
        """Every key under ``prefix`` (linearizable Range) as
        ``{key: value}`` (both decoded as UTF-8, errors replaced)."""
        p = prefix.encode()
        status, body = _http_json(self._any_client_url() + "/v3/kv/range",
                                  {"key": _b64(p), "range_end": _b64(_prefix_end(p))}, timeout=timeout)
        if status != 200 or body is None:
            raise RuntimeError(f"etcd range {prefix!r} failed: {status} {body}")
        out = {}
        for kv in body.get("kvs", []):
            k = base64.b64decode(kv["key"]).decode(errors="replace")
            v = base64.b64decode(kv.get("value", "")).decode(errors="replace")
            out[k] = v
        return out

    def get_prefix_kvs(self, prefix: str, timeout: float = 2.0) -> list[dict]:
        """Like :meth:`get_prefix` but the raw kv dicts (``create_revision``,
        ``mod_revision``, ``lease`` ...) with ``key``/``value`` decoded."""
        p = prefix.encode()
        status, body = _http_json(self._any_client_url() + "/v3/kv/range",
                                  {"key": _b64(p), "range_end": _b64(_prefix_end(p))}, timeout=timeout)
        if status != 200 or body is None:
            raise RuntimeError(f"etcd range {prefix!r} failed: {status} {body}")
        kvs = []
        for kv in body.get("kvs", []):
            kv = dict(kv)
            kv["key"] = base64.b64decode(kv["key"]).decode(errors="replace")
            kv["value"] = base64.b64decode(kv.get("value", "")).decode(errors="replace")
            kvs.append(kv)
        return kvs

    def revision(self, timeout: float = 2.0) -> int:
        """The cluster's current revision (from a Range's header)."""
        status, body = _http_json(self._any_client_url() + "/v3/kv/range", {"key": _b64("ha_cluster/rev")},
                                  timeout=timeout)
        if status != 200 or body is None:
            raise RuntimeError(f"etcd range failed: {status} {body}")
        return int(body["header"]["revision"])

    def get_raw(self, key: str, timeout: float = 2.0) -> bytes | None:
        """The value of one key as bytes (linearizable), None if absent."""
        status, body = _http_json(self._any_client_url() + "/v3/kv/range", {"key": _b64(key)}, timeout=timeout)
        if status != 200 or body is None:
            raise RuntimeError(f"etcd range {key!r} failed: {status} {body}")
        kvs = body.get("kvs") or []
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    def put(self, key: str, value: str | bytes, timeout: float = 2.0) -> None:
        status, body = _http_json(self._any_client_url() + "/v3/kv/put", {"key": _b64(key), "value": _b64(value)},
                                  timeout=timeout)
        if status != 200:
            raise RuntimeError(f"etcd put {key!r} failed: {status} {body}")

    def delete(self, key: str, timeout: float = 2.0) -> int:
        """Deletes one key; returns how many keys were deleted."""
        status, body = _http_json(self._any_client_url() + "/v3/kv/deleterange", {"key": _b64(key)}, timeout=timeout)
        if status != 200 or body is None:
            raise RuntimeError(f"etcd delete {key!r} failed: {status} {body}")
        return int(body.get("deleted", 0))

    def describe(self) -> str:
        lines = []
        for m in self.members:
            st = m.status(timeout=0.5) if m.running() else None
            lines.append(f"{m.name} pid={m.pid} running={m.running()} client={m.client_url} "
                         f"status={json.dumps(st) if st else None}")
            lines.append("    " + m.logs(tail=1500).replace("\n", "\n    "))
        return "\n".join(lines)


# --------------------------------------------------------------------------
# ldlm-server replicas
# --------------------------------------------------------------------------

PRIMARY = "primary"
STANDBY = "standby"
DOWN = "down"


def health_status(address: str, service: str = "", timeout: float = 1.0) -> str | None:
    """grpc.health.v1 Check on a fresh connection: "SERVING",
    "NOT_SERVING", ... or None when the call failed."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                      ("grpc.enable_retries", 0)])
    try:
        resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                         timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    except grpc.RpcError:
        return None
    finally:
        channel.close()


def raw_try_lock(address: str, name: str, timeout: float = 2.0):
    """A TryLock on a fresh connection with identity serializers, so no
    generated stubs are needed.  Returns ``(grpc.StatusCode, trailing
    metadata dict, response bytes or None)``."""
    import grpc

    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                      ("grpc.enable_retries", 0)])
    try:
        call = channel.unary_unary("/ldlm.LDLM/TryLock", request_serializer=None, response_deserializer=None)
        try:
            resp, c = call.with_call(pb_string_field(1, name.encode()), timeout=timeout)
            return c.code(), dict(c.trailing_metadata() or ()), resp
        except grpc.RpcError as e:
            return e.code(), dict(e.trailing_metadata() or ()), None
    finally:
        channel.close()


class Replica(_Proc):
    """One ``ldlm-server`` with the HA flags.  Also looks enough like
    helpers.ServerProc (``proc``, ``port``, ``address``, ``args``, ``logs``)
    for the interop suite's registry."""

    def __init__(self, rs: "ReplicaSet", index: int, port: int, metrics_port: int | None):
        self.rs = rs
        self.index = index
        self.port = port
        self.metrics_port = metrics_port
        self.log_path = rs.work_dir / f"replica{index}.log"
        self.stderr_path = self.log_path
        self.stdout_path = self.log_path
        self.proc = None
        self.args: list[str] = []
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def build_args(self, extra: list[str] = ()) -> list[str]:
        rs = self.rs
        args = [rs.binary,
                "--listen_address", self.address,
                "--ha_etcd_endpoints", rs.etcd_endpoints,
                "--ha_cluster", rs.cluster,
                "--ha_advertise_address", self.address]
        if rs.lease is not None:
            args += ["--ha_lease", rs.lease]
        if rs.reclaim_grace is not None:
            args += ["--ha_reclaim_grace", rs.reclaim_grace]
        if self.metrics_port is not None:
            args += ["--metrics_listen_address", f"127.0.0.1:{self.metrics_port}"]
        return args + [str(f) for f in rs.extra_flags] + [str(f) for f in extra]

    def start(self, extra: list[str] = (), wait: bool = True, timeout: float = 20.0) -> "Replica":
        assert not self.running(), f"replica {self.index} is running"
        self.args = self.build_args(extra)
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts + 1}: {' '.join(self.args)}\n".encode())
        log.flush()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDLM_")}
        env.update(self.rs.env)
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                     cwd=str(self.rs.work_dir))
        log.close()
        self.starts += 1
        if wait:
            self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout: float = 20.0) -> None:
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited with {self.proc.returncode} before listening\n"
                                   f"args: {self.args}\n{self.logs(tail=4000)}")
            return port_open(self.port)

        ok, _ = wait_until(up, timeout, interval=0.05)
        if not ok:
            raise RuntimeError(f"replica {self.index} not listening on {self.address} within {timeout}s\n"
                               f"{self.logs(tail=4000)}")

    def health(self, service: str = "", timeout: float = 1.0) -> str | None:
        return health_status(self.address, service, timeout)

    def role(self, timeout: float = 1.0) -> str:
        """PRIMARY (health SERVING), STANDBY (NOT_SERVING) or DOWN."""
        if not self.running():
            return DOWN
        h = self.health(timeout=timeout)
        return {"SERVING": PRIMARY, "NOT_SERVING": STANDBY}.get(h, DOWN)

    def readyz(self, timeout: float = 1.0) -> int:
        """HTTP status of /readyz (needs metrics=True), 0 if unreachable."""
        assert self.metrics_port is not None, "started without a metrics port"
        status, _ = _http_json(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=timeout)
        return status

    def metric(self, name: str, timeout: float = 2.0) -> float | None:
        """The value of an unlabelled series in /metrics (needs metrics=True); None if absent."""
        assert self.metrics_port is not None, "started without a metrics port"
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=timeout) as r:
            for line in r.read().decode().splitlines():
                fields = line.split()
                if len(fields) == 2 and fields[0] == name:
                    return float(fields[1])
        return None

    def __repr__(self) -> str:
        return f"<Replica {self.index} {self.address} pid={self.pid}>"


class ReplicaSet:
    """``replicas`` ldlm-server processes campaigning for ``/<cluster>/primary``.

    ``lease`` / ``reclaim_grace`` are passed as ``--ha_lease`` /
    ``--ha_reclaim_grace`` (strings such as "2s"; None leaves the server's
    default).  ``etcd`` is an :class:`EtcdCluster` or an endpoints string."""

    def __init__(self, etcd, work_dir: str | os.PathLike | None = None, cluster: str = "ldlm-test",
                 replicas: int = 3, lease: str | None = "2s", reclaim_grace: str | None = "3s",
                 extra_flags: list[str] = (), metrics: bool = False, env: dict | None = None,
                 binary: str | None = None):
        self.etcd = etcd if isinstance(etcd, EtcdCluster) else None
        self.etcd_endpoints = etcd.endpoints if isinstance(etcd, EtcdCluster) else str(etcd)
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="ha-ldlm-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.cluster = cluster
        self.lease = lease
        self.reclaim_grace = reclaim_grace
        self.extra_flags = list(extra_flags)
        self.env = dict(env or {})
        self.binary = binary or server_bin()
        ports = free_ports(2 * replicas if metrics else replicas)
        self.replicas = [
            Replica(self, i, ports[i], ports[replicas + i] if metrics else None) for i in range(replicas)
        ]

    def start(self, wait: bool = True, timeout: float = 20.0) -> "ReplicaSet":
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"server binary not found or not executable: {self.binary} (set LDLM_SERVER_BIN)")
        for r in self.replicas:
            r.start(wait=False)
        if wait:
            for r in self.replicas:
                r.wait_listening(timeout)
        return self

    def stop_all(self) -> None:
        """Stops every replica by PID (SIGCONT+SIGTERM, SIGKILL after 5 s)."""
        for r in self.replicas:
            r.stop(timeout=5)

    def cleanup(self) -> None:
        self.stop_all()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "ReplicaSet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def __iter__(self):
        return iter(self.replicas)

    def __getitem__(self, i) -> Replica:
        return self.replicas[i]

    # -- roles -----------------------------------------------------------------
    def roles(self) -> dict[int, str]:
        return {r.index: r.role() for r in self.replicas}

    def primaries(self) -> list[Replica]:
        return [r for r in self.replicas if r.role() == PRIMARY]

    def primary(self) -> Replica | None:
        """The one replica that reports SERVING; None if none or several."""
        ps = self.primaries()
        return ps[0] if len(ps) == 1 else None

    def standbys(self) -> list[Replica]:
        return [r for r in self.replicas if r.role() == STANDBY]

    def wait_for_primary(self, timeout: float = 15.0, exclude: tuple | list = (), interval: float = 0.05) -> Replica:
        """Waits until exactly one running replica, not in ``exclude``, is
        SERVING.  Raises TimeoutError (with the replicas' logs) otherwise."""
        return self.wait_for_primary_window(timeout, exclude, interval)[0]

    def wait_for_primary_window(self, timeout: float = 15.0, exclude: tuple | list = (),
                                interval: float = 0.05) -> tuple[Replica, float, float]:
        """Like :meth:`wait_for_primary`, and also when it became primary:
        ``(replica, after, by)`` in ``time.monotonic()`` seconds, where
        ``after`` is the start of the last probe that found it not primary
        (or the start of the wait) and ``by`` the end of the probe that found
        it primary."""
        excluded = {id(r) for r in exclude}
        start = time.monotonic()
        last_negative = {r.index: start for r in self.replicas}
        deadline = start + timeout
        while True:
            found = []
            for r in self.replicas:
                if not r.running() or id(r) in excluded:
                    continue
                probe_start = time.monotonic()
                if r.role(timeout=0.5) == PRIMARY:
                    found.append(r)
                else:
                    last_negative[r.index] = probe_start
            now = time.monotonic()
            if len(found) == 1:
                return found[0], last_negative[found[0].index], now
            if now >= deadline:
                raise TimeoutError(f"no single primary within {timeout}s; roles {self.roles()}\n" + self.describe())
            time.sleep(min(interval, max(0.0, deadline - now)))

    def etcd_primary_value(self) -> str | None:
        """The value of ``/<cluster>/primary`` in etcd (needs an EtcdCluster)."""
        assert self.etcd is not None
        kvs = self.etcd.get_prefix(f"/{self.cluster}/primary")
        return kvs.get(f"/{self.cluster}/primary")

    def describe(self, tail: int = 3000) -> str:
        out = []
        for r in self.replicas:
            out.append(f"--- replica {r.index} {r.address} pid={r.pid} running={r.running()}\n{r.logs(tail=tail)}")
        return "\n".join(out)


if __name__ == "__main__":
    # Smoke check: python3 ha_cluster.py [replicas]
    import sys

    with EtcdCluster() as etcd:
        ld = etcd.leader()
        print("etcd healthy; endpoints", etcd.endpoints, "leader", ld.name if ld else None)
        if len(sys.argv) > 1:
            with ReplicaSet(etcd, replicas=int(sys.argv[1])) as rs:
                p = rs.wait_for_primary(30)
                print("primary", p, "roles", rs.roles())
