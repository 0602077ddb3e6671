#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file of the `--ipc_socket_file` listener, so that shutdown removes the
/// socket this server bound and never one another server bound since.
struct UnixSocketFile {
    let path: String
    private let inode: ino_t?

    /// Call right after binding `path`.
    init(boundAt path: String) {
        self.path = path
        inode = Self.inode(of: path)
    }

    func remove() {
        guard let inode, Self.inode(of: path) == inode else { return }
        unlink(path)
    }

    /// Throws if a server answers on `path`: binding would replace its
    /// socket. A file left by a server that is gone is fine to replace.
    static func refuseIfServed(_ path: String) throws {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return }
        defer { close(probe) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let fits = withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            guard bytes.count < raw.count else { return false }
            raw.copyBytes(from: bytes)
            return true
        }
        guard fits else { return }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 {
            throw SocketInUse()
        }
    }

    struct SocketInUse: Error, CustomStringConvertible {
        var description: String { "another server listens on it" }
    }

    private static func inode(of path: String) -> ino_t? {
        var status = stat()
        return stat(path, &status) == 0 ? status.st_ino : nil
    }
}
