#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// The server's listening sockets: TCP at `--listen_address`, and the Unix
/// socket at `--ipc_socket_file` when set. Both feed the same connection
/// pipeline (the Unix socket's without TLS) and the same open connections,
/// so a drain reaches every connection. The listeners run on the owner loop;
/// the connections they accept go to `connectionLoops` in turn.
enum ServerListeners {
    /// The TCP listener first; if the Unix socket then fails, the TCP
    /// listener is closed again.
    static func bind(
        config: ServerConfig,
        pipeline: ConnectionPipeline,
        connections: OpenConnections,
        connectionLoops: EventLoopGroup
    ) async throws(ListenError) -> (channels: [Channel], socketFile: UnixSocketFile?) {
        let tcp: Channel
        do {
            tcp = try await bindTCP(config.listenAddress, pipeline: pipeline, connections: connections, connectionLoops: connectionLoops)
        } catch {
            throw ListenError(address: config.listenAddress, underlying: error)
        }
        guard let path = config.ipcSocketFile else { return ([tcp], nil) }
        do {
            let unix = try await bindUnixSocket(
                path, pipeline: pipeline.overUnixSocket(path: path), connections: connections, connectionLoops: connectionLoops
            )
            return ([tcp, unix], UnixSocketFile(boundAt: path))
        } catch {
            try? await tcp.close()
            throw ListenError(address: path, underlying: error)
        }
    }

    private static func bindTCP(
        _ listenAddress: String, pipeline: ConnectionPipeline, connections: OpenConnections, connectionLoops: EventLoopGroup
    ) async throws -> Channel {
        let address = try ListenAddress(parsing: listenAddress)
        return try await bootstrap(pipeline, connections, connectionLoops)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// Replaces a socket file left by an earlier run (never one a running
    /// server answers on), and makes the socket owner-only at once: it serves
    /// every call, admin included, without a password.
    private static func bindUnixSocket(
        _ path: String, pipeline: ConnectionPipeline, connections: OpenConnections, connectionLoops: EventLoopGroup
    ) async throws -> Channel {
        try UnixSocketFile.refuseIfServed(path)
        // The socket file must never exist with looser permissions, not even
        // between bind and chmod; nothing else creates files while we start.
        let previousMask = umask(0o177)
        defer { umask(previousMask) }
        let channel = try await bootstrap(pipeline, connections, connectionLoops)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        guard chmod(path, 0o600) == 0 else {
            let error = IOError(errnoCode: errno, reason: "chmod 0600 \(path)")
            try? await channel.close()
            unlink(path)
            throw error
        }
        return channel
    }

    private static func bootstrap(_ pipeline: ConnectionPipeline, _ connections: OpenConnections, _ connectionLoops: EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: pipeline.manager.eventLoop, childGroup: connectionLoops)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ip = pipeline.transport.isUnixSocket ? nil : channel.remoteAddress?.ipAddress
                    switch connections.admit(channel, ip: ip) {
                    case .admitted:
                        try pipeline.configure(channel)
                    case .refused(let limit, let reason):
                        try pipeline.refuse(channel, over: limit, reason: reason)
                    }
                }
            }
    }
}

/// A listener could not be bound; `ldlm-server` exits with status 2.
public struct ListenError: Error, CustomStringConvertible {
    let address: String
    let underlying: Error

    public var description: String { "cannot listen on \(address): \(underlying)" }
}
