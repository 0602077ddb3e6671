"""Shared helpers for the interop suite (imported by conftest and tests)."""
from __future__ import annotations

import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
CHILD_SCRIPT = HERE / "child_client.py"

# Set by conftest's session fixture once the stubs are generated.
pb = None
pbg = None

_conn_ids = itertools.count(1)


# --------------------------------------------------------------------------
# generic utilities
# --------------------------------------------------------------------------

def kill_and_reap(proc: subprocess.Popen) -> int | None:
    """SIGKILL (after SIGCONT, in case it is stopped) and reap; the exit
    status, or None if it would not die within 10 s."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except OSError:
            pass
        try:
            proc.kill()
        except OSError:
            pass
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, interval: float = 0.05):
    """Call ``pred`` every ``interval`` s until it returns truthy or
    ``timeout`` elapses.  Returns ``(value, elapsed)``; value is the last
    (falsy) result on timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        v = pred()
        now = time.monotonic()
        if v:
            return v, now - start
        if now >= deadline:
            return v, now - start
        time.sleep(min(interval, max(0.0, deadline - now)))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_string_field(number: int, value: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(value)) + value


def pb_varint_field(number: int, value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    return varint(number << 3) + varint(value)


def grpc_frame(message: bytes) -> bytes:
    """Length-prefixed gRPC message (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


# --------------------------------------------------------------------------
# server process
# --------------------------------------------------------------------------

@dataclass
class ServerProc:
    proc: subprocess.Popen
    port: int
    args: list
    stderr_path: Path
    stdout_path: Path
    stopped_rc: int | None = field(default=None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self, tail: int | None = None) -> str:
        parts = []
        for label, p in (("stderr", self.stderr_path), ("stdout", self.stdout_path)):
            try:
                data = p.read_bytes().decode(errors="replace")
            except OSError:
                data = ""
            if tail is not None and len(data) > tail:
                data = "...\n" + data[-tail:]
            parts.append(f"--- {label} ---\n{data}")
        return "\n".join(parts)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def signal_and_wait(self, sig=signal.SIGTERM, timeout: float = 5.0):
        """Send ``sig`` to this PID and wait.  Returns the exit code, or None
        if it had to be killed with SIGKILL after ``timeout``."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        try:
            self.proc.send_signal(sig)
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.signal_and_wait(signal.SIGTERM, timeout=5.0)


def wait_for_port(s: ServerProc, timeout: float = 20.0):
    import pytest

    deadline = time.monotonic() + timeout
    while True:
        rc = s.proc.poll()
        if rc is not None:
            pytest.fail(f"ldlm-server exited with code {rc} before listening on {s.address}\n"
                        f"args: {s.args}\n{s.logs(tail=6000)}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            s.proc.kill()
            s.proc.wait(timeout=10)
            pytest.fail(f"ldlm-server did not accept connections on {s.address} within {timeout}s\n"
                        f"args: {s.args}\n{s.logs(tail=6000)}", pytrace=False)
        time.sleep(0.05)


# --------------------------------------------------------------------------
# grpcio connection
# --------------------------------------------------------------------------

RPC_TIMEOUT = 10.0
LOCK_RPC_TIMEOUT = 20.0


class Conn:
    """One grpcio channel with its own subchannel pool: its own HTTP/2
    connection, i.e. its own server-side session."""

    def __init__(self, pb_mod, pbg_mod, address: str, password: str | None = None):
        self.pb = pb_mod
        self.address = address
        self.id = next(_conn_ids)
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.use_local_subchannel_pool", 1),
                # distinct args => never shares a subchannel even in the global pool
                ("grpc.primary_user_agent", f"ldlm-interop-conn-{self.id}"),
                ("grpc.enable_retries", 0),
            ],
        )
        self.stub = pbg_mod.LDLMStub(self.channel)
        self.metadata = (("authorization", password),) if password is not None else None

    # -- request builders ---------------------------------------------------
    def lock_req(self, name, wait_timeout_seconds=None, lock_timeout_seconds=None, size=None):
        r = self.pb.LockRequest(name=name)
        if wait_timeout_seconds is not None:
            r.wait_timeout_seconds = wait_timeout_seconds
        if lock_timeout_seconds is not None:
            r.lock_timeout_seconds = lock_timeout_seconds
        if size is not None:
            r.size = size
        return r

    def try_lock_req(self, name, lock_timeout_seconds=None, size=None):
        r = self.pb.TryLockRequest(name=name)
        if lock_timeout_seconds is not None:
            r.lock_timeout_seconds = lock_timeout_seconds
        if size is not None:
            r.size = size
        return r

    def _md(self, metadata):
        return self.metadata if metadata is None else metadata

    # -- RPCs ----------------------------------------------------------------
    def lock(self, name, wait_timeout_seconds=None, lock_timeout_seconds=None, size=None,
             timeout=LOCK_RPC_TIMEOUT, metadata=None):
        return self.stub.Lock(self.lock_req(name, wait_timeout_seconds, lock_timeout_seconds, size),
                              timeout=timeout, metadata=self._md(metadata))

    def lock_future(self, name, wait_timeout_seconds=None, lock_timeout_seconds=None, size=None,
                    timeout=LOCK_RPC_TIMEOUT, metadata=None):
        return self.stub.Lock.future(self.lock_req(name, wait_timeout_seconds, lock_timeout_seconds, size),
                                     timeout=timeout, metadata=self._md(metadata))

    def try_lock(self, name, lock_timeout_seconds=None, size=None, timeout=RPC_TIMEOUT, metadata=None):
        return self.stub.TryLock(self.try_lock_req(name, lock_timeout_seconds, size),
                                 timeout=timeout, metadata=self._md(metadata))

    def unlock(self, name, key, timeout=RPC_TIMEOUT, metadata=None):
        return self.stub.Unlock(self.pb.UnlockRequest(name=name, key=key),
                                timeout=timeout, metadata=self._md(metadata))

    def renew(self, name, key, lock_timeout_seconds, timeout=RPC_TIMEOUT, metadata=None):
        return self.stub.Renew(self.pb.RenewRequest(name=name, key=key, lock_timeout_seconds=lock_timeout_seconds),
                               timeout=timeout, metadata=self._md(metadata))

    def refresh(self, name, key, lock_timeout_seconds, timeout=RPC_TIMEOUT, metadata=None):
        return self.stub.RefreshLock(
            self.pb.RefreshLockRequest(name=name, key=key, lock_timeout_seconds=lock_timeout_seconds),
            timeout=timeout, metadata=self._md(metadata))

    def renew_via(self, rpc: str, name, key, lock_timeout_seconds, **kw):
        """rpc is "Renew" or "RefreshLock"."""
        if rpc == "Renew":
            return self.renew(name, key, lock_timeout_seconds, **kw)
        if rpc == "RefreshLock":
            return self.refresh(name, key, lock_timeout_seconds, **kw)
        raise ValueError(rpc)

    def raw(self, path: str, payload: bytes, timeout=RPC_TIMEOUT, metadata=None) -> bytes:
        """Unary call with identity (bytes) serializers."""
        call = self.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        return call(payload, timeout=timeout, metadata=self._md(metadata))

    def can_lock(self, name, **kw) -> bool:
        """TryLock; True if it got the lock (the lock is then held by this conn)."""
        return self.try_lock(name, **kw).locked

    def close(self):
        try:
            self.channel.close()
        except Exception:
            pass


