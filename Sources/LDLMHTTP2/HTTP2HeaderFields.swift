/// A received header block, kept as the bytes nghttp2 delivered.
///
/// A request carries about ten fields and the server looks at four of them, so
/// the block is packed into one allocation (per field: name length and value
/// length as 32-bit integers, then the name and value bytes) rather than one
/// `String` pair per field. Readers match names as bytes with ``forEach(_:)``
/// or ``value(named:)`` and build Strings only for what they keep.
///
/// A block is filled in once, by whoever creates it, and never changes after
/// it is handed out, so copies share the bytes without copy-on-write checks.
public struct HTTP2HeaderFields: @unchecked Sendable, Equatable, ExpressibleByArrayLiteral {
    @usableFromInline
    var storage: Storage?
    /// Number of fields, pseudo-headers included.
    public private(set) var count = 0

    @usableFromInline
    static let lengthBytes = MemoryLayout<UInt32>.size

    public init() {}

    public init(_ headers: [HTTP2Header]) {
        for header in headers {
            var name = header.name
            var value = header.value
            name.withUTF8 { name in value.withUTF8 { value in append(name: name, value: value) } }
        }
    }

    public init(arrayLiteral elements: HTTP2Header...) {
        self.init(elements)
    }

    /// An empty block with room for `byteCount` bytes of fields.
    init(reservingCapacity byteCount: Int) {
        storage = Storage.make(capacity: byteCount)
    }

    /// Only while the block is being built, before any copy of it exists.
    mutating func append(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        let fieldBytes = 2 * Self.lengthBytes + name.count + value.count
        // The header is reached through its pointer: `ManagedBuffer.header` is
        // a class property, and every access to it would be checked for
        // exclusivity at run time.
        let room = storage?.withUnsafeMutablePointerToHeader { $0.pointee.capacity - $0.pointee.used } ?? -1
        if room < fieldBytes {
            let used = storage?.withUnsafeMutablePointerToHeader { $0.pointee.used } ?? 0
            storage = Storage.make(capacity: max(2 * (used + fieldBytes), 256), copying: storage)
        }
        storage!.withUnsafeMutablePointers { header, base in
            let used = header.pointee.used
            let field = UnsafeMutableRawPointer(base + used)
            field.storeBytes(of: UInt32(truncatingIfNeeded: name.count).littleEndian, as: UInt32.self)
            field.storeBytes(of: UInt32(truncatingIfNeeded: value.count).littleEndian, toByteOffset: Self.lengthBytes, as: UInt32.self)
            let nameStart = base + used + 2 * Self.lengthBytes
            if let nameBase = name.baseAddress { nameStart.update(from: nameBase, count: name.count) }
            if let valueBase = value.baseAddress { (nameStart + name.count).update(from: valueBase, count: value.count) }
            header.pointee.used = used + fieldBytes
        }
        count += 1
    }

    /// Calls `body` with each field's name and value, in arrival order. The
    /// buffers are valid only during the call.
    @inlinable
    public func forEach(_ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        guard let storage else { return }
        let used = storage.withUnsafeMutablePointerToHeader { $0.pointee.used }
        try storage.withUnsafeMutablePointerToElements { base in
            var offset = 0
            while offset < used {
                let field = UnsafeRawPointer(base + offset)
                let nameLength = Int(UInt32(littleEndian: field.loadUnaligned(as: UInt32.self)))
                let valueLength = Int(UInt32(littleEndian: field.loadUnaligned(fromByteOffset: Self.lengthBytes, as: UInt32.self)))
                let name = UnsafePointer(base + offset + 2 * Self.lengthBytes)
                try body(
                    UnsafeBufferPointer(start: name, count: nameLength),
                    UnsafeBufferPointer(start: name + nameLength, count: valueLength)
                )
                offset += 2 * Self.lengthBytes + nameLength + valueLength
            }
        }
    }

    /// The value of the first field called `name` (names arrive lower-case in HTTP/2).
    public func value(named name: StaticString) -> String? {
        var found: String?
        forEach { fieldName, value in
            if found == nil, fieldName.matches(name) {
                found = String(decoding: value, as: UTF8.self)
            }
        }
        return found
    }

    /// Every field as a `String` pair; for logging and tests, not the request path.
    public var fields: [HTTP2Header] {
        var fields: [HTTP2Header] = []
        fields.reserveCapacity(count)
        forEach { name, value in
            fields.append(HTTP2Header(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return fields
    }

    public static func == (lhs: HTTP2HeaderFields, rhs: HTTP2HeaderFields) -> Bool {
        lhs.count == rhs.count && lhs.fields == rhs.fields
    }

    @usableFromInline
    struct StorageHeader {
        @usableFromInline var used: Int
        /// Kept here: `ManagedBuffer.capacity` asks malloc every time.
        @usableFromInline let capacity: Int
    }

    /// The packed fields.
    @usableFromInline
    final class Storage: ManagedBuffer<StorageHeader, UInt8> {
        static func make(capacity: Int, copying old: Storage? = nil) -> Storage {
            let used = old?.withUnsafeMutablePointerToHeader { $0.pointee.used } ?? 0
            let storage = unsafeDowncast(
                Storage.create(minimumCapacity: capacity) { _ in StorageHeader(used: used, capacity: capacity) },
                to: Storage.self
            )
            if let old {
                storage.withUnsafeMutablePointerToElements { target in
                    old.withUnsafeMutablePointerToElements { source in target.initialize(from: source, count: used) }
                }
            }
            return storage
        }
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// True when these bytes are exactly `literal`'s UTF-8.
    @inlinable
    package func matches(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        for index in 0..<count where self[index] != expected[index] {
            return false
        }
        return true
    }

    /// True when both hold the same bytes.
    @inlinable
    package func hasSameBytes(as other: UnsafeBufferPointer<UInt8>) -> Bool {
        guard count == other.count else { return false }
        for index in 0..<count where self[index] != other[index] {
            return false
        }
        return true
    }
}
