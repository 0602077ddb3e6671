import Foundation
import LDLMCore
import LDLMStateLog
import XCTest

final class StateLogFileTests: XCTestCase {
    private var directory: URL!
    private var path: String { directory.appendingPathComponent("state").path }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("statelog-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private let grant = StateRecord.grant(
        name: "a", size: 1, key: LockKey(high: 1, low: 2), fencingToken: 3, leaseEndUnixMilliseconds: nil
    )

    private func encoded(_ records: [StateRecord]) -> [UInt8] {
        var bytes: [UInt8] = []
        for record in records { StateLogFormat.append(record, to: &bytes) }
        return bytes
    }

    func testAMissingFileIsCreatedAndAppendsSurviveReopening() throws {
        do {
            let (file, contents) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
            XCTAssertEqual(contents.records, [])
            try file.append(encoded([grant]))
            file.close()
        }
        let (file, contents) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
        defer { file.close() }
        XCTAssertEqual(contents.records, [grant])
    }

    func testATornTailIsCutOffWithAWarningAndAppendingGoesOnAfterTheIntactRecords() throws {
        let intact = StateLogFormat.header + encoded([grant])
        let release = StateRecord.release(name: "a", key: LockKey(high: 1, low: 2))
        try Data(intact + encoded([release]).prefix(9)).write(to: URL(fileURLWithPath: path))
        var warnings: [String] = []
        do {
            let (file, contents) = try StateLogFile.open(path: path) { warnings.append($0) }
            XCTAssertEqual(contents.records, [grant])
            try file.append(encoded([release]))
            file.close()
        }
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("at byte \(intact.count)"), warnings[0])
        let (file, contents) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
        defer { file.close() }
        XCTAssertEqual(contents.records, [grant, release])
    }

    func testAFileThatIsNotOursIsRefusedAndLeftUntouched() throws {
        let json = Data(#"{"locks": {}}"#.utf8)
        try json.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StateLogFile.open(path: path) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("is not a swift-ldlm state file"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), json)
    }

    func testASecondServerCannotOpenAFileInUse() throws {
        let (file, _) = try StateLogFile.open(path: path) { _ in }
        defer { file.close() }
        XCTAssertThrowsError(try StateLogFile.open(path: path) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("in use by another server"), "\(error)")
        }
    }

    func testReplacingKeepsTheLockAndLeavesOnlyTheNewContents() throws {
        let (file, _) = try StateLogFile.open(path: path) { _ in }
        defer { file.close() }
        try file.append(encoded([grant, grant, grant]))
        let snapshot = StateLogFormat.header + encoded([.fencingTokenHighWater(9)])
        try file.replace(with: snapshot)
        XCTAssertEqual(file.size, snapshot.count)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), snapshot)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".compacting"))
        XCTAssertThrowsError(try StateLogFile.open(path: path) { _ in }, "the replacement is locked too")
        try file.append(encoded([grant]))
        file.close()
        let (reopened, contents) = try StateLogFile.open(path: path) { _ in }
        reopened.close()
        XCTAssertEqual(contents.records, [.fencingTokenHighWater(9), grant])
    }
}
