"""Every LDLM error code: carried in LockResponse.error / UnlockResponse.error
with gRPC status OK, and never changing lock state."""
import pytest
from ldlm import exceptions as exc

from helpers import pb_string_field, pb_varint_field

RENEW_RPCS = ["Renew", "RefreshLock"]


def assert_error(resp, code, *, field="locked"):
    assert getattr(resp, field) is False, resp
    assert resp.HasField("error"), f"expected error code {code}, got {resp}"
    assert resp.error.code == code, f"expected error code {code}, got {resp}"


def assert_unknown_error(resp, *, field="locked"):
    """Validation errors: code Unknown (0) with a clear, non-empty message."""
    assert getattr(resp, field) is False, resp
    assert resp.HasField("error"), f"expected an error, got {resp}"
    assert resp.error.code == 0, resp
    assert resp.error.message.strip(), f"error message must not be empty: {resp}"
    if field == "locked":
        assert resp.key == "", f"no key may be handed out with an error: {resp}"


# --------------------------------------------------------------------------
# InvalidLockSize / LockSizeMismatch
# --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, -1, -2147483648])
@pytest.mark.parametrize("rpc", ["Lock", "TryLock"])
def test_invalid_lock_size(server, connect, pb, rpc, size):
    a, b = connect(server), connect(server)
    if rpc == "Lock":
        r = a.lock("badsize", size=size, wait_timeout_seconds=2)
    else:
        r = a.try_lock("badsize", size=size)
    assert_error(r, pb.InvalidLockSize)
    assert r.key == ""
    # nothing was acquired / created: any size is accepted afterwards
    r2 = b.try_lock("badsize", size=4)
    assert r2.locked and not r2.HasField("error"), r2


def test_invalid_lock_size_on_held_lock(server, connect, pb):
    a = connect(server)
    assert a.try_lock("badsize-held").locked
    assert_error(a.try_lock("badsize-held", size=0), pb.InvalidLockSize)


@pytest.mark.parametrize("rpc", ["Lock", "TryLock"])
@pytest.mark.parametrize("held_size,req_size", [(2, 3), (2, None), (2, 1), (1, 2), (None, 5)])
def test_lock_size_mismatch(server, connect, pb, rpc, held_size, req_size):
    a, b = connect(server), connect(server)
    h = a.try_lock("mm", size=held_size)
    assert h.locked
    if rpc == "Lock":
        # must answer at once (not wait) even though the lock is free / busy
        r = b.lock("mm", size=req_size, wait_timeout_seconds=3, timeout=2.5)
    else:
        r = b.try_lock("mm", size=req_size)
    assert_error(r, pb.LockSizeMismatch)
    assert r.key == ""
    assert r.error.message.strip()


def test_lock_size_mismatch_py_ldlm(server, ldlm_client):
    c = ldlm_client(server)
    assert c.try_lock("mmpy", size=3)
    with pytest.raises(exc.LockSizeMismatchError):
        c.try_lock("mmpy", size=2)
    with pytest.raises(exc.LockSizeMismatchError):
        c.lock("mmpy", size=4, wait_timeout_seconds=2)
    with pytest.raises(exc.LockSizeMismatchError):
        c.try_lock("mmpy")  # absent size = 1


def test_size_mismatch_does_not_disturb_holders(server, connect, pb):
    a, b = connect(server), connect(server)
    r = a.try_lock("mm2", size=2)
    assert_error(b.try_lock("mm2", size=3), pb.LockSizeMismatch)
    r2 = b.try_lock("mm2", size=2)
    assert r2.locked
    assert not b.try_lock("mm2", size=2).locked
    assert a.unlock("mm2", r.key).unlocked


# --------------------------------------------------------------------------
# Unlock errors
# --------------------------------------------------------------------------

def test_unlock_unknown_name(server, connect, pb):
    a = connect(server)
    u = a.unlock("never-locked", "somekey")
    assert_error(u, pb.LockDoesNotExist, field="unlocked")


def test_unlock_wrong_key(server, connect, pb):
    a, b = connect(server), connect(server)
    r = a.try_lock("wk")
    u = a.unlock("wk", r.key + "x")
    assert_error(u, pb.InvalidLockKey, field="unlocked")
    u = a.unlock("wk", "")
    assert_error(u, pb.InvalidLockKey, field="unlocked")
    assert not b.try_lock("wk").locked, "a refused unlock released the lock"
    assert a.unlock("wk", r.key).unlocked


def test_double_unlock(server, connect, pb):
    a = connect(server)
    r = a.try_lock("dbl")
    assert a.unlock("dbl", r.key).unlocked
    # the lock had one holder and no waiters, so it is gone
    assert_error(a.unlock("dbl", r.key), pb.LockDoesNotExist, field="unlocked")


def test_unlock_errors_py_ldlm(server, ldlm_client):
    c = ldlm_client(server)
    with pytest.raises(exc.LockDoesNotExistError):
        c.unlock("pynope", "k")
    lk = c.try_lock("pywk")
    with pytest.raises(exc.InvalidLockKeyError):
        c.unlock("pywk", "not-" + lk.key)
    lk.unlock()


# --------------------------------------------------------------------------
# Renew / RefreshLock errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_unknown_name(server, connect, pb, rpc):
    a = connect(server)
    r = a.renew_via(rpc, "renew-nope", "k", 10)
    assert_error(r, pb.LockDoesNotExistOrInvalidKey)


