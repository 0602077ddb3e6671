"""Configuration (flags / LDLM_* env / --config_file; flag > env > file),
configuration errors (exit 2, one-line stderr) and signal handling (exit 0)."""
import json
import re
import signal
import time

import grpc
import pytest

from helpers import free_port, rpc_code, wait_for_port


def accepted(server, connect, password) -> bool:
    """True if a TryLock with this password is accepted, False if
    UNAUTHENTICATED; anything else fails the test."""
    c = connect(server, password=password)
    code = rpc_code(c.try_lock, f"cfg-{time.monotonic_ns()}")
    assert code in (None, grpc.StatusCode.UNAUTHENTICATED), code
    return code is None


def assert_config_error(rc, out, err, what):
    assert rc == 2, f"{what}: expected exit code 2, got {rc}; stderr:\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, f"{what}: no error message on stderr"
    assert len(lines) == 1, f"{what}: expected a one-line error on stderr, got {len(lines)} lines:\n{err}"


def name_limit(server, connect, nbytes) -> bool:
    """True if a name of ``nbytes`` bytes is accepted."""
    r = connect(server).try_lock("n" * nbytes)
    if r.locked:
        return True
    assert r.HasField("error") and r.error.code == 0, r
    return False


# --------------------------------------------------------------------------
# configuration errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [
    ["--bogus_flag"],
    ["--bogus_flag=1"],
    ["--max_name_bytes", "10", "--nope", "x"],
    ["--password"],  # missing value
], ids=["unknown", "unknown-equals", "unknown-after-good", "missing-value"])
def test_bad_flag_exits_2(run_server_expect_exit, flags):
    port = free_port()
    rc, out, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}", *flags)
    assert_config_error(rc, out, err, flags)


@pytest.mark.parametrize("flags", [
    ["--keepalive_interval", "10parsecs"],
    ["--keepalive_interval", "abc"],
    ["--keepalive_interval", "1m30"],
    ["--keepalive_timeout", "1x"],
    ["--keepalive_timeout", ""],
    ["--keepalive_timeout=s10"],
], ids=lambda f: " ".join(f))
def test_bad_duration_exits_2(run_server_expect_exit, flags):
    port = free_port()
    rc, out, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}", *flags)
    assert_config_error(rc, out, err, flags)


@pytest.mark.parametrize("flags", [
    ["--log_level", "loud"],
    ["--max_name_bytes", "abc"],
    ["--max_name_bytes", "12.5"],
    ["--no_clear_on_disconnect=maybe"],
], ids=lambda f: " ".join(f))
def test_bad_value_exits_2(run_server_expect_exit, flags):
    port = free_port()
    rc, out, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}", *flags)
    assert_config_error(rc, out, err, flags)


@pytest.mark.parametrize("env", [
    {"LDLM_KEEPALIVE_INTERVAL": "nope"},
    {"LDLM_KEEPALIVE_TIMEOUT": "5 seconds"},
    {"LDLM_LOG_LEVEL": "loud"},
    {"LDLM_MAX_NAME_BYTES": "many"},
], ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_bad_env_value_exits_2(run_server_expect_exit, env):
    port = free_port()
    rc, out, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}", env=env)
    assert_config_error(rc, out, err, env)


def test_missing_password_file_exits_2(run_server_expect_exit, tmp_path):
    port = free_port()
    rc, out, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}",
                                          "--password_file", str(tmp_path / "does-not-exist"))
    assert_config_error(rc, out, err, "missing password file")


@pytest.mark.parametrize("name,content", [
    ("missing.yaml", None),
    ("bad.yaml", "password: [unclosed\n  - x: : :\n"),
    ("bad.json", '{"password": "x",'),
    ("badduration.yaml", "keepalive_interval: forever\n"),
    ("badduration.json", '{"keepalive_timeout": "10 parsecs"}'),
    ("badloglevel.yaml", "log_level: loud\n"),
], ids=["missing", "malformed-yaml", "malformed-json", "bad-duration-yaml", "bad-duration-json",
        "bad-log-level-yaml"])
