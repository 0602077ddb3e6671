"""The offline checker of bench/chaos.py: reads a run directory (worker
histories, the orchestrator's events, the server logs) and reports every
broken guarantee. Usage: chaos_check.py RUN_DIR (exit status 0 only when none).

A hold is counted only while it is *certainly* held, so a correct server never
shows a violation whatever the timing:
  from the answer of its grant (the worker reads the clock after the answer
  arrived), until the earliest moment it might have ended:
  * the start of any Unlock with its key (the server may act at once);
  * the start of its last answered grant/renew + that call's lease (the server
    set the lease no earlier than the call's start), or earlier: the start of
    a later renew whose answer never came + its lease;
  * while its session owns it: the SIGKILL of its process (taken before the
    kill), or the process's own close at its end;
  * without a state file, the SIGKILL of the server.
Checked: at no moment do more certain holds of a name overlap than the
smallest size among them; a grant's fencing token is larger than that of every
grant of the name answered before the grant's call started, and a renew keeps
its hold's token; no key is granted twice; no key is unlocked or renewed
after its Unlock was acknowledged; a Lock the client cancelled left no
hold in its session (probed right after the cancel, see chaos_worker.py;
see probe_violations for the one exception); the server never ended the
session of a live client.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

INFINITY = float("inf")
GRANTING = ("Lock", "TryLock")


@dataclass
class Call:
    worker: str
    seq: int
    op: str
    start: float
    args: dict
    end: float | None = None
    outcome: str | None = None  # None: no answer (the process was killed)
    key: str = ""
    token: int = 0

    @property
    def granted(self):
        return self.outcome == "locked"

    def describe(self):
        answered = f"{self.end:.3f}" if self.end is not None else "never"
        return (f"{self.worker}#{self.seq} {self.op}({self.args.get('name')}, size={self.args.get('size')}, "
                f"lease={self.args.get('lease')}) started {self.start:.3f} answered {answered} "
                f"-> {self.outcome} key={self.key[:8]} token={self.token}")


@dataclass
class Hold:
    grant: Call
    begin: float
    finish: float = INFINITY
    reasons: list = field(default_factory=list)


@dataclass
class Run:
    calls: list
    probes: list
    sessions: list  # (worker, ts, session id)
    events: list
    server_closed_sessions: list  # (epoch, session id)
    state_file: bool
    workers_ended: dict  # worker -> earliest kill/close time


def load(run_dir: Path) -> Run:
    calls, probes, sessions = [], [], []
    workers_ended: dict[str, float] = {}
    for path in sorted(run_dir.glob("w*.jsonl")):
        worker = path.stem
        pending = {}
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by SIGKILL
            kind = r["t"]
            if kind == "start":
                args = {k: v for k, v in r.items() if k not in ("t", "seq", "op", "ts")}
                call = Call(worker, r["seq"], r["op"], r["ts"], args)
                pending[r["seq"]] = call
                calls.append(call)
            elif kind == "end":
                call = pending.pop(r["seq"])
                call.end, call.outcome = r["ts"], r["outcome"]
                call.key, call.token = r.get("key", call.args.get("key", "")), r.get("token", 0)
            elif kind == "probe":
                probes.append((worker, r))
            elif kind == "session":
                sessions.append((worker, r["ts"], r["session"]))
            elif kind == "closing":
                workers_ended[worker] = min(workers_ended.get(worker, INFINITY), r["ts"])
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    for e in events:
        if e["t"] == "kill":
            workers_ended[e["worker"]] = min(workers_ended.get(e["worker"], INFINITY), e["ts"])
    config = next(e for e in events if e["t"] == "config")
    closed = []
    for path in sorted(run_dir.glob("server-*.log")):
        epoch = int(path.stem.split("-")[1])
        for line in path.read_text(errors="replace").splitlines():
            if "connection closed" in line:
                m = re.search(r"\bsession=(\d+)", line)
                if m:
                    closed.append((epoch, int(m.group(1))))
    return Run(calls, probes, sessions, events, closed, config["state_file"], workers_ended)


def server_epochs(events):
    """[(epoch, start, kill)] of each server the run started."""
    starts = {e["epoch"]: e["ts"] for e in events if e["t"] == "server_start"}
    kills = {e["epoch"]: e["ts"] for e in events if e["t"] == "server_kill"}
    return [(epoch, ts, kills.get(epoch, INFINITY)) for epoch, ts in sorted(starts.items())]


def epoch_at(epochs, ts):
    for epoch, start, kill in reversed(epochs):
        if start <= ts:
            return epoch, kill
    return epochs[0][0], epochs[0][2]


def holds_of(run: Run) -> list[Hold]:
    epochs = server_epochs(run.events)
    by_key = defaultdict(list)
    for call in run.calls:
        if call.op in ("Unlock", "Renew"):
            by_key[call.args["key"]].append(call)
    holds = []
    for grant in run.calls:
        if grant.op not in GRANTING or not grant.granted:
            continue
        hold = Hold(grant, grant.end)

        def bound(ts, why):
            if ts < hold.finish:
                hold.finish = ts
            hold.reasons.append(why)

        later = sorted((c for c in by_key[grant.key] if c.start >= grant.start), key=lambda c: c.start)
        # The lease: set by the last call the server may have applied.
        owner_call = grant
        lease_end = grant.start + grant.args["lease"]
        for call in later:
            if call.op == "Unlock":
                bound(call.start, f"unlock started {call.start:.3f}")
            elif call.granted:
                owner_call = call
                lease_end = call.start + call.args["lease"]
            elif call.outcome is None or call.outcome.startswith("rpc:"):
                lease_end = min(lease_end, call.start + call.args["lease"])
        bound(lease_end, f"lease could end {lease_end:.3f}")
        owner_epoch, server_kill = epoch_at(epochs, owner_call.end)
        if not run.state_file:
            bound(server_kill, f"server killed {server_kill:.3f}")
        session_end = run.workers_ended.get(grant.worker, INFINITY)
        if session_end < INFINITY and (not run.state_file or epoch_at(epochs, session_end)[0] == owner_epoch):
            bound(session_end, f"its process ended {session_end:.3f}")
        holds.append(hold)
    return holds


def overlap_violations(holds):
    """Sweeps each name's certain holds; a moment with more than the smallest
    size among them held is a violation (one per hold that overfills)."""
    violations = []
    by_name = defaultdict(list)
    for hold in holds:
        if hold.begin < hold.finish:
            by_name[hold.grant.args["name"]].append(hold)
    for name, name_holds in by_name.items():
        points = []
        for i, hold in enumerate(name_holds):
            points.append((hold.begin, 1, i))
            points.append((hold.finish, 0, i))  # ends sort before starts at the same instant
        active = set()
        for _, is_start, i in sorted(points):
            if not is_start:
                active.discard(i)
                continue
            active.add(i)
            smallest = min(name_holds[j].grant.args["size"] for j in active)
            if len(active) > smallest:
                lines = [f"{len(active)} certain holders of {name!r} (size {smallest}) at {name_holds[i].begin:.3f}:"]
                for j in sorted(active, key=lambda j: name_holds[j].begin):
                    h = name_holds[j]
                    lines.append(f"    {h.grant.describe()}; held until at least {h.finish:.3f}")
                violations.append("\n".join(lines))
    return violations


def token_violations(run: Run):
    violations = []
    grants = defaultdict(list)
    keys = Counter()
    for call in run.calls:
        if call.op in GRANTING and call.granted:
            grants[call.args["name"]].append(call)
            keys[call.key] += 1
            if call.token == 0:
                violations.append(f"grant without a fencing token: {call.describe()}")
    for key, n in keys.items():
        if n > 1:
            violations.append(f"key {key[:8]}... granted {n} times")
    for name, calls in grants.items():
        by_end = sorted(calls, key=lambda c: c.end)
        highest, highest_call, k = 0, None, 0
        for call in sorted(calls, key=lambda c: c.start):
            while k < len(by_end) and by_end[k].end < call.start:
                if by_end[k].token > highest:
                    highest, highest_call = by_end[k].token, by_end[k]
                k += 1
            if highest_call is not None and call.token <= highest:
                violations.append(f"fencing token of {name!r} did not increase:\n    {highest_call.describe()}\n"
                                  f"    then {call.describe()}")
    token_of = {c.key: c.token for cs in grants.values() for c in cs}
    for call in run.calls:
        if call.op == "Renew" and call.granted and call.args["key"] in token_of and call.token != token_of[call.args["key"]]:
            violations.append(f"renew changed the fencing token: {call.describe()} (granted {token_of[call.args['key']]})")
    return violations


def release_violations(run: Run):
    """A key whose Unlock was acknowledged is gone: no later call may unlock
    or renew it."""
    violations = []
    released = {}
    for call in sorted(run.calls, key=lambda c: c.start):
        if call.op not in ("Unlock", "Renew"):
            continue
        key = call.args["key"]
        if key in released and released[key].end < call.start and call.outcome in ("locked", "unlocked"):
            violations.append(f"a released key was used again:\n    {released[key].describe()}\n    then {call.describe()}")
        if call.op == "Unlock" and call.outcome == "unlocked":
            released.setdefault(key, call)
    return violations


def stopped_during(run: Run, call: Call) -> bool:
    stops = {}
    for e in run.events:
        if e.get("worker") != call.worker:
            continue
        if e["t"] == "stop":
            stops[e["ts"]] = INFINITY
        elif e["t"] == "cont" and stops:
            stops[max(stops)] = e["ts"]
    end = call.end if call.end is not None else INFINITY
    return any(stop < end and cont > call.start for stop, cont in stops.items())


def probe_violations(run: Run):
    """A cancelled Lock found held. Unless its process was stopped during the
    call: after SIGCONT the client may see its deadline pass while the whole
    answer is already read, and then it sends no reset, so the server cannot
    know the grant went unseen (those are counted, not violations)."""
    calls = {(c.worker, c.seq): c for c in run.calls}
    violations, unseen = [], 0
    for worker, probe in run.probes:
        if not probe.get("phantoms"):
            continue
        call = calls[(worker, probe["seq"])]
        if stopped_during(run, call):
            unseen += 1
        else:
            violations.append(f"a cancelled Lock was granted anyway: {call.describe()}; its session holds {probe['phantoms']}")
    return violations, unseen


def session_violations(run: Run):
    """The server may end a session only because its client went away (or it
    was killed itself): a second session of one process within one server's
    life, or a logged end of a session whose process neither exited nor was
    killed, is a session the server dropped."""
    epochs = server_epochs(run.events)
    violations = []
    seen = {}
    owner = {}
    for worker, ts, session in run.sessions:
        epoch = epoch_at(epochs, ts)[0]
        owner[(epoch, session)] = worker
        if (worker, epoch) in seen and seen[(worker, epoch)] != session:
            violations.append(f"{worker} lost session {seen[(worker, epoch)]} while alive (now {session}, server #{epoch})")
        seen[(worker, epoch)] = session
    for epoch, session in run.server_closed_sessions:
        worker = owner.get((epoch, session))
        if worker is not None and worker not in run.workers_ended:
            violations.append(f"server #{epoch} ended session {session} of {worker}, which neither exited nor was killed")
    return violations


def failover_tokens(run: Run):
    """For each SIGKILL of the server (with --ha: of the primary) and each name:
    the highest fencing token answered before the kill and the lowest granted
    by a call started after it. token_violations already requires every grant
    to top the tokens answered before its call started; this only shows that
    the comparison spanned each failover."""
    kills = sorted(e["ts"] for e in run.events if e["t"] == "server_kill")
    grants = [c for c in run.calls if c.op in GRANTING and c.granted]
    rows = []
    for i, kill in enumerate(kills):
        upto = kills[i + 1] if i + 1 < len(kills) else INFINITY
        for name in sorted({c.args["name"] for c in grants}):
            before = [c.token for c in grants if c.args["name"] == name and c.end < kill]
            after = [c.token for c in grants if c.args["name"] == name and kill < c.start < upto]
            if before and after:
                rows.append((i + 1, name, max(before), min(after)))
    return kills, rows


def report(run: Run, out=sys.stdout) -> int:
    holds = holds_of(run)
    cancelled_granted, unseen_grants = probe_violations(run)
    violations = (overlap_violations(holds) + token_violations(run) + release_violations(run) + cancelled_granted
                  + session_violations(run))
    outcomes = Counter((c.op, c.outcome or "unanswered") for c in run.calls)
    events = Counter(e["t"] for e in run.events)
    probes = Counter(p.get("result") for _, p in run.probes)
    print("calls:", file=out)
    for (op, outcome), n in sorted(outcomes.items()):
        print(f"  {op:8} {outcome:32} {n}", file=out)
    certain = sum(1 for h in holds if h.begin < h.finish)
    print(f"grants: {len(holds)} ({certain} with a certain hold interval)", file=out)
    print(f"workers started: {events['spawn']}, SIGKILLs: {events['kill']}, SIGSTOPs: {events['stop']}, "
          f"server starts: {events['server_start']} (restarts: {events['server_start'] - 1})", file=out)
    print(f"cancel probes: {dict(probes)} ({unseen_grants} found a grant the client missed while stopped); sessions recorded: {len(run.sessions)}, "
          f"closed in server logs: {len(run.server_closed_sessions)}", file=out)
    kills, spans = failover_tokens(run)
    if kills:
        crossed = sum(1 for _, _, before, after in spans if after > before)
        print(f"fencing tokens across {len(kills)} server kill(s): {crossed} of {len(spans)} (kill, name) pairs with "
              f"grants on both sides went up (lowest after > highest before)", file=out)
        kill_epoch = lambda ts: sum(1 for k in kills if k < ts)
        granted_in = {c.key: kill_epoch(c.end) for c in run.calls if c.op in GRANTING and c.granted}
        reclaims = [c for c in run.calls if c.op == "Renew" and c.granted and c.args["key"] in granted_in
                    and kill_epoch(c.start) > granted_in[c.args["key"]]]
        print(f"holds renewed after a kill that they were granted before (reclaimed on a new primary or "
              f"a restarted server): {len(reclaims)}", file=out)
        by_kill = defaultdict(list)
        for k, name, before, after in spans:
            by_kill[k].append(f"{name} {before}->{after}")
        granted = sorted((c.end, c.start) for c in run.calls if c.granted)
        gaps = []
        for kill in kills:
            # Asked for after the kill: a worker SIGSTOPped across it reads an
            # older answer late.
            first = next((end for end, start in granted if start > kill), None)
            gaps.append(f"{first - kill:.1f}" if first is not None else "none")
        print(f"seconds from each server kill to the first grant or renew asked for after it: {', '.join(gaps)}",
              file=out)
        for k in sorted(by_kill):
            print(f"  kill {k}: " + ", ".join(by_kill[k]), file=out)
    if violations:
        print(f"VIOLATIONS {len(violations)}", file=out)
        for v in violations[:5]:
            print("  " + v, file=out)
        return 1
    print("OK", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(report(load(Path(sys.argv[1]))))
