"""The admin service (ldlm.admin.v1.Admin) through grpcio stubs generated from
Protos/ldlm_admin.proto: listings and actions over the --ipc_socket_file Unix
socket, the socket's mode and lifetime, and who may call it over TCP and mTLS."""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import stat
import tempfile
import time

import grpc
import pytest

from helpers import rpc_code, wait_until
from tls_certs import make_cert_set

_channel_ids = itertools.count()


class Admin:
    """An admin stub on its own connection: over the Unix socket
    (``unix:PATH``), plain TCP, or TLS with ``credentials``."""

    def __init__(self, protos, target, password=None, credentials=None):
        self.pb, pbg = protos
        options = [
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.primary_user_agent", f"ldlm-admin-{next(_channel_ids)}"),
            ("grpc.enable_retries", 0),
        ]
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=options)
        self.stub = pbg.AdminStub(self.channel)
        self.metadata = (("authorization", password),) if password is not None else None

    def list_locks(self):
        return self.stub.ListLocks(self.pb.ListLocksRequest(), timeout=10, metadata=self.metadata).locks

    def locks_by_name(self):
        return {lock.name: lock for lock in self.list_locks()}

    def list_sessions(self):
        return self.stub.ListSessions(self.pb.ListSessionsRequest(), timeout=10, metadata=self.metadata).sessions

    def force_unlock(self, name, key=""):
        request = self.pb.ForceUnlockRequest(name=name, key=key)
        return self.stub.ForceUnlock(request, timeout=10, metadata=self.metadata).released

    def end_session(self, session_id):
        request = self.pb.EndSessionRequest(session_id=session_id)
        return self.stub.EndSession(request, timeout=10, metadata=self.metadata).released_locks

    def close(self):
        self.channel.close()


@pytest.fixture
def admin(admin_protos):
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
    """A socket path short enough for sun_path (pytest's tmp_path may not be)."""
    directory = tempfile.mkdtemp(prefix="ldlm-", dir="/tmp")
    yield os.path.join(directory, "admin.sock")
    shutil.rmtree(directory, ignore_errors=True)


def start_with_socket(start_server, path, *flags):
    server = start_server("--ipc_socket_file", path, *flags)
    assert wait_until(lambda: os.path.exists(path), timeout=5)[0], "socket file never appeared"
    return server


def wait_for_waiters(admin_conn, name, count):
    def waiting():
        lock = admin_conn.locks_by_name().get(name)
        return lock is not None and lock.waiters == count
    assert wait_until(waiting, timeout=5)[0], f"{name} never had {count} waiter(s)"


# --------------------------------------------------------------------------
# the Unix socket
# --------------------------------------------------------------------------

