"""--state_file: held locks survive a restart, clean (SIGTERM) or not
(SIGKILL), with their keys, names, sizes and fencing tokens; a torn last
record is cut off, anything else that is wrong stops the start untouched."""
from __future__ import annotations

import signal
import struct
import threading
import time

import grpc
import pytest

from helpers import wait_until

HEADER_SIZE = 20


def _records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every record after the header."""
    spans, offset = [], HEADER_SIZE
    while offset + 12 <= len(data):
        length = struct.unpack_from("<I", data, offset)[0]
        spans.append((offset, offset + 12 + length))
        offset += 12 + length
    return spans


def _restart(start_server, state, *flags):
    return start_server("--state_file", state, *flags)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_held_locks_come_back_with_their_keys_sizes_and_tokens(start_server, connect, tmp_path, stop):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    c = connect(s)
    single = c.lock("held-single", lock_timeout_seconds=600)
    sized = [c.try_lock("held-sized", size=3) for _ in range(2)]
    gone = c.lock("released")
    c.unlock("released", gone.key)
    assert single.locked and all(r.locked for r in sized)
    s.signal_and_wait(stop)

    s2 = _restart(start_server, state)
    other = connect(s2)
    assert not other.try_lock("held-single").locked
    assert other.try_lock("held-sized", size=3).locked, "the third slot is free"
    assert not other.try_lock("held-sized", size=3).locked, "two slots came back"
    assert other.try_lock("released").locked, "a lock released before the stop stays released"

    renewed = other.renew("held-single", single.key, 30)
    assert renewed.locked and renewed.fencing_token == single.fencing_token
    assert other.unlock("held-sized", sized[0].key).unlocked
    fresh = other.try_lock("held-single-next")
    assert fresh.fencing_token > max(single.fencing_token, sized[1].fencing_token)


def test_rejected_size_gets_an_ldlm_error(start_server, connect, tmp_path):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    connect(s).try_lock("sized", size=2)
    s.signal_and_wait(signal.SIGTERM)
    s2 = _restart(start_server, state)
    c = connect(s2)
    response = c.try_lock("sized", size=1)
    assert not response.locked and response.error.code == c.pb.LockSizeMismatch, response


def test_a_restored_lock_without_lease_is_freed_after_default_lock_timeout(start_server, connect, tmp_path):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    connect(s).lock("no-lease")
    s.signal_and_wait(signal.SIGTERM)
    s2 = _restart(start_server, state, "--default_lock_timeout", "1s")
    c = connect(s2)
    assert not c.try_lock("no-lease").locked
    assert wait_until(lambda: c.try_lock("no-lease").locked, timeout=5)


def test_renewing_a_restored_lock_makes_it_go_with_the_renewing_connection(start_server, connect, tmp_path):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    held = connect(s).lock("adopted")
    s.signal_and_wait(signal.SIGKILL)
    s2 = _restart(start_server, state)
    renewer, other = connect(s2), connect(s2)
    assert renewer.renew("adopted", held.key, 600).locked
    renewer.close()
    assert wait_until(lambda: other.try_lock("adopted").locked, timeout=5), \
        "the renewing connection closed, so its adopted lock is released"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_every_acknowledged_change_survives_a_stop_under_load(start_server, connect, tmp_path, stop):
    """Four connections lock and unlock their own names in a loop; the server
    is stopped mid-run. After the restart every name whose last acknowledged
    call was a grant is held by that key, and every name whose last
    acknowledged call was an unlock is free (the one call in flight per
    connection is unknown and skipped)."""
    state = tmp_path / "state"
    s = _restart(start_server, state)
    held: dict[str, str] = {}
    released: set[str] = set()
    in_flight: set[str] = set()
    lock = threading.Lock()
    stop_at = time.monotonic() + 1.5

    def worker(index: int):
        c = connect(s)
        n = 0
        while time.monotonic() < stop_at + 10:
            name = f"load-{index}-{n % 25}"
            with lock:
                in_flight.add(name)
            try:
                if name in held:
                    assert c.unlock(name, held[name]).unlocked
                    with lock:
                        del held[name]
                        released.add(name)
                else:
                    response = c.try_lock(name, lock_timeout_seconds=600)
                    assert response.locked
                    with lock:
                        held[name] = response.key
                        released.discard(name)
            except grpc.RpcError:
                return
            with lock:
                in_flight.discard(name)
            n += 1 if n % 3 else 2

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    s.signal_and_wait(stop)
    for t in threads:
        t.join(timeout=20)
    with lock:
        expect_held = {k: v for k, v in held.items() if k not in in_flight}
        expect_free = released - in_flight
    assert len(expect_held) > 10 and len(expect_free) > 10, (len(expect_held), len(expect_free))

    s2 = _restart(start_server, state)
    c = connect(s2)
    for name in expect_free:
        assert c.try_lock(name).locked, f"{name} was released and acknowledged, yet came back"
    for name, key in expect_held.items():
        assert not c.try_lock(name).locked, f"{name} was granted and acknowledged, yet is free"
        assert c.unlock(name, key).unlocked, f"{name} does not unlock with its old key"


def test_a_log_cut_at_every_byte_of_its_last_record_still_starts(start_server, connect, tmp_path):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    c = connect(s)
    kept = c.lock("kept")
    last = c.lock("x")
    c.unlock("x", last.key)
    s.signal_and_wait(signal.SIGTERM)
    data = state.read_bytes()
    last_start, last_end = _records(data)[-1]
    assert last_end == len(data)

    for cut in range(last_start + 1, last_end):
        damaged = tmp_path / f"cut-{cut}"
        damaged.write_bytes(data[:cut])
        s2 = _restart(start_server, damaged)
        c2 = connect(s2)
        assert not c2.try_lock("x").locked, f"cut at {cut}: the release was cut off, so x is held"
        assert c2.unlock("kept", kept.key).unlocked, f"cut at {cut}"
        s2.signal_and_wait(signal.SIGTERM)
        assert f"at byte {last_start}" in s2.logs(), s2.logs()


def test_corruption_before_the_end_refuses_to_start_and_leaves_the_file(run_server_expect_exit, tmp_path, start_server, connect):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    c = connect(s)
    for name in ("a", "b", "c"):
        c.lock(name)
    s.signal_and_wait(signal.SIGTERM)
    data = bytearray(state.read_bytes())
    first_start, first_end = _records(bytes(data))[0]
    data[first_end - 3] ^= 0xFF
    state.write_bytes(bytes(data))
    code, _, err = run_server_expect_exit("--listen_address", "127.0.0.1:0", "--state_file", state)
    assert code == 1, err
    assert f"is corrupt at byte {first_start}" in err, err
    assert state.read_bytes() == bytes(data)


def test_go_ldlm_json_state_file_is_refused_untouched(run_server_expect_exit, tmp_path):
    state = tmp_path / "ldlm-state.json"
    contents = b'{"locks":{"job":{"name":"job","key":"0b1f","size":1}}}\n'
    state.write_bytes(contents)
    code, _, err = run_server_expect_exit("--listen_address", "127.0.0.1:0", "-s", state)
    assert code == 1, err
    assert "is not a swift-ldlm state file" in err and "JSON" in err, err
    assert state.read_bytes() == contents


def test_a_second_server_on_the_same_state_file_is_refused(start_server, run_server_expect_exit, tmp_path):
    state = tmp_path / "state"
    _restart(start_server, state)
    code, _, err = run_server_expect_exit("--listen_address", "127.0.0.1:0", "--state_file", state)
    assert code == 1 and "in use by another server" in err, err


def test_without_state_file_a_restart_forgets(start_server, connect):
    s = start_server()
    connect(s).lock("forgotten")
    port = s.port
    s.signal_and_wait(signal.SIGTERM)
    s2 = start_server(port=port)
    assert connect(s2).try_lock("forgotten").locked


def test_a_drain_with_state_file_answers_waiters_exits_0_and_keeps_the_held_locks(start_server, connect, tmp_path):
    state = tmp_path / "state"
    s = _restart(start_server, state)
    holder, waiter = connect(s), connect(s)
    held = holder.lock("drained", lock_timeout_seconds=600)
    future = waiter.lock_future("drained", timeout=30)
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGTERM)
    with pytest.raises(grpc.RpcError) as failure:
        future.result(timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE, failure.value
    assert s.proc.wait(timeout=10) == 0
    s2 = _restart(start_server, state)
    c = connect(s2)
    assert not c.try_lock("drained").locked, "a drain is not a disconnect: the lock survives"
    assert c.unlock("drained", held.key).unlocked


def test_an_admin_release_answered_before_a_crash_stays_released(start_server, connect, tmp_path, ipc_socket, admin):
    from admin_client import start_with_socket

    state = tmp_path / "state"
    s = start_with_socket(start_server, ipc_socket, "--state_file", state)
    c = connect(s)
    held = [c.lock(f"forced-{i}") for i in range(20)]
    assert all(r.locked for r in held)
    admin_conn = admin("unix:" + ipc_socket)
    for i in range(20):
        assert admin_conn.force_unlock(f"forced-{i}") == 1
    s.signal_and_wait(signal.SIGKILL)

    s2 = _restart(start_server, state)
    other = connect(s2)
    for i in range(20):
        assert other.try_lock(f"forced-{i}").locked, f"forced-{i} came back after its release was answered"
