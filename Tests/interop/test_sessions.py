"""Sessions: one per HTTP/2 connection.  Disconnects release holds and cancel
waits; keepalive detects dead peers; cancelled / expired RPCs are dequeued;
waiters are served FIFO."""
import signal
import time

import grpc
import pytest

from helpers import wait_until


def poll_try_lock(conn, name, timeout, **kw):
    """Poll TryLock every 50 ms; returns (locked_response_or_None, elapsed)."""
    def attempt():
        r = conn.try_lock(name, **kw)
        return r if r.locked else None
    return wait_until(attempt, timeout=timeout, interval=0.05)


# --------------------------------------------------------------------------
# disconnect
# --------------------------------------------------------------------------

def test_killed_client_locks_released_within_2s(server, connect, spawn_child):
    child = spawn_child(server, "lock:k1", "lock:k2", "lock:k3:2")
    child.expect("READY")
    other = connect(server)
    for n in ("k1", "k2"):
        assert not other.try_lock(n).locked, f"{n} should be held by the child"
    assert other.try_lock("k3", size=2).locked  # one slot left of the child's size-2 lock
    assert not other.try_lock("k3", size=2).locked

    t0 = time.monotonic()
    child.signal(signal.SIGKILL)
    r, _ = poll_try_lock(other, "k1", timeout=2.0)
    elapsed = time.monotonic() - t0
    assert r, f"killed client's lock not released within 2.0s"
    assert elapsed <= 2.0, f"released after {elapsed:.2f}s"
    assert other.try_lock("k2").locked, "second lock of the killed client still held"
    assert other.try_lock("k3", size=2).locked, "killed client's slot of a sized lock still held"


def test_killed_waiter_is_dequeued(server, connect, spawn_child):
    holder, other = connect(server), connect(server)
    h = holder.try_lock("kw")
    assert h.locked
    child = spawn_child(server, "wait:kw")
    child.expect("WAITING")
    time.sleep(0.7)  # let its Lock RPC reach the server and queue
    child.signal(signal.SIGKILL)
    child.proc.wait(timeout=5)
    time.sleep(0.5)
    assert holder.unlock("kw", h.key).unlocked
    r, _ = poll_try_lock(other, "kw", timeout=1.5)
    assert r, "lock was handed to (or blocked by) a waiter whose connection is gone"


def test_killing_one_client_keeps_other_sessions(server, connect, spawn_child):
    a, b = connect(server), connect(server)
    ha = a.try_lock("keep-a")
    assert ha.locked
    child = spawn_child(server, "lock:keep-child")
    child.expect("READY")
    child.signal(signal.SIGKILL)
    r, _ = poll_try_lock(b, "keep-child", timeout=2.0)
    assert r
    assert not b.try_lock("keep-a").locked, "another connection's lock was released"
    assert a.unlock("keep-a", ha.key).unlocked


def test_closed_channel_releases_locks(server, connect):
    a, b = connect(server), connect(server)
    assert a.try_lock("closed").locked
    assert a.lock("closed2", lock_timeout_seconds=60).locked
    assert not b.try_lock("closed").locked
    a.close()
    r, _ = poll_try_lock(b, "closed", timeout=2.0)
    assert r, "lock of a closed connection not released within 2s"
    # the released lock is gone entirely: a new size is accepted
    assert b.try_lock("closed2", size=3).locked


def test_waiter_granted_after_holder_disconnects(server, connect, spawn_child):
    waiter = connect(server)
    child = spawn_child(server, "lock:handoff")
    child.expect("READY")
    fut = waiter.lock_future("handoff", timeout=10)
    time.sleep(0.3)
    assert not fut.done()
    child.signal(signal.SIGKILL)
    r = fut.result(timeout=3)
    assert r.locked and r.name == "handoff", r


# --------------------------------------------------------------------------
# keepalive
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_keepalive_releases_locks_of_stopped_client(start_server, connect, spawn_child):
    s = start_server("--keepalive_interval", "1s", "--keepalive_timeout", "1s")
    healthy, other = connect(s), connect(s)
    hh = healthy.try_lock("ka-healthy")
    assert hh.locked
    child = spawn_child(s, "lock:ka")
    child.expect("READY")
    assert not other.try_lock("ka").locked
    t0 = time.monotonic()
    child.signal(signal.SIGSTOP)
    try:
        r, _ = poll_try_lock(other, "ka", timeout=8.0)
        elapsed = time.monotonic() - t0
        assert r, "stopped client's lock not released by keepalive within 8s"
        assert elapsed <= 6.0, f"keepalive 1s/1s took {elapsed:.2f}s to release the lock"
        # a peer that answers pings keeps its session (>= 3 ping rounds by now)
        time.sleep(max(0.0, t0 + 3.0 - time.monotonic()))
        assert not other.try_lock("ka-healthy").locked, "healthy client's lock was released"
        assert healthy.renew("ka-healthy", hh.key, 30).locked
    finally:
        child.kill()


