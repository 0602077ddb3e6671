#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A lock name as a dictionary key, compared by its UTF-8 bytes.
///
/// Swift's `String` equality treats canonically equivalent spellings ("é" as
/// one scalar or as "e" plus a combining accent) as equal; protobuf strings and
/// the Go server compare bytes, so two such names are two different locks.
struct LockName: Hashable {
    let text: String

    static func == (lhs: LockName, rhs: LockName) -> Bool {
        var left = lhs.text
        var right = rhs.text
        return left.withUTF8 { leftBytes in
            right.withUTF8 { rightBytes in
                leftBytes.count == rightBytes.count
                    && (leftBytes.isEmpty || memcmp(leftBytes.baseAddress!, rightBytes.baseAddress!, leftBytes.count) == 0)
            }
        }
    }

    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
