"""The ``ldlm-lock`` command-line tool (``.build/debug/ldlm-lock``, or
``$LDLM_LOCK_BIN``) against the real server: a command run under a lock, a
lock lost or a signal received meanwhile, trylock/unlock, and the admin
commands over the Unix socket and over TCP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from admin_client import start_with_socket
from helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
TOOL_BIN = os.environ.get("LDLM_LOCK_BIN", str(REPO / ".build" / "debug" / "ldlm-lock"))
LOST_LOCK_STATUS = 75


@pytest.fixture
def tool():
    """``tool.run(*args) -> CompletedProcess`` and ``tool.start(*args) -> Popen``
    (text mode, stdout/stderr piped); started processes are killed at teardown."""
    if not os.access(TOOL_BIN, os.X_OK):
        pytest.fail(f"ldlm-lock not found or not executable: {TOOL_BIN} (set LDLM_LOCK_BIN)")
    started = []

    class Tool:
        @staticmethod
        def run(*args, timeout=20):
            return subprocess.run([TOOL_BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout)

        @staticmethod
        def start(*args):
            proc = subprocess.Popen([TOOL_BIN, *map(str, args)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            started.append(proc)
            return proc

    yield Tool
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def socket_server(start_server, ipc_socket):
    # Locks outlive their connections here, so a lock that is gone after the
    # tool exits was unlocked by the tool, not freed by its disconnect.
    return start_with_socket(start_server, ipc_socket, "--no_clear_on_disconnect")


def listed(tool, ipc_socket):
    """The lock names the admin socket lists, through ``ldlm-lock --json list``."""
    result = tool.run("--socket", ipc_socket, "--json", "list")
    assert result.returncode == 0, result.stderr
    return {lock["name"]: lock for lock in json.loads(result.stdout)}


def wait_listed(tool, ipc_socket, name):
    locks, _ = wait_until(lambda: listed(tool, ipc_socket).get(name), timeout=10)
    assert locks, f"{name} never appeared in the listing"
    return locks


def test_lock_holds_while_the_command_runs_and_returns_its_status(tool, socket_server, ipc_socket, ldlm_client):
    started = time.monotonic()
    proc = tool.start("--address", socket_server.address, "lock", "deploy", "--", "sh", "-c", "sleep 2; exit 3")
    wait_listed(tool, ipc_socket, "deploy")
    table = tool.run("--socket", ipc_socket, "list")
    assert table.returncode == 0 and table.stdout.split()[:8] == ["NAME", "SIZE", "WAITERS", "KEY", "SESSION", "ADDRESS", "LEASE", "LEFT"]
    assert "deploy" in table.stdout
    client = ldlm_client(socket_server)
    assert not client.try_lock("deploy"), "another process got the lock while the command ran"

    assert proc.wait(timeout=10) == 3, proc.stderr.read()
    assert time.monotonic() - started >= 2
    assert "deploy" not in listed(tool, ipc_socket)
    lock = client.try_lock("deploy")
    assert lock
    lock.unlock()


def test_a_lost_lock_stops_the_command(tool, socket_server, ipc_socket, tmp_path):
    marker = tmp_path / "marker"
    script = f'trap "echo TERM > {marker}; kill $!; exit 0" TERM; sleep 30 & wait'
    proc = tool.start("--address", socket_server.address, "lock", "deploy", "--lease", "2s", "--", "sh", "-c", script)
    wait_listed(tool, ipc_socket, "deploy")
    forced = tool.run("--socket", ipc_socket, "--json", "force-unlock", "deploy")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout) == {"name": "deploy", "released": 1}

    assert proc.wait(timeout=5) == LOST_LOCK_STATUS
    err = proc.stderr.read()
    assert "lost lock deploy" in err and "SIGTERM" in err, err
    assert marker.read_text().strip() == "TERM"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_is_forwarded_and_the_lock_released_after_the_command_exits(tool, socket_server, ipc_socket, tmp_path, sig):
    marker = tmp_path / "marker"
    name = signal.Signals(sig).name
    script = f'trap "sleep 0.5; echo {name} > {marker}; kill $!; exit 7" {name[3:]}; sleep 30 & wait'
    proc = tool.start("--address", socket_server.address, "lock", "deploy", "--", "sh", "-c", script)
    wait_listed(tool, ipc_socket, "deploy")
    proc.send_signal(sig)
    # The command is still finishing: the lock stays held meanwhile.
    time.sleep(0.2)
    assert "deploy" in listed(tool, ipc_socket)
    assert proc.wait(timeout=5) == 7, proc.stderr.read()
    assert marker.read_text().strip() == name
    assert "deploy" not in listed(tool, ipc_socket)


def test_a_command_killed_by_the_forwarded_signal_gives_128_plus_it(tool, socket_server, ipc_socket):
    proc = tool.start("--address", socket_server.address, "lock", "deploy", "--", "sleep", "30")
    wait_listed(tool, ipc_socket, "deploy")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    assert "deploy" not in listed(tool, ipc_socket)


def test_a_signal_while_waiting_withdraws_the_request(tool, socket_server, ipc_socket, ldlm_client):
    held = ldlm_client(socket_server).try_lock("busy")
    assert held
    proc = tool.start("--address", socket_server.address, "lock", "busy", "--", "true")
    assert wait_until(lambda: listed(tool, ipc_socket)["busy"]["waiters"] == 1, timeout=10)[0]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=5) == 128 + signal.SIGINT
    assert wait_until(lambda: listed(tool, ipc_socket)["busy"]["waiters"] == 0, timeout=5)[0]
    held.unlock()


def test_wait_timeout_and_a_command_that_cannot_run(tool, server, ldlm_client):
    held = ldlm_client(server).try_lock("busy")
    timed_out = tool.run("--address", server.address, "lock", "busy", "--wait", "1s", "--", "true")
    assert timed_out.returncode == 1
    assert "timed out waiting" in timed_out.stderr and len(timed_out.stderr.splitlines()) == 1
    held.unlock()
    missing = tool.run("--address", server.address, "lock", "free", "--", "/nonexistent/command")
    assert missing.returncode == 127
    assert "cannot run /nonexistent/command" in missing.stderr


def test_trylock_json_and_unlock_by_key(tool, start_server, ldlm_client, tmp_path):
    server = start_server("--no_clear_on_disconnect", "--password", "pw")
    password_file = tmp_path / "password"
    password_file.write_text("pw\n")
    flags = ["--address", server.address, "--password_file", password_file]
    taken = tool.run(*flags, "--json", "trylock", "report", "--lease", "1m")
    assert taken.returncode == 0, taken.stderr
    result = json.loads(taken.stdout)
    assert result["locked"] is True and result["name"] == "report"
    assert isinstance(result["fencing_token"], int) and result["fencing_token"] > 0

    # The server kept the lock after the tool's connection closed.
    client = ldlm_client(server, password="pw")
    assert not client.try_lock("report")
    held = tool.run(*flags, "trylock", "report")
    assert held.returncode == 1 and "report is held" in held.stderr
    assert tool.run(*flags, "unlock", "report", "not-the-key").returncode == 1
    unlocked = tool.run(*flags, "unlock", "report", result["key"])
    assert unlocked.returncode == 0, unlocked.stderr
    lock = client.try_lock("report")
    assert lock
    lock.unlock()


def test_trylock_table_and_release_on_exit(tool, server, ldlm_client):
    taken = tool.run("--address", server.address, "trylock", "report")
    assert taken.returncode == 0, taken.stderr
    header, row = taken.stdout.splitlines()
    assert header.split() == ["NAME", "KEY", "FENCING", "TOKEN"]
    assert row.split()[0] == "report"
    # Without --no_clear_on_disconnect the lock ended with the tool's connection.
    lock = ldlm_client(server).try_lock("report")
    assert lock
    lock.unlock()


def test_sessions_and_end_session(tool, socket_server, ipc_socket):
    proc = tool.start("--address", socket_server.address, "lock", "deploy", "--", "sleep", "30")
    holder = wait_listed(tool, ipc_socket, "deploy")["holders"][0]
    sessions = tool.run("--socket", ipc_socket, "--json", "sessions")
    assert sessions.returncode == 0, sessions.stderr
    by_id = {s["id"]: s for s in json.loads(sessions.stdout)}
    assert by_id[holder["session_id"]]["locks_held"] == 1
    table = tool.run("--socket", ipc_socket, "sessions")
    assert table.stdout.split()[:6] == ["ID", "ADDRESS", "IDENTITY", "LOCKS", "WAITING", "CONNECTED"]

    ended = tool.run("--socket", ipc_socket, "--json", "end-session", holder["session_id"])
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)["released_locks"] == 1
    assert proc.wait(timeout=5) == LOST_LOCK_STATUS
    assert "connection lost" in proc.stderr.read()

    for args in (["end-session", holder["session_id"]], ["force-unlock", "deploy"]):
        missing = tool.run("--socket", ipc_socket, *args)
        assert missing.returncode == 1
        assert missing.stderr.startswith("ldlm-lock: not found:"), missing.stderr


def test_admin_over_tcp_needs_the_admin_password(tool, start_server):
    server = start_server("--admin_password", "admin-pw")
    ok = tool.run("--address", server.address, "--admin_password", "admin-pw", "--json", "list")
    assert ok.returncode == 0 and json.loads(ok.stdout) == [], ok.stderr
    wrong = tool.run("--address", server.address, "--admin_password", "nope", "list")
    assert wrong.returncode == 1 and wrong.stderr.startswith("ldlm-lock: unauthenticated:"), wrong.stderr


@pytest.mark.parametrize("args", [
    [],
    ["bogus"],
    ["lock", "deploy"],
    ["lock", "deploy", "--wait", "10", "--", "true"],
    ["lock", "deploy", "--size", "0", "--", "true"],
    ["--password", "a", "--password_file", "b", "list"],
    ["--tls_cert", "client.crt", "list"],
    ["end-session", "not-a-number"],
    ["unlock", "only-a-name"],
    ["--password_file", "/nonexistent/password", "trylock", "x"],
])
def test_usage_errors_exit_2_with_one_line(tool, args):
    result = tool.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("ldlm-lock: "), result.stderr
    assert result.stdout == ""


def test_help_exits_0(tool):
    result = tool.run("lock", "--help")
    assert result.returncode == 0 and "--no_clear_on_disconnect" not in result.stdout
    assert "trylock" in tool.run("--help").stdout
    assert "--no_clear_on_disconnect" in tool.run("trylock", "--help").stdout
