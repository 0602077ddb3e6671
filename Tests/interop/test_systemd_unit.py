"""contrib/ldlm-server.service: systemd accepts it, and the server it
describes stops within the time systemd gives it."""
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, SERVER_BIN

UNIT = REPO / "contrib" / "ldlm-server.service"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def seconds(span: str) -> float:
    """A systemd time span or Go duration made of whole units (30s, 1min, 1m30s)."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+)\s*([a-z]*)", span)
    assert parts and "".join(n + u for n, u in parts) == span.replace(" ", ""), f"cannot read {span!r}"
    return sum(int(n) * units[u or "s"] for n, u in parts)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify insists that ExecStart's binary exists; the unit names where it is installed.
    checked = tmp_path / UNIT.name
    checked.write_text(re.sub(r"^ExecStart=\S+", f"ExecStart={SERVER_BIN}", UNIT.read_text(), flags=re.M))
    result = subprocess.run(["systemd-analyze", "verify", str(checked)], capture_output=True, text=True, timeout=60)
    # An unknown key or a value systemd cannot parse is only a warning, with exit status 0.
    complaints = [ln for ln in (result.stdout + result.stderr).splitlines() if checked.name in ln]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_unit_runs_the_installed_binary_with_a_state_file_in_its_state_directory():
    settings = unit_settings()
    assert settings["ExecStart"][0].split()[0] == "/usr/local/bin/ldlm-server"
    assert settings["StateDirectory"] == ["ldlm"]
    env = dict(e.split("=", 1) for e in settings["Environment"])
    assert Path(env["LDLM_STATE_FILE"]).parent == Path("/var/lib/ldlm")


def test_stop_timeout_outlasts_the_drain_and_the_drain_exits_0(run_server_expect_exit, start_server, connect,
                                                               tmp_path):
    settings = unit_settings()
    assert settings["KillSignal"] == ["SIGTERM"]
    rc, template, err = run_server_expect_exit("--print_env_template")
    assert rc == 0, err
    drain = seconds(re.search(r"^LDLM_SHUTDOWN_TIMEOUT=(\S+)$", template, re.M)[1])
    stop = seconds(settings["TimeoutStopSec"][0])
    assert stop > drain, f"systemd would kill the server {stop}s into a drain that may take {drain}s"

    # The server as the unit runs it, its state directory moved here.
    s = start_server(env={"LDLM_STATE_FILE": str(tmp_path / "state")})
    assert connect(s).try_lock("unit-drain").locked
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=stop) == 0
