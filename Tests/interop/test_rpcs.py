"""Happy-path semantics of every RPC: Lock, TryLock, Unlock, Renew, RefreshLock,
sized locks (semaphores), wait timeouts and leases."""
import threading
import time

import grpc
import pytest

from helpers import wait_until

RENEW_RPCS = ["Renew", "RefreshLock"]


def assert_locked(resp, name):
    assert resp.locked is True, resp
    assert resp.name == name, resp
    assert resp.key, f"empty key: {resp}"
    assert not resp.HasField("error"), resp


def assert_busy(resp, name):
    """TryLock on a busy lock: locked=false and *no* error."""
    assert resp.locked is False, resp
    assert not resp.HasField("error"), f"TryLock on a held lock must not carry an error: {resp}"
    assert resp.key == "", resp


# --------------------------------------------------------------------------
# py-ldlm round trips
# --------------------------------------------------------------------------

def test_py_ldlm_lock_unlock_roundtrip(server, ldlm_client):
    c = ldlm_client(server)
    lk = c.lock("rt", wait_timeout_seconds=5)
    assert lk, "lock not acquired"
    assert lk.name == "rt" and lk.key
    assert not c.try_lock("rt"), "lock acquired twice"
    lk.unlock()
    lk2 = c.try_lock("rt")
    assert lk2
    assert lk2.key != lk.key, "a new acquisition must get a fresh key"
    c.unlock("rt", lk2.key)


def test_py_ldlm_context_managers(server, ldlm_client):
    c = ldlm_client(server)
    with c.lock_context("ctx", wait_timeout_seconds=5) as lk:
        assert lk
        with c.try_lock_context("ctx") as lk2:
            assert not lk2
    with c.try_lock_context("ctx") as lk3:
        assert lk3, "lock_context did not release the lock"


def test_py_ldlm_renew_and_lock_methods(server, ldlm_client):
    c = ldlm_client(server)
    lk = c.lock("pyrenew", wait_timeout_seconds=5, lock_timeout_seconds=30)
    assert lk
    r = c.renew("pyrenew", lk.key, 30)
    assert r.locked and r.name == "pyrenew"
    lk.renew(30)
    assert lk.locked
    lk.unlock()
    assert c.try_lock("pyrenew")


# --------------------------------------------------------------------------
# raw responses
# --------------------------------------------------------------------------

def test_lock_response_fields(server, connect):
    a = connect(server)
    r = a.lock("fields")
    assert_locked(r, "fields")
    u = a.unlock("fields", r.key)
    assert u.unlocked is True, u
    assert u.name == "fields", u
    assert not u.HasField("error"), u


def test_trylock_response_fields(server, connect):
    a, b = connect(server), connect(server)
    r = a.try_lock("tl")
    assert_locked(r, "tl")
    busy = b.try_lock("tl")
    assert_busy(busy, "tl")
    busy_same_conn = a.try_lock("tl")
    assert_busy(busy_same_conn, "tl")
    assert a.unlock("tl", r.key).unlocked
    r2 = b.try_lock("tl")
    assert_locked(r2, "tl")


def test_keys_are_fresh_per_acquisition(server, connect):
    a = connect(server)
    keys = set()
    for _ in range(10):
        r = a.try_lock("fresh")
        assert_locked(r, "fresh")
        keys.add(r.key)
        assert a.unlock("fresh", r.key).unlocked
    assert len(keys) == 10, f"keys reused: {keys}"


def test_names_are_independent_and_case_sensitive(server, connect):
    a, b = connect(server), connect(server)
    names = ["n", "N", "n ", "ключ", "锁/with/slashes", "emoji-\U0001F512", "a" * 200]
    held = {}
    for n in names:
        r = a.try_lock(n)
        assert_locked(r, n)
        held[n] = r.key
    for n in names:
        assert_busy(b.try_lock(n), n)
    assert b.try_lock("n2").locked
    for n, k in held.items():
        assert a.unlock(n, k).unlocked


def test_name_of_exactly_default_max_bytes_is_accepted(server, connect):
    a = connect(server)
    name = "x" * 4096
    r = a.try_lock(name)
    assert_locked(r, name)
    assert a.unlock(name, r.key).unlocked


def test_max_name_bytes_flag_counts_utf8_bytes(start_server, connect):
    s = start_server("--max_name_bytes", "10")
    a = connect(s)
    assert_locked(a.try_lock("0123456789"), "0123456789")
    assert_locked(a.try_lock("é" * 5), "é" * 5)  # 10 bytes
    for name in ("0123456789A", "é" * 6):  # 11 and 12 bytes (6 characters)
        r = a.try_lock(name)
        assert r.locked is False, r
        assert r.HasField("error") and r.error.code == 0 and r.error.message, r
        r = a.lock(name, wait_timeout_seconds=1)
        assert r.locked is False, r
        assert r.HasField("error") and r.error.code == 0 and r.error.message, r


