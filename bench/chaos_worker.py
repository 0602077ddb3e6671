"""One client process of bench/chaos.py: random Lock / TryLock / Unlock / Renew
calls on a few contended names until its end time, each call written to its
history file before it starts and after it ends (so a SIGKILL leaves the call
in flight visible as unanswered).

Usage: chaos_worker.py PROTO_DIR TARGET ADMIN_PASSWORD HISTORY_FILE END_MONOTONIC SEED NAMES

TARGET is host:port, or for a replica set (chaos.py --ha) every replica's
host:port, comma-separated: the worker keeps one channel per replica, and
after an UNAVAILABLE answer sends its next call to the primary the answer's
`ldlm-primary` trailer names, else to the next replica in the list.

Times are time.monotonic() (CLOCK_MONOTONIC, one clock for every process of
the machine). Every call has a gRPC deadline, so a worker never waits past its
end time by more than a few seconds.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time

import grpc

SELF_PREFIX = "chaos-self-"
# Each name mostly asks for its own size; some calls ask another (a size
# mismatch, or a new size once the lock is idle).
NAME_SIZES = [1, 1, 2, 3, 2, 1]


class History:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def write(self, **record):
        # One write(2) per line: the kernel keeps it when the process is killed.
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()


class Worker:
    def __init__(self, pb, pbg, apb, apbg, target, admin_password, history, end, rng, names):
        self.pb, self.apb = pb, apb
        self.pbg, self.apbg = pbg, apbg
        self.targets = target.split(",")
        self.target = self.targets[0]
        self.channels = {}  # address -> (channel, LDLM stub, Admin stub): one connection per replica
        self.admin_metadata = (("authorization", admin_password),)
        self.history = history
        self.end = end
        self.rng = rng
        self.names = names
        self.held: dict[str, str] = {}  # key -> name
        self.dropped: list[tuple[str, str]] = []  # (key, name) no longer held
        self.seq = 0
        self.self_lock: tuple[str, str] | None = None  # (name, key) marking our session
        self.session_id: int | None = None

    # -- calls ------------------------------------------------------------

    def connection(self):
        if self.target not in self.channels:
            channel = grpc.insecure_channel(self.target, options=[
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.enable_retries", 0),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 500),
            ])
            self.channels[self.target] = (channel, self.pbg.LDLMStub(channel), self.apbg.AdminStub(channel))
        return self.channels[self.target]

    @property
    def stub(self):
        return self.connection()[1]

    @property
    def admin(self):
        return self.connection()[2]

    def follow(self, error):
        """After UNAVAILABLE: the primary a standby named, else the next replica."""
        if len(self.targets) == 1:
            return
        hint = None
        for key, value in error.trailing_metadata() or ():
            if key == "ldlm-primary":
                hint = value if isinstance(value, str) else value.decode()
        if hint and hint != self.target:
            self.target = hint
        else:
            i = self.targets.index(self.target) if self.target in self.targets else -1
            self.target = self.targets[(i + 1) % len(self.targets)]
        self.history.write(t="target", ts=time.monotonic(), target=self.target)
        time.sleep(0.02)  # no primary during a failover: do not spin

    def call(self, op, request, rpc, deadline, **args):
        self.seq += 1
        seq = self.seq
        self.history.write(t="start", seq=seq, op=op, ts=time.monotonic(), deadline=deadline, **args)
        try:
            response = rpc(request, timeout=deadline)
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                self.self_lock = None  # the next connection is a new session: mark it
            self.history.write(t="end", seq=seq, ts=time.monotonic(), outcome="rpc:" + code.name)
            if code == grpc.StatusCode.UNAVAILABLE:
                self.follow(error)
            return seq, None, code
        now = time.monotonic()
        record = {"t": "end", "seq": seq, "ts": now}
        if op in ("Lock", "TryLock", "Renew"):
            record["key"] = response.key
            record["token"] = response.fencing_token
            if response.locked:
                record["outcome"] = "locked"
            elif response.HasField("error"):
                record["outcome"] = "error:" + self.pb.ErrorCode.Name(response.error.code)
            else:
                record["outcome"] = "not_locked"
        else:
            if response.unlocked:
                record["outcome"] = "unlocked"
            elif response.HasField("error"):
                record["outcome"] = "error:" + self.pb.ErrorCode.Name(response.error.code)
            else:
                record["outcome"] = "not_unlocked"
        self.history.write(**record)
        return seq, response, None

    def pick_name(self):
        index = self.rng.randrange(len(self.names))
        size = NAME_SIZES[index % len(NAME_SIZES)]
        if self.rng.random() < 0.05:
            size = self.rng.randint(1, 3)
        return self.names[index], size

    def acquire(self):
        name, size = self.pick_name()
        lease = self.rng.randint(1, 5)
        if self.rng.random() < 0.4:
            request = self.pb.TryLockRequest(name=name, size=size, lock_timeout_seconds=lease)
            _, response, _ = self.call("TryLock", request, self.stub.TryLock, 2.0, name=name, size=size, lease=lease)
        else:
            wait = self.rng.choice([None, 1, 2, 3])
            # Often shorter than the wait: the client cancels a waiting call.
            deadline = self.rng.choice([0.05, 0.2, 0.5, 1.0, 2.5, 4.0])
            request = self.pb.LockRequest(name=name, size=size, lock_timeout_seconds=lease)
            if wait is not None:
                request.wait_timeout_seconds = wait
            seq, response, code = self.call("Lock", request, self.stub.Lock, deadline,
                                            name=name, size=size, lease=lease, wait=wait)
            if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                self.probe_after_cancel(seq, name)
        if response is not None and response.locked:
            self.held[response.key] = name

    def release(self):
        key, name = self.rng.choice(list(self.held.items()))
        del self.held[key]
        self.dropped.append((key, name))
        request = self.pb.UnlockRequest(name=name, key=key)
        self.call("Unlock", request, self.stub.Unlock, 2.0, name=name, key=key)

    def renew(self):
        key, name = self.rng.choice(list(self.held.items()))
        lease = self.rng.randint(1, 5)
        request = self.pb.RenewRequest(name=name, key=key, lock_timeout_seconds=lease)
        _, response, _ = self.call("Renew", request, self.stub.Renew, 2.0, name=name, key=key, lease=lease)
        if response is None or not response.locked:
            del self.held[key]
            self.dropped.append((key, name))

    def stale(self):
        """Unlock or renew with a key we no longer hold: must never succeed
        unless the server kept it (it did not expire yet)."""
        key, name = self.rng.choice(self.dropped[-20:])
        if self.rng.random() < 0.5:
            self.call("Unlock", self.pb.UnlockRequest(name=name, key=key), self.stub.Unlock, 2.0, name=name, key=key)
        else:
            lease = self.rng.randint(1, 5)
            request = self.pb.RenewRequest(name=name, key=key, lock_timeout_seconds=lease)
            _, response, _ = self.call("Renew", request, self.stub.Renew, 2.0, name=name, key=key, lease=lease)
            if response is not None and response.locked:
                # The server kept it (a renew that failed while the server
                # restarted, a hold the state file brought back): it is ours
                # again, and now belongs to this connection's session.
                self.dropped.remove((key, name))
                self.held[key] = name

    # -- session identity and the cancellation probe ------------------------

    def list_locks(self):
        return self.admin.ListLocks(self.apb.ListLocksRequest(), timeout=2.0, metadata=self.admin_metadata).locks

    def find_session(self, locks):
        """Our session: the holder of our marker lock, if this connection still has it."""
        if self.self_lock is None:
            return None
        name, key = self.self_lock
        for lock in locks:
            if lock.name == name:
                for holder in lock.holders:
                    if key.startswith(holder.key_prefix):
                        return holder
        return None

    def mark_session(self):
        """Takes a marker lock (no lease: it lives as long as our session) and
        records which server session and address this connection is."""
        name = f"{SELF_PREFIX}{os.getpid()}-{self.seq}"
        try:
            response = self.stub.TryLock(self.pb.TryLockRequest(name=name), timeout=2.0)
            if not response.locked:
                return
            self.self_lock = (name, response.key)
            holder = self.find_session(self.list_locks())
        except grpc.RpcError as error:
            self.self_lock = None
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                self.follow(error)
            return
        if holder is not None:
            self.session_id = holder.session_id
            self.history.write(t="session", ts=time.monotonic(), session=holder.session_id, remote=holder.remote_address)

    def probe_after_cancel(self, seq, name):
        """After a cancelled Lock: the reset went out on this connection before
        this admin call, so the server has withdrawn or undone that call; a
        holder of `name` in our session with a key we were never given is a
        grant to a caller that had cancelled."""
        start = time.monotonic()
        try:
            locks = self.list_locks()
        except grpc.RpcError as error:
            self.history.write(t="probe", seq=seq, ts=start, result="rpc:" + error.code().name)
            return
        mine = self.find_session(locks)
        # Session 0: the marker came back from a state file, owned by no session.
        if mine is None or mine.session_id == 0:
            # Not the connection the marker was taken on (the server restarted).
            self.history.write(t="probe", seq=seq, ts=start, result="other_session")
            self.self_lock = None
            return
        phantoms = [
            {"key_prefix": holder.key_prefix, "token": holder.fencing_token}
            for lock in locks if lock.name == name
            for holder in lock.holders
            if holder.session_id == mine.session_id
            and not any(key.startswith(holder.key_prefix) for key, held_name in self.held.items() if held_name == name)
        ]
        self.history.write(t="probe", seq=seq, ts=start, result="checked", session=mine.session_id, phantoms=phantoms)

    # -- the loop ----------------------------------------------------------

    def run(self):
        try:
            while time.monotonic() < self.end:
                if self.self_lock is None:
                    self.mark_session()
                r = self.rng.random()
                if self.held and r < 0.30:
                    self.release()
                elif self.held and r < 0.45:
                    self.renew()
                elif self.dropped and r < 0.50:
                    self.stale()
                elif len(self.held) < 3:
                    self.acquire()
                pause = self.rng.random()
                time.sleep(0.3 * pause if pause > 0.9 else 0.02 * pause)
            for key, name in list(self.held.items()):
                del self.held[key]
                self.call("Unlock", self.pb.UnlockRequest(name=name, key=key), self.stub.Unlock, 2.0, name=name, key=key)
        finally:
            # Every lock of the session may end from here on: the close is its lower bound.
            self.history.write(t="closing", ts=time.monotonic())
            for channel, _, _ in self.channels.values():
                channel.close()


def main(argv):
    proto_dir, target, admin_password, history_path, end, seed, names = argv[1:8]
    sys.path.insert(0, proto_dir)
    import ldlm_pb2 as pb
    import ldlm_pb2_grpc as pbg
    import ldlm_admin_pb2 as apb
    import ldlm_admin_pb2_grpc as apbg

    history = History(history_path)
    history.write(t="hello", ts=time.monotonic(), pid=os.getpid())
    Worker(pb, pbg, apb, apbg, target, admin_password, history, float(end), random.Random(int(seed)),
           names.split(",")).run()


if __name__ == "__main__":
    main(sys.argv)
