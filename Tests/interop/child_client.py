"""A py-ldlm client run as a separate process (its own HTTP/2 connection).

    python child_client.py ADDRESS [--password P] COMMAND...

Commands, run in order:
    lock:NAME[:SIZE]   Lock (blocks until granted); prints "LOCKED NAME KEY"
                       or "NOTLOCKED NAME"
    wait:NAME[:SIZE]   prints "WAITING NAME" and then behaves like lock:
Then prints "READY" and stays alive (holding its connection) until stdin is
closed or 300 s pass.  The tests SIGKILL / SIGSTOP it.
"""
import select
import sys
import time


def main() -> int:
    argv = sys.argv[1:]
    address = argv.pop(0)
    password = None
    if argv and argv[0] == "--password":
        argv.pop(0)
        password = argv.pop(0)

    from ldlm import Client

    client = Client(address, password=password, retries=0, auto_renew_locks=False)
    for cmd in argv:
        op, _, rest = cmd.partition(":")
        name, _, size = rest.partition(":")
        size = int(size) if size else 0
        if op == "wait":
            print(f"WAITING {name}", flush=True)
            op = "lock"
        if op == "lock":
            lk = client.lock(name, size=size)
            if lk:
                print(f"LOCKED {name} {lk.key}", flush=True)
            else:
                print(f"NOTLOCKED {name}", flush=True)
        else:
            print(f"BADCOMMAND {cmd}", flush=True)
            return 2
    print("READY", flush=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 1.0)
        if r and not sys.stdin.readline():
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
