"""bench/chaos.py: mutual exclusion, fencing tokens and cancellation hold while
client processes are SIGKILLed and SIGSTOPped (also against a replica set whose
primary is SIGKILLed, --ha); and the checker does report a server that grants
a full lock (--debug_fault skip_size_check)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import REPO, SERVER_BIN

sys.path.insert(0, str(REPO / "bench"))
import chaos_check  # noqa: E402


def run_chaos(tmp_path, seconds, *options):
    """bench/chaos.py in its own process group, so that a hung run takes its
    workers and server down with it."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "chaos.py"), str(seconds), "--server-bin", SERVER_BIN,
         "--run-dir", str(tmp_path / "run"), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=seconds + 45)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"chaos run did not finish:\n{output}")
    return proc.returncode, output


@pytest.mark.slow
@pytest.mark.watchdog_timeout(130)
def test_sixty_seconds_of_chaos_break_no_guarantee(tmp_path):
    status, output = run_chaos(tmp_path, 60)
    print(output)
    assert status == 0 and output.rstrip().endswith("OK"), output
    lines = output.splitlines()
    grants = next(line for line in lines if line.startswith("grants:"))
    assert int(grants.split()[1]) > 200, "too little happened to mean anything"
    counts = next(line for line in lines if line.startswith("workers started:"))
    assert "SIGKILLs: 0," not in counts and "SIGSTOPs: 0," not in counts, counts
    assert "(restarts: 0)" not in counts, counts


@pytest.mark.slow
@pytest.mark.watchdog_timeout(150)
@pytest.mark.skipif(shutil.which("etcd") is None, reason="needs etcd (Debian etcd-server)")
def test_sixty_seconds_of_chaos_against_a_replica_set_break_no_guarantee(tmp_path):
    """chaos.py --ha: 3 replicas over 3 etcd members, the primary SIGKILLed
    every 10-20 s and started again as a replica; tokens keep increasing
    across each failover."""
    status, output = run_chaos(tmp_path, 60, "--ha", "--server-restart-every", "15")
    print(output)
    assert status == 0 and output.rstrip().endswith("OK"), output
    lines = output.splitlines()
    counts = next(line for line in lines if line.startswith("workers started:"))
    assert "(restarts: 0)" not in counts, counts
    fencing = next(line for line in lines if line.startswith("fencing tokens across"))
    assert " 0 of " not in fencing, fencing


@pytest.mark.slow
@pytest.mark.watchdog_timeout(60)
def test_the_checker_reports_a_server_that_grants_a_full_lock(tmp_path):
    status, output = run_chaos(tmp_path, 8, "--no-server-restarts", "--debug-fault", "skip_size_check")
    assert status == 1, output
    assert "\nVIOLATIONS " in output, output
    assert "certain holders of 'chaos-" in output, output


@pytest.mark.slow
@pytest.mark.watchdog_timeout(90)
def test_the_checker_reports_a_server_that_acknowledges_before_syncing(tmp_path):
    """Answers before the state file is synced: a server SIGKILL loses
    acknowledged grants, whose names then go to a second holder. A restart
    every 1-3 s gives each run several such losses."""
    status, output = run_chaos(tmp_path, 30, "--debug-fault", "ack_before_sync", "--server-restart-every", "2")
    assert status == 1, output
    assert "\nVIOLATIONS " in output, output


