import XCTest

@testable import LDLMCore

final class DeadlineQueueTests: XCTestCase {
    func testStaleEntriesAreSweptSoTheQueueFollowsLiveEntries() {
        var queue = DeadlineQueue<Int>()
        var live: Set<Int> = []
        for entry in 0..<100_000 {
            // Like a lock taken with a long lease and released at once: only the newest few stay live.
            live.insert(entry)
            live.remove(entry - 3)
            queue.insert(entry, deadline: UInt64(1_000_000 + entry)) { !live.contains($1) }
        }
        XCTAssertLessThan(queue.count, 2_100)
        var popped: [Int] = []
        while let (_, entry) = queue.popDue(now: .max) {
            if live.contains(entry) { popped.append(entry) }
        }
        XCTAssertEqual(popped, [99_997, 99_998, 99_999])
    }

    func testEntriesPopInDeadlineOrderAcrossSweeps() {
        var queue = DeadlineQueue<UInt64>()
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<5_000 {
            let deadline = generator.next() % 1_000_000
            queue.insert(deadline, deadline: deadline) { $1 % 2 == 1 }
        }
        var previous: UInt64 = 0
        while let (deadline, payload) = queue.popDue(now: .max) {
            XCTAssertEqual(deadline, payload)
            XCTAssertGreaterThanOrEqual(deadline, previous)
            previous = deadline
        }
    }
}
