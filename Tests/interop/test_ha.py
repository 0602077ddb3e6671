"""Replica sets over etcd (``--ha_etcd_endpoints``): one primary serves, the
standbys refuse with UNAVAILABLE and an ``ldlm-primary`` trailer; a killed,
stopped or terminated primary is replaced within its etcd lease, holds survive
the failover for their holders to reclaim, fencing tokens keep rising, and a
frozen old primary never acknowledges a grant once it has lost its lease.

The etcd cluster and the replicas come from ha_cluster.py; every process is
stopped by PID in teardown."""
from __future__ import annotations

import os
import re
import signal
import threading
import time

import grpc
import pytest

from ha_cluster import ETCD_BIN, PRIMARY, STANDBY, EtcdCluster, ReplicaSet, raw_try_lock
from helpers import free_port, wait_until

pytestmark = pytest.mark.slow

LEASE_S = 2.0           # --ha_lease of most tests
GRACE_S = 4.0           # --ha_reclaim_grace of most tests
FAILOVER_BOUND = LEASE_S + 2.0
SERVICE_BOUND = 15.0    # lock ops work again within this after etcd trouble
PRIMARY_TRAILER = "ldlm-primary"
LDLM_RPCS = ["Lock", "TryLock", "Unlock", "Renew", "RefreshLock"]


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:40]


def _start_etcd(path) -> EtcdCluster:
    if not os.access(ETCD_BIN, os.X_OK):
        pytest.fail(f"etcd not found at {ETCD_BIN} (scripts/setup.sh --with-test-deps installs it; or set ETCD_BIN)")
    cluster = EtcdCluster(path)
    try:
        cluster.start(timeout=30)
    except BaseException:
        cluster.cleanup()
        raise
    return cluster


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """One etcd cluster for the tests that do not break etcd (each uses its
    own --ha_cluster prefix)."""
    cluster = _start_etcd(tmp_path_factory.mktemp("etcd"))
    yield cluster
    cluster.cleanup()


@pytest.fixture
def own_etcd(request, tmp_path):
    """An etcd cluster for a test that kills its members."""
    cluster = _start_etcd(tmp_path / "etcd")
    reg = getattr(request.node, "_ldlm_interop", None)
    if reg is not None:
        reg["children"].extend(cluster.members)  # the watchdog SIGKILLs them
    yield cluster
    cluster.cleanup()


@pytest.fixture
def replica_set(request, tmp_path, pb, etcd):
    """``replica_set(n=3, lease="2s", grace="4s", etcd=None, metrics=False,
    extra=()) -> ReplicaSet`` started and listening; its --ha_cluster is unique
    to the test."""
    reg = getattr(request.node, "_ldlm_interop", None)
    made: list[ReplicaSet] = []

    def make(n=3, lease=f"{LEASE_S:g}s", grace=f"{GRACE_S:g}s", etcd_cluster=None, metrics=False,
             extra=()) -> ReplicaSet:
        rs = ReplicaSet(etcd_cluster or etcd, tmp_path / f"rs{len(made)}",
                        cluster=f"{_sanitize(request.node.name)}-{len(made)}-{time.monotonic_ns() % 10**6}",
                        replicas=n, lease=lease, reclaim_grace=grace, metrics=metrics, extra_flags=list(extra))
        made.append(rs)
        rs.start(wait=False)
        if reg is not None:
            reg["servers"].extend(rs.replicas)  # logs on failure; the watchdog SIGKILLs them
        for r in rs:
            r.wait_listening(timeout=20)
        return rs

    yield make
    for rs in made:
        rs.stop_all()


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def trailers(err: grpc.RpcError) -> dict:
    return dict(err.trailing_metadata() or ())


def assert_refused_by_standby(fn, primary_address: str, what: str):
    with pytest.raises(grpc.RpcError) as refused:
        fn()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, f"{what}: {refused.value}"
    assert trailers(refused.value).get(PRIMARY_TRAILER) == primary_address, \
        f"{what}: trailers {trailers(refused.value)}, primary is {primary_address}"