def test_large_name_with_raised_max_name_bytes(start_server, connect):
    # 1 MiB name: several HTTP/2 DATA frames, flow control, < 4 MiB message cap.
    s = start_server("--max_name_bytes", str(2 * 1024 * 1024))
    a, b = connect(s), connect(s)
    name = "L" * (1024 * 1024)
    r = a.try_lock(name)
    assert r.locked and r.key and not r.HasField("error")
    assert r.name == name
    assert not b.try_lock(name).locked
    assert a.unlock(name, r.key).unlocked
    assert b.try_lock(name).locked


# --------------------------------------------------------------------------
# Lock waits
# --------------------------------------------------------------------------

def test_lock_waits_until_released(server, connect):
    a, b = connect(server), connect(server)
    r = a.lock("wait")
    assert_locked(r, "wait")
    # explicit wait_timeout_seconds=0 means "wait forever"
    fut = b.lock_future("wait", wait_timeout_seconds=0)
    time.sleep(1.2)
    assert not fut.done(), f"waiter returned while lock held: {fut.result() if fut.done() else ''}"
    assert a.unlock("wait", r.key).unlocked
    r2 = fut.result(timeout=5)
    assert_locked(r2, "wait")
    assert r2.key != r.key
    assert_busy(a.try_lock("wait"), "wait")
    assert b.unlock("wait", r2.key).unlocked


def test_wait_timeout_returns_lock_wait_timeout(server, connect, pb):
    a, b = connect(server), connect(server)
    assert a.lock("wt").locked
    t0 = time.monotonic()
    r = b.lock("wt", wait_timeout_seconds=1)
    elapsed = time.monotonic() - t0
    assert r.locked is False, r
    assert r.HasField("error"), r
    assert r.error.code == pb.LockWaitTimeout, r
    assert 0.8 <= elapsed <= 4.0, f"wait_timeout_seconds=1 took {elapsed:.2f}s"


def test_wait_timeout_py_ldlm_returns_unlocked(server, ldlm_client, connect):
    a = connect(server)
    assert a.lock("wtpy").locked
    c = ldlm_client(server)
    t0 = time.monotonic()
    lk = c.lock("wtpy", wait_timeout_seconds=1)
    assert not lk
    assert 0.8 <= time.monotonic() - t0 <= 4.0


def test_wait_timeout_not_hit_when_granted_in_time(server, connect):
    a, b = connect(server), connect(server)
    r = a.lock("wt2")
    fut = b.lock_future("wt2", wait_timeout_seconds=5)
    time.sleep(0.5)
    assert a.unlock("wt2", r.key).unlocked
    r2 = fut.result(timeout=5)
    assert_locked(r2, "wt2")


def test_timed_out_waiter_is_dequeued(server, connect):
    a, b, c = connect(server), connect(server), connect(server)
    r = a.lock("wt3")
    assert b.lock("wt3", wait_timeout_seconds=1).locked is False
    assert a.unlock("wt3", r.key).unlocked
    assert c.try_lock("wt3").locked, "lock was handed to a waiter whose wait had timed out"


# --------------------------------------------------------------------------
# sized locks
# --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [2, 3])
def test_sized_lock_n_holders(server, connect, pb, size):
    conns = [connect(server) for _ in range(size + 1)]
    name = f"sem{size}"
    keys = []
    for c in conns[:size]:
        r = c.try_lock(name, size=size)
        assert_locked(r, name)
        keys.append(r.key)
    assert len(set(keys)) == size, f"holders must get distinct keys: {keys}"
    extra = conns[size]
    assert_busy(extra.try_lock(name, size=size), name)
    r = extra.lock(name, size=size, wait_timeout_seconds=1)
    assert r.locked is False and r.error.code == pb.LockWaitTimeout, r
    fut = extra.lock_future(name, size=size)
    time.sleep(0.3)
    assert not fut.done()
    assert conns[0].unlock(name, keys[0]).unlocked
    r = fut.result(timeout=5)
    assert_locked(r, name)
    assert r.key not in keys
    # still full
    assert_busy(conns[0].try_lock(name, size=size), name)


