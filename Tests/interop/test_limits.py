"""Server limits (--max_locks, --max_waiters, --max_connections,
--max_connections_per_ip, --max_concurrent_streams, --max_header_list_bytes)
and the preface / header-block timeout (--preface_timeout): each refusal is
a clear answer to the one client over the limit, logged, and everyone else
goes on being served."""
import socket
import ssl
import time

import grpc
import pytest

from helpers import wait_until
from tls_certs import make_cert_set

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
HEADERS, RST_STREAM, GOAWAY, CONTINUATION = 0x1, 0x3, 0x7, 0x9
END_HEADERS = 0x4
REFUSED_STREAM, ENHANCE_YOUR_CALM, PROTOCOL_ERROR = 0x7, 0xB, 0x1


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def literal(name: bytes, value: bytes) -> bytes:
    """A header field as an HPACK literal without indexing, new name, no Huffman."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path: bytes = b"/ldlm.LDLM/TryLock", extra: bytes = b"") -> bytes:
    # :method POST, :scheme http (static table), then literals.
    return (b"\x83\x86" + literal(b":authority", b"localhost") + literal(b":path", path)
            + literal(b"content-type", b"application/grpc") + literal(b"te", b"trailers") + extra)


def parse_frames(data: bytes):
    """``(type, flags, stream, payload)`` of every whole frame in ``data``."""
    frames, offset = [], 0
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset:offset + 3], "big")
        if offset + 9 + length > len(data):
            break
        stream = int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFFFFFF
        frames.append((data[offset + 3], data[offset + 4], stream, data[offset + 9:offset + 9 + length]))
        offset += 9 + length
    return frames


def read_until(sock, predicate, timeout: float = 5.0):
    """Reads until ``predicate(frames)`` holds or the server closes; returns
    ``(frames, closed)``."""
    sock.settimeout(0.1)
    received, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return parse_frames(received), True
        if not chunk:
            return parse_frames(received), True
        received += chunk
        if predicate(parse_frames(received)):
            return parse_frames(received), False
    return parse_frames(received), False


def goaway_code(frames):
    codes = [int.from_bytes(p[4:8], "big") for kind, _, _, p in frames if kind == GOAWAY]
    return codes[0] if codes else None


def raw_connection(server, source: str = "127.0.0.1", preface: bool = True):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(source, 0))
    if preface:
        sock.sendall(PREFACE + EMPTY_SETTINGS)
    return sock


def is_refused(server, source: str = "127.0.0.1") -> bool:
    """Opens a connection: True if the server answers GOAWAY ENHANCE_YOUR_CALM and closes it."""
    with raw_connection(server, source) as sock:
        frames, closed = read_until(sock, lambda f: goaway_code(f) is not None or any(k == 0x4 and fl & 1 for k, fl, _, _ in f),
                                    timeout=3)
        if goaway_code(frames) == ENHANCE_YOUR_CALM:
            assert read_until(sock, lambda f: False, timeout=3)[1], "a refused connection is closed"
            return True
        return False


def admitted_connection(server, source: str = "127.0.0.1"):
    """A raw connection the server took (it acknowledged our SETTINGS), retried
    for a while: the server frees the slot of a closed connection (such as the
    start_server probe's) only once it has seen the close."""
    deadline = time.monotonic() + 5
    while True:
        sock = raw_connection(server, source)
        frames, closed = read_until(sock, lambda f: goaway_code(f) is not None or any(k == 0x4 and fl & 1 for k, fl, _, _ in f))
        if not closed and goaway_code(frames) is None:
            return sock
        sock.close()
        assert time.monotonic() < deadline, "the server refused a connection within its limits"
        time.sleep(0.1)


def assert_serves(server, connect):
    name = f"alive-{time.monotonic_ns()}"
    assert connect(server).try_lock(name).locked


# --------------------------------------------------------------------------
# lock table limits
# --------------------------------------------------------------------------

def test_a_new_lock_beyond_max_locks_is_resource_exhausted(start_server, connect):
    server = start_server("--max_locks", "2")
    c = connect(server)
    a = c.try_lock("a")
    assert a.locked and c.try_lock("b").locked
    for call in (lambda: c.try_lock("c"), lambda: c.lock("c", wait_timeout_seconds=1)):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.value.details() == 'cannot create lock "c": the server already has 2 locks, its limit (max_locks)'
    other = connect(server)
    assert not other.try_lock("a").locked, "an existing lock is still served"
    assert c.unlock("a", a.key).unlocked
    assert other.try_lock("c").locked, "a freed name makes room"
    assert "refused lock call over a server limit" in server.logs()


def test_queueing_beyond_max_waiters_is_resource_exhausted(start_server, connect):
    server = start_server("--max_waiters", "1")
    holder, waiter, extra = connect(server), connect(server), connect(server)
    held = holder.try_lock("busy")
    queued = waiter.lock_future("busy", timeout=20)
    time.sleep(0.5)  # for the waiter's call to reach the queue
    with pytest.raises(grpc.RpcError) as refused:
        extra.lock("busy", timeout=5)
    error = refused.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == 'cannot wait for lock "busy": 1 calls already wait for it, the server\'s limit (max_waiters)'
    assert not extra.try_lock("busy").locked, "TryLock never queues, so it is not limited"
    assert holder.unlock("busy", held.key).unlocked
    assert queued.result(timeout=10).locked, "the queued call is still granted"


# --------------------------------------------------------------------------
# connection limits
# --------------------------------------------------------------------------

def test_connection_over_max_connections_gets_goaway_and_a_closed_one_frees_its_slot(start_server, connect):
    server = start_server("--max_connections", "2")
    first, second = admitted_connection(server), admitted_connection(server)
    try:
        assert is_refused(server)
        assert "refused connection over a connection limit" in server.logs()
        second.close()
        assert wait_until(lambda: not is_refused(server), timeout=10)[0], "the closed connection's slot was not freed"
    finally:
        first.close()
        second.close()
    # The server frees their slots once it has read their closes, which may
    # come after the next connection's accept.
    assert wait_until(lambda: not is_refused(server), timeout=10)[0]
    assert_serves(server, connect)


def test_max_connections_per_ip_counts_each_address_apart(start_server, connect):
    server = start_server("--max_connections_per_ip", "2")
    socks = [admitted_connection(server), admitted_connection(server)]
    try:
        assert is_refused(server, "127.0.0.1")
        assert not is_refused(server, "127.0.0.2"), "another address has slots of its own"
    finally:
        for sock in socks:
            sock.close()
    assert wait_until(lambda: not is_refused(server, "127.0.0.1"), timeout=10)[0]
    assert_serves(server, connect)


# --------------------------------------------------------------------------
# HTTP/2 limits
# --------------------------------------------------------------------------

def test_max_concurrent_streams_is_announced_and_enforced(start_server, connect):
    server = start_server("--max_concurrent_streams", "2")
    with raw_connection(server) as sock:
        frames, _ = read_until(sock, lambda f: any(k == 0x4 and not fl & 1 for k, fl, _, _ in f))
        settings = next(p for k, fl, _, p in frames if k == 0x4 and not fl & 1)
        entries = {int.from_bytes(settings[i:i + 2], "big"): int.from_bytes(settings[i + 2:i + 6], "big")
                   for i in range(0, len(settings), 6)}
        assert entries[0x3] == 2
        # Three calls left open before our SETTINGS ACK: the third is refused.
        sock.sendall(b"".join(frame(HEADERS, END_HEADERS, s, request_block()) for s in (1, 3, 5)))
        frames, _ = read_until(sock, lambda f: any(k == RST_STREAM for k, _, _, _ in f))
        resets = {s: int.from_bytes(p, "big") for k, _, s, p in frames if k == RST_STREAM}
        assert resets == {5: REFUSED_STREAM}
        # After the ACK, opening one more is a protocol error of this client.
        sock.sendall(SETTINGS_ACK + frame(HEADERS, END_HEADERS, 7, request_block()))
        frames, _ = read_until(sock, lambda f: goaway_code(f) is not None)
        assert goaway_code(frames) == PROTOCOL_ERROR
    c = connect(server)
    futures = [c.stub.TryLock.future(c.try_lock_req(f"s-{i}"), timeout=10) for i in range(6)]
    assert all(f.result(timeout=15).locked for f in futures), "a client that honours the limit is served"


def test_header_list_over_max_header_list_bytes_resets_the_stream(start_server, connect):
    server = start_server("--max_header_list_bytes", "1024")
    with raw_connection(server) as sock:
        sock.sendall(SETTINGS_ACK)
        too_big = request_block(extra=literal(b"x-pad", b"p" * 1200))
        sock.sendall(frame(HEADERS, END_HEADERS, 1, too_big))
        frames, closed = read_until(sock, lambda f: any(k == RST_STREAM for k, _, _, _ in f))
        assert not closed
        assert any(k == RST_STREAM and s == 1 for k, _, s, _ in frames)
        assert goaway_code(frames) is None, "only the stream is refused"
    assert "header list is over the limit (max_header_list_bytes)" in server.logs()
    assert_serves(server, connect)


def test_py_ldlm_with_a_long_password_fits_the_default_header_list(start_server, ldlm_client):
    password = "p" * 4096
    server = start_server("--password", password)
    client = ldlm_client(server.address, password=password)
    lock = client.try_lock("fits")
    assert lock.locked
    lock.unlock()


# --------------------------------------------------------------------------
# stall timeouts
# --------------------------------------------------------------------------

@pytest.mark.parametrize("sent", [b"", PREFACE[:10], PREFACE + EMPTY_SETTINGS[:4]],
                         ids=["nothing", "half-magic", "half-settings"])
def test_connection_without_a_whole_preface_is_closed_after_preface_timeout(start_server, connect, sent):
    server = start_server("--preface_timeout", "700ms")
    started = time.monotonic()
    with raw_connection(server, preface=False) as sock:
        if sent:
            sock.sendall(sent)
        good = connect(server)
        assert good.try_lock("early").locked
        _, closed = read_until(sock, lambda f: False, timeout=5)
        elapsed = time.monotonic() - started
    assert closed, "a connection without its preface stayed open"
    assert 0.6 <= elapsed < 4, elapsed
    assert "did not finish the HTTP/2 connection preface within 700ms (preface_timeout)" in server.logs()
    time.sleep(0.5)
    assert good.try_lock("later").locked, "a connection that sent its preface stays open"


def test_tls_connection_silent_after_its_handshake_is_closed_after_preface_timeout(start_server, tmp_path):
    certs = make_cert_set(tmp_path)
    server = start_server("--tls_cert", certs.server.cert, "--tls_key", certs.server.key,
                          "--preface_timeout", "700ms", "--handshake_timeout", "5s")
    context = ssl.create_default_context(cafile=str(certs.ca.path))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        handshaken = time.monotonic()
        closed = False
        sock.settimeout(5)
        while not closed:
            try:
                closed = sock.recv(65536) == b""
            except (ConnectionResetError, ssl.SSLError):
                closed = True
        elapsed = time.monotonic() - handshaken
    assert 0.6 <= elapsed < 4, elapsed
    assert "did not finish the HTTP/2 connection preface within 700ms (preface_timeout)" in server.logs()


def test_header_block_without_end_headers_is_closed_after_preface_timeout(start_server, connect):
    server = start_server("--preface_timeout", "700ms")
    with raw_connection(server) as sock:
        sock.sendall(SETTINGS_ACK)
        time.sleep(1.0)  # past the preface timeout: the preface stopped it
        block = request_block()
        started = time.monotonic()
        sock.sendall(frame(HEADERS, 0, 1, block[:10]) + frame(CONTINUATION, 0, 1, block[10:20]))
        _, closed = read_until(sock, lambda f: False, timeout=5)
        elapsed = time.monotonic() - started
    assert closed
    assert 0.6 <= elapsed < 4, elapsed
    assert "did not finish a header block within 700ms (preface_timeout)" in server.logs()
    assert_serves(server, connect)


# --------------------------------------------------------------------------
# flags
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["max_locks", "max_waiters", "max_connections", "max_connections_per_ip",
                                  "max_concurrent_streams", "max_header_list_bytes"])
@pytest.mark.parametrize("bad", ["0", "-3", "lots"])
def test_bad_limit_exits_2(run_server_expect_exit, flag, bad):
    code, _, err = run_server_expect_exit(f"--{flag}", bad)
    assert code == 2
    assert f'invalid value "{bad}" for --{flag}: must be a positive integer' in err


def test_limits_from_environment(start_server, connect):
    server = start_server(env={"LDLM_MAX_LOCKS": "1"})
    c = connect(server)
    assert c.try_lock("one").locked
    with pytest.raises(grpc.RpcError) as refused:
        c.try_lock("two")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
