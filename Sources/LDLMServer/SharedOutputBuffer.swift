import NIOCore

/// The buffer connections on one event loop assemble their writes in.
///
/// A flush borrows it, writes it, and hands it back; the socket (or TLS) has
/// almost always consumed it by then, so the next flush reuses its storage
/// instead of allocating. Sharing one buffer costs idle connections nothing.
/// Used only on its event loop.
final class SharedOutputBuffer {
    private var spare: ByteBuffer?
    private static let initialCapacity = 16 * 1024
    /// A burst's much larger buffer is dropped rather than kept forever.
    private static let maxRetainedCapacity = 256 * 1024

    /// An empty buffer; a nested flush that finds it lent out gets a new one.
    func borrow(allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var buffer = spare else {
            return allocator.buffer(capacity: Self.initialCapacity)
        }
        spare = nil
        buffer.clear()
        return buffer
    }

    func giveBack(_ buffer: ByteBuffer) {
        spare = buffer.capacity <= Self.maxRetainedCapacity ? buffer : nil
    }
}