def test_sized_lock_via_py_ldlm(server, ldlm_client):
    c = ldlm_client(server)
    locks = [c.try_lock("pysem", size=3) for _ in range(3)]
    assert all(locks)
    assert len({lk.key for lk in locks}) == 3
    assert not c.try_lock("pysem", size=3)
    assert not c.lock("pysem", size=3, wait_timeout_seconds=1)
    locks[1].unlock()
    assert c.try_lock("pysem", size=3)


def test_unlocking_one_holder_keeps_others(server, connect, pb):
    a = connect(server)
    r1 = a.try_lock("sem-keep", size=2)
    r2 = a.try_lock("sem-keep", size=2)
    assert r1.locked and r2.locked
    assert a.unlock("sem-keep", r1.key).unlocked
    # r1's key is no longer valid, r2's still is
    u = a.unlock("sem-keep", r1.key)
    assert u.unlocked is False and u.error.code == pb.InvalidLockKey, u
    r3 = a.try_lock("sem-keep", size=2)
    assert r3.locked
    assert_busy(a.try_lock("sem-keep", size=2), "sem-keep")
    assert a.unlock("sem-keep", r2.key).unlocked
    assert a.unlock("sem-keep", r3.key).unlocked


def test_lock_disappears_when_released_then_new_size_accepted(server, connect, pb):
    a = connect(server)
    r = a.try_lock("gone", size=2)
    assert r.locked
    mismatch = a.try_lock("gone", size=5)
    assert mismatch.error.code == pb.LockSizeMismatch, mismatch
    assert a.unlock("gone", r.key).unlocked
    rs = [a.try_lock("gone", size=5) for _ in range(5)]
    assert all(x.locked for x in rs), rs
    assert_busy(a.try_lock("gone", size=5), "gone")
    for x in rs:
        assert a.unlock("gone", x.key).unlocked
    # and back to the default size 1
    r1 = a.try_lock("gone")
    assert_locked(r1, "gone")
    assert_busy(a.try_lock("gone"), "gone")


def test_explicit_size_1_equals_default(server, connect):
    a = connect(server)
    r = a.try_lock("one", size=1)
    assert r.locked
    busy = a.try_lock("one")
    assert_busy(busy, "one")
    assert a.unlock("one", r.key).unlocked
    r = a.try_lock("one")
    assert r.locked
    assert_busy(a.try_lock("one", size=1), "one")


# --------------------------------------------------------------------------
# leases
# --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("rpc", ["Lock", "TryLock"])
def test_lease_expiry_releases_lock(server, connect, pb, rpc):
    a, b = connect(server), connect(server)
    t0 = time.monotonic()
    r = a.lock("lease", lock_timeout_seconds=1) if rpc == "Lock" else a.try_lock("lease", lock_timeout_seconds=1)
    assert_locked(r, "lease")
    assert_busy(b.try_lock("lease"), "lease")
    got, _ = wait_until(lambda: b.try_lock("lease").locked, timeout=3.5)
    elapsed = time.monotonic() - t0
    assert got, "lock with lock_timeout_seconds=1 was not released within 3.5s"
    assert elapsed >= 0.8, f"lease of 1s expired after only {elapsed:.2f}s"
    # the expired key no longer unlocks anything
    u = a.unlock("lease", r.key)
    assert u.unlocked is False and u.HasField("error"), u
    assert u.error.code in (pb.InvalidLockKey, pb.LockDoesNotExist), u


@pytest.mark.slow
def test_lease_runs_from_grant_not_from_request(server, connect):
    a, b, c = connect(server), connect(server), connect(server)
    h = a.lock("lease-grant")
    fut = b.lock_future("lease-grant", lock_timeout_seconds=2)
    time.sleep(2.2)  # longer than the waiter's lease
    assert not fut.done()
    assert a.unlock("lease-grant", h.key).unlocked
    r = fut.result(timeout=5)
    t_grant = time.monotonic()
    assert_locked(r, "lease-grant")
    time.sleep(0.5)
    assert_busy(c.try_lock("lease-grant"), "lease-grant")
    got, _ = wait_until(lambda: c.try_lock("lease-grant").locked, timeout=4.0)
    assert got, "waiter's lease did not expire within ~4s of the grant"
    assert time.monotonic() - t_grant >= 1.5


def test_unlock_from_other_connection_with_key(server, connect):
    a, b = connect(server), connect(server)
    h = a.try_lock("other-unlock")
    u = b.unlock("other-unlock", h.key)
    assert u.unlocked, u
    assert b.try_lock("other-unlock").locked


