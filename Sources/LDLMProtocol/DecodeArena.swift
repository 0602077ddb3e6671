import CProtobufC

#if canImport(Glibc)
import Glibc
#endif

/// A protobuf-c allocator over stack scratch space for one decode.
///
/// Unpacking a request allocates the message struct and each of its strings;
/// all of it is freed a moment later, once converted to Swift values. Bumping a
/// pointer through stack memory replaces those malloc/free pairs. What does not
/// fit (a name of several KiB) falls back to malloc.
struct DecodeArena {
    private static let scratchBytes = 1024
    private static let alignment = 16

    private let start: UnsafeMutableRawPointer
    private let end: UnsafeMutableRawPointer
    private var next: UnsafeMutableRawPointer

    private init(_ scratch: UnsafeMutableRawBufferPointer) {
        start = scratch.baseAddress!
        end = start + scratch.count
        next = start
    }

    /// Runs `body` with an allocator valid only during the call.
    static func withAllocator<Result>(_ body: (UnsafeMutablePointer<ProtobufCAllocator>) -> Result) -> Result {
        withUnsafeTemporaryAllocation(byteCount: scratchBytes, alignment: alignment) { scratch in
            var arena = DecodeArena(scratch)
            return withUnsafeMutablePointer(to: &arena) { arenaPointer in
                var allocator = ProtobufCAllocator(alloc: allocate, free: release, allocator_data: arenaPointer)
                return withUnsafeMutablePointer(to: &allocator) { body($0) }
            }
        }
    }

    private static let allocate: @convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer? = { data, size in
        let arena = data!.assumingMemoryBound(to: DecodeArena.self)
        let rounded = (size + alignment - 1) & ~(alignment - 1)
        guard arena.pointee.end - arena.pointee.next >= rounded else { return malloc(size) }
        defer { arena.pointee.next += rounded }
        return arena.pointee.next
    }

    private static let release: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { data, pointer in
        guard let pointer else { return }
        let arena = data!.assumingMemoryBound(to: DecodeArena.self)
        if pointer >= arena.pointee.start, pointer < arena.pointee.end { return }
        free(pointer)
    }
}
