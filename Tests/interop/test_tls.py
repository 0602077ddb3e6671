"""TLS and mutual TLS: py-ldlm and grpcio over TLS, client certificates
accepted or refused at the handshake, password + mTLS together, certificate
reload on SIGHUP, and sessions (disconnect, keepalive) behaving as in
plaintext. Certificates are made at test time (tls_certs.py)."""
from __future__ import annotations

import itertools
import select
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest

from helpers import rpc_code, wait_until
from tls_certs import CA, make_cert_set

_channel_ids = itertools.count()


@pytest.fixture
def certs(tmp_path):
    return make_cert_set(tmp_path)


def tls_flags(certs, mutual=False):
    flags = ["--tls_cert", certs.server.cert, "--tls_key", certs.server.key]
    if mutual:
        flags += ["--client_ca", certs.ca.path, "--client_cert_verify"]
    return flags


class TLSConn:
    """A grpcio channel over TLS with its own HTTP/2 connection."""

    def __init__(self, pb, pbg, address, ca_path, client=None, password=None):
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca_path.read_bytes(),
            private_key=client.key.read_bytes() if client else None,
            certificate_chain=client.cert.read_bytes() if client else None,
        )
        self.pb = pb
        self.channel = grpc.secure_channel(address, creds, options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.primary_user_agent", f"ldlm-tls-{next(_channel_ids)}"),
            ("grpc.enable_retries", 0),
        ])
        self.stub = pbg.LDLMStub(self.channel)
        self.metadata = (("authorization", password),) if password else None

    def try_lock(self, name):
        return self.stub.TryLock(self.pb.TryLockRequest(name=name), timeout=10, metadata=self.metadata)

    def unlock(self, name, key):
        return self.stub.Unlock(self.pb.UnlockRequest(name=name, key=key), timeout=10, metadata=self.metadata)

    def close(self):
        self.channel.close()


@pytest.fixture
def tls_connect(pb, pbg):
    made = []

    def make(server, ca_path, client=None, password=None):
        conn = TLSConn(pb, pbg, server.address, ca_path, client, password)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def refused(conn):
    with pytest.raises(grpc.RpcError) as failure:
        conn.try_lock("refused-probe")
    return failure.value.code()


CHILD = r"""
import sys, time
from ldlm import Client, TLSConfig
address, ca, cert, key, name = sys.argv[1:6]
client = Client(address, retries=0, auto_renew_locks=False,
                tls=TLSConfig(ca_file=ca, cert_file=cert or None, key_file=key or None))
lock = client.lock(name)
print("LOCKED" if lock else "NOTLOCKED", flush=True)
time.sleep(120)
"""


@pytest.fixture
def tls_child():
    children = []

    def spawn(server, certs, name, client=None):
        args = [sys.executable, "-c", CHILD, server.address, str(certs.ca.path),
                str(client.cert) if client else "", str(client.key) if client else "", name]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "TLS child client did not answer within 20 s"
        assert proc.stdout.readline().strip() == "LOCKED", proc.stderr.read()
        return proc

    yield spawn
    for proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def test_py_ldlm_locks_and_unlocks_over_tls(start_server, certs):
    from ldlm import Client, TLSConfig

    server = start_server(*tls_flags(certs))
    client = Client(server.address, retries=0, auto_renew_locks=False, tls=TLSConfig(ca_file=str(certs.ca.path)))
    try:
        lock = client.lock("tls-lock", wait_timeout_seconds=5)
        assert lock.locked
        assert not client.try_lock("tls-lock").locked
        lock.unlock()
        assert client.try_lock("tls-lock").locked
    finally:
        client.close()


def test_grpcio_ssl_channel_credentials_work(start_server, certs, tls_connect):
    server = start_server(*tls_flags(certs))
    conn = tls_connect(server, certs.ca.path)
    response = conn.try_lock("grpcio-tls")
    assert response.locked
    assert conn.unlock("grpcio-tls", response.key).unlocked


def test_mutual_tls_accepts_trusted_client_and_refuses_others(start_server, certs, tls_connect):
    server = start_server(*tls_flags(certs, mutual=True), "--log_level", "debug")

    for bad_client in (None, certs.other_ca_client, certs.expired_client):
        assert refused(tls_connect(server, certs.ca.path, bad_client)) == grpc.StatusCode.UNAVAILABLE
        # Each refusal leaves the server serving the next, trusted, client.
        trusted = tls_connect(server, certs.ca.path, certs.client)
        response = trusted.try_lock("mtls")
        assert response.locked
        trusted.unlock("mtls", response.key)

    logs = server.stderr_text()
    assert "refused TLS handshake" in logs
    assert "CN=client-one" in logs
    assert "BEGIN" not in logs and "PRIVATE" not in logs


def test_py_ldlm_with_client_certificate(start_server, certs):
    from ldlm import Client, TLSConfig

    server = start_server(*tls_flags(certs, mutual=True))
    client = Client(server.address, retries=0, auto_renew_locks=False, tls=TLSConfig(
        ca_file=str(certs.ca.path), cert_file=str(certs.client.cert), key_file=str(certs.client.key)))
    try:
        lock = client.try_lock("py-mtls")
        assert lock.locked
        lock.unlock()
    finally:
        client.close()


