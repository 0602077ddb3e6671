"""Fencing tokens (LockResponse.fencing_token, field 1000): strictly increasing
per lock name, over unlock and relock, across the holders of a sized lock, for
grants to waiters and across a server restart; unchanged by renewing; and
invisible to published clients such as py-ldlm 1.1.3."""
import time

RENEW_RPCS = ["Renew", "RefreshLock"]


def wall_clock_micros() -> int:
    return time.time_ns() // 1000


def assert_rising(tokens):
    assert all(a < b for a, b in zip(tokens, tokens[1:])), f"tokens do not strictly increase: {tokens}"


def locked(resp):
    assert resp.locked is True, resp
    assert resp.fencing_token > 0, f"a granted lock carries a token: {resp}"
    return resp


def test_tokens_start_above_the_wall_clock_and_rise_over_lock_and_unlock(start_server, connect):
    before = wall_clock_micros()
    c = connect(start_server())
    tokens = []
    for i in range(6):
        resp = locked(c.lock("f") if i % 2 == 0 else c.try_lock("f"))
        tokens.append(resp.fencing_token)
        assert c.unlock("f", resp.key).unlocked
    assert tokens[0] > before, "tokens start above the wall clock in microseconds"
    assert_rising(tokens)


def test_tokens_rise_across_the_holders_of_a_sized_lock_and_its_waiter(server, connect):
    holders = [locked(connect(server).lock("pool", size=3)) for _ in range(3)]
    waiter = connect(server)
    future = waiter.lock_future("pool", size=3)
    time.sleep(0.2)
    assert not future.done(), "a fourth holder of a size-3 lock must wait"

    owner = connect(server)
    # Any connection may unlock with the key.
    assert owner.unlock("pool", holders[1].key).unlocked
    granted = locked(future.result(timeout=10))
    assert_rising([h.fencing_token for h in holders] + [granted.fencing_token])


def test_busy_and_failed_answers_carry_no_token(server, connect):
    c = connect(server)
    held = locked(c.lock("busy"))
    assert c.try_lock("busy").fencing_token == 0
    assert c.lock("busy", size=2).fencing_token == 0, "size mismatch"
    assert c.renew("busy", held.key + "0", 5).fencing_token == 0


def test_renew_and_refresh_lock_return_the_token_of_the_acquisition(server, connect):
    c = connect(server)
    held = locked(c.lock("lease", lock_timeout_seconds=5))
    locked(c.try_lock("elsewhere"))
    for rpc in RENEW_RPCS:
        renewed = c.renew_via(rpc, "lease", held.key, 10)
        assert renewed.locked, (rpc, renewed)
        assert renewed.fencing_token == held.fencing_token, rpc


def test_tokens_rise_across_a_server_restart(start_server, connect):
    first = start_server()
    c = connect(first)
    before = []
    for _ in range(20):
        resp = locked(c.lock("restart"))
        before.append(resp.fencing_token)
        c.unlock("restart", resp.key)
    held = locked(c.lock("restart"))
    before.append(held.fencing_token)
    c.close()
    assert first.signal_and_wait() == 0

    second = start_server(port=first.port)
    after = locked(connect(second).lock("restart")).fencing_token
    assert_rising(before + [after])


def test_py_ldlm_ignores_the_token_and_still_works(server, ldlm_client, pb):
    from ldlm.protos import ldlm_pb2 as published

    assert "fencing_token" not in published.LockResponse.DESCRIPTOR.fields_by_name
    c = ldlm_client(server)
    lk = c.lock("py", wait_timeout_seconds=5, lock_timeout_seconds=30, size=2)
    assert lk and lk.key
    other = c.try_lock("py", size=2)
    assert other
    assert c.renew("py", lk.key, 30).locked
    lk.unlock()
    other.unlock()

    # py-ldlm's message keeps the field it does not know; our stubs read it back.
    raw = c._stub.TryLock(published.TryLockRequest(name="py-raw"))
    assert raw.locked
    assert pb.LockResponse.FromString(raw.SerializeToString()).fencing_token > 0
    c.unlock("py-raw", raw.key)
