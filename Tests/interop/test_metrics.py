"""The ``--metrics_listen_address`` port as Prometheus and Kubernetes use it:
``/metrics`` parsed by the official ``prometheus_client`` text parser while
py-ldlm clients (in this process and in child processes) take and release
locks, and the ``/healthz`` and ``/readyz`` probes through a drain."""
from __future__ import annotations

import http.client
import re
import shutil
import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from ldlm import exceptions as ldlm_errors
from prometheus_client.parser import text_string_to_metric_families

from helpers import END_HEADERS, HEADERS, RawH2, free_port, grpc_request_block, h2_frame, wait_until

LOCK = {"service": "ldlm.LDLM"}


def http_get(port: int, path: str, method: str = "GET"):
    """``(status, headers, body)`` of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


class Scrape:
    """One ``/metrics`` answer, parsed: samples by name and label set."""

    def __init__(self, port: int):
        status, headers, body = http_get(port, "/metrics")
        assert status == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        self.families = {f.name: f for f in text_string_to_metric_families(body)}
        self.samples = {}
        for family in self.families.values():
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def rpcs(self, method: str, outcome: str) -> float:
        return self.value("ldlm_rpcs_total", method=method, outcome=outcome, **LOCK) or 0


@pytest.fixture
def metrics_server(start_server):
    """``metrics_server(*flags) -> (server, metrics_port)`` once both ports answer."""

    def start(*flags, env=None):
        port = free_port()
        s = start_server("--metrics_listen_address", f"127.0.0.1:{port}", *flags, env=env)
        ready, _ = wait_until(lambda: _answers(port), timeout=10)
        assert ready, f"metrics port {port} never answered\n{s.logs(tail=3000)}"
        return s, port

    return start


def _answers(port: int) -> bool:
    try:
        return http_get(port, "/healthz")[0] == 200
    except OSError:
        return False


def test_series_follow_locks_taken_released_expired_and_dropped(metrics_server, ldlm_client, connect, spawn_child):
    s, port = metrics_server()
    before = Scrape(port)
    assert before.value("ldlm_locks_held") == 0
    assert before.value("ldlm_sessions") == 0
    assert "ldlm_rpcs" not in before.families, "a series appears with its first call"

    client = ldlm_client(s)
    lock = client.lock("metrics-a")
    assert lock
    held = Scrape(port)
    assert held.value("ldlm_locks_held") == 1
    assert held.value("ldlm_lock_holders") == 1
    assert held.value("ldlm_sessions") == 1
    assert held.value("ldlm_connections", transport="plaintext") == 1
    assert held.rpcs("Lock", "OK") == 1
    assert held.families["ldlm_rpcs"].type == "counter"
    assert held.families["ldlm_rpc_duration_seconds"].type == "histogram"
    assert held.value("ldlm_rpc_duration_seconds_count", method="Lock", **LOCK) == 1

    client.unlock("metrics-a", lock.key)
    with pytest.raises(ldlm_errors.LockDoesNotExistError):
        client.unlock("metrics-a", lock.key)
    released = Scrape(port)
    assert released.value("ldlm_locks_held") == 0
    assert released.rpcs("Unlock", "OK") == 1
    assert released.rpcs("Unlock", "LockDoesNotExist") == 1

    # A waiter shows, and leaves the gauge when a lease hands it the lock.
    conn = connect(s)
    conn.try_lock("metrics-lease", lock_timeout_seconds=1)
    child = spawn_child(s, "wait:metrics-lease")
    child.expect("WAITING")
    waiting, _ = wait_until(lambda: Scrape(port).value("ldlm_lock_waiters") == 1, timeout=5)
    assert waiting, "the child's Lock never showed as waiting"
    child.expect("LOCKED", timeout=10)
    after_lease = Scrape(port)
    assert after_lease.value("ldlm_lease_expiries_total") == 1
    assert after_lease.value("ldlm_lock_waiters") == 0
    assert after_lease.rpcs("Lock", "OK") == 2

    # The child dies holding the lock: its connection's close releases it.
    child.kill()
    dropped, _ = wait_until(lambda: Scrape(port).value("ldlm_locks_released_on_disconnect_total") == 1, timeout=5)
    assert dropped, "the dead child's lock was not released on disconnect"
    final = Scrape(port)
    assert final.value("ldlm_locks_held") == 0
    assert final.value("ldlm_sessions") == 2, "this process's two connections"


def test_refusals_are_counted(metrics_server, connect):
    s, port = metrics_server("--password", "s3cret", "--max_locks", "1")
    with pytest.raises(grpc.RpcError) as refused:
        connect(s).try_lock("metrics-auth")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    good = connect(s, password="s3cret")
    good.try_lock("metrics-one")
    with pytest.raises(grpc.RpcError) as over:
        good.try_lock("metrics-two")
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    scraped = Scrape(port)
    assert scraped.value("ldlm_auth_failures_total", credential="password") == 1
    assert scraped.value("ldlm_auth_failures_total", credential="admin") == 0
    assert scraped.rpcs("TryLock", "UNAUTHENTICATED") == 1
    assert scraped.value("ldlm_limit_refusals_total", limit="max_locks") == 1
    assert scraped.rpcs("TryLock", "RESOURCE_EXHAUSTED") == 1


def test_state_file_syncs_are_timed(metrics_server, ldlm_client, tmp_path):
    s, port = metrics_server("--state_file", tmp_path / "ldlm.state")
    client = ldlm_client(s)
    lock = client.lock("metrics-durable")
    assert lock
    client.unlock("metrics-durable", lock.key)
    scraped = Scrape(port)
    assert scraped.value("ldlm_state_file_sync_duration_seconds_count") >= 1
    assert scraped.value("ldlm_state_file_sync_batch_records_sum") == 2, "one grant and one release"


def test_readyz_turns_503_while_draining_and_healthz_stays_200(metrics_server):
    s, port = metrics_server("--shutdown_timeout", "20s")
    assert http_get(port, "/readyz")[0] == 200
    assert http_get(port, "/healthz")[0] == 200

    # A call whose body never comes keeps the drain going until this closes.
    holder = RawH2(s.port)
    holder.send(h2_frame(HEADERS, END_HEADERS, 1, grpc_request_block(b"/ldlm.LDLM/Lock")))
    assert holder.sync()
    s.proc.send_signal(signal.SIGTERM)
    draining, _ = wait_until(lambda: http_get(port, "/readyz")[0] == 503, timeout=5)
    assert draining, "/readyz never turned 503 during the drain"
    assert http_get(port, "/healthz")[0] == 200
    assert Scrape(port).value("ldlm_connections", transport="plaintext") == 1
    assert s.proc.poll() is None

    holder.close()
    assert s.proc.wait(timeout=5) == 0
    with pytest.raises(OSError):
        http_get(port, "/healthz")


def test_other_paths_and_methods_and_the_environment_variable(start_server):
    port = free_port()
    start_server(env={"LDLM_METRICS_LISTEN_ADDRESS": f"127.0.0.1:{port}"})
    ready, _ = wait_until(lambda: _answers(port), timeout=10)
    assert ready
    assert http_get(port, "/nope")[0] == 404
    status, headers, _ = http_get(port, "/metrics", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET"
    assert http_get(port, "/metrics?name[]=ldlm_sessions")[0] == 200


def test_no_metrics_port_without_the_flag(start_server):
    s = start_server()
    assert "serving metrics" not in s.stderr_text()


# --------------------------------------------------------------------------
# contrib/prometheus-alerts.yml
# --------------------------------------------------------------------------

ALERTS = Path(__file__).resolve().parents[2] / "contrib" / "prometheus-alerts.yml"


def test_promtool_accepts_the_alerting_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus); the series check below still runs")
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_series_the_alerting_rules_name_is_exported(metrics_server, tmp_path):
    s, port = metrics_server("--state_file", tmp_path / "ldlm.state")
    status, _, body = http_get(port, "/metrics")
    assert status == 200
    exported = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    rules = ALERTS.read_text()
    named = set(re.findall(r"\bldlm_[a-z_]+", rules))
    assert named, "the rules name no ldlm series"
    assert named <= exported.keys(), f"not exported: {sorted(named - exported.keys())}"
    for label in re.findall(r"\$labels\.(\w+)", rules):
        assert label == "instance" or any(label in labels for labels in exported.values()), f"no series has label {label}"