@pytest.mark.slow
def test_lease_expiry_grants_waiter(server, connect):
    a, b = connect(server), connect(server)
    assert a.try_lock("lease-w", lock_timeout_seconds=1).locked
    t0 = time.monotonic()
    r = b.lock("lease-w", wait_timeout_seconds=5)
    assert_locked(r, "lease-w")
    assert time.monotonic() - t0 <= 4.0


@pytest.mark.slow
@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_extends_lease(server, connect, rpc):
    a, b = connect(server), connect(server)
    t0 = time.monotonic()
    r = a.try_lock("renew", lock_timeout_seconds=1)
    assert r.locked
    time.sleep(0.5)
    rr = a.renew_via(rpc, "renew", r.key, 2)
    assert rr.locked is True, rr
    assert rr.name == "renew", rr
    assert rr.key == r.key, f"{rpc} must keep the key: {rr}"
    assert not rr.HasField("error"), rr
    # without the renewal the lease would have ended at t0+1
    time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))
    assert_busy(b.try_lock("renew"), "renew")
    got, _ = wait_until(lambda: b.try_lock("renew").locked, timeout=max(0.5, t0 + 5.0 - time.monotonic()))
    assert got, f"renewed lease (2s at t+0.5) did not expire by t+5s"
    assert time.monotonic() - t0 >= 2.0


@pytest.mark.slow
@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_gives_lease_to_unleased_lock(server, connect, rpc):
    a, b = connect(server), connect(server)
    r = a.try_lock("nolease")
    assert r.locked
    rr = a.renew_via(rpc, "nolease", r.key, 1)
    assert rr.locked, rr
    got, elapsed = wait_until(lambda: b.try_lock("nolease").locked, timeout=3.5)
    assert got, f"lock renewed with a 1s lease via {rpc} was not released within 3.5s"


@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_from_other_connection_with_key(server, connect, rpc):
    a, b = connect(server), connect(server)
    r = a.try_lock("renew-other", lock_timeout_seconds=30)
    rr = b.renew_via(rpc, "renew-other", r.key, 30)
    assert rr.locked and rr.key == r.key, rr


@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_one_holder_of_sized_lock(server, connect, rpc):
    a = connect(server)
    r1 = a.try_lock("sem-renew", size=2, lock_timeout_seconds=30)
    r2 = a.try_lock("sem-renew", size=2, lock_timeout_seconds=30)
    rr = a.renew_via(rpc, "sem-renew", r2.key, 60)
    assert rr.locked and rr.key == r2.key, rr
    rr = a.renew_via(rpc, "sem-renew", r1.key, 60)
    assert rr.locked and rr.key == r1.key, rr


@pytest.mark.slow
def test_lease_on_one_holder_of_sized_lock(server, connect):
    a, b = connect(server), connect(server)
    r1 = a.try_lock("sem-lease", size=2, lock_timeout_seconds=1)
    r2 = a.try_lock("sem-lease", size=2)
    assert r1.locked and r2.locked
    assert_busy(b.try_lock("sem-lease", size=2), "sem-lease")
    got, _ = wait_until(lambda: b.try_lock("sem-lease", size=2).locked, timeout=3.5)
    assert got, "the leased holder did not expire"
    assert_busy(b.try_lock("sem-lease", size=2), "sem-lease")  # r2 (no lease) still holds


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 3])
def test_mutual_exclusion_under_contention(server, connect, size):
    workers, rounds = 6, 12
    conns = [connect(server) for _ in range(workers)]
    lock = threading.Lock()
    inside = [0]
    peak = [0]
    errors = []

    def work(c):
        try:
            for _ in range(rounds):
                r = c.lock("contended", size=size, timeout=30)
                if not r.locked:
                    errors.append(f"not locked: {r}")
                    return
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    if inside[0] > size:
                        errors.append(f"{inside[0]} holders of a size-{size} lock")
                time.sleep(0.002)
                with lock:
                    inside[0] -= 1
                u = c.unlock("contended", r.key)
                if not u.unlocked:
                    errors.append(f"unlock failed: {u}")
                    return
        except grpc.RpcError as e:
            errors.append(f"rpc error {e.code()}: {e.details()}")

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=45)
    assert not any(t.is_alive() for t in threads), "workers hung"
    assert not errors, errors[:5]
    assert peak[0] >= 1


def test_many_concurrent_rpcs_on_one_connection(server, connect):
    a = connect(server)
    futs = [a.stub.TryLock.future(a.try_lock_req(f"multi-{i}"), timeout=10) for i in range(100)]
    results = [f.result(timeout=15) for f in futs]
    assert all(r.locked for r in results)
    assert len({r.key for r in results}) == 100
    assert {r.name for r in results} == {f"multi-{i}" for i in range(100)}
