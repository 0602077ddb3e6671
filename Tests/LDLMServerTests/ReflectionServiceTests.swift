import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import NIOCore
import XCTest

@testable import LDLMServer

/// gRPC server reflection through the whole connection pipeline, under both
/// package names.
final class ReflectionServiceTests: XCTestCase {
    private let v1 = "grpc.reflection.v1.ServerReflection"
    private let v1alpha = "grpc.reflection.v1alpha.ServerReflection"
    private let notFound = Int32(GRPCStatus.Code.notFound.rawValue)

    /// Sends `queries` on one stream, half-closes, and returns the answers.
    private func ask(
        _ queries: [ServerReflectionRequest.Query?],
        service: String? = nil,
        client: EmbeddedClient,
        metadata: [HTTP2Header] = []
    ) throws -> (answers: [ServerReflectionResponse], status: (code: Int, message: String?)?) {
        let requests = queries.map { ServerReflectionRequest(host: "localhost", query: $0) }
        let headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/\(service ?? v1)/ServerReflectionInfo"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ] + metadata
        let body = requests.flatMap { GRPCMessageFraming.frame($0.serializedBytes()) }
        let streamID = try client.http2.sendRequest(headers: headers, body: body)
        try client.exchange()
        return (try client.messages(of: streamID, as: ServerReflectionResponse.self), client.status(of: streamID))
    }

    /// The names of the FileDescriptorProtos in a file answer (field 1).
    private func fileNames(_ answer: ServerReflectionResponse.Answer?) -> [String] {
        guard case .fileDescriptors(let files) = answer else { return [] }
        return files.map { file in
            // Field 1, length-delimited, is written first by protoc.
            XCTAssertEqual(file.first, 0x0A)
            let length = Int(file[1])
            return String(decoding: file[2..<(2 + length)], as: UTF8.self)
        }
    }

