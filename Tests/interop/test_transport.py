"""gRPC / HTTP/2 transport edge cases.  After each bad request the same server
must keep serving (a following TryLock works)."""
import shutil
import socket
import subprocess
import time

import grpc
import pytest

from helpers import grpc_frame, pb_string_field, pb_varint_field, varint


def assert_still_serving(server, connect, conn=None):
    """A TryLock on a fresh connection (and on ``conn`` if given) works."""
    for c in ([conn] if conn is not None else []) + [connect(server)]:
        name = f"alive-{time.monotonic_ns()}"
        r = c.try_lock(name)
        assert r.locked and r.name == name, r


def raw_code(conn, path, payload, timeout=10):
    with pytest.raises(grpc.RpcError) as ei:
        conn.raw(path, payload, timeout=timeout)
    return ei.value.code()


# --------------------------------------------------------------------------
# unknown method
# --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ldlm.LDLM/Nope", "/ldlm.LDLM/lock", "/ldlm.Other/Lock", "/foo.Bar/Baz",
                                  "/ldlm.LDLM/Lock/extra"])
def test_unknown_method_unimplemented(server, connect, path):
    c = connect(server)
    assert raw_code(c, path, b"") == grpc.StatusCode.UNIMPLEMENTED
    assert raw_code(c, path, pb_string_field(1, b"x")) == grpc.StatusCode.UNIMPLEMENTED
    assert_still_serving(server, connect, c)


# --------------------------------------------------------------------------
# undecodable / invalid messages
# --------------------------------------------------------------------------

GARBAGE = [
    pytest.param(b"\xff\xff\xff\xff\xff", id="truncated-varint-tag"),
    pytest.param(b"\x0a\x05ab", id="length-past-end"),
    pytest.param(b"\x0a", id="tag-without-length"),
    pytest.param(b"\x00\x01\x02", id="field-number-0"),
    pytest.param(b"\x0f\x01", id="wire-type-7"),
    pytest.param(b"\x0a\xff\xff\xff\xff\x0f", id="huge-length"),
]


@pytest.mark.parametrize("payload", GARBAGE)
@pytest.mark.parametrize("method", ["Lock", "TryLock", "Unlock", "Renew", "RefreshLock"])
def test_garbage_message_invalid_argument(server, connect, method, payload):
    c = connect(server)
    assert raw_code(c, f"/ldlm.LDLM/{method}", payload) == grpc.StatusCode.INVALID_ARGUMENT
    assert_still_serving(server, connect, c)


@pytest.mark.parametrize("method,payload", [
    ("Lock", b"\x0a\x02\xff\xfe"),
    ("TryLock", b"\x0a\x02\xff\xfe"),
    ("Unlock", b"\x0a\x01a\x12\x02\xff\xfe"),  # invalid key
    ("Unlock", b"\x0a\x02\xc3\x28\x12\x01k"),  # invalid 2-byte sequence in name
    ("Renew", b"\x0a\x01a\x12\x03\xed\xa0\x80" + pb_varint_field(100, 5)),  # UTF-16 surrogate
    ("RefreshLock", b"\x0a\x02\xc0\xaf\x12\x01k" + pb_varint_field(100, 5)),  # overlong encoding
], ids=["Lock-name", "TryLock-name", "Unlock-key", "Unlock-name", "Renew-surrogate", "RefreshLock-overlong"])
def test_invalid_utf8_invalid_argument(server, connect, method, payload):
    c = connect(server)
    assert raw_code(c, f"/ldlm.LDLM/{method}", payload) == grpc.StatusCode.INVALID_ARGUMENT
    assert_still_serving(server, connect, c)


def test_invalid_utf8_acquires_nothing(server, connect):
    c = connect(server)
    # b"\xff\xfe" could collide with some lossy decoding (e.g. U+FFFD U+FFFD)
    assert raw_code(c, "/ldlm.LDLM/TryLock", b"\x0a\x02\xff\xfe") == grpc.StatusCode.INVALID_ARGUMENT
    assert c.try_lock("\ufffd\ufffd").locked


def test_oversized_message_resource_exhausted(server, connect):
    c = connect(server)
    name = b"a" * (5 * 1024 * 1024)
    payload = pb_string_field(1, name)
    assert raw_code(c, "/ldlm.LDLM/TryLock", payload, timeout=30) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server, connect, c)
    assert raw_code(c, "/ldlm.LDLM/Lock", payload, timeout=30) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server, connect, c)


def test_message_just_under_4mib_is_not_a_transport_error(start_server, connect):
    s = start_server("--max_name_bytes", str(8 * 1024 * 1024))
    c = connect(s)
    name = "b" * (4 * 1024 * 1024 - 64)
    r = c.try_lock(name, timeout=30)
    assert r.locked and not r.HasField("error")
    assert_still_serving(s, connect, c)


# --------------------------------------------------------------------------
# content-type (needs the nghttp CLI)
# --------------------------------------------------------------------------

def _nghttp(server, tmp_path, headers):
    exe = shutil.which("nghttp")
    if exe is None:
        pytest.skip("nghttp CLI (package nghttp2-client) not on PATH; cannot send a raw HTTP/2 request")
    body = tmp_path / "body.bin"
    body.write_bytes(grpc_frame(pb_string_field(1, b"ct")))
    args = [exe, "-v", "-t", "5", "-H", ":method: POST"]
    for h in headers:
        args += ["-H", h]
    args += ["-d", str(body), f"http://{server.address}/ldlm.LDLM/TryLock"]
    res = subprocess.run(args, capture_output=True, timeout=15)
    # nghttp prints the response body, a binary protobuf message (its fencing
    # token is not UTF-8), among its frame log.
    return (res.stdout + res.stderr).decode(errors="replace")


