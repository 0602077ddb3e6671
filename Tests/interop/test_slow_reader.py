"""A client that floods requests and never reads the answers must not make the
server buffer without bound: the server stops reading from it, its keepalive
PINGs go unanswered, the connection is closed, and everyone else is served.
(A peer that reads but keeps its flow-control window at 0 is in
test_hostile.py.)"""
from __future__ import annotations

import socket
import time

from helpers import (
    DATA,
    END_HEADERS,
    END_STREAM,
    H2_PREFACE,
    HEADERS,
    SETTINGS,
    grpc_frame,
    grpc_request_block,
    h2_frame,
    pb_string_field,
    rss_bytes,
)


def test_flooding_client_that_never_reads_is_cut_off_with_bounded_memory(start_server, connect):
    server = start_server("--keepalive_interval", "1s", "--keepalive_timeout", "1s")
    rss_before = rss_bytes(server.pid)

    headers = grpc_request_block()
    body = grpc_frame(pb_string_field(1, b"flooded"))
    flooder = socket.create_connection(("127.0.0.1", server.port))
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flooder.settimeout(1.0)
    flooder.sendall(H2_PREFACE + h2_frame(SETTINGS, 0, 0))

    stream_id, sent, cut_off = 1, 0, False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            flooder.sendall(h2_frame(HEADERS, END_HEADERS, stream_id, headers) + h2_frame(DATA, END_STREAM, stream_id, body))
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
