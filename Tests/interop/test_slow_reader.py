"""A client that floods requests and never reads the answers must not make the
server buffer without bound: the server stops reading from it, its keepalive
PINGs go unanswered, the connection is closed, and everyone else is served."""
from __future__ import annotations

import socket
import struct
import time

from helpers import grpc_frame, pb_string_field

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


def literal(name: bytes, value: bytes) -> bytes:
    """HPACK literal header field without indexing, new name (RFC 7541 §6.2.2)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_flooding_client_that_never_reads_is_cut_off_with_bounded_memory(start_server, connect):
    server = start_server("--keepalive_interval", "1s", "--keepalive_timeout", "1s")
    rss_before = rss_bytes(server.pid)

    headers = b"".join(literal(n, v) for n, v in [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/ldlm.LDLM/TryLock"),
        (b":authority", b"x"), (b"content-type", b"application/grpc"),
    ])
    body = grpc_frame(pb_string_field(1, b"flooded"))
    flooder = socket.create_connection(("127.0.0.1", server.port))
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flooder.settimeout(1.0)
    flooder.sendall(PREFACE + frame(4, 0, 0, b""))

    stream_id, sent, cut_off = 1, 0, False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            flooder.sendall(frame(1, 4, stream_id, headers) + frame(0, 1, stream_id, body))
        except socket.timeout:
            # The server stopped reading; keep the connection silent until it is closed.
            try:
                if flooder.recv(1 << 20) == b"":
                    cut_off = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                cut_off = True
                break
            continue
        except (BrokenPipeError, ConnectionResetError):
            cut_off = True
            break
        stream_id += 2
        sent += 1
        if sent % 2000 == 0:
            # Everyone else is still served while the flood goes on.
            assert connect(server).try_lock(f"bystander-{sent}").locked
    flooder.close()

    assert cut_off, f"server kept the non-reading connection open after {sent} requests"
    assert rss_bytes(server.pid) - rss_before < 64 * 1024 * 1024
    assert connect(server).try_lock("after-flood").locked
    assert "keepalive timeout" in server.stderr_text()