def locked(resp, what=""):
    assert resp.locked is True, f"{what}: {resp}"
    assert resp.key and resp.fencing_token > 0, f"{what}: {resp}"
    return resp


def not_acquired(conn, name) -> bool:
    """A TryLock that must not get the lock: True if it answered not locked
    or failed; False if it got the lock."""
    try:
        return not conn.try_lock(name, timeout=5).locked
    except grpc.RpcError:
        return True


def assert_held_elsewhere(conn, name, what=""):
    """A TryLock answers "not locked" (no error): someone else holds it."""
    r = conn.try_lock(name, timeout=5)
    assert not r.locked, f"{name} was free: {what}"
    return r


def etcd_holds(etcd_cluster: EtcdCluster, cluster: str, name: str) -> dict:
    return etcd_cluster.get_prefix(f"/{cluster}/holds/{name}/")


# --------------------------------------------------------------------------
# standbys, health, startup refusals
# --------------------------------------------------------------------------

@pytest.mark.watchdog_timeout(90)
def test_one_primary_serves_and_standbys_refuse_with_the_primary_trailer(replica_set, connect, ldlm_client, etcd):
    rs = replica_set(3, metrics=True)
    p = rs.wait_for_primary(timeout=15)
    # Stable: still exactly one primary a moment later, and it is the one etcd names.
    time.sleep(0.5)
    assert [r.index for r in rs.primaries()] == [p.index], rs.roles()
    assert rs.etcd_primary_value() == p.address
    standbys = [r for r in rs if r is not p]

    assert p.health() == "SERVING" and p.health("ldlm.LDLM") == "SERVING"
    assert p.readyz() == 200
    held = locked(connect(p.address).try_lock("ha-primary-serves"))
    assert ldlm_client(p.address).try_lock("ha-primary-serves-py"), "py-ldlm locks on the primary"

    for s in standbys:
        assert s.health() == "NOT_SERVING", s
        assert s.health("ldlm.LDLM") == "NOT_SERVING", s
        assert s.readyz() == 503, s
        c = connect(s.address)
        assert_refused_by_standby(lambda: c.lock("ha-sb", wait_timeout_seconds=1), p.address, f"Lock on {s}")
        assert_refused_by_standby(lambda: c.try_lock("ha-sb"), p.address, f"TryLock on {s}")
        assert_refused_by_standby(lambda: c.unlock("ha-primary-serves", held.key), p.address, f"Unlock on {s}")
        assert_refused_by_standby(lambda: c.renew("ha-primary-serves", held.key, 10), p.address, f"Renew on {s}")
        assert_refused_by_standby(lambda: c.refresh("ha-primary-serves", held.key, 10), p.address,
                                  f"RefreshLock on {s}")
        # The published client sees the same refusal (retries=0).
        assert_refused_by_standby(lambda: ldlm_client(s.address).try_lock("ha-sb-py"), p.address, f"py-ldlm on {s}")

    # A refused TryLock granted nothing: the name is free on the primary.
    assert connect(p.address).try_lock("ha-sb").locked
    assert etcd_holds(etcd, rs.cluster, "ha-primary-serves"), "the primary's grant is committed to etcd"


def _ha_flags(etcd):
    return ["--ha_etcd_endpoints", etcd.endpoints, "--ha_cluster", "refusal",
            "--ha_advertise_address", f"127.0.0.1:{free_port()}"]


