"""gRPC health checking (grpc.health.v1.Health) with the stubs of the
``grpcio-health-checking`` package, as load balancers and Kubernetes probes
use it: Check without the lock password, and a Watch that hears NOT_SERVING
when the server starts draining."""
from __future__ import annotations

import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpers import END_HEADERS, HEADERS, RawH2, grpc_request_block, h2_frame

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


@pytest.fixture
def health_stub():
    channels = []

    def make(server) -> health_pb2_grpc.HealthStub:
        channel = grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        channels.append(channel)
        return health_pb2_grpc.HealthStub(channel)

    yield make
    for channel in channels:
        channel.close()


def _request(service: str = "") -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest(service=service)


def test_check_is_serving_without_the_lock_password(start_server, health_stub, connect):
    s = start_server("--password", "s3cret")
    stub = health_stub(s)
    assert stub.Check(_request(), timeout=5).status == SERVING
    assert stub.Check(_request("ldlm.LDLM"), timeout=5).status == SERVING
    with pytest.raises(grpc.RpcError) as refused:
        connect(s).try_lock("health-no-password")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, "the lock service still needs the password"


def test_check_of_an_unknown_service_is_not_found(start_server, health_stub):
    stub = health_stub(start_server())
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Check(_request("ldlm.Nope"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_watch_of_an_unknown_service_answers_service_unknown_and_stays_open(start_server, health_stub):
    watch = health_stub(start_server()).Watch(_request("ldlm.Nope"), timeout=10)
    assert next(watch).status == SERVICE_UNKNOWN
    time.sleep(0.5)
    assert not watch.done(), "the server keeps the watch open"
    watch.cancel()


def test_watch_hears_not_serving_when_the_server_drains(start_server, health_stub):
    s = start_server("--shutdown_timeout", "10s")
    stub = health_stub(s)
    assert stub.Check(_request(), timeout=5).status == SERVING
    watch = stub.Watch(_request("ldlm.LDLM"), timeout=15)
    assert next(watch).status == SERVING

    # A call whose body never comes keeps the drain going until this closes.
    holder = RawH2(s.port)
    holder.send(h2_frame(HEADERS, END_HEADERS, 1, grpc_request_block(b"/ldlm.LDLM/Lock")))
    assert holder.sync()

    s.proc.send_signal(signal.SIGTERM)
    assert next(watch).status == NOT_SERVING
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as ended:
        next(watch)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, "the drain ends the watch after NOT_SERVING"
    assert time.monotonic() - t0 < 2, "ended by the drain at once, not by the shutdown timeout"
    assert s.proc.poll() is None, "the server was still draining"

    holder.close()
    assert s.proc.wait(timeout=5) == 0
