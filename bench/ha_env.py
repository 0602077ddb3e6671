"""What the HA benchmarks (bench/ha_compare.py, bench/chaos.py --ha) need on
top of Tests/interop/ha_cluster.py (the 3-member etcd cluster and the
ldlm-server replica sets, started and stopped by PID): Python stubs for
ldlm.proto, and the client side of a replica set — where an UNAVAILABLE
answer from a standby says the primary is (`ldlm-primary` trailer).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "Tests" / "interop"))

from ha_cluster import EtcdCluster, ReplicaSet, PRIMARY, STANDBY, DOWN  # noqa: E402,F401


def stub_dir():
    return os.environ.get("ETCD_STUB_DIR") or str(Path(tempfile.gettempdir()) / f"ldlm-etcd-stubs-{os.getuid()}")


def ldlm_stubs(out: Path):
    """ldlm.proto and ldlm_admin.proto Python stubs in `out`, importable."""
    out = Path(out)
    if not (out / "ldlm_admin_pb2_grpc.py").exists():
        out.mkdir(parents=True, exist_ok=True)
        for proto in ("ldlm.proto", "ldlm_admin.proto"):
            subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'Protos'}", f"--python_out={out}",
                            f"--grpc_python_out={out}", str(REPO / "Protos" / proto)], check=True, timeout=60)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    import ldlm_pb2, ldlm_pb2_grpc  # noqa: E401
    return ldlm_pb2, ldlm_pb2_grpc


def primary_hint(error):
    """host:port from an UNAVAILABLE answer's `ldlm-primary` trailer, or None."""
    try:
        for key, value in error.trailing_metadata() or ():
            if key == "ldlm-primary":
                return value if isinstance(value, str) else value.decode()
    except Exception:
        pass
    return None


def next_target(addresses, current, error=None):
    """Where to send the next call after `error` from `current`: the
    trailer's primary when a standby named one other than `current`, else the
    next address in the list."""
    hint = primary_hint(error) if error is not None else None
    if hint and hint != current:
        return hint
    i = addresses.index(current) if current in addresses else -1
    return addresses[(i + 1) % len(addresses)]
