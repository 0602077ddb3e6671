"""Load against etcd's own services, for bench/ha_compare.py.

  etcd_load.py lockpairs ENDPOINT --concurrency N [--processes P] [--duration S] [--warmup S]
      v3lockpb.Lock/Lock + Lock/Unlock pairs on distinct names (one lease per
      worker, granted before the clock starts), N workers spread over P
      processes, each process a grpc.aio event loop. Prints one JSON object:
      pairs/s, latency percentiles of a pair, errors and the client's CPU use.
  etcd_load.py txn-h2load ENDPOINT [--duration S]
      The same Txn and Status, sent by h2load (one connection, one call at a
      time), percentiles from its per-request log: no Python in the timing.
  etcd_load.py txn ENDPOINT [--duration S] [--warmup S]
      One client, one Txn at a time, each a single unconditional Put: the
      latency of one committed etcd write; also the round trip of
      Maintenance/Status (answered locally, no raft) as the client's own floor.

Every loop ends at its deadline; every call has a gRPC timeout.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import etcd_stubs  # noqa: E402

STUB_DIR = os.environ.get("ETCD_STUB_DIR") or str(Path(tempfile.gettempdir()) / f"ldlm-etcd-stubs-{os.getuid()}")


def percentiles(samples):
    if not samples:
        return {}
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000
    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": s[-1] * 1000, "count": len(s)}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def lock_process(endpoint, index, workers, warmup, duration, lease_ttl):
    import grpc
    rpc_pb2, rpc_grpc, lock_pb2, lock_grpc = etcd_stubs.load(STUB_DIR)
    channel = grpc.aio.insecure_channel(endpoint)
    lease = rpc_grpc.LeaseStub(channel)
    locks = lock_grpc.LockStub(channel)
    leases = []
    for _ in range(workers):
        r = await lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=lease_ttl), timeout=10)
        leases.append(r.ID)
    start = time.monotonic() + warmup
    end = start + duration
    counts = [0] * workers
    latencies = []
    errors = {}

    async def worker(w):
        name = f"bench/lock/{index}-{w}".encode()
        while (now := time.monotonic()) < end:
            try:
                got = await locks.Lock(lock_pb2.LockRequest(name=name, lease=leases[w]), timeout=5)
                await locks.Unlock(lock_pb2.UnlockRequest(key=got.key), timeout=5)
            except grpc.aio.AioRpcError as e:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1
                await asyncio.sleep(0.01)
                continue
            done = time.monotonic()
            if now >= start and done <= end:
                counts[w] += 1
                latencies.append(done - now)

    await asyncio.sleep(max(0, start - warmup - time.monotonic()))
    cpu_at_start = None

    async def mark():
        nonlocal cpu_at_start
        await asyncio.sleep(max(0, start - time.monotonic()))
        cpu_at_start = cpu_seconds()

    marker = asyncio.ensure_future(mark())
    await asyncio.gather(*(worker(w) for w in range(workers)))
    await marker
    cpu = cpu_seconds() - cpu_at_start
    for lease_id in leases:
        try:
            await lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id), timeout=5)
        except grpc.aio.AioRpcError:
            pass
    await channel.close()
    return {"pairs": sum(counts), "latencies": latencies, "errors": errors, "cpu": cpu}


def run_lock_process(args):
    endpoint, index, workers, warmup, duration, lease_ttl, t0 = args
    # All processes start measuring at the same instant.
    return asyncio.run(lock_process(endpoint, index, workers, max(0.0, t0 - time.monotonic()), duration, lease_ttl))


def lockpairs(a):
    etcd_stubs.load(STUB_DIR)  # generate once, before the processes
    per = [a.concurrency // a.processes + (1 if i < a.concurrency % a.processes else 0) for i in range(a.processes)]
    t0 = time.monotonic() + a.warmup + 1.0  # + the lease grants
    ttl = int(a.warmup + a.duration + 60)
    with multiprocessing.get_context("spawn").Pool(a.processes) as pool:
        results = pool.map(run_lock_process, [(a.endpoint, i, n, 0, a.duration, ttl, t0) for i, n in enumerate(per) if n])
    pairs = sum(r["pairs"] for r in results)
    errors = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    cpu = sum(r["cpu"] for r in results)
    print(json.dumps({
        "service": "etcd v3lock", "concurrency": a.concurrency, "processes": a.processes,
        "pairs_per_second": pairs / a.duration, "pairs": pairs, "seconds": a.duration,
        "pair_latency_ms": percentiles([x for r in results for x in r["latencies"]]),
        "errors": errors, "client_cpu_seconds": cpu, "client_cores": cpu / a.duration,
    }))


def txn(a):
    import grpc
    rpc_pb2, rpc_grpc, _, _ = etcd_stubs.load(STUB_DIR)
    channel = grpc.insecure_channel(a.endpoint)
    kv = rpc_grpc.KVStub(channel)
    maintenance = rpc_grpc.MaintenanceStub(channel)

    def loop(call, seconds):
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(samples) < 1_000_000:
            t = time.monotonic()
            call()
            samples.append(time.monotonic() - t)
        return samples

    request = rpc_pb2.TxnRequest(success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"bench/txn", value=b"x" * 32))])
    txn_call = lambda: kv.Txn(request, timeout=5)
    status_call = lambda: maintenance.Status(rpc_pb2.StatusRequest(), timeout=5)
    loop(txn_call, a.warmup)
    cpu0 = cpu_seconds()
    txns = loop(txn_call, a.duration)
    cpu = cpu_seconds() - cpu0
    statuses = loop(status_call, min(a.duration, 3))
    channel.close()
    print(json.dumps({"txn_put_ms": percentiles(txns), "status_ms": percentiles(statuses),
                      "client_cpu_seconds": cpu, "seconds": a.duration}))


def grpc_frame(message) -> bytes:
    body = message.SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def txn_h2load(a):
    """The same Txn, sent by h2load (C, nghttp2) one at a time on one
    connection, its per-request log giving the percentiles: etcd's commit
    latency without the Python client's own time. Also Maintenance/Status, the
    round trip without raft. Each body is first sent once with nghttp, whose
    trailers must say grpc-status 0."""
    import subprocess
    rpc_pb2, _, _, _ = etcd_stubs.load(STUB_DIR)
    work = Path(tempfile.mkdtemp(prefix="etcd-h2load-"))
    calls = {
        "txn_put_ms": ("/etcdserverpb.KV/Txn", rpc_pb2.TxnRequest(success=[rpc_pb2.RequestOp(
            request_put=rpc_pb2.PutRequest(key=b"bench/txn-h2load", value=b"x" * 32))])),
        # The shape of a primary's hand-off commit: a guard compare, the
        # released hold deleted, the granted hold and the fencing high-water put.
        "txn_handoff_shape_ms": ("/etcdserverpb.KV/Txn", rpc_pb2.TxnRequest(
            compare=[rpc_pb2.Compare(key=b"bench/guard", target=rpc_pb2.Compare.VERSION,
                                     result=rpc_pb2.Compare.EQUAL, version=0)],
            success=[rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"bench/hold/a")),
                     rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"bench/hold/b", value=b"x" * 40)),
                     rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"bench/fencing", value=b"x" * 8))])),
        "status_ms": ("/etcdserverpb.Maintenance/Status", rpc_pb2.StatusRequest()),
    }
    out = {"client": "h2load -c 1 -m 1", "seconds": a.duration, "commands": []}
    headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    try:
        for field, (path, message) in calls.items():
            body = work / (field + ".bin")
            body.write_bytes(grpc_frame(message))
            url = f"http://{a.endpoint}{path}"
            check = subprocess.run(["nghttp", "-v", "-d", str(body), *headers, url], capture_output=True, errors="replace",
                                   text=True, timeout=30)
            if "grpc-status: 0" not in check.stdout:
                raise SystemExit(f"etcd did not answer {path} with grpc-status 0:\n{check.stdout[-1500:]}")
            log = work / (field + ".tsv")
            seconds = a.duration if field != "status_ms" else min(a.duration, 3)
            cmd = ["h2load", "-D", str(int(seconds)), "--warm-up-time", str(int(a.warmup)), "-c", "1", "-m", "1",
                   "-d", str(body), *headers, "--log-file", str(log), url]
            out["commands"].append(shlex.join(cmd).replace(str(work), "$tmp"))
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + a.warmup + 60)
            if r.returncode != 0:
                raise SystemExit(f"h2load failed: {r.stdout[-800:]} {r.stderr[-800:]}")
            rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
            ok = [int(row[2]) / 1e6 for row in rows if row[1] == "200"]
            out[field] = percentiles(ok)
            out[field + "_non_200"] = len(rows) - len(ok)
    finally:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    print(json.dumps(out))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("lockpairs")
    lp.add_argument("endpoint")
    lp.add_argument("--concurrency", type=int, default=16)
    lp.add_argument("--processes", type=int, default=2)
    lp.add_argument("--duration", type=float, default=8)
    lp.add_argument("--warmup", type=float, default=2)
    tp = sub.add_parser("txn")
    tp.add_argument("endpoint")
    tp.add_argument("--duration", type=float, default=8)
    tp.add_argument("--warmup", type=float, default=1)
    hp = sub.add_parser("txn-h2load")
    hp.add_argument("endpoint")
    hp.add_argument("--duration", type=float, default=8)
    hp.add_argument("--warmup", type=float, default=1)
    a = p.parse_args(argv)
    {"lockpairs": lockpairs, "txn": txn, "txn-h2load": txn_h2load}[a.command](a)


if __name__ == "__main__":
    main(sys.argv[1:])
