"""Who may call the admin service over the network: the admin password (never
the lock password), or a client certificate listed in --admin_identities;
with neither configured, nobody."""
from __future__ import annotations

import grpc
import pytest

from helpers import rpc_code
from tls_certs import make_cert_set


# --------------------------------------------------------------------------
# who may call it over the network
# --------------------------------------------------------------------------

def test_admin_over_tcp_needs_the_admin_password_not_the_lock_password(start_server, admin, connect):
    server = start_server("--password", "lockpw", "--admin_password", "adminpw")
    for password in (None, "lockpw", "adminpw-"):
        assert rpc_code(admin(server.address, password=password).list_locks) == grpc.StatusCode.UNAUTHENTICATED, password
    assert list(admin(server.address, password="adminpw").list_locks()) == []
    assert connect(server, password="lockpw").try_lock("tcp-lock").locked
    assert rpc_code(connect(server, password="adminpw").try_lock, "x") == grpc.StatusCode.UNAUTHENTICATED


def test_admin_over_tcp_is_off_without_admin_access_configured(start_server, admin):
    server = start_server("--password", "lockpw")
    for password in (None, "lockpw"):
        with pytest.raises(grpc.RpcError) as refused:
            admin(server.address, password=password).list_sessions()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, password
        assert "--ipc_socket_file" in refused.value.details()


def test_mtls_identity_listed_is_allowed(start_server, admin, tmp_path):
    certs = make_cert_set(tmp_path)
    ops = certs.ca.issue("ops", "ops-1", dns=["ops.example"])
    server = start_server(
        "--tls_cert", certs.server.cert, "--tls_key", certs.server.key, "--client_ca", certs.ca.path,
        "--admin_identities", "client-one,DNS:ops.example",
    )

    def as_client(issued):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certs.ca.path.read_bytes(),
            private_key=issued.key.read_bytes(),
            certificate_chain=issued.cert.read_bytes(),
        )
        return admin(server.address, credentials=credentials)

    assert list(as_client(certs.client).list_locks()) == []
    sessions = as_client(ops).list_sessions()
    assert any(s.client_identity == "CN=ops-1 SAN=DNS:ops.example" for s in sessions), sessions
    unlisted = certs.ca.issue("worker", "worker-2")
    with pytest.raises(grpc.RpcError) as refused:
        as_client(unlisted).list_locks()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "CN=worker-2" in refused.value.details()
