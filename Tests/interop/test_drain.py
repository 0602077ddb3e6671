"""Graceful drain on SIGTERM/SIGINT: stop accepting, GOAWAY to every
connection, waiting Lock calls answered UNAVAILABLE at once, exit 0 within
--shutdown_timeout."""
from __future__ import annotations

import signal
import socket
import time

import grpc
import pytest

from helpers import wait_until


def _frames(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(0.2)
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data


def _has_goaway(data: bytes) -> bool:
    offset = 0
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset:offset + 3], "big")
        if data[offset + 3] == 0x7:
            return True
        offset += 9 + length
    return False


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_waiting_lock_is_answered_unavailable_at_once_and_server_exits_0(start_server, connect, sig):
    s = start_server()
    holder, waiter = connect(s), connect(s)
    assert holder.lock("drain-wait").locked
    future = waiter.lock_future("drain-wait", timeout=30)
    time.sleep(0.3)
    t0 = time.monotonic()
    s.proc.send_signal(sig)
    with pytest.raises(grpc.RpcError) as failure:
        future.result(timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE, failure.value
    assert time.monotonic() - t0 < 2, "answered at once, not when the wait ended"
    assert s.proc.wait(timeout=5) == 0


def _open_call(host: str, port: int) -> socket.socket:
    """A connection with a call whose body never comes, which keeps a drain going."""
    stuck = socket.create_connection((host, port))
    headers = (bytes([0x83, 0x86, 0x41, 0x09]) + b"localhost" + bytes([0x44, 0x0f]) + b"/ldlm.LDLM/Lock"
               + bytes([0x5f, 0x10]) + b"application/grpc")
    stuck.sendall(PREFACE + len(headers).to_bytes(3, "big") + b"\x01\x04\x00\x00\x00\x01" + headers)
    _frames(stuck, 0.3)
    return stuck


def test_every_connection_gets_a_goaway_and_new_connections_are_refused_while_draining(start_server):
    s = start_server("--shutdown_timeout", "3s")
    host, port = s.address.rsplit(":", 1)
    stuck = _open_call(host, int(port))
    s.proc.send_signal(signal.SIGTERM)
    assert _has_goaway(_frames(stuck, 1)), "no GOAWAY on an open connection"
    assert s.proc.poll() is None, "still draining: the open call holds it"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=1)
    assert s.proc.wait(timeout=6) == 0


def test_shutdown_timeout_bounds_a_drain_that_cannot_finish(start_server):
    """A client that never answers (a half-sent request keeps its stream open)
    is closed once --shutdown_timeout passes, and the server still exits 0."""
    s = start_server("--shutdown_timeout", "1s")
    host, port = s.address.rsplit(":", 1)
    stuck = _open_call(host, int(port))
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=5) == 0
    elapsed = time.monotonic() - t0
    assert 0.8 < elapsed < 3, f"drain took {elapsed:.2f}s with --shutdown_timeout 1s"
    closed, _ = wait_until(lambda: stuck.recv(65536) == b"", timeout=2)
    assert closed


def test_locks_held_at_shutdown_are_released_and_the_port_is_free_for_a_restart(start_server, connect):
    s = start_server()
    assert connect(s).try_lock("drain-held").locked
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=5) == 0
    assert "released_locks=1" in s.stderr_text(), "the drain ended the holder's session like a disconnect"
    again = start_server(port=int(s.address.rsplit(":", 1)[1]))
    assert connect(again).try_lock("drain-held").locked
