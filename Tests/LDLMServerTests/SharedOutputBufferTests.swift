import NIOCore
import XCTest

@testable import LDLMServer

final class SharedOutputBufferTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    private func storageAddress(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withVeryUnsafeBytes { UnsafeRawPointer($0.baseAddress) }
    }

    func testAReturnedBufferIsReusedEmpty() {
        let shared = SharedOutputBuffer()
        var first = shared.borrow(allocator: allocator)
        first.writeString("response bytes")
        let address = storageAddress(first)
        shared.giveBack(first)
        first = ByteBuffer()

        let second = shared.borrow(allocator: allocator)
        XCTAssertEqual(second.readableBytes, 0)
        XCTAssertEqual(storageAddress(second), address, "the storage is reused, not reallocated")
    }

    func testABufferStillHeldByAPendingWriteIsNeitherChangedNorReused() {
        let shared = SharedOutputBuffer()
        // Prime the spare with a large buffer, so reusing it would be visible
        // in the next borrow's capacity as well as its address.
        shared.giveBack(allocator.buffer(capacity: 32 * 1024))
        var first = shared.borrow(allocator: allocator)
        XCTAssertGreaterThanOrEqual(first.capacity, 32 * 1024, "the spare is lent out")
        first.writeString("pending write")
        let pendingWrite = first
        shared.giveBack(first)
        first = ByteBuffer()

        var second = shared.borrow(allocator: allocator)
        second.writeString("next flush")
        XCTAssertNotEqual(storageAddress(second), storageAddress(pendingWrite))
        XCTAssertLessThanOrEqual(second.capacity, 1024, "a connection with writes queued pins only a small buffer")
        XCTAssertEqual(pendingWrite.getString(at: pendingWrite.readerIndex, length: pendingWrite.readableBytes), "pending write")
    }

    func testANestedFlushGetsItsOwnBuffer() {
        let shared = SharedOutputBuffer()
        var primed = shared.borrow(allocator: allocator)
        let spareAddress = storageAddress(primed)
        shared.giveBack(primed)
        primed = ByteBuffer()

        var outer = shared.borrow(allocator: allocator)
        var inner = shared.borrow(allocator: allocator)
        outer.writeString("outer")
        inner.writeString("inner")
        XCTAssertEqual(storageAddress(outer), spareAddress, "the first borrow reuses the spare")
        XCTAssertNotEqual(storageAddress(inner), spareAddress, "a nested borrow must not share the spare")
        XCTAssertEqual(outer.readableBytesView.count, 5)
        XCTAssertEqual(String(buffer: outer), "outer")
        XCTAssertEqual(String(buffer: inner), "inner")
        shared.giveBack(inner)
        shared.giveBack(outer)
    }
}
