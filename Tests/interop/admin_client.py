"""An admin client for the interop suite: a grpcio stub of
ldlm.admin.v1.Admin on its own connection, and helpers for the Unix socket."""
from __future__ import annotations

import itertools
import os

import grpc

from helpers import wait_until

_channel_ids = itertools.count()


class Admin:
    """An admin stub on its own connection: over the Unix socket
    (``unix:PATH``), plain TCP, or TLS with ``credentials``."""

    def __init__(self, protos, target, password=None, credentials=None):
        self.pb, pbg = protos
        options = [
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.primary_user_agent", f"ldlm-admin-{next(_channel_ids)}"),
            ("grpc.enable_retries", 0),
        ]
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=options)
        self.stub = pbg.AdminStub(self.channel)
        self.metadata = (("authorization", password),) if password is not None else None

    def list_locks(self):
        return self.stub.ListLocks(self.pb.ListLocksRequest(), timeout=10, metadata=self.metadata).locks

    def locks_by_name(self):
        return {lock.name: lock for lock in self.list_locks()}

    def list_sessions(self):
        return self.stub.ListSessions(self.pb.ListSessionsRequest(), timeout=10, metadata=self.metadata).sessions

    def force_unlock(self, name, key=""):
        request = self.pb.ForceUnlockRequest(name=name, key=key)
        return self.stub.ForceUnlock(request, timeout=10, metadata=self.metadata).released

    def end_session(self, session_id):
        request = self.pb.EndSessionRequest(session_id=session_id)
        return self.stub.EndSession(request, timeout=10, metadata=self.metadata).released_locks

    def close(self):
        self.channel.close()


def start_with_socket(start_server, path, *flags):
    server = start_server("--ipc_socket_file", path, *flags)
    assert wait_until(lambda: os.path.exists(path), timeout=5)[0], "socket file never appeared"
    return server


def wait_for_waiters(admin_conn, name, count):
    def waiting():
        lock = admin_conn.locks_by_name().get(name)
        return lock is not None and lock.waiters == count
    assert wait_until(waiting, timeout=5)[0], f"{name} never had {count} waiter(s)"
