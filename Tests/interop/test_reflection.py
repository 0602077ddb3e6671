"""gRPC server reflection as clients use it without the .proto files:
grpcio-reflection's ``ProtoReflectionDescriptorDatabase`` (v1alpha, what
grpcurl's ``list`` / ``describe`` do) to build a working stub, raw v1 calls
with messages generated from ``Protos/reflection.proto``, the password, and a
client that floods a reflection stream without reading the answers."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import PROTOS, _import_generated
from helpers import ACK, DATA, END_HEADERS, HEADERS, RST_STREAM, SETTINGS, RawH2, grpc_frame, grpc_request_block, h2_frame, pb_string_field, rss_bytes
from test_hostile import Bystander

SERVICES = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "ldlm.LDLM",
    "ldlm.admin.v1.Admin",
]
V1_PATH = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


@pytest.fixture
def channel():
    channels = []

    def make(server, password=None):
        ch = grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        if password is not None:
            ch = grpc.intercept_channel(ch, _Authorization(password))
        channels.append(ch)
        return ch

    yield make
    for ch in channels:
        ch.close()


class _Authorization(grpc.StreamStreamClientInterceptor, grpc.UnaryUnaryClientInterceptor):
    def __init__(self, password):
        self.password = password

    def _with_password(self, details):
        metadata = list(details.metadata or []) + [("authorization", self.password)]
        return details._replace(metadata=metadata)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_password(details), requests)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_password(details), request)


@pytest.fixture(scope="session")
def reflection_v1(tmp_path_factory):
    """``reflection_pb2`` generated from our ``Protos/reflection.proto`` (package
    grpc.reflection.v1, which grpcio-reflection 1.85 does not ship), in a
    private descriptor pool."""
    out = tmp_path_factory.mktemp("reflection_v1")
    result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out}",
                             str(PROTOS / "reflection.proto")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    generated = out / "reflection_pb2.py"
    generated.write_text(generated.read_text().replace("_descriptor_pool.Default()", "_descriptor_pool.DescriptorPool()"))
    (module,) = _import_generated(out, "reflection_pb2")
    return module


def test_grpcio_reflection_lists_describes_and_builds_a_working_stub(start_server, channel):
    server = start_server()
    database = ProtoReflectionDescriptorDatabase(channel(server))
    assert sorted(database.get_services()) == SERVICES

    pool = DescriptorPool(database)
    ldlm = pool.FindServiceByName("ldlm.LDLM")
    assert [m.name for m in ldlm.methods] == ["Lock", "TryLock", "Unlock", "RefreshLock", "Renew"]
    try_lock = ldlm.FindMethodByName("TryLock")
    assert try_lock.input_type.full_name == "ldlm.TryLockRequest"
    response_type = pool.FindMessageTypeByName("ldlm.LockResponse")
    assert response_type.fields_by_name["fencing_token"].number == 1000
    # The real schema, not codegen's rewrite for protoc-c: `optional` stays optional.
    request_type = pool.FindMessageTypeByName("ldlm.TryLockRequest")
    assert request_type.fields_by_name["size"].has_presence

    TryLockRequest = message_factory.GetMessageClass(request_type)
    LockResponse = message_factory.GetMessageClass(response_type)
    call = channel(server).unary_unary("/ldlm.LDLM/TryLock", request_serializer=TryLockRequest.SerializeToString,
                                       response_deserializer=LockResponse.FromString)
    reply = call(TryLockRequest(name="reflected", size=1), timeout=5)
    assert reply.locked and reply.name == "reflected" and reply.key
    assert reply.fencing_token > 0
    again = call(TryLockRequest(name="reflected"), timeout=5)
    assert not again.locked, "the reflected stub talks to the real lock table"


def _v1_call(reflection_v1, ch):
    return ch.stream_stream(V1_PATH, request_serializer=reflection_v1.ServerReflectionRequest.SerializeToString,
                            response_deserializer=reflection_v1.ServerReflectionResponse.FromString)


def test_v1_answers_each_request_of_one_stream_in_order(start_server, channel, reflection_v1):
    server = start_server()
    Request = reflection_v1.ServerReflectionRequest
    requests = [
        Request(list_services=""),
        Request(file_containing_symbol="ldlm.LDLM.TryLock"),
        Request(file_containing_symbol="ldlm.admin.v1.ListLocksResponse"),
        Request(file_by_filename="health.proto"),
        Request(file_containing_symbol="ldlm.Nope"),
        Request(all_extension_numbers_of_type="ldlm.LockRequest"),
        Request(file_containing_extension=reflection_v1.ExtensionRequest(containing_type="ldlm.LockRequest", extension_number=5)),
    ]
    answers = list(_v1_call(reflection_v1, channel(server))(iter(requests), timeout=10))
    assert len(answers) == len(requests)
    assert [a.original_request for a in answers] == requests

    assert sorted(s.name for s in answers[0].list_services_response.service) == SERVICES

    def files(answer):
        return [descriptor_pb2.FileDescriptorProto.FromString(b) for b in answer.file_descriptor_response.file_descriptor_proto]

    (ldlm,) = files(answers[1])
    assert ldlm.name == "ldlm.proto" and ldlm.package == "ldlm"
    assert [m.name for m in ldlm.service[0].method] == ["Lock", "TryLock", "Unlock", "RefreshLock", "Renew"]
    assert [f.name for f in files(answers[2])] == ["ldlm_admin.proto"]
    assert [f.package for f in files(answers[3])] == ["grpc.health.v1"]
    assert answers[4].error_response.error_code == NOT_FOUND
    assert "ldlm.Nope" in answers[4].error_response.error_message
    assert answers[5].all_extension_numbers_response.base_type_name == "ldlm.LockRequest"
    assert list(answers[5].all_extension_numbers_response.extension_number) == []
    assert answers[6].error_response.error_code == NOT_FOUND


def test_a_garbage_request_ends_the_stream_invalid_argument(start_server, channel):
    server = start_server()
    call = channel(server).stream_stream(V1_PATH, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as refused:
        list(call(iter([b"\xff\xff\xff"]), timeout=5))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_reflection_needs_the_lock_password(start_server, channel, reflection_v1):
    server = start_server("--password", "s3cret")
    request = reflection_v1.ServerReflectionRequest(list_services="")
    with pytest.raises(grpc.RpcError) as refused:
        list(_v1_call(reflection_v1, channel(server))(iter([request]), timeout=5))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    (answer,) = _v1_call(reflection_v1, channel(server, password="s3cret"))(iter([request]), timeout=5)
    assert len(answer.list_services_response.service) == len(SERVICES)


def test_a_flood_of_requests_whose_answers_are_never_read_keeps_memory_bounded(start_server, connect):
    """Each request asks for ldlm.proto (about 5 KB of answer for 16 bytes of
    request): answering all of them into a client that does not read would
    queue hundreds of MiB. The server stops taking the stream's requests once
    64 KiB of answers wait, and flow control then stops the client."""
    server = start_server()
    rss_before = rss_bytes(server.pid)
    request = grpc_frame(pb_string_field(4, b"ldlm.LDLM"))
    # 60,000 requests: just under the 1 MiB the server's stream window lets a client send.
    per_frame = 16384 // len(request)
    attacker = RawH2(server.port)
    # Acknowledged, the server's SETTINGS open its 1 MiB stream window (65,535 bytes before).
    assert attacker.send(h2_frame(SETTINGS, ACK, 0) + h2_frame(HEADERS, END_HEADERS, 1, grpc_request_block(V1_PATH.encode())))
    with Bystander(server, connect):
        for _ in range(60_000 // per_frame):
            assert attacker.send(h2_frame(DATA, 0, 1, request * per_frame)), "the server closed the connection"
        attacker.sync()
    growth = rss_bytes(server.pid) - rss_before
    assert growth < 32 * 2**20, f"server RSS grew by {growth / 2**20:.1f} MiB"
    assert not any(f.kind == RST_STREAM for f in attacker.frames), "the stream stays open, within flow control"
    answered = sum(len(f.payload) for f in attacker.frames if f.kind == DATA and f.stream_id == 1)
    assert 0 < answered <= 70_000, "answers go out only as the client's 64 KiB window allows"
    assert not attacker.closed, "flow control, not a disconnect, holds the client back"
