"""Failover with ``ldlm-elect``: two candidates, each running fenced_writer.py
while it leads, and a fake resource that accepts a write only with a token at
least as large as any it has seen (what fencing tokens are for)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import wait_until

HERE = Path(__file__).resolve().parent
ELECT_BIN = os.environ.get("LDLM_ELECT_BIN", str(HERE.parents[1] / ".build" / "debug" / "ldlm-elect"))
LEASE = 2.0
# The server notices a frozen client within 1 s instead of a minute.
FAST_KEEPALIVE = ("--keepalive_interval", "500ms", "--keepalive_timeout", "500ms")


class FencedResource:
    """An HTTP endpoint that records every write and refuses stale tokens."""

    def __init__(self):
        self.events: list[dict] = []
        self.largest = 0
        self.lock = threading.Lock()
        resource = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(resource.record(event))
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def record(self, event: dict) -> int:
        with self.lock:
            if event["event"] == "write":
                event["accepted"] = event["token"] >= self.largest
                self.largest = max(self.largest, event["token"])
            self.events.append(event)
            return 200 if event.get("accepted", True) else 409

    def of(self, writer: str, event: str = "write") -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["writer"] == writer and e["event"] == event]

    def first_accepted(self, writer: str, timeout: float) -> dict:
        found, waited = wait_until(lambda: [e for e in self.of(writer) if e["accepted"]], timeout)
        assert found, f"{writer} wrote nothing accepted within {waited:.1f} s: {self.events[-5:]}"
        return found[0]

    def pid(self, writer: str) -> int:
        return self.of(writer)[0]["pid"]


@pytest.fixture
def resource():
    r = FencedResource()
    yield r
    r.http.shutdown()
    for pid in {e["pid"] for e in r.events}:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def elect(tmp_path):
    """``elect(server, command...)``: an ``ldlm-elect`` on the lock "leader"."""
    started: list[subprocess.Popen] = []

    def start(server, *command) -> subprocess.Popen:
        log = tmp_path / f"elect{len(started)}.stderr"
        args = [ELECT_BIN, "--address", server.address, "--name", "leader", "--lease", f"{LEASE:.0f}s", "--", *command]
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=stderr)
        proc.log = log
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def writer(resource, name):
    return (sys.executable, str(HERE / "fenced_writer.py"), resource.url, name)


def test_the_command_gets_the_token_and_its_exit_status_is_ldlm_elects(server, elect):
    proc = elect(server, "sh", "-c", 'test "$LDLM_FENCING_TOKEN" -gt 0 && exit 3')
    assert proc.wait(timeout=10) == 3


def test_sigterm_stops_the_command_resigns_and_exits(server, resource, elect):
    first = elect(server, *writer(resource, "w1"))
    resource.first_accepted("w1", timeout=10)
    elect(server, *writer(resource, "w2"))
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=5) == 0
    assert resource.of("w1", "terminated"), "the command was not stopped"
    resource.first_accepted("w2", timeout=1)


@pytest.mark.slow
def test_sigkill_of_the_leader_hands_over_within_the_lease(start_server, resource, elect):
    server = start_server(*FAST_KEEPALIVE)
    first = elect(server, *writer(resource, "w1"))
    t1 = resource.first_accepted("w1", timeout=10)["token"]
    elect(server, *writer(resource, "w2"))
    time.sleep(0.5)
    assert not resource.of("w2"), "two leaders at once"

    killed_at = time.monotonic()
    for pid in (first.pid, resource.pid("w1")):
        os.kill(pid, signal.SIGKILL)
    t2 = resource.first_accepted("w2", timeout=LEASE + 1)["token"]
    assert time.monotonic() - killed_at < LEASE + 1
    assert t2 > t1


@pytest.mark.slow
def test_a_leader_paused_past_its_lease_steps_down_and_its_stale_writes_are_refused(start_server, resource, elect):
    server = start_server(*FAST_KEEPALIVE)
    first = elect(server, *writer(resource, "w1"))
    t1 = resource.first_accepted("w1", timeout=10)["token"]
    second = elect(server, *writer(resource, "w2"))
    w1 = resource.pid("w1")
    for pid in (w1, first.pid):
        os.kill(pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    takeover = resource.first_accepted("w2", timeout=LEASE + 2)
    assert takeover["token"] > t1
    time.sleep(max(0.0, stopped_at + LEASE + 0.5 - time.monotonic()))

    # The paused work wakes first, still believing it leads: refused.
    os.kill(w1, signal.SIGCONT)
    refused, _ = wait_until(lambda: [e for e in resource.of("w1") if not e["accepted"]], 3)
    assert refused, "the stale leader attempted no write"
    # Then ldlm-elect wakes, learns it lost and stops its command.
    os.kill(first.pid, signal.SIGCONT)
    stopped, _ = wait_until(lambda: resource.of("w1", "terminated"), 3)
    assert stopped, "the stale leader's command got no SIGTERM"
    assert "leadership lost" in first.log.read_text()
    assert first.poll() is None, "it campaigns again"

    with resource.lock:
        after = resource.events[resource.events.index(takeover):]
    stale = [e for e in after if e["writer"] == "w1" and e["event"] == "write"]
    assert stale and not any(e["accepted"] for e in stale), stale
    assert second.poll() is None and resource.of("w2")[-1]["accepted"]