# --------------------------------------------------------------------------
# --no_clear_on_disconnect
# --------------------------------------------------------------------------

def test_no_clear_on_disconnect_keeps_holds(start_server, connect, spawn_child, pb):
    s = start_server("--no_clear_on_disconnect")
    other = connect(s)
    child = spawn_child(s, "lock:nc")
    _, _, key = child.expect("LOCKED")
    child.expect("READY")
    child.signal(signal.SIGKILL)
    child.proc.wait(timeout=5)
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        assert not other.try_lock("nc").locked, "hold released although --no_clear_on_disconnect"
        time.sleep(0.1)
    # the key still works from another connection
    assert other.renew("nc", key, 30).locked
    u = other.unlock("nc", key)
    assert u.unlocked, u
    assert other.try_lock("nc").locked


def test_no_clear_on_disconnect_closed_channel(start_server, connect):
    s = start_server("--no_clear_on_disconnect")
    a, b = connect(s), connect(s)
    h = a.try_lock("nc2")
    a.close()
    time.sleep(1.0)
    assert not b.try_lock("nc2").locked
    assert b.unlock("nc2", h.key).unlocked


# --------------------------------------------------------------------------
# cancellation / deadlines
# --------------------------------------------------------------------------

def test_cancelled_waiter_is_dequeued(server, connect):
    holder, waiter, other = connect(server), connect(server), connect(server)
    h = holder.lock("cancel")
    assert h.locked
    fut = waiter.lock_future("cancel", timeout=15)
    time.sleep(0.5)
    assert not fut.done()
    assert fut.cancel()
    time.sleep(0.5)  # RST_STREAM reaches the server
    assert holder.unlock("cancel", h.key).unlocked
    # waiter's connection stays open: if the server had handed the lock to the
    # cancelled RPC it would stay held
    r, _ = poll_try_lock(other, "cancel", timeout=1.5)
    assert r, "lock was handed to a cancelled waiter"
    # the waiter's connection is still usable
    assert waiter.try_lock("cancel-after").locked


def test_deadline_on_waiting_lock(server, connect):
    holder, waiter, other = connect(server), connect(server), connect(server)
    h = holder.lock("deadline")
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as ei:
        waiter.lock("deadline", timeout=1.0)
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, ei.value
    assert time.monotonic() - t0 < 5
    time.sleep(0.5)
    assert holder.unlock("deadline", h.key).unlocked
    r, _ = poll_try_lock(other, "deadline", timeout=1.5)
    assert r, "lock was handed to a waiter whose deadline had expired"
    assert waiter.try_lock("deadline-after").locked


def test_many_cancelled_waiters(server, connect):
    holder, waiter, other = connect(server), connect(server), connect(server)
    h = holder.lock("cancel-many")
    futs = [waiter.lock_future("cancel-many", timeout=15) for _ in range(20)]
    time.sleep(0.5)
    for f in futs:
        f.cancel()
    time.sleep(0.5)
    assert holder.unlock("cancel-many", h.key).unlocked
    r, _ = poll_try_lock(other, "cancel-many", timeout=1.5)
    assert r, "lock was handed to a cancelled waiter"


# --------------------------------------------------------------------------
# FIFO
# --------------------------------------------------------------------------

def test_fifo_order_of_waiters(server, connect):
    holder = connect(server)
    waiters = [connect(server) for _ in range(4)]
    h = holder.lock("fifo")
    assert h.locked
    futs = []
    for w in waiters:
        futs.append(w.lock_future("fifo", timeout=30))
        time.sleep(0.3)  # make arrival order unambiguous
    assert not any(f.done() for f in futs)

    prev_conn, prev_key = holder, h.key
    for i, f in enumerate(futs):
        assert prev_conn.unlock("fifo", prev_key).unlocked
        r = f.result(timeout=5)
        assert r.locked, r
        time.sleep(0.2)
        later_done = [j for j in range(i + 1, len(futs)) if futs[j].done()]
        assert not later_done, f"after release #{i} waiter(s) {later_done} were also/instead granted"
        prev_conn, prev_key = waiters[i], r.key
    assert prev_conn.unlock("fifo", prev_key).unlocked


def test_fifo_sized_lock(server, connect):
    holders = [connect(server) for _ in range(2)]
    waiters = [connect(server) for _ in range(3)]
    hs = [c.lock("fifo-sem", size=2) for c in holders]
    assert all(x.locked for x in hs)
    futs = []
    for w in waiters:
        futs.append(w.lock_future("fifo-sem", size=2, timeout=30))
        time.sleep(0.3)
    assert holders[0].unlock("fifo-sem", hs[0].key).unlocked
    assert futs[0].result(timeout=5).locked
    time.sleep(0.2)
    assert not futs[1].done() and not futs[2].done()
    assert holders[1].unlock("fifo-sem", hs[1].key).unlocked
    assert futs[1].result(timeout=5).locked
    time.sleep(0.2)
    assert not futs[2].done()
    futs[2].cancel()
