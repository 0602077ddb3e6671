"""Fixtures for the black-box interop suite of swift-ldlm's ``ldlm-server``.

The suite talks to the real server binary over 127.0.0.1 only:

* ``pb`` / ``pbg``: grpcio stubs generated at session start from
  ``Protos/ldlm.proto`` (into a pytest tmp dir, imported as the top-level
  modules ``ldlm_pb2`` / ``ldlm_pb2_grpc`` so they never clash with py-ldlm's
  own ``ldlm.protos`` package); ``admin_protos`` the same for
  ``Protos/ldlm_admin.proto``.
* ``start_server``: factory that starts ``ldlm-server`` on a free port with
  extra flags / env and waits until the port accepts connections.
* ``server``: one server with default flags.
* ``connect``: factory for a :class:`helpers.Conn`, a grpcio channel with its
  own subchannel pool, i.e. its own HTTP/2 connection (= its own session).
* ``ldlm_client``: factory for py-ldlm ``Client`` objects (always
  ``retries=0``, ``auto_renew_locks=False``, every RPC bounded by a deadline).
* ``admin``: factory for admin stubs (``admin_client.Admin``); ``ipc_socket``:
  a short path for ``--ipc_socket_file``.
* ``spawn_child``: factory for a separate client *process*
  (``child_client.py``), for session / disconnect tests.

Every test is guarded by a watchdog: if it runs longer than
``LDLM_INTEROP_TEST_TIMEOUT`` seconds (default 60) every process it started is
SIGKILLed (which unblocks any pending RPC) and the test fails.
"""
from __future__ import annotations

import errno
import importlib
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import helpers  # noqa: E402  (needs sys.path above)
from admin_client import Admin  # noqa: E402
from helpers import (  # noqa: E402
    Conn,
    ChildClient,
    ServerProc,
    free_port,
    wait_for_port,
)

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "Protos"
SERVER_BIN = os.environ.get("LDLM_SERVER_BIN", str(REPO / ".build" / "debug" / "ldlm-server"))
TEST_TIMEOUT = float(os.environ.get("LDLM_INTEROP_TEST_TIMEOUT", "60"))


# --------------------------------------------------------------------------
# generated stubs
# --------------------------------------------------------------------------

def _protoc(proto_name: str, out: Path) -> None:
    proto = PROTOS / proto_name
    assert proto.is_file(), f"missing {proto}"
    res = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
         f"--python_out={out}", f"--grpc_python_out={out}", str(proto)],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, f"protoc failed:\n{res.stdout}\n{res.stderr}"


def _import_generated(out: Path, *modules: str):
    sys.path.insert(0, str(out))
    try:
        for mod in modules:
            sys.modules.pop(mod, None)
        return tuple(importlib.import_module(mod) for mod in modules)
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="session")
def _generated_protos(tmp_path_factory):
    out = tmp_path_factory.mktemp("ldlm_interop_protos")
    _protoc("ldlm.proto", out)
    # py-ldlm registers its own copy of "ldlm.proto" (package ldlm) in the
    # default descriptor pool; registering ours there too would be a duplicate
    # file / symbol error.  Give the generated module a private pool instead:
    # message names, field numbers and RPC paths are unchanged.
    pb2 = out / "ldlm_pb2.py"
    src = pb2.read_text()
    assert "_descriptor_pool.Default()" in src
    pb2.write_text(src.replace("_descriptor_pool.Default()", "_descriptor_pool.DescriptorPool()"))
    pb, pbg = _import_generated(out, "ldlm_pb2", "ldlm_pb2_grpc")
    helpers.pb = pb
    helpers.pbg = pbg
    return pb, pbg


@pytest.fixture(scope="session")
def pb(_generated_protos):
    return _generated_protos[0]


@pytest.fixture(scope="session")
def pbg(_generated_protos):
    return _generated_protos[1]


