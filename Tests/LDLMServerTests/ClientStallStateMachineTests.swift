import XCTest

@testable import LDLMServer

final class ClientStallStateMachineTests: XCTestCase {
    private let magic = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt8 = 0, payload: Int = 0) -> [UInt8] {
        [UInt8(payload >> 16), UInt8((payload >> 8) & 0xff), UInt8(payload & 0xff), type, flags, 0, 0, 0, stream]
            + [UInt8](repeating: 0x61, count: payload)
    }

    private var settings: [UInt8] { frame(type: 0x4, payload: 6) }

    private func feed(_ machine: inout ClientStallStateMachine, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { machine.received($0) }
    }

    func testPrefaceIsOwedUntilTheFirstFrameIsComplete() {
        var machine = ClientStallStateMachine()
        XCTAssertEqual(machine.debt, .preface)
        feed(&machine, Array(magic.prefix(10)))
        XCTAssertEqual(machine.debt, .preface)
        feed(&machine, Array(magic.dropFirst(10)) + Array(settings.prefix(12)))
        XCTAssertEqual(machine.debt, .preface, "half a SETTINGS frame is not a preface")
        feed(&machine, Array(settings.dropFirst(12)))
        XCTAssertNil(machine.debt)
    }

    func testHeaderBlockIsOwedUntilTheFrameWithEndHeadersEnds() {
        var machine = ClientStallStateMachine()
        feed(&machine, magic + settings)
        feed(&machine, frame(type: 0x1, flags: 0x1, stream: 1, payload: 20))
        XCTAssertEqual(machine.debt, .headerBlock, "HEADERS without END_HEADERS opens a block")
        feed(&machine, frame(type: 0x9, stream: 1, payload: 5))
        XCTAssertEqual(machine.debt, .headerBlock)
        let last = frame(type: 0x9, flags: 0x4, stream: 1, payload: 5)
        feed(&machine, Array(last.prefix(11)))
        XCTAssertEqual(machine.debt, .headerBlock, "its payload has not all arrived")
        feed(&machine, Array(last.dropFirst(11)))
        XCTAssertNil(machine.debt)
    }

    func testCompleteFramesOweNothingHoweverTheReadsSplitThem() {
        let stream = magic + settings + frame(type: 0x1, flags: 0x4, stream: 1, payload: 30)
            + frame(type: 0x0, flags: 0x1, stream: 1, payload: 100) + frame(type: 0x8, payload: 4)
            + frame(type: 0x1, flags: 0x5, stream: 3, payload: 0)
        for chunkSize in [1, 2, 7, 9, 10, 64, stream.count] {
            var machine = ClientStallStateMachine()
            var offset = 0
            while offset < stream.count {
                feed(&machine, Array(stream[offset..<min(offset + chunkSize, stream.count)]))
                offset += chunkSize
            }
            XCTAssertNil(machine.debt, "chunks of \(chunkSize)")
        }
    }

    func testDataFramesNeverOpenAHeaderBlock() {
        var machine = ClientStallStateMachine()
        feed(&machine, magic + settings)
        // A large DATA frame in transit is flow control's business.
        feed(&machine, Array(frame(type: 0x0, stream: 1, payload: 100).prefix(50)))
        XCTAssertNil(machine.debt)
    }
}