def rpc_code(fn, *args, **kw):
    """Run fn; return the grpc.StatusCode it failed with, or None on success."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code()
    return None


# --------------------------------------------------------------------------
# client in a separate process
# --------------------------------------------------------------------------

class ChildClient:
    """A separate python process running child_client.py.  Its stdout lines
    are read by a thread so ``expect`` can wait with a timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.history: list[str] = []
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, args=(proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    @classmethod
    def start(cls, address: str, commands: list, password: str | None = None) -> "ChildClient":
        args = [sys.executable, "-u", str(CHILD_SCRIPT), address]
        if password is not None:
            args += ["--password", password]
        args += [str(c) for c in commands]
        env = dict(os.environ)
        env.pop("GRPC_DNS_RESOLVER", None)
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        return cls(proc)

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _pump_err(self):
        for line in self.proc.stderr:
            self._stderr.append(line)

    def stderr(self) -> str:
        return "".join(self._stderr[-200:])

    def expect(self, prefix: str, timeout: float = 15.0) -> list[str]:
        """Wait for a stdout line starting with ``prefix``; return it split."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"child did not print {prefix!r} within {timeout}s; "
                                     f"got {self.history}; stderr:\n{self.stderr()}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise AssertionError(f"child exited (rc={self.proc.returncode}) before printing {prefix!r}; "
                                     f"got {self.history}; stderr:\n{self.stderr()}")
            self.history.append(line)
            if line.startswith(prefix):
                return line.split()

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGCONT (in case it is stopped) + SIGKILL, and reap."""
        kill_and_reap(self.proc)
        for s in (self.proc.stdin,):
            try:
                s.close()
            except Exception:
                pass


# --------------------------------------------------------------------------
# raw HTTP/2: frames grpcio would never send
# --------------------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x0, 0x1, 0x2, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
CANCEL, REFUSED_STREAM = 0x8, 0x7


def h2_frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def h2_settings(values: dict[int, int]) -> bytes:
    """A SETTINGS payload from ``{setting id: value}``."""
    return b"".join(key.to_bytes(2, "big") + value.to_bytes(4, "big") for key, value in values.items())


def _hpack_string_length(n: int) -> bytes:
    """An HPACK integer with a 7-bit prefix and the Huffman bit clear (RFC 7541 §5.1)."""
    if n < 127:
        return bytes([n])
    out = bytearray([127])
    n -= 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def hpack_literal(name: bytes, value: bytes) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    return b"\x00" + _hpack_string_length(len(name)) + name + _hpack_string_length(len(value)) + value


def grpc_request_block(path: bytes = b"/ldlm.LDLM/TryLock", extra: list[tuple[bytes, bytes]] = ()) -> bytes:
    """The header block of a unary gRPC request (never touches the HPACK dynamic table)."""
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path), (b":authority", b"localhost"),
              (b"content-type", b"application/grpc"), (b"te", b"trailers"), *extra]
    return b"".join(hpack_literal(n, v) for n, v in fields)


