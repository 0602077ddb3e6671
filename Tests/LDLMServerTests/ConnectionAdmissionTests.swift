import XCTest

@testable import LDLMServer

final class ConnectionAdmissionTests: XCTestCase {
    func testTotalLimitCountsEveryTransportAndReleasedSlotsAreReused() {
        var admission = ConnectionAdmission(maxConnections: 2, maxConnectionsPerIP: 10)
        XCTAssertEqual(admission.admit(ip: "10.0.0.1"), .admitted)
        XCTAssertEqual(admission.admit(ip: nil), .admitted, "a Unix socket connection")
        XCTAssertEqual(admission.admit(ip: "10.0.0.2"), .refused(.maxConnections, reason: "2 connections are open, the limit (max_connections)"))
        XCTAssertEqual(admission.admit(ip: nil), .refused(.maxConnections, reason: "2 connections are open, the limit (max_connections)"))
        admission.release(ip: nil)
        XCTAssertEqual(admission.admit(ip: "10.0.0.2"), .admitted)
        XCTAssertEqual(admission.openCount, 2)
    }

    func testPerIPLimitLeavesOtherAddressesAndTheUnixSocketAlone() {
        var admission = ConnectionAdmission(maxConnections: 100, maxConnectionsPerIP: 2)
        XCTAssertEqual(admission.admit(ip: "10.0.0.1"), .admitted)
        XCTAssertEqual(admission.admit(ip: "10.0.0.1"), .admitted)
        XCTAssertEqual(
            admission.admit(ip: "10.0.0.1"),
            .refused(.maxConnectionsPerIP, reason: "2 connections from 10.0.0.1 are open, the limit (max_connections_per_ip)"))
        XCTAssertEqual(admission.admit(ip: "10.0.0.2"), .admitted)
        for _ in 0..<5 { XCTAssertEqual(admission.admit(ip: nil), .admitted) }
        XCTAssertEqual(admission.openCount, 8, "a refused connection takes no slot")

        admission.release(ip: "10.0.0.1")
        XCTAssertEqual(admission.openCount(fromIP: "10.0.0.1"), 1)
        XCTAssertEqual(admission.admit(ip: "10.0.0.1"), .admitted)
        admission.release(ip: "10.0.0.2")
        XCTAssertEqual(admission.openCount(fromIP: "10.0.0.2"), 0)
    }
}
