"""--print_env_template and --print_yaml_template: what they print, saved as
it is, configures a server that serves; a setting left commented out takes
effect once filled in."""
import re

import grpc

from helpers import rpc_code

ENV_ASSIGNMENT = re.compile(r"(LDLM_[A-Z0-9_]+)=(.*)")
# The flags that are requests rather than settings.
NOT_SETTINGS = {"help", "version", "print_env_template", "print_yaml_template"}


def print_template(run_server_expect_exit, flag) -> str:
    rc, out, err = run_server_expect_exit(flag)
    assert rc == 0, f"{flag}: exit code {rc}; stderr:\n{err}"
    assert err == "", err
    return out


def env_assignments(text) -> dict[str, str]:
    """The lines a shell or systemd's EnvironmentFile= would load."""
    env = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = ENV_ASSIGNMENT.fullmatch(line)
        assert m, f"not an LDLM_NAME=VALUE line: {line!r}"
        assert m[1] not in env, f"{m[1]} given twice"
        env[m[1]] = m[2]
    return env


def settings_in_help(run_server_expect_exit) -> set[str]:
    rc, out, err = run_server_expect_exit("--help")
    assert rc == 0, err
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9_]*)(?![\w-])", out)) - NOT_SETTINGS


def test_every_env_line_is_an_ldlm_variable_and_the_file_serves(run_server_expect_exit, start_server, connect):
    env = env_assignments(print_template(run_server_expect_exit, "--print_env_template"))
    assert "LDLM_LISTEN_ADDRESS" in env and "LDLM_SHUTDOWN_TIMEOUT" in env, env
    # The listen flag (which beats the environment) only keeps parallel tests apart.
    s = start_server(env=env)
    assert connect(s).try_lock("env-template").locked
    assert not connect(s).try_lock("env-template").locked


def test_every_setting_in_help_is_in_both_templates(run_server_expect_exit):
    env_text = print_template(run_server_expect_exit, "--print_env_template")
    yaml_text = print_template(run_server_expect_exit, "--print_yaml_template")
    settings = settings_in_help(run_server_expect_exit)
    assert {"listen_address", "max_locks", "state_file", "preface_timeout"} <= settings, settings
    for name in settings:
        assert re.search(rf"^(# )?LDLM_{name.upper()}=", env_text, re.M), f"LDLM_{name.upper()} missing"
        if name != "config_file":  # named by a flag or LDLM_CONFIG_FILE, not inside itself
            assert re.search(rf"^(# )?{name}:", yaml_text, re.M), f"{name} missing from the YAML template"
    assert "debug_fault" not in yaml_text and "DEBUG_FAULT" not in env_text


def test_yaml_template_as_config_file_serves(run_server_expect_exit, start_server, connect, tmp_path):
    path = tmp_path / "ldlm.yaml"
    path.write_text(print_template(run_server_expect_exit, "--print_yaml_template"))
    s = start_server("--config_file", path)
    assert connect(s).try_lock("yaml-template").locked
    assert not connect(s).try_lock("yaml-template").locked


def test_yaml_template_key_commented_out_takes_effect_once_filled_in(run_server_expect_exit, start_server,
                                                                    connect, tmp_path):
    template = print_template(run_server_expect_exit, "--print_yaml_template")
    assert re.search(r"^# password:$", template, re.M), "password is not offered commented out"
    path = tmp_path / "ldlm.yaml"
    path.write_text(re.sub(r"^# password:$", "password: from-template", template, flags=re.M))
    s = start_server("--config_file", path)
    assert rpc_code(connect(s).try_lock, "yaml-password") == grpc.StatusCode.UNAUTHENTICATED
    assert connect(s, password="from-template").try_lock("yaml-password").locked