@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_wrong_key(server, connect, pb, rpc):
    a, b = connect(server), connect(server)
    h = a.try_lock("renew-wk")
    r = a.renew_via(rpc, "renew-wk", h.key + "x", 10)
    assert_error(r, pb.LockDoesNotExistOrInvalidKey)
    assert r.key == ""
    assert not b.try_lock("renew-wk").locked
    assert a.unlock("renew-wk", h.key).unlocked


@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_released_key(server, connect, pb, rpc):
    a = connect(server)
    h1 = a.try_lock("renew-rel", size=2)
    h2 = a.try_lock("renew-rel", size=2)
    assert a.unlock("renew-rel", h1.key).unlocked
    assert_error(a.renew_via(rpc, "renew-rel", h1.key, 10), pb.LockDoesNotExistOrInvalidKey)
    assert a.renew_via(rpc, "renew-rel", h2.key, 10).locked


def test_renew_errors_py_ldlm(server, ldlm_client):
    c = ldlm_client(server)
    with pytest.raises(exc.LockDoesNotExistOrInvalidKeyError):
        c.renew("pyrenew-nope", "k", 10)
    lk = c.try_lock("pyrenew-wk")
    with pytest.raises(exc.LockDoesNotExistOrInvalidKeyError):
        c.renew("pyrenew-wk", lk.key + "x", 10)


@pytest.mark.parametrize("secs", [0, -1])
@pytest.mark.parametrize("rpc", RENEW_RPCS)
def test_renew_non_positive_timeout(server, connect, rpc, secs):
    a, b = connect(server), connect(server)
    h = a.try_lock("renew-zero")
    r = a.renew_via(rpc, "renew-zero", h.key, secs)
    assert_unknown_error(r)
    # the lock is untouched
    assert not b.try_lock("renew-zero").locked
    assert a.unlock("renew-zero", h.key).unlocked


# --------------------------------------------------------------------------
# validation errors (code Unknown, clear message, nothing acquired)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("rpc", ["Lock", "TryLock"])
def test_empty_name(server, connect, rpc):
    a = connect(server)
    r = a.lock("", wait_timeout_seconds=2, timeout=5) if rpc == "Lock" else a.try_lock("")
    assert_unknown_error(r)


def test_empty_message_is_empty_name(server, connect, pb):
    a = connect(server)
    r = pb.LockResponse.FromString(a.raw("/ldlm.LDLM/TryLock", b""))
    assert_unknown_error(r)


def test_negative_wait_timeout(server, connect):
    a, b = connect(server), connect(server)
    r = a.lock("negwait", wait_timeout_seconds=-1, timeout=5)
    assert_unknown_error(r)
    assert b.try_lock("negwait").locked, "a rejected Lock acquired the lock"


def test_negative_wait_timeout_on_busy_lock_does_not_enqueue(server, connect):
    a, b, c = connect(server), connect(server), connect(server)
    h = a.try_lock("negwait2")
    assert_unknown_error(b.lock("negwait2", wait_timeout_seconds=-5, timeout=5))
    assert a.unlock("negwait2", h.key).unlocked
    assert c.try_lock("negwait2").locked, "a rejected Lock was queued as a waiter"


@pytest.mark.parametrize("rpc", ["Lock", "TryLock"])
@pytest.mark.parametrize("secs", [-1, -2147483648])
def test_negative_lock_timeout(server, connect, rpc, secs):
    a, b = connect(server), connect(server)
    if rpc == "Lock":
        r = a.lock("neglease", lock_timeout_seconds=secs, wait_timeout_seconds=2, timeout=5)
    else:
        r = a.try_lock("neglease", lock_timeout_seconds=secs)
    assert_unknown_error(r)
    assert b.try_lock("neglease").locked, "a rejected request acquired the lock"


@pytest.mark.parametrize("rpc", ["Lock", "TryLock"])
def test_name_too_long(server, connect, rpc):
    a = connect(server)
    name = "y" * 4097
    r = a.lock(name, wait_timeout_seconds=2, timeout=5) if rpc == "Lock" else a.try_lock(name)
    assert_unknown_error(r)
    assert connect(server).try_lock("y" * 4096).locked


def test_validation_error_py_ldlm(server, ldlm_client):
    c = ldlm_client(server)
    with pytest.raises(exc.LDLMError) as ei:
        c.try_lock("")
    assert ei.value.message
    with pytest.raises(exc.LDLMError):
        c.lock("z" * 5000, wait_timeout_seconds=1)


def test_error_precedence_sane_for_combined_problems(server, connect, pb):
    """A request that is both mis-sized and invalid must still be refused
    with *some* error and acquire nothing."""
    a, b = connect(server), connect(server)
    r = a.try_lock("", size=0)
    assert r.locked is False and r.HasField("error"), r
    r = a.try_lock("combo", size=0, lock_timeout_seconds=-1)
    assert r.locked is False and r.HasField("error"), r
    assert b.try_lock("combo").locked


def test_unknown_fields_are_ignored(server, connect, pb):
    """proto3: unknown fields (e.g. from a newer client) are skipped."""
    a, b = connect(server), connect(server)
    payload = (pb_string_field(1, b"unk") + pb_varint_field(50, 7)
               + pb_string_field(51, b"\x00\x01binary") + pb_varint_field(4, 1))
    r = pb.LockResponse.FromString(a.raw("/ldlm.LDLM/TryLock", payload))
    assert r.locked and r.name == "unk", r
    assert not b.try_lock("unk").locked