def test_bad_config_file_exits_2(run_server_expect_exit, tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    port = free_port()
    rc, out, err = run_server_expect_exit("--listen_address", f"127.0.0.1:{port}", "--config_file", str(path))
    assert_config_error(rc, out, err, f"config file {name}")


def test_version_exits_0(run_server_expect_exit):
    rc, out, err = run_server_expect_exit("--version")
    assert rc == 0, f"expected exit code 0, got {rc}; stderr:\n{err}"
    assert re.fullmatch(r"ldlm-server \(swift-ldlm\) \d+\.\d+\.\d+\n", out), out


# --------------------------------------------------------------------------
# accepted values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("interval,timeout", [("1m30s", "500ms"), ("1h", "10s"), ("1.5s", "2s"), ("90s", "1m")])
def test_go_durations_accepted(start_server, connect, interval, timeout):
    s = start_server("--keepalive_interval", interval, "--keepalive_timeout", timeout)
    assert connect(s).try_lock("dur").locked


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error"])
def test_log_levels_accepted(start_server, connect, level):
    s = start_server("--log_level", level)
    assert connect(s).try_lock("lvl").locked


def test_equals_syntax_for_flags(start_server, connect):
    port = free_port()
    s = start_server(f"--listen_address=127.0.0.1:{port}", "--max_name_bytes=10", "--keepalive_interval=30s",
                     listen=False, port=port)
    assert name_limit(s, connect, 10)
    assert not name_limit(s, connect, 11)


def test_go_ldlm_short_flags(start_server, connect, tmp_path):
    """go-ldlm's one-letter flags: -l -k -t -c -g -m -v -n."""
    port = free_port()
    cfg = write_config(tmp_path, "yaml", {"max_name_bytes": 10})
    s = start_server("-l", f"127.0.0.1:{port}", "-k", "30s", "-t", "5s", "-c", cfg, "-g", "1m", "-m", "1m",
                     "-v", "debug", "-n", listen=False, port=port)
    assert name_limit(s, connect, 10)
    assert not name_limit(s, connect, 11)


# --------------------------------------------------------------------------
# flag > env > file
# --------------------------------------------------------------------------

def write_config(tmp_path, fmt, data, name="ldlm"):
    if fmt == "yaml":
        lines = []
        for k, v in data.items():
            if isinstance(v, bool):
                lines.append(f"{k}: {'true' if v else 'false'}")
            elif isinstance(v, int):
                lines.append(f"{k}: {v}")
            else:
                lines.append(f'{k}: "{v}"')
        p = tmp_path / f"{name}.yaml"
        p.write_text("\n".join(lines) + "\n")
    else:
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_password_from_config_file(start_server, connect, tmp_path, fmt):
    cfg = write_config(tmp_path, fmt, {"password": "file-pw"})
    s = start_server("--config_file", cfg)
    assert accepted(s, connect, "file-pw")
    assert not accepted(s, connect, None)
    assert not accepted(s, connect, "other")


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_precedence_flag_over_env_over_file(start_server, connect, tmp_path, fmt):
    cfg = write_config(tmp_path, fmt, {"password": "file-pw"})
    s = start_server("--config_file", cfg, "--password", "flag-pw", env={"LDLM_PASSWORD": "env-pw"})
    assert accepted(s, connect, "flag-pw")
    assert not accepted(s, connect, "env-pw")
    assert not accepted(s, connect, "file-pw")


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_precedence_env_over_file(start_server, connect, tmp_path, fmt):
    cfg = write_config(tmp_path, fmt, {"password": "file-pw"})
    s = start_server("--config_file", cfg, env={"LDLM_PASSWORD": "env-pw"})
    assert accepted(s, connect, "env-pw")
    assert not accepted(s, connect, "file-pw")


def test_precedence_flag_over_env(start_server, connect):
    s = start_server("--password", "flag-pw", env={"LDLM_PASSWORD": "env-pw"})
    assert accepted(s, connect, "flag-pw")
    assert not accepted(s, connect, "env-pw")


def test_precedence_flag_over_file(start_server, connect, tmp_path):
    cfg = write_config(tmp_path, "yaml", {"password": "file-pw"})
    s = start_server("--password", "flag-pw", "--config_file", cfg)  # order of flags irrelevant
    assert accepted(s, connect, "flag-pw")
    assert not accepted(s, connect, "file-pw")


def test_max_name_bytes_precedence(start_server, connect, tmp_path):
    cfg = write_config(tmp_path, "yaml", {"max_name_bytes": 10})
    s = start_server("--config_file", cfg)
    assert name_limit(s, connect, 10) and not name_limit(s, connect, 11)
    s = start_server("--config_file", cfg, env={"LDLM_MAX_NAME_BYTES": "20"})
    assert name_limit(s, connect, 20) and not name_limit(s, connect, 21)
    s = start_server("--config_file", cfg, "--max_name_bytes", "30", env={"LDLM_MAX_NAME_BYTES": "20"})
    assert name_limit(s, connect, 30) and not name_limit(s, connect, 31)


@pytest.mark.parametrize("source", ["file-yaml", "file-json", "env"])
def test_listen_address_from_file_or_env(start_server, connect, tmp_path, source):
    port = free_port()
    addr = f"127.0.0.1:{port}"
    if source == "env":
        s = start_server(listen=False, port=port, env={"LDLM_LISTEN_ADDRESS": addr})
    else:
        cfg = write_config(tmp_path, source.split("-")[1], {"listen_address": addr})
        s = start_server("--config_file", cfg, listen=False, port=port)
    assert connect(s).try_lock("listen").locked


def test_listen_address_flag_over_env(start_server, connect):
    port = free_port()
    s = start_server(port=port, env={"LDLM_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert s.port == port
    assert connect(s).try_lock("listen-flag").locked


@pytest.mark.parametrize("source", ["env", "file"])
def test_no_clear_on_disconnect_from_env_or_file(start_server, connect, tmp_path, source):
    if source == "env":
        s = start_server(env={"LDLM_NO_CLEAR_ON_DISCONNECT": "true"})
    else:
        s = start_server("--config_file", write_config(tmp_path, "yaml", {"no_clear_on_disconnect": True}))
    a, b = connect(s), connect(s)
    h = a.try_lock("ncd")
    assert h.locked
    a.close()
    time.sleep(1.0)
    assert not b.try_lock("ncd").locked, "hold released on disconnect although no_clear_on_disconnect=true"
    assert b.unlock("ncd", h.key).unlocked


@pytest.mark.slow
def test_keepalive_from_config_file(start_server, connect, spawn_child, tmp_path):
    cfg = write_config(tmp_path, "yaml", {"keepalive_interval": "1s", "keepalive_timeout": "1s"})
    s = start_server("--config_file", cfg)
    child = spawn_child(s, "lock:ka-cfg")
    child.expect("READY")
    other = connect(s)
    child.signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 8
        ok = False
        while time.monotonic() < deadline and not ok:
            ok = other.try_lock("ka-cfg").locked
            time.sleep(0.05)
        assert ok, "keepalive settings from the config file had no effect"
    finally:
        child.kill()


# --------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_clean_exit(start_server, connect, sig):
    s = start_server()
    assert connect(s).try_lock("sig").locked
    rc = s.signal_and_wait(sig, timeout=5)
    assert rc == 0, f"expected exit code 0 after {sig.name}, got {rc} (None = had to SIGKILL)\n{s.logs(tail=3000)}"


def test_sigterm_idle_server_exit_0(start_server):
    s = start_server()
    rc = s.signal_and_wait(signal.SIGTERM, timeout=5)
    assert rc == 0, f"got {rc}\n{s.logs(tail=3000)}"


def test_sigterm_with_waiting_rpcs_exits_0(start_server, connect):
    s = start_server()
    a, b = connect(s), connect(s)
    assert a.lock("sig-wait").locked
    futs = [b.lock_future("sig-wait", timeout=20) for _ in range(3)]
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = s.signal_and_wait(signal.SIGTERM, timeout=5)
    assert rc == 0, f"got {rc} (None = still running after 5s)\n{s.logs(tail=3000)}"
    assert time.monotonic() - t0 < 5
    for f in futs:
        try:
            f.result(timeout=5)
        except grpc.RpcError:
            pass
        except grpc.FutureTimeoutError:
            pytest.fail("waiting RPC neither completed nor failed after the server exited")


def test_port_in_use_fails(start_server, run_server_expect_exit):
    s = start_server()
    rc, out, err = run_server_expect_exit("--listen_address", s.address)
    assert rc != 0, "second server on the same port should fail to start"
    assert err.strip(), "no error message when the listen address is in use"
