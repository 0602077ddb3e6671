import Foundation
import LDLMEtcd
import LDLMProtocol
import XCTest

final class EtcdMessageTests: XCTestCase {
    private let header = EtcdResponseHeader(clusterID: 0xdead_beef_0000_0001, memberID: 42, revision: 1_000_001, raftTerm: 7)
    private let keyValue = EtcdKeyValue(key: [0x00, 0xff, 0x10], createRevision: 5, modRevision: 9, version: 3, value: Array("v".utf8), lease: 0x694d_7a1c_2b3e_0001)

    private func assertRoundTrip<Message: LDLMMessage & Equatable>(_ message: Message, file: StaticString = #filePath, line: UInt = #line) throws {
        let decoded = try Message(serializedBytes: message.serializedBytes())
        XCTAssertEqual(decoded, message, file: file, line: line)
    }

    func testRequestsRoundTrip() throws {
        try assertRoundTrip(EtcdRangeRequest(key: Array("a".utf8), rangeEnd: [0], limit: 10, revision: 3, serializable: true, keysOnly: true, countOnly: true))
        try assertRoundTrip(EtcdPutRequest(key: [1, 2], value: [0, 0, 0], lease: -5, prevKV: true))
        try assertRoundTrip(EtcdDeleteRangeRequest(key: [9], rangeEnd: [10], prevKV: true))
        try assertRoundTrip(EtcdLeaseGrantRequest(ttlSeconds: 10, id: 77))
        try assertRoundTrip(EtcdLeaseRevokeRequest(id: 77))
        try assertRoundTrip(EtcdLeaseKeepAliveRequest(id: 78))
        try assertRoundTrip(EtcdLeaseTimeToLiveRequest(id: 79, keys: true))
        try assertRoundTrip(EtcdAuthenticateRequest(name: "root", password: "pässword"))
    }

    func testTxnWithEveryCompareTargetAndNestedOpsRoundTrips() throws {
        let inner = EtcdTxnRequest(compare: [EtcdCompare(key: [7], .notEqual, .value([]))], success: [.deleteRange(EtcdDeleteRangeRequest(key: [7]))])
        let txn = EtcdTxnRequest(
            compare: [
                EtcdCompare(key: [1], .equal, .createRevision(0)),
                EtcdCompare(key: [2], .greater, .modRevision(12)),
                EtcdCompare(key: [3], .less, .version(2)),
                EtcdCompare(key: [4], .notEqual, .value([0, 1])),
                EtcdCompare(key: [5], .equal, .lease(99), rangeEnd: [6]),
            ],
            success: [.put(EtcdPutRequest(key: [1], value: [2], lease: 3)), .range(EtcdRangeRequest(key: [1])), .txn(inner)],
            failure: [.range(.prefix([1]))]
        )
        try assertRoundTrip(txn)
    }

    func testResponsesRoundTrip() throws {
        try assertRoundTrip(EtcdRangeResponse(header: header, kvs: [keyValue, EtcdKeyValue(key: [1])], more: true, count: 2))
        try assertRoundTrip(EtcdPutResponse(header: header, prevKV: keyValue))
        try assertRoundTrip(EtcdPutResponse(header: header))
        try assertRoundTrip(EtcdDeleteRangeResponse(header: header, deleted: 2, prevKVs: [keyValue, keyValue]))
        try assertRoundTrip(EtcdTxnResponse(header: header, succeeded: true, responses: [
            .put(EtcdPutResponse(header: header)),
            .range(EtcdRangeResponse(header: header, kvs: [keyValue], count: 1)),
            .deleteRange(EtcdDeleteRangeResponse(header: header, deleted: 1)),
            .txn(EtcdTxnResponse(header: header, succeeded: false, responses: [.range(EtcdRangeResponse(header: header))])),
        ]))
        try assertRoundTrip(EtcdLeaseGrantResponse(header: header, id: 5, ttlSeconds: 10, error: "none"))
        try assertRoundTrip(EtcdLeaseRevokeResponse(header: header))
        try assertRoundTrip(EtcdLeaseKeepAliveResponse(header: header, id: 5, ttlSeconds: 9))
        try assertRoundTrip(EtcdLeaseTimeToLiveResponse(header: header, id: 5, ttlSeconds: 3, grantedTTLSeconds: 10, keys: [[1], [], [0xff, 0]]))
        try assertRoundTrip(EtcdAuthenticateResponse(header: header, token: "abc.123"))
    }

    /// A compare with 0 must still carry its value: etcd reads a compare
    /// without one as a compare against nothing. Checked by hand: field 2
    /// (target CREATE = 1), field 3 (key "k"), field 5 (create_revision 0),
    /// all inside TxnRequest field 1.
    func testCompareAgainstZeroCarriesTheValueOnTheWire() {
        let txn = EtcdTxnRequest(compare: [EtcdCompare(key: Array("k".utf8), .equal, .createRevision(0))])
        XCTAssertEqual(txn.serializedBytes(), [0x0a, 0x07, 0x10, 0x01, 0x1a, 0x01, 0x6b, 0x28, 0x00])
    }