def test_a_bad_debug_fault_is_refused(start_server_args=("--debug_fault", "skip_everything")):
    result = subprocess.run([SERVER_BIN, *start_server_args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'invalid value "skip_everything" for --debug_fault' in result.stderr


def test_debug_faults_are_not_offered_in_help():
    result = subprocess.run([SERVER_BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--listen_address" in result.stdout
    assert "debug_fault" not in result.stdout


# -- the checker on histories written by hand --------------------------------

def write_run(tmp_path, workers, events=(), state_file=False):
    """A run directory: `workers` maps a worker to its records; the server
    started at 0 and was never killed."""
    run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    run.mkdir()
    for worker, records in workers.items():
        (run / f"{worker}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    base = [{"t": "config", "ts": 0, "state_file": state_file}, {"t": "server_start", "ts": 0, "epoch": 1}]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in [*base, *events]))
    return chaos_check.load(run)


def lock(seq, start, end, key, token, name="n", size=1, lease=5, outcome="locked"):
    return [
        {"t": "start", "seq": seq, "op": "Lock", "ts": start, "name": name, "size": size, "lease": lease, "wait": None},
        {"t": "end", "seq": seq, "ts": end, "outcome": outcome, "key": key, "token": token},
    ]


def unlock(seq, start, end, key, name="n", outcome="unlocked"):
    return [
        {"t": "start", "seq": seq, "op": "Unlock", "ts": start, "name": name, "key": key},
        {"t": "end", "seq": seq, "ts": end, "outcome": outcome},
    ]


def verdict(run):
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

    status = chaos_check.report(run, out=Out())
    return status, "".join(lines)


def test_a_hand_off_inside_an_unlock_call_is_no_violation(tmp_path):
    # B's grant is answered before A's unlock is: the server released A first.
    run = write_run(tmp_path, {
        "wA": lock(1, 0.0, 0.1, "ka", 10) + unlock(2, 1.0, 1.3, "ka"),
        "wB": lock(1, 0.5, 1.1, "kb", 11),
    })
    assert verdict(run)[0] == 0


def test_two_certain_holders_of_a_size_one_lock_are_a_violation(tmp_path):
    run = write_run(tmp_path, {
        "wA": lock(1, 0.0, 0.1, "ka", 10) + unlock(2, 1.0, 1.3, "ka"),
        "wB": lock(1, 0.5, 0.9, "kb", 11),
    })
    status, output = verdict(run)
    assert status == 1 and "VIOLATIONS 1" in output and "2 certain holders of 'n' (size 1)" in output, output


def test_a_hold_ends_with_its_lease_or_the_kill_of_its_process(tmp_path):
    # A's lease (1 s from its start) could have run out before B's answer at
    # 1.5; C's answer at 2.05 came after B's process was killed at 2.01.
    run = write_run(tmp_path, {
        "wA": lock(1, 0.0, 0.1, "ka", 10, lease=1),
        "wB": lock(1, 0.5, 1.5, "kb", 11, lease=5),
        "wC": lock(1, 2.0, 2.05, "kc", 12, lease=1),
    }, events=[{"t": "kill", "ts": 2.01, "worker": "wB"}])
    assert verdict(run)[0] == 0
    run = write_run(tmp_path, {
        "wB": lock(1, 0.5, 1.5, "kb", 11, lease=5),
        "wC": lock(1, 2.0, 2.05, "kc", 12, lease=1),
    }, events=[{"t": "kill", "ts": 2.1, "worker": "wB"}])
    assert verdict(run)[0] == 1, "B was certainly alive and holding when C's grant came"


def test_sizes_allow_as_many_holders(tmp_path):
    run = write_run(tmp_path, {
        "wA": lock(1, 0.0, 0.1, "ka", 10, size=2),
        "wB": lock(1, 0.0, 0.2, "kb", 11, size=2),
        "wC": lock(1, 0.3, 0.4, "kc", 12, size=2),
    })
    status, output = verdict(run)
    assert status == 1 and "3 certain holders of 'n' (size 2)" in output, output


def test_a_fencing_token_must_exceed_every_earlier_grant(tmp_path):
    run = write_run(tmp_path, {
        "wA": lock(1, 0.0, 0.1, "ka", 10, lease=1),
        "wB": lock(1, 3.0, 3.1, "kb", 9, lease=1),
    })
    status, output = verdict(run)
    assert status == 1 and "fencing token of 'n' did not increase" in output, output


def test_a_cancelled_lock_found_held_is_a_violation(tmp_path):
    run = write_run(tmp_path, {"wA": [
        {"t": "start", "seq": 1, "op": "Lock", "ts": 0.0, "name": "n", "size": 1, "lease": 5, "wait": None},
        {"t": "end", "seq": 1, "ts": 0.2, "outcome": "rpc:DEADLINE_EXCEEDED"},
        {"t": "probe", "seq": 1, "ts": 0.21, "result": "checked", "session": 3,
         "phantoms": [{"key_prefix": "abcdefgh", "token": 10}]},
    ]})
    status, output = verdict(run)
    assert status == 1 and "a cancelled Lock was granted anyway" in output, output


def test_a_session_the_server_ended_under_a_live_client_is_a_violation(tmp_path):
    records = [{"t": "session", "ts": 0.1, "session": 4, "remote": "127.0.0.1:5000"},
               {"t": "session", "ts": 2.0, "session": 9, "remote": "127.0.0.1:5001"},
               {"t": "closing", "ts": 5.0}]
    status, output = verdict(write_run(tmp_path, {"wA": records}))
    assert status == 1 and "wA lost session 4 while alive" in output, output
    status, output = verdict(write_run(tmp_path, {"wA": records[:1] + records[2:]}))
    assert status == 0, output