def test_content_type_text_plain_is_415(server, connect, tmp_path):
    out = _nghttp(server, tmp_path, ["content-type: text/plain"])
    assert ":status: 415" in out, out[-3000:]
    assert_still_serving(server, connect)


def test_nghttp_grpc_request_sanity(server, connect, tmp_path):
    """Same raw request with a gRPC content-type works (validates the 415 test)."""
    out = _nghttp(server, tmp_path, ["content-type: application/grpc", "te: trailers"])
    assert ":status: 200" in out, out[-3000:]
    assert "grpc-status: 0" in out, out[-3000:]
    # the lock "ct" was taken by nghttp's connection, which has closed by now
    c = connect(server)
    ok = False
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not ok:
        ok = c.try_lock("ct").locked
        time.sleep(0.05)
    assert ok


def test_content_type_with_suffix_is_accepted(server, tmp_path):
    out = _nghttp(server, tmp_path, ["content-type: application/grpc+proto", "te: trailers"])
    assert ":status: 200" in out, out[-3000:]
    assert "grpc-status: 0" in out, out[-3000:]


# --------------------------------------------------------------------------
# raw TCP garbage
# --------------------------------------------------------------------------

def _expect_disconnect(sock, timeout=5.0):
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
        if data == b"":
            return True
    return False


@pytest.mark.parametrize("garbage", [
    pytest.param(b"\x00\x01garbage garbage garbage garbage\r\n\r\n" * 4, id="binary"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id="http1"),
    pytest.param(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", id="bad-preface-tail"),
])
def test_garbage_preface_disconnected(server, connect, garbage):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        try:
            s.sendall(garbage)
        except OSError:
            pass
        assert _expect_disconnect(s), "server did not close a connection that sent garbage instead of the preface"
    assert_still_serving(server, connect)


def test_garbage_after_valid_preface_disconnected(server, connect):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
        assert _expect_disconnect(s)
    assert_still_serving(server, connect)


def test_silent_and_half_open_connections_do_not_block_others(server, connect):
    socks = []
    try:
        for _ in range(5):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        socks[0].sendall(b"PRI * HTTP/2.0\r\n")  # half a preface
        assert_still_serving(server, connect)
    finally:
        for s in socks:
            s.close()
    assert_still_serving(server, connect)


def test_many_waiting_streams_do_not_block_trylock(server, connect):
    holder, waiter = connect(server), connect(server)
    names = [f"hol-{i}" for i in range(30)]
    held = [holder.try_lock(n) for n in names]
    assert all(h.locked for h in held)
    futs = [waiter.lock_future(n, timeout=20) for n in names]
    time.sleep(0.3)
    r = waiter.try_lock("hol-free", timeout=5)
    assert r.locked, "TryLock blocked behind waiting Lock streams on the same connection"
    for n, h in zip(names, held):
        assert holder.unlock(n, h.key).unlocked
    results = [f.result(timeout=10) for f in futs]
    assert all(x.locked for x in results)


def test_connection_flow_control_replenished(start_server, connect):
    """> 16 MiB in each direction on one connection: the server must keep
    granting connection-level WINDOW_UPDATEs and respect the client's."""
    s = start_server("--max_name_bytes", str(4 * 1024 * 1024))
    c = connect(s)
    for i in range(8):  # 8 x 3 MiB requests, and the same echoed back
        name = chr(ord("a") + i) * (3 * 1024 * 1024)
        r = c.try_lock(name, timeout=30)
        assert r.locked and r.name == name
        assert c.unlock(name, r.key, timeout=30).unlocked
    assert_still_serving(s, connect, c)


def test_many_connections(server, connect):
    conns = [connect(server) for _ in range(40)]
    futs = [c.stub.TryLock.future(c.try_lock_req(f"conn-{i}"), timeout=15) for i, c in enumerate(conns)]
    results = [f.result(timeout=20) for f in futs]
    assert all(r.locked for r in results)
    # every lock belongs to its own connection: closing half releases exactly those
    for c in conns[:20]:
        c.close()
    other = connect(server)
    deadline = time.monotonic() + 3
    freed = set()
    while time.monotonic() < deadline and len(freed) < 20:
        for i in range(20):
            if i not in freed and other.try_lock(f"conn-{i}").locked:
                freed.add(i)
        time.sleep(0.05)
    assert len(freed) == 20, f"locks of closed connections still held: {sorted(set(range(20)) - freed)}"
    for i in range(20, 40):
        assert not other.try_lock(f"conn-{i}").locked


def test_compressed_request_gets_a_grpc_status(server, connect):
    """Go parity: grpc-go without a gzip decompressor answers UNIMPLEMENTED; a
    server that decompresses may succeed.  Either way a real gRPC status (not a
    bare RST_STREAM, which grpcio reports as INTERNAL) and nothing acquired
    under a garbled name."""
    c = connect(server)
    name = "gz" * 100
    try:
        r = c.stub.TryLock(c.try_lock_req(name), compression=grpc.Compression.Gzip, timeout=5)
        assert r.locked and r.name == name, r
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED, f"{e.code()}: {e.details()}"
        assert c.try_lock(name).locked
    assert_still_serving(server, connect, c)