def grpc_request(stream_id: int, message: bytes, path: bytes = b"/ldlm.LDLM/TryLock") -> bytes:
    """HEADERS + DATA(END_STREAM) of a whole unary request."""
    return (h2_frame(HEADERS, END_HEADERS, stream_id, grpc_request_block(path))
            + h2_frame(DATA, END_STREAM, stream_id, grpc_frame(message)))


def header_block_frames(stream_id: int, block: bytes, flags: int = 0, frame_size: int = 16384) -> bytes:
    """``block`` as HEADERS + CONTINUATION frames of at most ``frame_size``
    bytes (the default SETTINGS_MAX_FRAME_SIZE), END_HEADERS on the last."""
    chunks = [block[i:i + frame_size] for i in range(0, len(block), frame_size)] or [b""]
    return b"".join(
        h2_frame(HEADERS if i == 0 else CONTINUATION,
                 (flags if i == 0 else 0) | (END_HEADERS if i == len(chunks) - 1 else 0), stream_id, chunk)
        for i, chunk in enumerate(chunks))


@dataclass
class H2Frame:
    kind: int
    flags: int
    stream_id: int
    payload: bytes
    headers: dict | None = None  # decoded, for HEADERS


class RawH2:
    """One HTTP/2 connection on a plain socket: sends whatever bytes it is
    given and parses what the server answers (HPACK via the ``hpack`` package,
    since nghttp2 Huffman-codes its fields)."""

    def __init__(self, port: int, *, source_host: str = "127.0.0.1", settings: bytes = b"",
                 receive_buffer: int | None = None, preface: bytes | None = None):
        import hpack

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.bind((source_host, 0))
        self.sock.connect(("127.0.0.1", port))
        self.frames: list[H2Frame] = []
        self.closed = False
        self._pending = b""
        self._decoder = hpack.Decoder()
        self.send(H2_PREFACE + h2_frame(SETTINGS, 0, 0, settings) if preface is None else preface)

    def send(self, data: bytes, timeout: float = 5.0) -> bool:
        """False once the server has closed the connection (or stopped reading
        it for ``timeout``)."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return False

    def read(self, seconds: float, until=None) -> "RawH2":
        """Reads for up to ``seconds`` (0: what is already there), or until
        ``until(self)`` holds or the server closes the connection."""
        deadline = time.monotonic() + seconds
        while not self.closed and not (until and until(self)):
            remaining = deadline - time.monotonic()
            self.sock.settimeout(max(remaining, 0.0))
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, socket.timeout):
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._parse(chunk)
        return self

    def discard_input(self):
        """Reads and drops whatever has arrived, for floods whose answers do
        not matter; notes whether the server closed the connection."""
        self.sock.settimeout(0.0)
        while not self.closed:
            try:
                self.closed = self.sock.recv(1 << 20) == b""
            except BlockingIOError:
                return
            except ConnectionResetError:
                self.closed = True

    def _parse(self, chunk: bytes):
        data = self._pending + chunk
        offset = 0
        while offset + 9 <= len(data):
            length = int.from_bytes(data[offset:offset + 3], "big")
            if offset + 9 + length > len(data):
                break
            kind, flags = data[offset + 3], data[offset + 4]
            stream_id = int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFFFFFF
            payload = data[offset + 9:offset + 9 + length]
            frame = H2Frame(kind, flags, stream_id, payload)
            if kind == HEADERS:
                frame.headers = {k: v for k, v in self._decoder.decode(payload, raw=False)}
            self.frames.append(frame)
            offset += 9 + length
        self._pending = data[offset:]

    def sync(self, timeout: float = 10.0) -> bool:
        """Sends a PING and waits for its ACK: the server has then processed
        everything sent before it."""
        opaque = os.urandom(8)
        self.send(h2_frame(PING, 0, 0, opaque))
        acked = lambda c: any(f.kind == PING and f.flags & ACK and f.payload == opaque for f in c.frames)  # noqa: E731
        return acked(self.read(timeout, until=acked))

    def goaway_code(self) -> int | None:
        for f in self.frames:
            if f.kind == GOAWAY:
                return int.from_bytes(f.payload[4:8], "big")
        return None

    def reset_code(self, stream_id: int) -> int | None:
        for f in self.frames:
            if f.kind == RST_STREAM and f.stream_id == stream_id:
                return int.from_bytes(f.payload[:4], "big")
        return None

    def grpc_status(self, stream_id: int) -> tuple[int, str] | None:
        """``(grpc-status, grpc-message)`` once the stream's trailers arrived."""
        for f in self.frames:
            if f.kind == HEADERS and f.stream_id == stream_id and f.headers and "grpc-status" in f.headers:
                return int(f.headers["grpc-status"]), f.headers.get("grpc-message", "")
        return None

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# the server process's resources
# --------------------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