@pytest.fixture(scope="session")
def admin_protos(tmp_path_factory):
    """``(admin_pb, admin_pbg)``: stubs for ``Protos/ldlm_admin.proto``
    (package ``ldlm.admin.v1``, which nothing else registers)."""
    out = tmp_path_factory.mktemp("ldlm_interop_admin_protos")
    _protoc("ldlm_admin.proto", out)
    return _import_generated(out, "ldlm_admin_pb2", "ldlm_admin_pb2_grpc")


# --------------------------------------------------------------------------
# per-test process registry + watchdog
# --------------------------------------------------------------------------

def _registry(node) -> dict:
    reg = getattr(node, "_ldlm_interop", None)
    if reg is None:
        reg = {"servers": [], "children": [], "watchdog_fired": False}
        node._ldlm_interop = reg
    return reg


def _kill_registered(reg) -> None:
    for p in list(reg["children"]) + [s.proc for s in reg["servers"]]:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
            except OSError:
                pass
            try:
                p.kill()
            except OSError:
                pass


@pytest.fixture(autouse=True)
def _watchdog(request):
    reg = _registry(request.node)

    def fire():
        reg["watchdog_fired"] = True
        _kill_registered(reg)

    longer = request.node.get_closest_marker("watchdog_timeout")
    timeout = max(TEST_TIMEOUT, longer.args[0]) if longer else TEST_TIMEOUT
    t = threading.Timer(timeout, fire)
    t.daemon = True
    t.start()
    yield
    t.cancel()
    if reg["watchdog_fired"]:
        pytest.fail(f"test exceeded {timeout:.0f}s; the watchdog killed its processes", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed:
        reg = getattr(item, "_ldlm_interop", None)
        if reg:
            for i, s in enumerate(reg["servers"]):
                report.sections.append((f"ldlm-server #{i} {' '.join(s.args)}", s.logs(tail=6000)))


# --------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------

def server_env(extra: dict | None = None) -> dict:
    """os.environ without any LDLM_* variable (so a developer's environment
    cannot change the server's configuration), plus ``extra``.

    ``LDLM_TEST_EVENT_LOOPS=N`` runs every server with ``--event_loops N``
    (as ``LDLM_EVENT_LOOPS``, so a test's own flag or variable still wins);
    scripts/test.sh runs the suite with 1 and with 4."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDLM_")}
    if os.environ.get("LDLM_TEST_EVENT_LOOPS"):
        env["LDLM_EVENT_LOOPS"] = os.environ["LDLM_TEST_EVENT_LOOPS"]
    if extra:
        env.update(extra)
    return env


def _popen_retry(args, **kw):
    """Popen, retrying for up to 5 s while the binary is being replaced by a
    concurrent build (ETXTBSY / ENOENT)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return subprocess.Popen(args, **kw)
        except OSError as e:
            if e.errno not in (errno.ETXTBSY, errno.ENOENT) or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def start_server(request, tmp_path):
    """``start_server(*flags, env=None, listen=True, port=None, wait=True)``.

    With ``listen=True`` ``--listen_address 127.0.0.1:PORT`` is prepended to
    the flags; with ``listen=False`` the caller configures the address some
    other way (env / config file) and passes the ``port`` to wait on.
    """
    if not os.access(SERVER_BIN, os.X_OK):
        pytest.fail(f"server binary not found or not executable: {SERVER_BIN} (set LDLM_SERVER_BIN)")
    reg = _registry(request.node)
    started: list[ServerProc] = []

    def start(*flags, env=None, listen=True, port=None, wait=True, timeout=20.0) -> ServerProc:
        port = port or free_port()
        args = [SERVER_BIN]
        if listen:
            args += ["--listen_address", f"127.0.0.1:{port}"]
        args += [str(f) for f in flags]
        n = len(started)
        err_path = tmp_path / f"server{n}.stderr"
        out_path = tmp_path / f"server{n}.stdout"
        err_f = open(err_path, "wb")
        out_f = open(out_path, "wb")
        proc = _popen_retry(args, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                            env=server_env(env), cwd=str(tmp_path))
        err_f.close()
        out_f.close()
        s = ServerProc(proc=proc, port=port, args=args, stderr_path=err_path, stdout_path=out_path)
        started.append(s)
        reg["servers"].append(s)
        if wait:
            wait_for_port(s, timeout=timeout)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def server(start_server) -> ServerProc:
    return start_server()


@pytest.fixture
def run_server_expect_exit(tmp_path):
    """Run the binary expecting it to exit by itself (bad configuration).

    Returns ``(returncode, stdout, stderr)``.  If it is still running after
    ``timeout`` seconds it is killed and the test fails.
    """
    if not os.access(SERVER_BIN, os.X_OK):
        pytest.fail(f"server binary not found or not executable: {SERVER_BIN} (set LDLM_SERVER_BIN)")

    def run(*flags, env=None, timeout=10.0):
        args = [SERVER_BIN] + [str(f) for f in flags]
        proc = _popen_retry(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=server_env(env), cwd=str(tmp_path))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            pytest.fail(f"{args} did not exit within {timeout}s (expected a configuration error); "
                        f"stderr:\n{err.decode(errors='replace')}")
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    return run


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

@pytest.fixture
def connect(pb, pbg):
    """``connect(address_or_server, password=None) -> Conn`` (own HTTP/2 connection)."""
    conns: list[Conn] = []

    def make(target, password=None) -> Conn:
        address = target.address if isinstance(target, ServerProc) else target
        c = Conn(pb, pbg, address, password=password)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.close()


class _DeadlineStub:
    """Wraps a grpcio stub so every call made by py-ldlm has a deadline."""

    def __init__(self, stub, timeout):
        self._stub = stub
        self._timeout = timeout

    def __getattr__(self, name):
        fn = getattr(self._stub, name)

        def call(request, **kw):
            kw.setdefault("timeout", self._timeout)
            return fn(request, **kw)

        return call


@pytest.fixture
def ldlm_client():
    """``ldlm_client(address_or_server, password=None) -> ldlm.Client``.

    Note: py-ldlm clients in one process share one HTTP/2 connection per
    target (grpc's global subchannel pool); use ``connect`` or
    ``spawn_child`` when connections must differ."""
    from ldlm import Client

    clients = []

    def make(target, password=None, rpc_timeout=30.0):
        address = target.address if isinstance(target, ServerProc) else target
        c = Client(address, password=password, retries=0, auto_renew_locks=False)
        c._stub = _DeadlineStub(c._stub, rpc_timeout)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def admin(admin_protos):
    """``admin(target, password=None, credentials=None) -> Admin``: an admin
    stub on its own connection (``unix:PATH``, TCP, or TLS with credentials)."""
    made = []

    def make(target, password=None, credentials=None):
        conn = Admin(admin_protos, target, password, credentials)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def ipc_socket():
    """A path for ``--ipc_socket_file``, short enough for sun_path (pytest's
    tmp_path may not be)."""
    directory = tempfile.mkdtemp(prefix="ldlm-", dir="/tmp")
    yield os.path.join(directory, "admin.sock")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def spawn_child(request):
    """``spawn_child(address, *commands, password=None) -> ChildClient``: a
    separate python process running child_client.py (own connection)."""
    reg = _registry(request.node)
    children: list[ChildClient] = []

    def spawn(target, *commands, password=None) -> ChildClient:
        address = target.address if isinstance(target, ServerProc) else target
        c = ChildClient.start(address, list(commands), password=password)
        children.append(c)
        reg["children"].append(c.proc)
        return c

    yield spawn
    for c in children:
        c.kill()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: test takes a few seconds (leases / keepalive)")
    config.addinivalue_line("markers", "watchdog_timeout(seconds): a longer watchdog for a test that runs longer by design")
