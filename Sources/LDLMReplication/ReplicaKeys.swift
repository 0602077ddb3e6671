import LDLMCore

/// Where a replica set keeps its state in etcd, all under `/<cluster>/`:
/// - `primary`: the primary's advertise address, on the primary's etcd lease;
///   its create revision names the primary's term, and every write is guarded by it.
/// - `holds/<name>/<key>`: one held slot, valued ``HoldValue``. The key comes
///   last and never contains `/`, so a name may.
/// - `fencing`: the largest fencing token handed out, as decimal text.
public struct ReplicaKeys: Sendable {
    public let primary: [UInt8]
    public let fencing: [UInt8]
    public let holdsPrefix: [UInt8]

    public init(cluster: String) {
        primary = Array("/\(cluster)/primary".utf8)
        fencing = Array("/\(cluster)/fencing".utf8)
        holdsPrefix = Array("/\(cluster)/holds/".utf8)
    }

    public func hold(name: String, key: LockKey) -> [UInt8] {
        var bytes = holdsPrefix
        bytes.append(contentsOf: name.utf8)
        bytes.append(UInt8(ascii: "/"))
        bytes.append(contentsOf: key.description.utf8)
        return bytes
    }

    /// The name and key of a hold's etcd key; nil for a key this layout did not write.
    public func parseHold(_ etcdKey: [UInt8]) -> (name: String, key: LockKey)? {
        guard etcdKey.starts(with: holdsPrefix), let slash = etcdKey.lastIndex(of: UInt8(ascii: "/")),
              slash > holdsPrefix.count
        else { return nil }
        let nameBytes = etcdKey[holdsPrefix.count..<slash]
        guard let name = String(validating: nameBytes, as: UTF8.self),
              let keyText = String(validating: etcdKey[(slash + 1)...], as: UTF8.self), let key = LockKey(keyText)
        else { return nil }
        return (name, key)
    }
}

/// The value of a hold's etcd key: size, fencing token and the lease's end
/// in wall-clock Unix milliseconds (0: no lease), little-endian, 20 bytes.
public struct HoldValue: Equatable, Sendable {
    public var size: Int32
    public var fencingToken: UInt64
    public var leaseEndUnixMilliseconds: Int64?

    public init(size: Int32, fencingToken: UInt64, leaseEndUnixMilliseconds: Int64?) {
        self.size = size
        self.fencingToken = fencingToken
        self.leaseEndUnixMilliseconds = leaseEndUnixMilliseconds
    }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        Self.append(UInt64(UInt32(bitPattern: size)), bytes: 4, to: &bytes)
        Self.append(fencingToken, bytes: 8, to: &bytes)
        Self.append(UInt64(bitPattern: leaseEndUnixMilliseconds ?? 0), bytes: 8, to: &bytes)
        return bytes
    }

    public init?(decoding bytes: [UInt8]) {
        guard bytes.count == 20 else { return nil }
        size = Int32(bitPattern: UInt32(Self.read(bytes, at: 0, count: 4)))
        fencingToken = Self.read(bytes, at: 4, count: 8)
        let leaseEnd = Int64(bitPattern: Self.read(bytes, at: 12, count: 8))
        leaseEndUnixMilliseconds = leaseEnd == 0 ? nil : leaseEnd
        guard size >= 1 else { return nil }
    }

    private static func append(_ value: UInt64, bytes count: Int, to bytes: inout [UInt8]) {
        for index in 0..<count {
            bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index)))
        }
    }

    private static func read(_ bytes: [UInt8], at offset: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<count {
            value |= UInt64(bytes[offset + index]) << (8 * index)
        }
        return value
    }
}

/// A hold as a new primary reads it from etcd.
public struct LoadedHold: Equatable, Sendable {
    public var name: String
    public var key: LockKey
    public var value: HoldValue

    public init(name: String, key: LockKey, value: HoldValue) {
        self.name = name
        self.key = key
        self.value = value
    }
}
