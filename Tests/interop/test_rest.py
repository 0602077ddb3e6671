"""The REST gateway (go-ldlm's `--rest_listen_address`), driven with
`requests` as a go-ldlm REST client would drive it: sessions by cookie, the
JSON bodies and errors, HTTP basic auth, TLS, and locks shared with gRPC
clients."""
from __future__ import annotations

import signal
import socket
import time

import pytest
import requests

from helpers import free_port
from tls_certs import make_cert_set

TIMEOUT = 10


def wait_for_rest(port: int, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def start_rest(start_server):
    """``start_rest(*flags, scheme="http") -> (server, base_url)``: a server
    with the REST gateway on a free port."""

    def start(*flags, scheme="http", short_flag=False):
        port = free_port()
        flag = "-r" if short_flag else "--rest_listen_address"
        server = start_server(flag, f"127.0.0.1:{port}", *flags)
        wait_for_rest(port)
        return server, f"{scheme}://127.0.0.1:{port}"

    return start


def http_client(**settings) -> requests.Session:
    """A `requests` session with exactly these settings (`verify`, `cert`,
    `auth`): not the environment's, as REQUESTS_CA_BUNDLE would override
    `verify` and a proxy variable would route 127.0.0.1 elsewhere."""
    client = requests.Session()
    client.trust_env = False
    for name, value in settings.items():
        setattr(client, name, value)
    return client


def new_session(base: str, **settings) -> requests.Session:
    """A client that has opened a REST session (its cookie is in the jar)."""
    client = http_client(**settings)
    r = client.post(f"{base}/session", timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.json()["session_id"] == client.cookies["ldlm-session"]
    return client


def rest_lock(client: requests.Session, base: str, name: str, **fields) -> dict:
    r = client.post(f"{base}/v1/lock", json={"name": name, **fields}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def test_full_flow_session_lock_renew_unlock_delete(start_rest):
    _, base = start_rest(short_flag=True)
    client = new_session(base)

    locked = rest_lock(client, base, "report", lock_timeout_seconds=120)
    assert locked["locked"] is True and locked["name"] == "report", locked
    key, token = locked["key"], locked["fencingToken"]
    assert key and int(token) > 0

    for path in ("/v1/renew", "/v1/refreshlock"):
        r = client.post(f"{base}{path}", json={"name": "report", "key": key, "lock_timeout_seconds": 60}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.json() == {"locked": True, "name": "report", "key": key, "fencingToken": token}

    r = client.post(f"{base}/v1/unlock", json={"name": "report", "key": key}, timeout=TIMEOUT)
    assert r.json() == {"unlocked": True, "name": "report"}
    r = client.post(f"{base}/v1/unlock", json={"name": "report", "key": key}, timeout=TIMEOUT)
    assert r.json()["unlocked"] is False and r.json()["error"]["code"] == "LockDoesNotExist", r.json()

    r = client.delete(f"{base}/session", timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"session_id": ""}
    r = client.post(f"{base}/v1/lock", json={"name": "report"}, timeout=TIMEOUT)
    assert r.status_code == 401
    assert r.json() == {"error": "session cookie invalid or expired. create a new session at /session"}


def test_idle_session_expires_and_another_process_takes_its_lock(start_rest, connect, spawn_child):
    server, base = start_rest("--rest_session_timeout", "1s")
    client = new_session(base)
    assert rest_lock(client, base, "expiring")["locked"] is True
    assert connect(server).try_lock("expiring").locked is False, "held by the REST session"

    started = time.monotonic()
    child = spawn_child(server, "lock:expiring")
    child.expect("LOCKED expiring", timeout=10)
    assert time.monotonic() - started < 5, "released about a second after the session's last use"
    r = client.post(f"{base}/v1/lock", json={"name": "expiring"}, timeout=TIMEOUT)
    assert r.status_code == 401, "the expired session is gone"


def test_rest_and_grpc_clients_exclude_each_other(start_rest, connect):
    server, base = start_rest()
    grpc_client = connect(server)
    client = new_session(base)

    assert grpc_client.try_lock("by-grpc").locked is True
    assert rest_lock(client, base, "by-grpc") == {"locked": False, "name": "by-grpc", "key": "", "fencingToken": "0"}

    held = rest_lock(client, base, "by-rest")
    assert held["locked"] is True
    assert grpc_client.try_lock("by-rest").locked is False
    client.post(f"{base}/v1/unlock", json={"name": "by-rest", "key": held["key"]}, timeout=TIMEOUT)
    assert grpc_client.try_lock("by-rest").locked is True


def test_basic_auth_with_the_server_password(start_rest, connect):
    server, base = start_rest("--password", "hunter2")
    for auth in (None, ("", "wrong"), ("hunter2", "")):
        r = http_client(auth=auth).post(f"{base}/session", timeout=TIMEOUT)
        assert r.status_code == 401, (auth, r.text)
        assert r.headers["WWW-Authenticate"] == 'Basic realm="Restricted"'

    client = new_session(base, auth=("anyone", "hunter2"))
    assert rest_lock(client, base, "guarded")["locked"] is True
    assert connect(server, password="hunter2").try_lock("guarded").locked is False


def test_tls_with_the_servers_certificate_and_client_ca(start_rest, tmp_path):
    certs = make_cert_set(tmp_path)
    tls = ["--tls_cert", certs.server.cert, "--tls_key", certs.server.key]
    _, base = start_rest(*tls, scheme="https")
    client = new_session(base, verify=str(certs.ca.path))
    assert rest_lock(client, base, "over-tls")["locked"] is True
    with pytest.raises(requests.exceptions.ConnectionError):
        http_client().post(base.replace("https", "http") + "/session", timeout=TIMEOUT)

    _, mutual = start_rest(*tls, "--client_ca", certs.ca.path, scheme="https")
    with pytest.raises(requests.exceptions.ConnectionError):
        http_client(verify=str(certs.ca.path)).post(f"{mutual}/session", timeout=TIMEOUT)
    client = new_session(mutual, verify=str(certs.ca.path), cert=(str(certs.client.cert), str(certs.client.key)))
    assert rest_lock(client, mutual, "over-mtls")["locked"] is True


def test_bad_requests_get_go_ldlm_shaped_errors_and_others_are_served(start_rest, connect):
    server, base = start_rest()
    client = new_session(base)
    r = client.post(f"{base}/v1/lock", data=b'{"name": ', headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 400
    assert r.json() == {"code": 3, "message": "request body is not valid JSON", "details": []}
    r = client.post(f"{base}/v1/lock", json={"name": "x", "size": "big"}, timeout=TIMEOUT)
    assert r.status_code == 400 and r.json()["code"] == 3
    r = client.post(f"{base}/v1/nowhere", json={}, timeout=TIMEOUT)
    assert r.status_code == 404 and r.json() == {"code": 5, "message": "Not Found", "details": []}
    r = client.post(f"{base}/v1/lock", data=b"x" * 100_000, timeout=TIMEOUT)
    assert r.status_code == 413

    assert rest_lock(new_session(base), base, "after-errors")["locked"] is True
    assert rest_lock(client, base, "same-session")["locked"] is True
    assert connect(server).try_lock("grpc-after-errors").locked is True


def test_sessions_beyond_max_rest_sessions_are_refused_429(start_rest):
    _, base = start_rest("--max_rest_sessions", "2")
    first = new_session(base)
    new_session(base)
    r = http_client().post(f"{base}/session", timeout=TIMEOUT)
    assert r.status_code == 429 and r.json()["code"] == 8, r.text
    assert first.delete(f"{base}/session", timeout=TIMEOUT).status_code == 200
    new_session(base)


def test_a_rest_grant_is_in_the_state_file_when_answered(start_rest, start_server, connect, tmp_path):
    state = tmp_path / "state"
    server, base = start_rest("--state_file", state)
    assert rest_lock(new_session(base), base, "durable")["locked"] is True
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)

    restarted = start_server("--state_file", state)
    assert connect(restarted).try_lock("durable").locked is False, "the answered grant survived the crash"


def test_drain_ends_rest_sessions_and_exits_0(start_rest):
    server, base = start_rest()
    client = new_session(base)
    assert rest_lock(client, base, "held")["locked"] is True
    assert server.signal_and_wait(signal.SIGTERM, timeout=10) == 0
    assert "REST session ended" in server.stderr_text(), server.logs()


def test_admin_lists_and_ends_rest_sessions(start_rest, admin, ipc_socket, connect):
    server, base = start_rest("--ipc_socket_file", ipc_socket)
    client = new_session(base)
    assert rest_lock(client, base, "admin-ended")["locked"] is True
    operator = admin(f"unix:{ipc_socket}")
    # The admin's own connection is a session too; the REST one holds the lock.
    (session,) = [s for s in operator.list_sessions() if s.locks_held == 1]
    assert session.remote_address.startswith("127.0.0.1:"), session

    assert operator.end_session(session.id) == 1
    assert connect(server).try_lock("admin-ended").locked is True
    r = client.post(f"{base}/v1/lock", json={"name": "x"}, timeout=TIMEOUT)
    assert r.status_code == 401


def test_a_rest_address_in_use_stops_the_start_with_status_2(run_server_expect_exit):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, _, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{free_port()}",
                                            "--rest_listen_address", f"127.0.0.1:{port}")
    assert rc == 2, err
    assert f"cannot listen on 127.0.0.1:{port}" in err, err