    func testPrefixEndIncrementsTheLastByteBelow0xff() {
        XCTAssertEqual(etcdPrefixEnd(Array("ab".utf8)), Array("ac".utf8))
        XCTAssertEqual(etcdPrefixEnd([0x61, 0xff]), [0x62])
        XCTAssertEqual(etcdPrefixEnd([0xff, 0xff]), [0])
        XCTAssertEqual(etcdPrefixEnd([]), [0])
    }

    func testGarbageIsRefused() {
        XCTAssertThrowsError(try EtcdRangeResponse(serializedBytes: [0x12, 0x05, 0x01]))
    }

    /// The same messages encoded by Python's protobuf (compiled by grpcio-tools
    /// from Protos/etcd): our decoder reads theirs, and our encoder writes the same bytes.
    func testAgreesWithPythonProtobuf() throws {
        let messages = try pythonEncodings()
        XCTAssertEqual(try EtcdTxnResponse(serializedBytes: hex(messages["txn_response"])), EtcdTxnResponse(
            header: EtcdResponseHeader(clusterID: 1, memberID: 2, revision: 3, raftTerm: 4),
            succeeded: true,
            responses: [
                .range(EtcdRangeResponse(kvs: [EtcdKeyValue(key: Array("k".utf8), createRevision: 2, modRevision: 3, version: 1, value: [0, 255], lease: 7)], count: 1)),
                .put(EtcdPutResponse(prevKV: EtcdKeyValue(key: Array("p".utf8)))),
                .deleteRange(EtcdDeleteRangeResponse(deleted: 2)),
            ]
        ))
        XCTAssertEqual(try EtcdLeaseTimeToLiveResponse(serializedBytes: hex(messages["ttl_response"])),
                       EtcdLeaseTimeToLiveResponse(id: 9, ttlSeconds: -1, grantedTTLSeconds: 10, keys: [Array("a".utf8), Array("b".utf8)]))
        let txn = EtcdTxnRequest(
            compare: [EtcdCompare(key: Array("k".utf8), .equal, .createRevision(0)), EtcdCompare(key: Array("v".utf8), .notEqual, .value(Array("x".utf8)))],
            success: [.put(EtcdPutRequest(key: Array("k".utf8), value: Array("v".utf8), lease: 5))],
            failure: [.range(EtcdRangeRequest(key: Array("k".utf8)))]
        )
        XCTAssertEqual(txn.serializedBytes(), try hex(messages["txn_request"]))
    }

    private func hex(_ text: String?) throws -> [UInt8] {
        let text = try XCTUnwrap(text)
        return stride(from: 0, to: text.count, by: 2).map { offset in
            let start = text.index(text.startIndex, offsetBy: offset)
            return UInt8(text[start..<text.index(start, offsetBy: 2)], radix: 16)!
        }
    }

    private func pythonEncodings() throws -> [String: String] {
        let protos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Protos/etcd").standardized.path
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-py-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let script = """
        import sys
        from grpc_tools import protoc
        if protoc.main(["protoc", "-I" + sys.argv[1], "--python_out=" + sys.argv[2], "rpc.proto", "kv.proto", "auth.proto"]) != 0:
            sys.exit("protoc failed")
        sys.path.insert(0, sys.argv[2])
        import rpc_pb2, kv_pb2
        h = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
        txn_response = rpc_pb2.TxnResponse(header=h, succeeded=True, responses=[
            rpc_pb2.ResponseOp(response_range=rpc_pb2.RangeResponse(kvs=[kv_pb2.KeyValue(key=b"k", create_revision=2, mod_revision=3, version=1, value=b"\\x00\\xff", lease=7)], count=1)),
            rpc_pb2.ResponseOp(response_put=rpc_pb2.PutResponse(prev_kv=kv_pb2.KeyValue(key=b"p"))),
            rpc_pb2.ResponseOp(response_delete_range=rpc_pb2.DeleteRangeResponse(deleted=2)),
        ])
        ttl_response = rpc_pb2.LeaseTimeToLiveResponse(ID=9, TTL=-1, grantedTTL=10, keys=[b"a", b"b"])
        txn_request = rpc_pb2.TxnRequest(
            compare=[rpc_pb2.Compare(key=b"k", target=rpc_pb2.Compare.CREATE, create_revision=0),
                     rpc_pb2.Compare(key=b"v", result=rpc_pb2.Compare.NOT_EQUAL, target=rpc_pb2.Compare.VALUE, value=b"x")],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"k", value=b"v", lease=5))],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"k"))])
        for name, message in [("txn_response", txn_response), ("ttl_response", ttl_response), ("txn_request", txn_request)]:
            print(name, message.SerializeToString().hex())
        """
        guard try runPython(["-c", "import grpc_tools"]).status == 0 else {
            throw XCTSkip("needs python3 with grpcio-tools (pip install grpcio-tools)")
        }
        let scriptPath = work.appendingPathComponent("encode.py").path
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let (status, data) = try runPython([scriptPath, protos, work.path])
        XCTAssertEqual(status, 0, "the Python encoder failed")
        var messages: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { messages[String(parts[0])] = String(parts[1]) }
        }
        return messages
    }

    private func runPython(_ arguments: [String]) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }
}
