import LDLMProtocol
import XCTest

/// The `ldlm.admin.v1` messages: round trips through the protobuf-c encoders,
/// and the nested, repeated listings checked against hand-built wire bytes.
final class AdminMessageTests: XCTestCase {
    private let holder = AdminHolder(
        keyPrefix: "6f1c1f5e",
        sessionID: 7,
        remoteAddress: "127.0.0.1:50001",
        clientIdentity: "CN=worker-1 SAN=DNS:worker-1.example",
        leaseRemainingMilliseconds: 29_500,
        fencingToken: 42
    )

    func testListLocksResponseRoundTripsWithNestedHolders() throws {
        let responses = [
            AdminListLocksResponse(locks: []),
            AdminListLocksResponse(locks: [AdminLock(name: "idle-holderless", size: 1, holders: [], waiters: 3)]),
            AdminListLocksResponse(locks: [
                AdminLock(name: "db", size: 2, holders: [holder, AdminHolder(keyPrefix: "0badc0de", sessionID: 0)], waiters: 0),
                AdminLock(name: "日本語のロック", size: 1, holders: [AdminHolder(keyPrefix: "", sessionID: .max, leaseRemainingMilliseconds: 0)], waiters: .max),
            ]),
        ]
        for response in responses {
            XCTAssertEqual(try AdminListLocksResponse(serializedBytes: response.serializedBytes()), response)
        }
    }

    func testManyLocksWithManyHoldersRoundTrip() throws {
        let locks = (0..<300).map { index in
            AdminLock(
                name: "lock-\(index)-" + String(repeating: "x", count: index),
                size: Int32(index % 5 + 1),
                holders: (0..<(index % 5 + 1)).map { AdminHolder(keyPrefix: "k\($0)", sessionID: UInt64(index), remoteAddress: "unix:/s") },
                waiters: UInt32(index)
            )
        }
        let response = AdminListLocksResponse(locks: locks)
        XCTAssertEqual(try AdminListLocksResponse(serializedBytes: response.serializedBytes()), response)
    }

    func testHolderWireFormatHasTheLeaseOnlyWhenPresent() throws {
        let withoutLease = AdminHolder(keyPrefix: "abcd", sessionID: 3)
        let lock = AdminLock(name: "n", size: 1, holders: [withoutLease], waiters: 2)
        let expectedHolder = Wire.string(1, "abcd") + Wire.tag(2, wireType: 0) + Wire.varint(3)
        let expectedLock = Wire.string(1, "n") + Wire.int32(2, 1) + Wire.bytes(3, expectedHolder) + Wire.tag(4, wireType: 0) + Wire.varint(2)
        XCTAssertEqual(AdminListLocksResponse(locks: [lock]).serializedBytes(), Wire.bytes(1, expectedLock))

        var leased = withoutLease
        leased.leaseRemainingMilliseconds = 0
        let leasedHolder = expectedHolder + Wire.tag(5, wireType: 0) + Wire.varint(0)
        let decoded = try AdminListLocksResponse(serializedBytes: Wire.bytes(1, Wire.bytes(3, leasedHolder)))
        XCTAssertEqual(decoded.locks.first?.holders, [leased], "a lease of 0 ms is present, not absent")
    }

    func testListSessionsResponseRoundTrips() throws {
        for response in [
            AdminListSessionsResponse(sessions: []),
            AdminListSessionsResponse(sessions: [
                AdminSession(id: 1, remoteAddress: "127.0.0.1:4000", locksHeld: 2, waitingCalls: 1, connectedSinceUnixMilliseconds: 1_700_000_000_000),
                AdminSession(id: .max, remoteAddress: "unix:/run/ldlm.sock", clientIdentity: "CN=a", locksHeld: 0, waitingCalls: 0, connectedSinceUnixMilliseconds: -1),
            ]),
        ] {
            XCTAssertEqual(try AdminListSessionsResponse(serializedBytes: response.serializedBytes()), response)
        }
    }

    func testRequestsAndSmallAnswersRoundTrip() throws {
        XCTAssertEqual(AdminListLocksRequest().serializedBytes(), [])
        XCTAssertEqual(try AdminListLocksRequest(serializedBytes: []), AdminListLocksRequest())
        XCTAssertEqual(try AdminListSessionsRequest(serializedBytes: []), AdminListSessionsRequest())
        for request in [AdminForceUnlockRequest(name: "db"), AdminForceUnlockRequest(name: "db", key: "6f1c1f5e")] {
            XCTAssertEqual(try AdminForceUnlockRequest(serializedBytes: request.serializedBytes()), request)
        }
        XCTAssertEqual(AdminForceUnlockRequest(name: "a", key: "b").serializedBytes(), Wire.string(1, "a") + Wire.string(2, "b"))
        XCTAssertEqual(try AdminForceUnlockResponse(serializedBytes: AdminForceUnlockResponse(released: 3).serializedBytes()).released, 3)
        XCTAssertEqual(try AdminEndSessionRequest(serializedBytes: AdminEndSessionRequest(sessionID: .max).serializedBytes()).sessionID, .max)
        XCTAssertEqual(try AdminEndSessionResponse(serializedBytes: AdminEndSessionResponse(releasedLocks: 9).serializedBytes()).releasedLocks, 9)
    }

    func testAStringThatIsNotUTF8InsideANestedHolderIsRefused() {
        let badHolder = Wire.bytes(1, [0xFF, 0xFE])
        let bytes = Wire.bytes(1, Wire.string(1, "n") + Wire.bytes(3, badHolder))
        XCTAssertThrowsError(try AdminListLocksResponse(serializedBytes: bytes)) { error in
            XCTAssertEqual(error as? MessageDecodingError, MessageDecodingError("string field \"key_prefix\" is not valid UTF-8"))
        }
    }
}
