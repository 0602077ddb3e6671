"""The admin service (ldlm.admin.v1.Admin) over the --ipc_socket_file Unix
socket: the socket's mode and lifetime, the lock service on it without a
password, listings, forced unlocks and ended sessions. Stubs are generated
from Protos/ldlm_admin.proto (conftest ``admin_protos``)."""
from __future__ import annotations

import os
import signal
import socket
import stat
import time

import grpc
import pytest

from admin_client import start_with_socket, wait_for_waiters
from helpers import free_port, rpc_code


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


def test_a_path_that_is_not_a_socket_is_left_alone_and_refused(run_server_expect_exit, ipc_socket):
    with open(ipc_socket, "w") as f:
        f.write("not a socket")
    port = free_port()
    rc, _, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}", "--ipc_socket_file", ipc_socket)
    assert rc == 2, err
    assert err.startswith(f"ldlm-server: cannot listen on {ipc_socket}:"), err
    assert open(ipc_socket).read() == "not a socket"


def test_a_socket_another_server_serves_is_refused_and_kept(start_server, run_server_expect_exit, ipc_socket, admin):
    first = start_with_socket(start_server, ipc_socket)
    rc, _, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{free_port()}", "--ipc_socket_file", ipc_socket)
    assert rc == 2, err
    assert err.strip() == f"ldlm-server: cannot listen on {ipc_socket}: another server listens on it", err
    assert list(admin("unix:" + ipc_socket).list_locks()) == [], "the first server still serves its socket"
    assert first.signal_and_wait(signal.SIGTERM) == 0
    assert not os.path.exists(ipc_socket)


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
    # Tokens start above the wall clock in microseconds and differ per grant.
    assert holder.fencing_token > 10**15
    assert leased_lock.holders[0].fencing_token not in (0, holder.fencing_token)
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