    func testListServicesNamesEveryServedServiceUnderBothVersions() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let expected = [
            "grpc.health.v1.Health", v1, v1alpha, "ldlm.LDLM", "ldlm.admin.v1.Admin",
        ]
        for service in [v1, v1alpha] {
            let (answers, status) = try ask([.listServices("")], service: service, client: client)
            XCTAssertEqual(answers.map(\.answer), [.services(expected)], service)
            XCTAssertEqual(status?.code, 0, "the call ends OK once the client half-closes")
        }
    }

    func testEachRequestOnOneStreamIsAnsweredInOrder() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let queries: [ServerReflectionRequest.Query] = [
            .fileContainingSymbol("ldlm.LDLM"),
            .fileContainingSymbol("ldlm.LDLM.TryLock"),
            .fileContainingSymbol("ldlm.LockRequest.wait_timeout_seconds"),
            .fileContainingSymbol("ldlm.LockWaitTimeout"),
            .fileContainingSymbol("grpc.health.v1.HealthCheckResponse.ServingStatus"),
            .fileContainingSymbol("ldlm.admin.v1.Admin.ForceUnlock"),
            .fileByFilename("reflection_v1alpha.proto"),
        ]
        let (answers, status) = try ask(queries, client: client)
        XCTAssertEqual(answers.map { fileNames($0.answer) }, [
            ["ldlm.proto"], ["ldlm.proto"], ["ldlm.proto"], ["ldlm.proto"], ["health.proto"], ["ldlm_admin.proto"],
            ["reflection_v1alpha.proto"],
        ])
        XCTAssertEqual(answers.map(\.originalRequest?.query), queries, "each answer names its request")
        XCTAssertEqual(answers.map(\.validHost), Array(repeating: "localhost", count: queries.count))
        XCTAssertEqual(status?.code, 0)
    }

    func testTheServedDescriptorIsTheOriginalProtoWithItsOptionalFields() throws {
        let ldlm = try XCTUnwrap(ReflectionDescriptors.generated.descriptors(ofFile: "ldlm.proto")?.first)
        // proto3 `optional` shows as the field's proto3_optional flag (17) and
        // a synthetic oneof, not as the oneof codegen rewrites it into for protoc-c.
        XCTAssertTrue(ReflectionDescriptors.generated.descriptors(declaring: "ldlm.LockRequest._size") != nil)
        let proto3OptionalTrue: [UInt8] = [0x88, 0x01, 0x01]
        XCTAssertTrue(ldlm.indices.dropLast(2).contains { Array(ldlm[$0..<($0 + 3)]) == proto3OptionalTrue }, "proto3_optional = true is set")
        XCTAssertTrue(String(decoding: ldlm, as: UTF8.self).contains("fencing token of this hold"), "comments are kept")
    }

    func testUnknownNamesAndExtensionsGetNotFoundAndTheStreamGoesOn() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let (answers, status) = try ask([
            .fileContainingSymbol("ldlm.Nope"),
            .fileByFilename("nope.proto"),
            .fileContainingExtension(containingType: "ldlm.LockRequest", extensionNumber: 100),
            .allExtensionNumbersOfType("ldlm.LockRequest"),
            .allExtensionNumbersOfType("ldlm.Nope"),
            .listServices(""),
        ], client: client)
        XCTAssertEqual(answers.count, 6)
        XCTAssertEqual(answers[0].answer, .error(code: notFound, message: #"symbol "ldlm.Nope" not found"#))
        XCTAssertEqual(answers[1].answer, .error(code: notFound, message: #"file "nope.proto" not found"#))
        guard case .error(notFound, _) = answers[2].answer else { return XCTFail("\(String(describing: answers[2].answer))") }
        XCTAssertEqual(answers[3].answer, .extensionNumbers(baseTypeName: "ldlm.LockRequest", numbers: []))
        XCTAssertEqual(answers[4].answer, .error(code: notFound, message: #"message type "ldlm.Nope" not found"#))
        guard case .services = answers[5].answer else { return XCTFail("the stream stopped answering") }
        XCTAssertEqual(status?.code, 0)
    }

    func testAGarbageMessageEndsTheStreamWithInvalidArgument() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/\(v1)/ServerReflectionInfo"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ]
        let streamID = try client.http2.sendRequest(headers: headers, body: GRPCMessageFraming.frame([0xFF, 0xFF, 0xFF]))
        try client.exchange()
        XCTAssertEqual(client.status(of: streamID)?.code, GRPCStatus.Code.invalidArgument.rawValue)

        let (answers, _) = try ask([.listServices("")], client: client)
        XCTAssertEqual(answers.count, 1, "the connection goes on serving")
    }

    func testThePasswordGuardsReflectionButNotOnTheUnixSocket() throws {
        let server = EmbeddedServer { $0.password = "s3cret" }
        let refused = try ask([.listServices("")], client: try server.connect())
        XCTAssertEqual(refused.answers, [])
        XCTAssertEqual(refused.status?.code, GRPCStatus.Code.unauthenticated.rawValue)

        let admitted = try ask([.listServices("")], client: try server.connect(), metadata: [HTTP2Header("authorization", "s3cret")])
        XCTAssertEqual(admitted.answers.count, 1)
        let local = try ask([.listServices("")], client: try server.connect(overUnixSocket: true))
        XCTAssertEqual(local.answers.count, 1)
    }

    func testEveryServedServiceAndItsMethodsAreDescribed() throws {
        let server = EmbeddedServer()
        for service in server.services {
            XCTAssertNotNil(ReflectionDescriptors.generated.descriptors(declaring: service.serviceName), service.serviceName)
            for method in Array(service.methods.keys) + Array(service.requestStreamMethods.keys) {
                XCTAssertNotNil(ReflectionDescriptors.generated.descriptors(declaring: "\(service.serviceName).\(method)"), method)
            }
        }
    }

    func testTheDrainEndsAnOpenReflectionStream() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let headers = HTTP2HeaderBlock([
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/\(v1)/ServerReflectionInfo"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ])
        let streamID = try client.http2.beginStreamingRequest(headers: headers)
        client.http2.sendData(streamID: streamID, GRPCMessageFraming.frame(ServerReflectionRequest(query: .listServices("")).serializedBytes()))
        try client.exchange()
        XCTAssertEqual(try client.messages(of: streamID, as: ServerReflectionResponse.self).count, 1)
        XCTAssertNil(client.status(of: streamID), "open until the client half-closes")

        server.manager.beginDrain()
        client.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try client.exchange()
        XCTAssertEqual(client.status(of: streamID)?.code, GRPCStatus.Code.unavailable.rawValue)
        XCTAssertFalse(client.channel.isActive, "the stream does not hold the drained connection open")
    }
}