def test_socket_is_owner_only_and_removed_on_shutdown(start_server, ipc_socket):
    server = start_with_socket(start_server, ipc_socket)
    mode = os.stat(ipc_socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600, oct(stat.S_IMODE(mode))
    assert server.signal_and_wait(signal.SIGTERM) == 0
    assert not os.path.exists(ipc_socket), "socket file left behind after shutdown"


def test_socket_file_left_by_an_earlier_run_is_replaced(start_server, ipc_socket, admin):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(ipc_socket)
    stale.close()
    start_with_socket(start_server, ipc_socket)
    assert list(admin("unix:" + ipc_socket).list_locks()) == []


def test_lock_service_on_the_socket_needs_no_password(start_server, ipc_socket, connect):
    server = start_with_socket(start_server, ipc_socket, "--password", "lockpw")
    local = connect("unix:" + ipc_socket)
    r = local.try_lock("ipc-lock")
    assert r.locked
    assert rpc_code(connect(server).try_lock, "tcp-lock") == grpc.StatusCode.UNAUTHENTICATED
    assert local.unlock("ipc-lock", r.key).unlocked


# --------------------------------------------------------------------------
# listings and actions over the socket
# --------------------------------------------------------------------------

def test_list_locks_and_sessions(start_server, ipc_socket, admin, connect, spawn_child):
    server = start_with_socket(start_server, ipc_socket, "--password", "lockpw")
    started_ms = time.time() * 1000
    child = spawn_child(server, "lock:adm-held", password="lockpw")
    key = child.expect("LOCKED")[2]
    leased = connect(server, password="lockpw")
    assert leased.lock("adm-leased", lock_timeout_seconds=30).locked
    waiter = connect(server, password="lockpw")
    waiting = waiter.lock_future("adm-held")
    local = admin("unix:" + ipc_socket)
    wait_for_waiters(local, "adm-held", 1)

    response = local.stub.ListLocks(local.pb.ListLocksRequest(), timeout=10)
    assert [lock.name for lock in response.locks] == ["adm-held", "adm-leased"]
    assert key not in str(response), "a listing must never show a whole key"
    held, leased_lock = response.locks
    assert (held.size, held.waiters, len(held.holders)) == (1, 1, 1)
    holder = held.holders[0]
    assert holder.key_prefix == key[:8]
    assert holder.session_id != 0
    assert holder.remote_address.startswith("127.0.0.1:")
    assert holder.client_identity == ""
    assert not holder.HasField("lease_remaining_ms")
    assert holder.fencing_token == 0
    assert 25_000 < leased_lock.holders[0].lease_remaining_ms <= 30_000

    sessions = {s.id: s for s in local.list_sessions()}
    child_session = sessions[holder.session_id]
    assert (child_session.locks_held, child_session.waiting_calls) == (1, 0)
    assert child_session.remote_address == holder.remote_address
    assert started_ms - 5_000 <= child_session.connected_since_unix_ms <= time.time() * 1000 + 5_000
    assert sorted((s.locks_held, s.waiting_calls) for s in sessions.values()) == [(0, 0), (0, 1), (1, 0), (1, 0)]
    assert sum(s.remote_address == "unix:" + ipc_socket for s in sessions.values()) == 1
    waiting.cancel()


def test_force_unlock_lets_a_waiter_in(start_server, ipc_socket, admin, connect, spawn_child):
    server = start_with_socket(start_server, ipc_socket)
    child = spawn_child(server, "lock:fu")
    child.expect("LOCKED")
    waiter = connect(server)
    waiting = waiter.lock_future("fu")
    local = admin("unix:" + ipc_socket)
    wait_for_waiters(local, "fu", 1)

    assert local.force_unlock("fu") == 1

    response = waiting.result(timeout=5)
    assert response.locked, "the waiter did not get the lock"
    holders = local.locks_by_name()["fu"].holders
    assert [h.key_prefix for h in holders] == [response.key[:8]]
    with pytest.raises(grpc.RpcError) as missing:
        local.force_unlock("no-such-lock")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_force_unlock_of_one_key_keeps_the_other_holders(start_server, ipc_socket, admin, connect):
    server = start_with_socket(start_server, ipc_socket)
    first, second = connect(server), connect(server)
    kept = first.lock("pool", size=2)
    dropped = second.lock("pool", size=2)
    local = admin("unix:" + ipc_socket)

    assert local.force_unlock("pool", key=dropped.key[:8]) == 1

    assert [h.key_prefix for h in local.locks_by_name()["pool"].holders] == [kept.key[:8]]
    assert second.unlock("pool", dropped.key).error.code == 2  # InvalidLockKey: the hold is gone
    assert first.unlock("pool", kept.key).unlocked


def test_end_session_releases_its_locks(start_server, ipc_socket, admin, connect, spawn_child):
    server = start_with_socket(start_server, ipc_socket)
    child = spawn_child(server, "lock:es-1", "lock:es-2")
    child.expect("READY")
    other = connect(server)
    assert not other.try_lock("es-1").locked
    local = admin("unix:" + ipc_socket)
    session_id = local.locks_by_name()["es-1"].holders[0].session_id

    assert local.end_session(session_id) == 2

    assert other.try_lock("es-1").locked
    assert other.try_lock("es-2").locked
    assert session_id not in {s.id for s in local.list_sessions()}
    with pytest.raises(grpc.RpcError) as gone:
        local.end_session(session_id)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


# --------------------------------------------------------------------------
# who may call it over the network
# --------------------------------------------------------------------------

def test_admin_over_tcp_needs_the_admin_password_not_the_lock_password(start_server, admin, connect):
    server = start_server("--password", "lockpw", "--admin_password", "adminpw")
    for password in (None, "lockpw", "adminpw-"):
        assert rpc_code(admin(server.address, password=password).list_locks) == grpc.StatusCode.UNAUTHENTICATED, password
    assert list(admin(server.address, password="adminpw").list_locks()) == []
    assert connect(server, password="lockpw").try_lock("tcp-lock").locked
    assert rpc_code(connect(server, password="adminpw").try_lock, "x") == grpc.StatusCode.UNAUTHENTICATED


def test_admin_over_tcp_is_off_without_admin_access_configured(start_server, admin):
    server = start_server("--password", "lockpw")
    for password in (None, "lockpw"):
        with pytest.raises(grpc.RpcError) as refused:
            admin(server.address, password=password).list_sessions()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, password
        assert "--ipc_socket_file" in refused.value.details()


def test_mtls_identity_listed_is_allowed(start_server, admin, tmp_path):
    certs = make_cert_set(tmp_path)
    ops = certs.ca.issue("ops", "ops-1", dns=["ops.example"])
    server = start_server(
        "--tls_cert", certs.server.cert, "--tls_key", certs.server.key, "--client_ca", certs.ca.path,
        "--admin_identities", "client-one,DNS:ops.example",
    )

    def as_client(issued):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certs.ca.path.read_bytes(),
            private_key=issued.key.read_bytes(),
            certificate_chain=issued.cert.read_bytes(),
        )
        return admin(server.address, credentials=credentials)

    assert list(as_client(certs.client).list_locks()) == []
    sessions = as_client(ops).list_sessions()
    assert any(s.client_identity == "CN=ops-1 SAN=DNS:ops.example" for s in sessions), sessions
    unlisted = certs.ca.issue("worker", "worker-2")
    with pytest.raises(grpc.RpcError) as refused:
        as_client(unlisted).list_locks()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "CN=worker-2" in refused.value.details()
