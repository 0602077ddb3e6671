/// What a state file holds, read front to back.
public struct StateLogContents: Equatable {
    public var records: [StateRecord] = []
    /// Bytes that hold the header and whole, intact records: where appending goes on.
    public var intactLength = 0
    /// True when the file lacks a complete header (it is empty, or its
    /// creation was cut short) and must be started afresh.
    public var needsHeader = false
    /// The offset of a torn or corrupt last record, cut off before appending.
    public var tornTailOffset: Int?

    /// Reads a whole state file. A damaged last record is a write a crash cut
    /// short, and is reported in ``tornTailOffset``; damage with intact
    /// records after it is corruption, and throws.
    public init(parsing bytes: [UInt8]) throws(StateLogError) {
        let header = StateLogFormat.header
        if bytes.count < header.count {
            guard bytes.elementsEqual(StateLogFormat.magic.prefix(bytes.count)) else {
                throw .notAStateFile(firstBytes: Array(bytes.prefix(16)))
            }
            needsHeader = true
            return
        }
        guard bytes.starts(with: StateLogFormat.magic) else {
            throw .notAStateFile(firstBytes: Array(bytes.prefix(16)))
        }
        var versionReader = ByteReader(bytes[StateLogFormat.magic.count..<header.count])
        let version = versionReader.u32()!
        guard version == StateLogFormat.version else { throw .unsupportedVersion(version) }

        var offset = header.count
        while offset < bytes.count {
            switch Self.record(in: bytes, at: offset) {
            case .intact(let record, let end):
                records.append(record)
                offset = end
            case .torn:
                tornTailOffset = offset
                intactLength = offset
                return
            case .corrupt(let reason):
                throw .corrupt(offset: offset, reason: reason)
            }
        }
        intactLength = offset
    }

    private enum Outcome {
        case intact(StateRecord, end: Int)
        case torn
        case corrupt(String)
    }

    private static func record(in bytes: [UInt8], at offset: Int) -> Outcome {
        let remaining = bytes.count - offset
        guard remaining >= StateLogFormat.recordHeaderSize else { return .torn }
        var reader = ByteReader(bytes[offset..<(offset + StateLogFormat.recordHeaderSize)])
        let length = reader.u32()!, complement = reader.u32()!, checksum = reader.u32()!
        guard length == ~complement else {
            // A file system may leave zeros where a crash cut an append short.
            return bytes[offset...].allSatisfy { $0 == 0 } ? .torn : .corrupt("record length fails its check")
        }
        guard Int(length) <= StateLogFormat.maxPayloadSize, length > 0 else {
            return .corrupt("record length \(length) is out of range")
        }
        let payloadStart = offset + StateLogFormat.recordHeaderSize
        let end = payloadStart + Int(length)
        guard end <= bytes.count else { return .torn }
        let payload = bytes[payloadStart..<end]
        guard CRC32C.checksum(payload) == checksum else {
            return end == bytes.count ? .torn : .corrupt("record checksum mismatch")
        }
        guard let record = StateLogFormat.decode(payload: payload) else {
            return .corrupt("record with a valid checksum does not decode")
        }
        return .intact(record, end: end)
    }
}

public enum StateLogError: Error, Equatable, CustomStringConvertible {
    case notAStateFile(firstBytes: [UInt8])
    case unsupportedVersion(UInt32)
    case corrupt(offset: Int, reason: String)

    public var description: String {
        switch self {
        case .notAStateFile(let firstBytes):
            let start = String(decoding: firstBytes.map { (32...126).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            let hint = firstBytes.first == UInt8(ascii: "{") ? " (it looks like JSON, such as go-ldlm's state file)" : ""
            return "is not a swift-ldlm state file\(hint): it starts with \"\(start)\"; it is left untouched"
        case .unsupportedVersion(let version):
            return "has format version \(version); this server reads version \(StateLogFormat.version) only"
        case .corrupt(let offset, let reason):
            return "is corrupt at byte \(offset) (\(reason)) and intact records follow; it is left untouched: restore it from a backup, or move it away to start without locks"
        }
    }
}
