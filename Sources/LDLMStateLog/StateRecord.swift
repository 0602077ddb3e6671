import LDLMCore

/// One change to the held locks, as the state file keeps it. Lease ends are
/// wall-clock Unix milliseconds: monotonic time does not survive a restart.
public enum StateRecord: Equatable, Sendable {
    /// A slot taken; `leaseEndUnixMilliseconds` is nil for a hold without lease.
    case grant(name: String, size: Int32, key: LockKey, fencingToken: UInt64, leaseEndUnixMilliseconds: Int64?)
    case release(name: String, key: LockKey)
    case lease(name: String, key: LockKey, endUnixMilliseconds: Int64)
    /// Every fencing token handed out so far is at most this: a snapshot
    /// keeps it, since the grants that carried the largest may be gone.
    case fencingTokenHighWater(UInt64)
}

/// The byte layout of the state file: a header, then records.
///
/// A record is `length` (u32), `~length` (u32), CRC-32C of the payload (u32)
/// and the payload (a type byte and its fields), all little-endian. The
/// length's complement tells a corrupt length from a record cut short.
public enum StateLogFormat {
    public static let magic = Array("swift-ldlm state".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = magic.count + 4
    static let recordHeaderSize = 12
    /// Longer payloads are corruption: a name is at most a few KiB.
    static let maxPayloadSize = 16 * 1024 * 1024

    public static var header: [UInt8] {
        var bytes = magic
        bytes.appendLittleEndian(version)
        return bytes
    }

    private enum RecordType: UInt8 {
        case grant = 1, release = 2, lease = 3, fencingTokenHighWater = 4
    }

    /// Appends `record`, framed, to `bytes`.
    public static func append(_ record: StateRecord, to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: recordHeaderSize))
        switch record {
        case .grant(let name, let size, let key, let token, let leaseEnd):
            bytes.append(RecordType.grant.rawValue)
            bytes.appendName(name)
            bytes.appendLittleEndian(UInt32(bitPattern: size))
            bytes.appendKey(key)
            bytes.appendLittleEndian(token)
            bytes.appendLittleEndian(UInt64(bitPattern: leaseEnd ?? 0))
        case .release(let name, let key):
            bytes.append(RecordType.release.rawValue)
            bytes.appendName(name)
            bytes.appendKey(key)
        case .lease(let name, let key, let end):
            bytes.append(RecordType.lease.rawValue)
            bytes.appendName(name)
            bytes.appendKey(key)
            bytes.appendLittleEndian(UInt64(bitPattern: end))
        case .fencingTokenHighWater(let token):
            bytes.append(RecordType.fencingTokenHighWater.rawValue)
            bytes.appendLittleEndian(token)
        }
        let length = UInt32(bytes.count - start - recordHeaderSize)
        let checksum = CRC32C.checksum(bytes[(start + recordHeaderSize)...])
        bytes.storeLittleEndian(length, at: start)
        bytes.storeLittleEndian(~length, at: start + 4)
        bytes.storeLittleEndian(checksum, at: start + 8)
    }

    /// Decodes one payload; nil if its checksum matched but its fields do not
    /// parse, which only a bug or a different format could write.
    static func decode(payload: ArraySlice<UInt8>) -> StateRecord? {
        var reader = ByteReader(payload)
        guard let type = reader.byte().flatMap(RecordType.init(rawValue:)) else { return nil }
        let record: StateRecord?
        switch type {
        case .grant:
            guard let name = reader.name(), let size = reader.u32(), let key = reader.key(),
                  let token = reader.u64(), let lease = reader.u64()
            else { return nil }
            let leaseEnd = Int64(bitPattern: lease)
            record = .grant(
                name: name, size: Int32(bitPattern: size), key: key, fencingToken: token,
                leaseEndUnixMilliseconds: leaseEnd == 0 ? nil : leaseEnd
            )
        case .release:
            guard let name = reader.name(), let key = reader.key() else { return nil }
            record = .release(name: name, key: key)
        case .lease:
            guard let name = reader.name(), let key = reader.key(), let end = reader.u64() else { return nil }
            record = .lease(name: name, key: key, endUnixMilliseconds: Int64(bitPattern: end))
        case .fencingTokenHighWater:
            guard let token = reader.u64() else { return nil }
            record = .fencingTokenHighWater(token)
        }
        return reader.isAtEnd ? record : nil
    }
}

extension [UInt8] {
    mutating func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    fileprivate mutating func storeLittleEndian(_ value: UInt32, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { bytes in
            for (index, byte) in bytes.enumerated() { self[offset + index] = byte }
        }
    }

    fileprivate mutating func appendName(_ name: String) {
        appendLittleEndian(UInt32(name.utf8.count))
        append(contentsOf: name.utf8)
    }

    fileprivate mutating func appendKey(_ key: LockKey) {
        appendLittleEndian(key.high)
        appendLittleEndian(key.low)
    }
}

/// Reads fields front to back; every read fails rather than run past the end.
struct ByteReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { bytes.isEmpty }

    mutating func byte() -> UInt8? {
        bytes.popFirst()
    }

    mutating func u32() -> UInt32? { integer() }
    mutating func u64() -> UInt64? { integer() }

    private mutating func integer<Value: FixedWidthInteger>() -> Value? {
        let size = MemoryLayout<Value>.size
        guard bytes.count >= size else { return nil }
        var value: Value = 0
        for (shift, byte) in zip(stride(from: 0, to: size * 8, by: 8), bytes.prefix(size)) {
            value |= Value(byte) << shift
        }
        bytes = bytes.dropFirst(size)
        return value
    }

    mutating func name() -> String? {
        guard let length = u32().map(Int.init), bytes.count >= length else { return nil }
        let name = String(validating: bytes.prefix(length), as: UTF8.self)
        bytes = bytes.dropFirst(length)
        return name
    }

    mutating func key() -> LockKey? {
        guard let high = u64(), let low = u64() else { return nil }
        return LockKey(high: high, low: low)
    }
}
