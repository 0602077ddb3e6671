import XCTest

@testable import LDLMServer

final class HopBatchTests: XCTestCase {
    func testOnlyTheFirstItemOfABatchAsksForAHandOver() {
        var batch = HopBatch<Int>()
        XCTAssertTrue(batch.isEmpty)
        XCTAssertTrue(batch.append(1))
        XCTAssertFalse(batch.append(2))
        XCTAssertFalse(batch.append(3))
        XCTAssertFalse(batch.isEmpty)
    }

    func testTakeHandsOverInOrderAndStartsTheNextBatch() {
        var batch = HopBatch<String>()
        _ = batch.append("open")
        _ = batch.append("call")
        _ = batch.append("close")
        XCTAssertEqual(batch.take(), ["open", "call", "close"])
        XCTAssertTrue(batch.isEmpty)
        XCTAssertEqual(batch.take(), [])
        XCTAssertTrue(batch.append("next"), "the first item after a take starts a new batch")
        XCTAssertEqual(batch.take(), ["next"])
    }
}