REFUSALS = {
    "state-file": (lambda e, tmp: _ha_flags(e) + ["--state_file", str(tmp / "state.json")], ["state_file"]),
    "rest": (lambda e, tmp: _ha_flags(e) + ["--rest_listen_address", f"127.0.0.1:{free_port()}"],
             ["rest_listen_address"]),
    "cluster-without-endpoints": (lambda e, tmp: ["--ha_cluster", "x"], ["ha_etcd_endpoints"]),
    "lease-without-endpoints": (lambda e, tmp: ["--ha_lease", "3s"], ["ha_etcd_endpoints"]),
    "grace-without-endpoints": (lambda e, tmp: ["--ha_reclaim_grace", "3s"], ["ha_etcd_endpoints"]),
    # "any --ha_* flag": also one that happens to repeat the default value
    "default-lease-without-endpoints": (lambda e, tmp: ["--ha_lease", "5s"], ["ha_etcd_endpoints"]),
    "advertise-without-endpoints": (lambda e, tmp: ["--ha_advertise_address", "127.0.0.1:1"], ["ha_etcd_endpoints"]),
    "user-without-endpoints": (lambda e, tmp: ["--ha_etcd_user", "u", "--ha_etcd_password", "p"],
                               ["ha_etcd_endpoints"]),
    "tls-without-endpoints": (lambda e, tmp: ["--ha_etcd_ca", __file__], ["ha_etcd_endpoints"]),
    "no-cluster": (lambda e, tmp: ["--ha_etcd_endpoints", e.endpoints,
                                   "--ha_advertise_address", f"127.0.0.1:{free_port()}"], ["ha_cluster"]),
    "no-advertise": (lambda e, tmp: ["--ha_etcd_endpoints", e.endpoints, "--ha_cluster", "x"],
                     ["ha_advertise_address"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_inconsistent_ha_flags_are_refused_at_start(run_server_expect_exit, etcd, tmp_path, case):
    build, must_mention = REFUSALS[case]
    flags = ["--listen_address", f"127.0.0.1:{free_port()}"] + build(etcd, tmp_path)
    rc, out, err = run_server_expect_exit(*flags, timeout=10)
    assert rc != 0, f"{case}: started with {flags}"
    assert rc == 2, f"{case}: a configuration error exits 2 like every other one, got {rc}; stderr:\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{case}: expected a one-line error on stderr:\n{err}"
    for flag in must_mention:
        assert flag in err, f"{case}: the error does not name {flag}:\n{err}"
    # Refused before it wrote anything to etcd.
    assert not etcd.get_prefix("/refusal/"), f"{case}: wrote to etcd"
    assert not etcd.get_prefix("/x/"), f"{case}: wrote to etcd"


# --------------------------------------------------------------------------
# SIGKILL of the primary under load
# --------------------------------------------------------------------------

class Loader(threading.Thread):
    """TryLocks names w<i>-<j % 8> in turn on its own connection and unlocks
    the one taken three steps before, recording every acknowledged answer:
    ``state[name]`` is ("held", key, token), ("free",) or ("unknown",) for the
    one call in flight when the server died."""

    def __init__(self, conn, prefix: str, max_steps: int = 5000):
        super().__init__(daemon=True)
        self.conn = conn
        self.prefix = prefix
        self.max_steps = max_steps
        self.state: dict[str, tuple] = {}
        self.tokens: list[int] = []
        self.acked = 0
        self.bad: list[str] = []
        self.stop = threading.Event()
        self.error: Exception | None = None

    def lock_name(self, j):
        return f"{self.prefix}-{j % 8}"

    def run(self):
        try:
            for j in range(self.max_steps):
                if self.stop.is_set():
                    return
                n = self.lock_name(j)
                self.state[n] = ("unknown",)
                r = self.conn.try_lock(n, timeout=5)
                if not r.locked:
                    self.bad.append(f"TryLock {n} not granted: {r}")
                    return
                self.state[n] = ("held", r.key, r.fencing_token)
                self.tokens.append(r.fencing_token)
                self.acked += 1
                if j >= 3:
                    old = self.lock_name(j - 3)
                    _, key, _ = self.state[old]
                    self.state[old] = ("unknown",)
                    u = self.conn.unlock(old, key, timeout=5)
                    if not u.unlocked:
                        self.bad.append(f"Unlock {old} failed: {u}")
                        return
                    self.state[old] = ("free",)
                    self.acked += 1
        except grpc.RpcError as e:
            self.error = e


@pytest.mark.watchdog_timeout(120)
def test_sigkill_of_the_primary_under_load_fails_over_and_holds_are_reclaimable(
        replica_set, connect, spawn_child, ldlm_client):
    rs = replica_set(3)
    p = rs.wait_for_primary(timeout=15)

    # Two holds by the published client in another process: one is reclaimed
    # later, one is left to the grace.
    child = spawn_child(p.address, "lock:ha-reclaimed", "lock:ha-unreclaimed")
    _, _, reclaim_key = child.expect("LOCKED ha-reclaimed")
    child.expect("LOCKED ha-unreclaimed")
    child.expect("READY")
    probe = connect(p.address)
    before_tokens = [locked(probe.try_lock("ha-probe")).fencing_token]

    loaders = [Loader(connect(p.address), f"ha-load{i}") for i in range(3)]
    for ld in loaders:
        ld.start()
    enough, _ = wait_until(lambda: sum(ld.acked for ld in loaders) >= 60 or any(not ld.is_alive() for ld in loaders),
                           timeout=20)
    assert all(ld.is_alive() for ld in loaders), \
        f"a loader stopped before the kill: {[(ld.error, ld.bad) for ld in loaders]}"
    assert enough, f"too little load: {sum(ld.acked for ld in loaders)} acknowledged calls"

    t_kill = time.monotonic()
    p.kill()
    for ld in loaders:
        ld.join(timeout=10)
        assert not ld.is_alive(), "a loader call hung after the kill"
        assert not ld.bad, ld.bad
        assert ld.error is not None, "the loader stops only by the failed call of the kill"

    q, t_became_after, t_primary = rs.wait_for_primary_window(timeout=FAILOVER_BOUND + 5, exclude=[p])
    failover = t_primary - t_kill
    print(f"failover after SIGKILL: {failover:.2f}s")
    assert failover <= FAILOVER_BOUND, f"failover took {failover:.2f}s > --ha_lease + 2s"
    assert rs.etcd_primary_value() == q.address
    other = connect(q.address)
    assert not_acquired(other, "ha-unreclaimed"), "an unreclaimed hold was free right after the failover"
    # The remaining standby now names the new primary.
    (standby,) = [r for r in rs if r is not p and r is not q]

    def names_new_primary():
        code, md, _ = raw_try_lock(standby.address, "ha-standby-probe")
        return code == grpc.StatusCode.UNAVAILABLE and md.get(PRIMARY_TRAILER) == q.address

    assert wait_until(names_new_primary, timeout=3, interval=0.1)[0], \
        f"the standby does not name the new primary: {raw_try_lock(standby.address, 'ha-standby-probe')[:2]}"

    before_tokens += [t for ld in loaders for t in ld.tokens]
    max_before = max(before_tokens)
    held = {n: s for ld in loaders for n, s in ld.state.items() if s[0] == "held"}
    free = [n for ld in loaders for n, s in ld.state.items() if s[0] == "free"]
    print(f"at the kill: {len(held)} held, {len(free)} free, {sum(ld.acked for ld in loaders)} calls acknowledged")
    assert len(held) >= 6, f"too few holds at the kill: {held}"

    # Every acknowledged grant is there for its holder: same key, same token.
    # One is unlocked by its key instead (Unlock works during the grace).
    reclaimer = connect(q.address)
    unlocked_name, (_, unlocked_key, _) = next(iter(held.items()))
    held.pop(unlocked_name)
    lost = []
    for i, (n, (_, key, token)) in enumerate(held.items()):
        r = reclaimer.renew_via("Renew" if i % 2 == 0 else "RefreshLock", n, key, 30)
        if not (r.locked and r.key == key and r.fencing_token == token):
            lost.append((n, key, token, str(r)))
    assert not lost, f"acknowledged grants not reclaimable on the new primary ({len(lost)}/{len(held)}): {lost}"
    assert reclaimer.unlock(unlocked_name, unlocked_key).unlocked, "Unlock of a loaded hold during the grace"
    free.append(unlocked_name)
    # The published client reclaims too (the child's connection died with the primary).
    assert ldlm_client(q.address).renew("ha-reclaimed", reclaim_key, 30).locked

    # Names unlocked before the kill are free at once, even during the grace,
    # and every token after the failover is above every token before it.
    after_tokens = []
    for n in free:
        r = locked(other.try_lock(n), f"{n} was unlocked before the kill")
        after_tokens.append(r.fencing_token)
    after_tokens.append(locked(other.try_lock("ha-fresh-after-failover")).fencing_token)
    assert min(after_tokens) > max_before, (max_before, after_tokens)

    # The unreclaimed hold stays held for the rest of the grace, then is free.
    if time.monotonic() - t_primary < GRACE_S - 0.5:
        assert not_acquired(other, "ha-unreclaimed"), "an unreclaimed hold was free during the grace"

    def grab():
        r = other.try_lock("ha-unreclaimed", timeout=5)
        return r if r.locked else None

    got, _ = wait_until(grab, timeout=GRACE_S + FAILOVER_BOUND + 3, interval=0.1)
    t_free = time.monotonic()
    assert got, "the unreclaimed hold was never released after the grace"
    print(f"unreclaimed hold free {t_free - t_kill:.2f}s after the kill, {t_free - t_became_after:.2f}s after "
          f"the takeover at the earliest, {t_free - t_primary:.2f}s after it was seen")
    # It became primary after t_became_after (a probe then saw a standby):
    # the grace cannot have ended before t_became_after + grace.
    assert t_free - t_became_after >= GRACE_S - 0.1, \
        f"the unreclaimed hold was free {t_free - t_became_after:.2f}s after the new primary took over at the " \
        f"earliest, before the {GRACE_S}s grace"
    assert t_free - t_primary <= GRACE_S + 2.0, f"released {t_free - t_primary:.2f}s after the failover"
    assert got.fencing_token > max_before

    # Reclaimed holds outlive the grace.
    for n in list(held)[:5] + ["ha-reclaimed"]:
        assert_held_elsewhere(other, n, "a reclaimed hold was released at the end of the grace")


# --------------------------------------------------------------------------
# fencing tokens continue above the etcd high-water
# --------------------------------------------------------------------------

@pytest.mark.watchdog_timeout(90)
def test_fencing_tokens_after_failover_are_above_every_token_before(replica_set, connect, etcd):
    rs = replica_set(2)
    p = rs.wait_for_primary(timeout=15)
    c = connect(p.address)
    before = []
    for i in range(30):
        r = locked(c.try_lock(f"ha-fence-{i % 3}"))
        before.append(r.fencing_token)
        assert c.unlock(f"ha-fence-{i % 3}", r.key).unlocked
    key = f"/{rs.cluster}/fencing"
    high = etcd.get_raw(key)
    assert high is not None, "no fencing high-water in etcd"
    # Tokens start near the wall clock in microseconds, so a new primary would
    # hand out larger ones even without the high-water.  Raise the high-water
    # (as if the old primary had handed out tokens up to ~11 days ahead of the
    # clock) in the format the server wrote it: the new primary must go on above.
    raised = decode_token(high)
    assert raised is not None and raised >= max(before), f"unexpected high-water {high!r}, tokens up to {max(before)}"
    raised += 10**12
    etcd.put(key, encode_token_like(high, raised))

    t_kill = time.monotonic()
    p.kill()
    q = rs.wait_for_primary(timeout=FAILOVER_BOUND + 5, exclude=[p])
    assert time.monotonic() - t_kill <= FAILOVER_BOUND
    c2 = connect(q.address)
    after = [locked(c2.try_lock(f"ha-fence-{i}")).fencing_token for i in range(3)]
    after.append(locked(c2.try_lock("ha-fence-new")).fencing_token)
    assert min(after) > max(before), (max(before), after)
    assert min(after) > raised, f"the new primary ignored the high-water {raised} in etcd: {after}"


def decode_token(raw: bytes) -> int | None:
    """The fencing high-water as the server stores it: decimal text, or 8
    bytes big-endian (or a JSON number)."""
    text = raw.decode(errors="replace").strip()
    if text.isdigit():
        return int(text)
    if len(raw) == 8:
        return int.from_bytes(raw, "big")
    try:
        import json
        v = json.loads(text)
        return int(v) if isinstance(v, (int, str)) and str(v).isdigit() else None
    except ValueError:
        return None


def encode_token_like(raw: bytes, value: int) -> bytes:
    text = raw.decode(errors="replace").strip()
    if text.isdigit():
        return str(value).encode()
    if len(raw) == 8:
        return value.to_bytes(8, "big")
    if text.startswith('"'):
        return f'"{value}"'.encode()
    return str(value).encode()


# --------------------------------------------------------------------------
# zombie: a frozen primary that lost its lease
# --------------------------------------------------------------------------

@pytest.mark.watchdog_timeout(90)
def test_a_stopped_primary_never_grants_after_losing_its_lease(replica_set, connect, etcd):
    rs = replica_set(2)
    p = rs.wait_for_primary(timeout=15)
    # Several connections, each up (one grant each), so that some of their
    # calls are read before anything else the woken process does.
    zombie_clients = [connect(p.address) for _ in range(4)]
    for i, zc in enumerate(zombie_clients):
        locked(zc.try_lock(f"ha-zombie-warm{i}"))

    t_stop = time.monotonic()
    p.sigstop()
    try:
        q = rs.wait_for_primary(timeout=FAILOVER_BOUND + 5, exclude=[p])
        assert time.monotonic() - t_stop <= FAILOVER_BOUND
        rev_takeover = etcd.revision()
        # Sent to the frozen primary; it reads them only after SIGCONT.
        names = [f"ha-zombie-name{i}-{j}" for i in range(len(zombie_clients)) for j in range(3)]
        futures = [(n, zc.stub.TryLock.future(zc.try_lock_req(n), timeout=15))
                   for i, zc in enumerate(zombie_clients) for n in names[3 * i:3 * i + 3]]
        time.sleep(0.5)
    finally:
        p.sigcont()

    acknowledged = []
    for n, future in futures:
        try:
            resp = future.result(timeout=20)
            print(f"zombie TryLock {n}: locked={resp.locked}")
            if resp.locked:
                acknowledged.append(n)
        except grpc.RpcError as e:
            print(f"zombie TryLock {n}: {e.code()} {e.details()}")  # refused / connection closed: fine
    assert not acknowledged, f"the old primary acknowledged grants after losing its lease: {acknowledged}"

    # It steps down and names the new primary.
    def stepped_down():
        code, md, _ = raw_try_lock(p.address, "ha-zombie-probe", timeout=2)
        return code == grpc.StatusCode.UNAVAILABLE and md.get(PRIMARY_TRAILER) == q.address and p.role() == STANDBY

    ok, _ = wait_until(stepped_down, timeout=10, interval=0.2)
    assert ok, f"the old primary did not step down; roles {rs.roles()}, probe {raw_try_lock(p.address, 'x')}"
    assert p.running(), "it stays up as a standby"
    assert rs.etcd_primary_value() == q.address

    # Nothing the old primary wrote after the takeover: no hold of that name
    # in etcd, and the new primary can take it.
    kvs = [kv for kv in etcd.get_prefix_kvs(f"/{rs.cluster}/holds/") if int(kv["mod_revision"]) > rev_takeover
           and "ha-zombie-name" in kv["key"]]
    assert not kvs, f"holds written after the takeover: {kvs}"
    fresh = connect(q.address)
    for n in names:
        assert not etcd_holds(etcd, rs.cluster, n), n
        assert locked(fresh.try_lock(n), n)
    assert q.role() == PRIMARY


# --------------------------------------------------------------------------
# etcd member failures
# --------------------------------------------------------------------------

def _lock_cycle(connect, rs: ReplicaSet, name: str) -> bool:
    """TryLock + Unlock on whichever replica is primary now."""
    p = rs.primary()
    if p is None:
        return False
    c = connect(p.address)
    try:
        r = c.try_lock(name, timeout=3)
        if not r.locked:
            return False
        return c.unlock(name, r.key, timeout=3).unlocked
    except grpc.RpcError:
        return False
    finally:
        c.close()


def _service_back_within(connect, rs, prefix, bound):
    counter = iter(range(10**6))
    ok, waited = wait_until(lambda: _lock_cycle(connect, rs, f"{prefix}-{next(counter)}"), timeout=bound,
                            interval=0.2)
    assert ok, f"{prefix}: no successful lock cycle within {bound}s; roles {rs.roles()}"
    return waited


@pytest.mark.watchdog_timeout(150)
def test_service_survives_losing_an_etcd_follower_and_then_the_etcd_leader(own_etcd, replica_set, connect):
    rs = replica_set(2, etcd_cluster=own_etcd)
    rs.wait_for_primary(timeout=15)
    assert _lock_cycle(connect, rs, "ha-etcd-before")

    # The first endpoint if it is a follower: the one a client most likely uses.
    followers = own_etcd.followers()
    assert len(followers) == 2, own_etcd.describe()
    follower = own_etcd.members[0] if own_etcd.members[0] in followers else followers[0]
    follower.kill()
    print(f"killed etcd follower {follower.name}")
    waited = _service_back_within(connect, rs, "ha-etcd-follower-down", SERVICE_BOUND)
    print(f"lock service back {waited:.2f}s after the follower kill")
    # and it keeps working for a while (no step-down loop)
    for i in range(5):
        assert _service_back_within(connect, rs, f"ha-etcd-follower-steady{i}", SERVICE_BOUND) < SERVICE_BOUND

    follower.restart()
    own_etcd.wait_healthy(timeout=20)
    _service_back_within(connect, rs, "ha-etcd-rejoined", SERVICE_BOUND)

    leader = own_etcd.wait_for_leader(timeout=10)
    t_leader = time.monotonic()
    leader.kill()
    print(f"killed etcd leader {leader.name}")
    own_etcd.wait_for_leader(timeout=10, not_member=leader)
    _service_back_within(connect, rs, "ha-etcd-leader-down", SERVICE_BOUND)
    print(f"lock service back {time.monotonic() - t_leader:.2f}s after the leader kill")
    p = rs.wait_for_primary(timeout=SERVICE_BOUND)
    assert sum(1 for r in rs if r.role() == PRIMARY) == 1
    assert rs.etcd_primary_value() == p.address

    leader.restart()
    own_etcd.wait_healthy(timeout=20)
    _service_back_within(connect, rs, "ha-etcd-all-back", SERVICE_BOUND)


# --------------------------------------------------------------------------
# SIGTERM: hand over at once
# --------------------------------------------------------------------------

@pytest.mark.watchdog_timeout(90)
def test_sigterm_of_the_primary_hands_over_at_once_and_holds_stay_reclaimable(replica_set, connect, etcd):
    lease = 6.0
    rs = replica_set(3, lease=f"{lease:g}s", grace="10s")
    p = rs.wait_for_primary(timeout=20)
    holder = connect(p.address)
    held = locked(holder.try_lock("ha-term-held"))
    assert etcd_holds(etcd, rs.cluster, "ha-term-held")

    t_term = time.monotonic()
    p.signal(signal.SIGTERM)
    q = rs.wait_for_primary(timeout=lease + 5, exclude=[p])
    took = time.monotonic() - t_term
    print(f"handover after SIGTERM: {took:.2f}s")
    assert took < lease / 2, f"handover after SIGTERM took {took:.2f}s; the lease ({lease}s) was not revoked"
    assert p.proc.wait(timeout=15) == 0, "the old primary exits 0 after its drain"

    r = connect(q.address).renew("ha-term-held", held.key, 30)
    assert r.locked and r.key == held.key and r.fencing_token == held.fencing_token, r
    assert_held_elsewhere(connect(q.address), "ha-term-held", "the reclaimed hold")


# --------------------------------------------------------------------------
# a term that ended in etcd: the guarded write fails
# --------------------------------------------------------------------------

@pytest.mark.watchdog_timeout(90)
def test_a_primary_whose_key_was_taken_over_never_acknowledges_a_write(replica_set, connect, etcd):
    """The primary key is deleted behind the primary's back (its lease stays
    alive, so only the write guard can notice): a standby takes the key, and
    the old primary's next grant must fail its guarded Txn, not be answered
    as locked, and make it step down."""
    rs = replica_set(2, metrics=True)
    p = rs.wait_for_primary(timeout=15)
    old = connect(p.address)
    locked(old.try_lock("ha-term-warm"))
    assert p.metric("ldlm_replica_primary") == 1
    assert p.metric("ldlm_etcd_commit_batch_writes_count") >= 1, "the grant's commit is counted"
    assert p.metric("ldlm_replica_step_downs_total") == 0
    rev_before = etcd.revision()

    assert etcd.delete(f"/{rs.cluster}/primary") == 1
    q = rs.wait_for_primary(timeout=10, exclude=[p])
    assert rs.etcd_primary_value() == q.address
    rev_takeover = etcd.revision()
    assert rev_takeover > rev_before

    try:
        resp = old.try_lock("ha-term-ended", timeout=10)
        assert not resp.locked, f"a primary whose term ended acknowledged a grant: {resp}"
    except grpc.RpcError:
        pass  # refused / connection closed: fine

    def stepped_down():
        code, md, _ = raw_try_lock(p.address, "ha-term-probe", timeout=2)
        return code == grpc.StatusCode.UNAVAILABLE and md.get(PRIMARY_TRAILER) == q.address and p.role() == STANDBY

    ok, _ = wait_until(stepped_down, timeout=10, interval=0.2)
    assert ok, f"the old primary did not step down after a failed write; roles {rs.roles()}"
    assert p.metric("ldlm_replica_primary") == 0 and q.metric("ldlm_replica_primary") == 1
    assert p.metric("ldlm_replica_step_downs_total") == 1
    assert not etcd_holds(etcd, rs.cluster, "ha-term-ended")
    assert locked(connect(q.address).try_lock("ha-term-ended"))


# --------------------------------------------------------------------------
# sized locks over a failover
# --------------------------------------------------------------------------

@pytest.mark.watchdog_timeout(90)
def test_every_slot_of_a_sized_lock_survives_a_failover(replica_set, connect):
    rs = replica_set(2)
    p = rs.wait_for_primary(timeout=15)
    holders = [locked(connect(p.address).try_lock("ha-pool", size=3)) for _ in range(2)]

    t_kill = time.monotonic()
    p.kill()
    q = rs.wait_for_primary(timeout=FAILOVER_BOUND + 5, exclude=[p])
    assert time.monotonic() - t_kill <= FAILOVER_BOUND

    third = connect(q.address)
    got = locked(third.try_lock("ha-pool", size=3), "the free third slot during the grace")
    assert got.fencing_token > max(h.fencing_token for h in holders)
    assert not third.try_lock("ha-pool", size=2).locked, "the loaded holds keep the lock's size"
    assert not connect(q.address).try_lock("ha-pool", size=3).locked, "all three slots are taken"
    for h in holders:
        r = connect(q.address).renew("ha-pool", h.key, 30)
        assert r.locked and r.key == h.key and r.fencing_token == h.fencing_token, r
