import Glibc

/// The state file on disk: appends made durable with `fdatasync`, and
/// compaction by atomic replacement. Blocking: the server calls it from its
/// sync thread only, one call at a time, which is what makes it Sendable.
public final class StateLogFile: @unchecked Sendable {
    public let path: String
    private var descriptor: Int32
    /// Bytes in the file.
    public private(set) var size: Int

    /// Opens the state file at `path`, creating it if missing, and reads it.
    /// A torn last record is cut off (after `warn` names its offset); a file
    /// that is not ours, or corrupt before its end, is refused untouched. The
    /// file stays locked against a second server until ``close()``.
    public static func open(path: String, warn: (String) -> Void) throws(StateFileError) -> (StateLogFile, StateLogContents) {
        var descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC)
        if descriptor < 0, errno == ENOENT {
            try writeAtomically(StateLogFormat.header, to: path)
            descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC)
        }
        guard descriptor >= 0 else { throw .system("cannot open state file \(path)", errno) }
        let file = StateLogFile(path: path, descriptor: descriptor)
        do throws(StateFileError) {
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                throw errno == EWOULDBLOCK
                    ? StateFileError(message: "state file \(path) is in use by another server")
                    : .system("cannot lock state file \(path)", errno)
            }
            let bytes = try file.readAll()
            let contents: StateLogContents
            do {
                contents = try StateLogContents(parsing: bytes)
            } catch {
                throw StateFileError(message: "state file \(path) \(error)")
            }
            if contents.needsHeader {
                try file.replace(with: StateLogFormat.header)
            } else if let torn = contents.tornTailOffset {
                warn("state file \(path): cutting off a torn or corrupt last record at byte \(torn) (\(bytes.count - torn) bytes)")
                guard ftruncate(descriptor, off_t(torn)) == 0, fsync(descriptor) == 0 else {
                    throw .system("cannot truncate state file \(path)", errno)
                }
                file.size = torn
            }
            return (file, contents)
        } catch {
            file.close()
            throw error
        }
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
        self.size = 0
    }

    /// Appends `bytes` and returns once they are on disk.
    public func append(_ bytes: [UInt8]) throws(StateFileError) {
        try Self.writeAll(bytes, to: descriptor, at: size, path: path)
        guard fdatasync(descriptor) == 0 else { throw .system("cannot sync state file \(path)", errno) }
        size += bytes.count
    }

    /// Replaces the whole file with `contents`: written to a temporary file,
    /// synced, renamed over the old one and the directory synced, so a crash
    /// leaves either file whole.
    public func replace(with contents: [UInt8]) throws(StateFileError) {
        let replacement = try Self.writeAtomically(contents, to: path, keepingOpen: true)
        // The lock moves with the file: the new inode is locked before the
        // old one is let go.
        _ = flock(replacement, LOCK_EX | LOCK_NB)
        Glibc.close(descriptor)
        descriptor = replacement
        size = contents.count
    }

    public func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    deinit {
        close()
    }

    private func readAll() throws(StateFileError) -> [UInt8] {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .system("cannot read state file \(path)", errno) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + offset, buffer.count - offset, off_t(offset))
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .system("cannot read state file \(path)", count < 0 ? errno : EIO) }
            offset += count
        }
        size = bytes.count
        return bytes
    }

    @discardableResult
    private static func writeAtomically(_ contents: [UInt8], to path: String, keepingOpen: Bool = false) throws(StateFileError) -> Int32 {
        let temporary = path + ".compacting"
        let descriptor = Glibc.open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .system("cannot create \(temporary)", errno) }
        do throws(StateFileError) {
            try writeAll(contents, to: descriptor, at: 0, path: temporary)
            guard fsync(descriptor) == 0 else { throw .system("cannot sync \(temporary)", errno) }
            guard rename(temporary, path) == 0 else { throw .system("cannot rename \(temporary) to \(path)", errno) }
            try syncDirectory(of: path)
        } catch {
            Glibc.close(descriptor)
            unlink(temporary)
            throw error
        }
        if keepingOpen { return descriptor }
        Glibc.close(descriptor)
        return -1
    }

    private static func syncDirectory(of path: String) throws(StateFileError) {
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let descriptor = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system("cannot open directory \(directory)", errno) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system("cannot sync directory \(directory)", errno) }
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, at start: Int, path: String) throws(StateFileError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                pwrite(descriptor, buffer.baseAddress! + written, buffer.count - written, off_t(start + written))
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .system("cannot write state file \(path)", count < 0 ? errno : EIO) }
            written += count
        }
    }
}

public struct StateFileError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }

    static func system(_ what: String, _ code: Int32) -> StateFileError {
        StateFileError(message: "\(what): \(String(cString: strerror(code)))")
    }
}
