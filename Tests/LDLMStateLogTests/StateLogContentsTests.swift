import LDLMCore
import XCTest

@testable import LDLMStateLog

final class StateLogContentsTests: XCTestCase {
    private let keyA = LockKey(high: 0x1111_2222_3333_4444, low: 0x8555_6666_7777_8888)
    private let keyB = LockKey(high: 0x9999_aaaa_bbbb_4ccc, low: 0x8ddd_eeee_ffff_0000)

    private var records: [StateRecord] {
        [
            .grant(name: "alpha", size: 1, key: keyA, fencingToken: 7, leaseEndUnixMilliseconds: nil),
            .grant(name: "βeta", size: 3, key: keyB, fencingToken: 8, leaseEndUnixMilliseconds: 1_800_000_000_123),
            .lease(name: "βeta", key: keyB, endUnixMilliseconds: 1_800_000_999_000),
            .release(name: "alpha", key: keyA),
            .fencingTokenHighWater(42),
        ]
    }

    private func file(_ records: [StateRecord]) -> [UInt8] {
        var bytes = StateLogFormat.header
        for record in records { StateLogFormat.append(record, to: &bytes) }
        return bytes
    }

    func testEveryRecordKindReadsBackAsWritten() throws {
        let contents = try StateLogContents(parsing: file(records))
        XCTAssertEqual(contents.records, records)
        XCTAssertNil(contents.tornTailOffset)
        XCTAssertFalse(contents.needsHeader)
        XCTAssertEqual(contents.intactLength, file(records).count)
    }

    func testALastRecordCutAtEveryByteIsDroppedAndTheRestKept() throws {
        let whole = file(records)
        let lastStart = file(Array(records.dropLast())).count
        for cut in lastStart..<whole.count {
            let contents = try StateLogContents(parsing: Array(whole[..<cut]))
            XCTAssertEqual(contents.records, Array(records.dropLast()), "cut at \(cut)")
            XCTAssertEqual(contents.intactLength, lastStart, "cut at \(cut)")
            XCTAssertEqual(contents.tornTailOffset, cut == lastStart ? nil : lastStart, "cut at \(cut)")
        }
    }

    func testZerosWhereACrashCutTheLastAppendAreATornTail() throws {
        let intact = file(records)
        let contents = try StateLogContents(parsing: intact + [UInt8](repeating: 0, count: 40))
        XCTAssertEqual(contents.records, records)
        XCTAssertEqual(contents.tornTailOffset, intact.count)
    }

    func testAChecksumMismatchInTheLastRecordIsATornTail() throws {
        var bytes = file(records)
        bytes[bytes.count - 1] ^= 0x01
        let contents = try StateLogContents(parsing: bytes)
        XCTAssertEqual(contents.records, Array(records.dropLast()))
        XCTAssertEqual(contents.tornTailOffset, file(Array(records.dropLast())).count)
    }

    func testAnyFlippedByteBeforeTheLastRecordIsCorruptionNamingItsRecord() throws {
        let whole = file(records)
        let lastStart = file(Array(records.dropLast())).count
        var recordStarts = [StateLogFormat.headerSize]
        for count in 1..<records.count { recordStarts.append(file(Array(records.prefix(count))).count) }
        for offset in StateLogFormat.headerSize..<lastStart {
            var bytes = whole
            bytes[offset] ^= 0x40
            let damagedRecord = recordStarts.last { $0 <= offset }!
            XCTAssertThrowsError(try StateLogContents(parsing: bytes), "byte \(offset)") { error in
                guard case StateLogError.corrupt(let at, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(at, damagedRecord, "byte \(offset)")
            }
        }
    }

    func testGoLDLMsJSONStateFileIsRefused() {
        let json = Array(#"{"locks":{"a":{"key":"k"}}}"#.utf8)
        XCTAssertThrowsError(try StateLogContents(parsing: json)) { error in
            XCTAssertEqual(error as? StateLogError, .notAStateFile(firstBytes: Array(json.prefix(16))))
            XCTAssertTrue("\(error)".contains("looks like JSON"), "\(error)")
        }
    }

    func testAnotherFormatVersionIsRefused() {
        var bytes = StateLogFormat.magic
        bytes.appendLittleEndian(UInt32(2))
        XCTAssertThrowsError(try StateLogContents(parsing: bytes)) { error in
            XCTAssertEqual(error as? StateLogError, .unsupportedVersion(2))
        }
    }

    func testAnEmptyFileOrACutHeaderStartsAfresh() throws {
        XCTAssertTrue(try StateLogContents(parsing: []).needsHeader)
        XCTAssertTrue(try StateLogContents(parsing: Array(StateLogFormat.header.prefix(7))).needsHeader)
        XCTAssertThrowsError(try StateLogContents(parsing: Array("swift-ldlX".utf8)))
    }
}
