"""Password authentication: metadata ("authorization", password) on every RPC."""
import socket
import time

import grpc
import pytest

from helpers import rpc_code

PW = "s3cret-pw"


def all_rpcs(conn, metadata):
    """One call of each RPC with the given metadata; returns {rpc: status}."""
    return {
        "Lock": rpc_code(conn.lock, "auth-x", wait_timeout_seconds=1, metadata=metadata),
        "TryLock": rpc_code(conn.try_lock, "auth-x", metadata=metadata),
        "Unlock": rpc_code(conn.unlock, "auth-x", "k", metadata=metadata),
        "Renew": rpc_code(conn.renew, "auth-x", "k", 10, metadata=metadata),
        "RefreshLock": rpc_code(conn.refresh, "auth-x", "k", 10, metadata=metadata),
    }


def assert_accepts(server, connect, ldlm_client, password):
    c = ldlm_client(server, password=password)
    lk = c.try_lock("auth-ok")
    assert lk, "authenticated TryLock failed"
    c.renew("auth-ok", lk.key, 30)
    lk.unlock()
    conn = connect(server, password=password)
    r = conn.lock("auth-ok2", wait_timeout_seconds=1)
    assert r.locked
    assert conn.refresh("auth-ok2", r.key, 30).locked
    assert conn.unlock("auth-ok2", r.key).unlocked


def assert_refuses(server, connect, password):
    md = None if password is None else (("authorization", password),)
    conn = connect(server)
    codes = all_rpcs(conn, md if md is not None else ())
    bad = {k: v for k, v in codes.items() if v != grpc.StatusCode.UNAUTHENTICATED}
    assert not bad, f"expected UNAUTHENTICATED for password={password!r}, got {bad}"


@pytest.fixture
def pw_server(start_server):
    return start_server("--password", PW)


def test_password_flag_accepts_correct(pw_server, connect, ldlm_client):
    assert_accepts(pw_server, connect, ldlm_client, PW)


@pytest.mark.parametrize("bad", [None, "", "wrong", PW + "x", PW[:-1], PW.upper(), "Bearer " + PW])
def test_password_flag_refuses(pw_server, connect, bad):
    assert_refuses(pw_server, connect, bad)


def test_refused_py_ldlm_raises_unauthenticated(pw_server, ldlm_client):
    c = ldlm_client(pw_server)
    with pytest.raises(grpc.RpcError) as ei:
        c.try_lock("auth-py")
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
    c2 = ldlm_client(pw_server, password="nope")
    with pytest.raises(grpc.RpcError) as ei:
        c2.lock("auth-py", wait_timeout_seconds=1)
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_refused_rpcs_change_no_state(pw_server, connect):
    good = connect(pw_server, password=PW)
    bad = connect(pw_server)
    # refused TryLock/Lock acquire nothing
    assert rpc_code(bad.try_lock, "auth-state") == grpc.StatusCode.UNAUTHENTICATED
    assert rpc_code(bad.lock, "auth-state2", wait_timeout_seconds=1) == grpc.StatusCode.UNAUTHENTICATED
    h = good.try_lock("auth-state")
    assert h.locked, "a refused TryLock acquired the lock"
    assert good.try_lock("auth-state2").locked, "a refused Lock acquired the lock"
    # refused Unlock with the right key releases nothing
    assert rpc_code(bad.unlock, "auth-state", h.key) == grpc.StatusCode.UNAUTHENTICATED
    assert not good.try_lock("auth-state").locked, "a refused Unlock released the lock"
    # refused Lock on a busy lock is not queued (else it would get the lock next)
    assert rpc_code(bad.lock, "auth-state", timeout=2) == grpc.StatusCode.UNAUTHENTICATED
    assert good.unlock("auth-state", h.key).unlocked
    assert good.try_lock("auth-state").locked


def test_password_equals_form(start_server, connect, ldlm_client):
    s = start_server(f"--password={PW}")
    assert_accepts(s, connect, ldlm_client, PW)
    assert_refuses(s, connect, None)


def test_password_file_strips_trailing_newline(start_server, connect, ldlm_client, tmp_path):
    f = tmp_path / "pw.txt"
    f.write_text("file-pw\n")
    s = start_server("--password_file", str(f))
    assert_accepts(s, connect, ldlm_client, "file-pw")
    assert_refuses(s, connect, None)
    assert_refuses(s, connect, "file-pw\\n".strip() + "x")


def test_password_file_without_newline(start_server, connect, ldlm_client, tmp_path):
    f = tmp_path / "pw.txt"
    f.write_text("file-pw2")
    s = start_server("--password_file", str(f))
    assert_accepts(s, connect, ldlm_client, "file-pw2")
    assert_refuses(s, connect, "wrong")


def test_password_env(start_server, connect, ldlm_client):
    s = start_server(env={"LDLM_PASSWORD": "env-pw"})
    assert_accepts(s, connect, ldlm_client, "env-pw")
    assert_refuses(s, connect, None)
    assert_refuses(s, connect, "other")


def test_password_file_env(start_server, connect, ldlm_client, tmp_path):
    f = tmp_path / "pw.txt"
    f.write_text("envfile-pw\n")
    s = start_server(env={"LDLM_PASSWORD_FILE": str(f)})
    assert_accepts(s, connect, ldlm_client, "envfile-pw")
    assert_refuses(s, connect, None)


def test_no_password_configured_accepts_anything(server, connect, ldlm_client):
    assert_accepts(server, connect, ldlm_client, None)
    assert_accepts(server, connect, ldlm_client, "whatever")


def test_unknown_method_with_password_is_refused_or_unimplemented(pw_server, connect):
    conn = connect(pw_server)
    with pytest.raises(grpc.RpcError) as ei:
        conn.raw("/ldlm.LDLM/Nope", b"")
    assert ei.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED)



def _frames_of(data: bytes):
    offset = 0
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset:offset + 3], "big")
        yield data[offset + 3], int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFFFFFF
        offset += 9 + length


def test_a_large_request_without_the_password_is_refused_before_it_ends(pw_server, connect):
    """The password is checked once a body grows large, not only when it has
    all arrived: the server answers while the body is still coming, so a
    caller without the password cannot make it buffer megabytes."""
    host, port = pw_server.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(0.2)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    headers = (bytes([0x83, 0x86, 0x41, 0x09]) + b"localhost" + bytes([0x44, 0x0f]) + b"/ldlm.LDLM/Lock"
               + bytes([0x5f, 0x10]) + b"application/grpc"
               + bytes([0x00, 0x0d]) + b"authorization" + bytes([0x05]) + b"wrong")
    sock.sendall(preface + len(headers).to_bytes(3, "big") + b"\x01\x04\x00\x00\x00\x01" + headers)
    body = b"\x00" + (1_000_000).to_bytes(4, "big") + b"n" * 49_995  # 50 KB of a 1 MB message
    for start in range(0, len(body), 16_384):
        chunk = body[start:start + 16_384]
        sock.sendall(len(chunk).to_bytes(3, "big") + b"\x00\x00\x00\x00\x00\x01" + chunk)
    received = b""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        received += chunk
        if any(kind == 0x1 and stream == 1 for kind, stream in _frames_of(received)):
            break
    assert any(kind == 0x1 and stream == 1 for kind, stream in _frames_of(received)), \
        "no answer while the body was still coming"
    sock.close()
    assert connect(pw_server, password=PW).try_lock("after-large-refusal").locked
