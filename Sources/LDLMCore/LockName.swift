/// A lock name as a dictionary key, compared by its UTF-8 bytes.
///
/// Swift's `String` equality treats canonically equivalent spellings ("é" as
/// one scalar or as "e" plus a combining accent) as equal; protobuf strings and
/// the Go server compare bytes, so two such names are two different locks.
struct LockName: Hashable {
    let text: String

    static func == (lhs: LockName, rhs: LockName) -> Bool {
        lhs.text.utf8.elementsEqual(rhs.text.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