def test_password_and_mutual_tls_must_both_pass(start_server, certs, tls_connect):
    server = start_server(*tls_flags(certs, mutual=True), "--password", "s3cret")
    with pytest.raises(grpc.RpcError) as failure:
        tls_connect(server, certs.ca.path, certs.client, password="wrong").try_lock("both")
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused(tls_connect(server, certs.ca.path, certs.other_ca_client, password="s3cret")) == grpc.StatusCode.UNAVAILABLE
    assert tls_connect(server, certs.ca.path, certs.client, password="s3cret").try_lock("both").locked
    assert "s3cret" not in server.stderr_text()


def test_wrong_protocol_clients_fail_alone(start_server, certs, tls_connect, connect):
    tls_server = start_server(*tls_flags(certs))
    plain_server = start_server()

    assert rpc_code(connect(tls_server).try_lock, "x") == grpc.StatusCode.UNAVAILABLE
    assert refused(tls_connect(plain_server, certs.ca.path)) == grpc.StatusCode.UNAVAILABLE
    assert tls_connect(tls_server, certs.ca.path).try_lock("after").locked
    assert connect(plain_server).try_lock("after").locked


def test_stalled_handshake_is_closed_while_others_are_served(start_server, certs, tls_connect):
    server = start_server(*tls_flags(certs), "--handshake_timeout", "1s")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stalled:
        started = time.monotonic()
        assert tls_connect(server, certs.ca.path).try_lock("while-stalled").locked
        assert stalled.recv(1) == b"", "the server should close a connection that never handshakes"
        assert time.monotonic() - started < 8


def test_bad_tls_files_are_a_one_line_startup_error(run_server_expect_exit, certs, tmp_path):
    mismatched = run_server_expect_exit(
        "--listen_address", "127.0.0.1:0", "--tls_cert", certs.server.cert, "--tls_key", certs.client.key)
    missing = run_server_expect_exit(
        "--listen_address", "127.0.0.1:0", "--tls_cert", tmp_path / "nope.crt", "--tls_key", certs.server.key)
    half = run_server_expect_exit("--listen_address", "127.0.0.1:0", "--tls_cert", certs.server.cert)
    for code, _, stderr in (mismatched, missing, half):
        assert code == 2
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert "PRIVATE KEY" not in stderr


def test_sighup_reloads_certificate_for_new_connections_only(start_server, certs, tls_connect, tmp_path):
    server = start_server(*tls_flags(certs))
    existing = tls_connect(server, certs.ca.path)
    held = existing.try_lock("kept-across-reload")
    assert held.locked

    rotated_ca = CA(tmp_path, "rotated-ca")
    rotated = rotated_ca.issue("rotated-server", "rotated", server=True, dns=["localhost"], ips=["127.0.0.1"])
    certs.server.cert.write_bytes(rotated.cert.read_bytes())
    certs.server.key.write_bytes(rotated.key.read_bytes())
    server.proc.send_signal(signal.SIGHUP)
    reloaded, _ = wait_until(lambda: "reloaded TLS certificate" in server.stderr_text(), timeout=5)
    assert reloaded, server.stderr_text()

    assert tls_connect(server, rotated_ca.path).try_lock("after-reload").locked
    assert refused(tls_connect(server, certs.ca.path)) == grpc.StatusCode.UNAVAILABLE
    # The existing connection, its session and its lock are untouched.
    assert not tls_connect(server, rotated_ca.path).try_lock("kept-across-reload").locked
    assert existing.unlock("kept-across-reload", held.key).unlocked


def test_killed_tls_client_releases_its_locks(start_server, certs, tls_child, tls_connect):
    server = start_server(*tls_flags(certs))
    child = tls_child(server, certs, "tls-held")
    probe = tls_connect(server, certs.ca.path)
    assert not probe.try_lock("tls-held").locked
    child.kill()
    released, elapsed = wait_until(lambda: probe.try_lock("tls-held").locked, timeout=2.0)
    assert released, f"lock still held {elapsed:.2f}s after the TLS client was killed"


def test_stopped_tls_client_is_released_by_keepalive(start_server, certs, tls_child, tls_connect):
    server = start_server(*tls_flags(certs, mutual=True), "--keepalive_interval", "1s", "--keepalive_timeout", "1s")
    child = tls_child(server, certs, "tls-frozen", client=certs.client)
    probe = tls_connect(server, certs.ca.path, certs.client)
    assert not probe.try_lock("tls-frozen").locked
    child.send_signal(signal.SIGSTOP)
    released, elapsed = wait_until(lambda: probe.try_lock("tls-frozen").locked, timeout=8.0)
    assert released, f"lock still held {elapsed:.2f}s after the TLS client stopped answering PINGs"
    assert "keepalive timeout" in server.stderr_text()
