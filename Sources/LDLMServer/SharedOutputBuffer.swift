import NIOCore

/// The buffer connections on one event loop assemble their writes in.
///
/// A flush borrows it, writes it, and hands it back; the socket (or TLS) has
/// almost always consumed it by then, so the next flush reuses its storage
/// instead of allocating. Sharing one buffer costs idle connections nothing.
/// Used only on its event loop.
final class SharedOutputBuffer {
    private var spare: ByteBuffer?
    /// What a flush gets when the spare is lent out or still held by a pending
    /// write (a slow reader, a TLS handshake): small, like the write itself,
    /// so a connection with writes queued pins no large buffer per write.
    private static let freshCapacity = 1024
    /// A burst's much larger buffer is dropped rather than kept.
    private static let maxRetainedCapacity = 64 * 1024

    /// An empty buffer, reusing the spare's storage when nothing else holds it.
    func borrow(allocator: ByteBufferAllocator) -> ByteBuffer {
        if var buffer = spare {
            spare = nil
            if buffer.modifyIfUniquelyOwned({ $0.clear() }) != nil {
                return buffer
            }
        }
        return allocator.buffer(capacity: Self.freshCapacity)
    }

    func giveBack(_ buffer: ByteBuffer) {
        spare = buffer.capacity <= Self.maxRetainedCapacity ? buffer : nil
    }
}
