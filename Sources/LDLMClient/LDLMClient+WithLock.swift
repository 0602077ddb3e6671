extension LDLMClient {
    /// Runs `body` while holding the lock and releases it however `body` ends:
    /// returning, throwing, or its task being cancelled. An error from `body`
    /// wins over one from releasing; otherwise a failed release is thrown,
    /// e.g. ``LDLMClientError/lockDoesNotExistOrInvalidKey(_:)`` when the lease
    /// ran out meanwhile.
    public func withLock<T>(
        _ name: String,
        size: Int32 = 1,
        waitTimeout: Duration? = nil,
        lease: Duration? = nil,
        _ body: (LockHandle) async throws -> T
    ) async throws -> T {
        let handle = try await lock(name, size: size, waitTimeout: waitTimeout, lease: lease)
        let result: T
        do {
            result = try await body(handle)
        } catch {
            try? await unlock(handle)
            throw error
        }
        try await unlock(handle)
        return result
    }
}
