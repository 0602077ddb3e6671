import Foundation
import GoDuration
import LDLMCore
import LDLMProtocol
import Logging
import NIOCore

/// One HTTP request as the REST gateway sees it, free of any HTTP library.
struct RESTRequest {
    var method: String
    /// The URI before any `?`.
    var path: Substring
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// `host:port` of the client, for the admin listing of the sessions it opens.
    var remoteAddress: String?

    /// Every value of the header `name`, which is matched ignoring case.
    func values(of name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }
}

struct RESTResponse {
    var status: Int
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// Undoes what the answer reports when it surely did not reach the
    /// client: a grant whose key nobody learned would otherwise stay held by
    /// the session, unusable, until the session ends.
    var onUndelivered: (() -> Void)?

    /// A JSON answer.
    static func json(_ status: Int, _ body: [UInt8]) -> RESTResponse {
        RESTResponse(status: status, headers: [("Content-Type", "application/json")], body: body)
    }

    /// grpc-gateway's shape for a failed call: the gRPC status code the
    /// failure maps to, and its message.
    static func statusError(_ status: Int, grpcCode: Int, _ message: String) -> RESTResponse {
        json(status, RESTMessages.statusError(code: grpcCode, message: message))
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// go-ldlm's REST API over the server's one ``LockManager``: `POST /session`
/// opens a lock session named by the cookie `ldlm-session`, `DELETE /session`
/// ends it, and `POST /v1/lock` (a TryLock), `/v1/unlock` and `/v1/renew`
/// act in it. A REST session is a lock session like a connection's: the
/// admin service lists and ends it, its locks exclude gRPC clients', and it
/// ends, as a closed connection does, once idle for the session timeout.
///
/// Confined to the manager's event loop, like the manager.
final class RESTGateway {
    static let cookieName = "ldlm-session"
    static let sessionPath = "/session"

    private let manager: LockManager
    private let password: [UInt8]?
    private let logger: Logger
    private let metrics: ServerMetrics?
    private let wallClock: () -> Int64
    private var sessions: RESTSessionTable
    private var expiryTimer: (deadline: UInt64, task: Scheduled<Void>)?

    /// `wallClock` gives Unix milliseconds, for the cookie's `Expires`.
    init(
        manager: LockManager,
        password: String?,
        idleTimeout: Duration,
        maxSessions: Int,
        logger: Logger,
        metrics: ServerMetrics? = nil,
        wallClock: @escaping () -> Int64 = unixMillisecondsNow
    ) {
        self.manager = manager
        self.password = password.map { Array($0.utf8) }
        self.logger = logger
        self.metrics = metrics
        self.wallClock = wallClock
        sessions = RESTSessionTable(idleTimeoutNanoseconds: UInt64(idleTimeout.nanosecondsClamped), capacity: maxSessions)
        // A strong capture: the gateway lives as long as the manager.
        manager.onDrain { self.endAllSessions() }
    }

    var sessionCount: Int { sessions.count }

    /// The largest request body a gateway call can need, for the listener to
    /// refuse larger ones (413): a lock name of the longest size with every
    /// byte escaped as `\u00XX`, and room for the other fields.
    static func maxBodyBytes(maxNameBytes: Int) -> Int {
        6 * maxNameBytes + 1024
    }

    /// Answers `request` through `respond`, at once or, for a change the
    /// state file must keep, once it is on disk.
    func handle(_ request: RESTRequest, respond: @escaping (RESTResponse) -> Void) {
        // The timer may not have fired yet for a session past its time.
        expireIdleSessions()
        if manager.isDraining {
            return respond(.statusError(503, grpcCode: 14, "server is shutting down"))
        }
        guard isAuthorized(request) else {
            // Debug, as over gRPC: a client guessing passwords must not be
            // able to fill the log; the metrics count these refusals.
            metrics?.authFailed(.password)
            logger.debug("refused REST request with a wrong or missing password", metadata: ["remote": "\(request.remoteAddress ?? "?")"])
            return respond(RESTResponse(status: 401, headers: [("WWW-Authenticate", #"Basic realm="Restricted""#)]))
        }
        if request.path == Self.sessionPath, request.method == "POST" {
            return respond(openSession(request))
        }
        if request.path == Self.sessionPath, request.method == "DELETE" {
            // The locks the session released are answered for as an unlock is.
            let response = deleteSession(request)
            return manager.afterSync { respond(response) }
        }
        guard let id = Self.cookie(in: request) else {
            return respond(.json(401, Array(#"{"error": "session cookie not found. create a new session at /session"}"#.utf8)))
        }
        // An administrator's EndSession closes the session at once but tells
        // the gateway a moment later; no call may act in it meanwhile.
        guard let session = sessions.use(id: id, now: manager.nanosecondsNow), manager.peer(of: session) != nil else {
            return respond(.json(401, Array(#"{"error": "session cookie invalid or expired. create a new session at /session"}"#.utf8)))
        }
        // Every answer in a session carries the cookie with its expiry pushed back.
        let cookie = sessionCookie(id)
        call(request, session: session) { response in
            var response = response
            response.headers.append(cookie)
            respond(response)
        }
    }

    // MARK: Sessions

    private func openSession(_ request: RESTRequest) -> RESTResponse {
        guard !sessions.isFull else {
            let message = "cannot create session: the server already has \(sessions.count) REST sessions, its limit (max_rest_sessions)"
            logger.warning("refused REST session over a server limit", metadata: [
                "remote": "\(request.remoteAddress ?? "?")", "error": "\(message)",
            ])
            return .statusError(429, grpcCode: 8, message)
        }
        let id = Self.newSessionID()
        var sessionLogger = logger
        // Only a prefix: the whole id is a credential, and logs are read by many.
        sessionLogger[metadataKey: "rest_session"] = "\(id.prefix(8))"
        let connection = ConnectionContext(logger: sessionLogger, remoteAddress: request.remoteAddress)
        let session = manager.openSession(for: connection) { [self] in
            // An administrator's EndSession: the manager has released its locks.
            _ = sessions.remove(id: id)
            connection.sessionClosed()
        }
        connection.sessionOpened(session)
        sessions.insert(id: id, session: session, now: manager.nanosecondsNow)
        rescheduleExpiry()
        connection.logger.info("REST session opened")
        var response = RESTResponse.json(201, Array(#"{"session_id": "\#(id)"}"#.utf8))
        response.headers.append(sessionCookie(id))
        return response
    }

    private func deleteSession(_ request: RESTRequest) -> RESTResponse {
        guard let id = Self.cookie(in: request) else {
            return .json(500, Array(#"{"error":"http: named cookie not present"}"#.utf8))
        }
        guard let session = sessions.remove(id: id) else {
            return .json(409, Array(#"{"error": "session not found"}"#.utf8))
        }
        end(session, because: "deleted")
        var response = RESTResponse.json(200, Array(#"{"session_id": ""}"#.utf8))
        response.headers.append(("Set-Cookie", "\(Self.cookieName)=; Path=/; HttpOnly"))
        return response
    }

    /// Ends a session as a closed connection's: its locks are released
    /// unless the server keeps them on disconnect, or drains with a state file.
    private func end(_ session: SessionID, because reason: String) {
        let connection = manager.peer(of: session)?.connection
        let outcome = manager.closeSession(session)
        connection?.sessionClosed()
        switch outcome {
        case .released(let locks):
            connection?.logger.info("REST session ended", metadata: ["reason": "\(reason)", "released_locks": "\(locks)"])
        case .kept(let locks):
            connection?.logger.info("REST session ended", metadata: ["reason": "\(reason)", "kept_locks": "\(locks)"])
        }
    }

    private func endAllSessions() {
        expiryTimer?.task.cancel()
        expiryTimer = nil
        for id in sessions.sessionIDs {
            if let session = sessions.remove(id: id) { end(session, because: "server draining") }
        }
    }

    private func expireIdleSessions() {
        for session in sessions.removeExpired(now: manager.nanosecondsNow) {
            end(session, because: "idle")
        }
        rescheduleExpiry()
    }

    /// Keeps one timer armed for the earliest session expiry. A use only
    /// moves expiries later, so a timer that fires early finds nothing due
    /// and re-arms.
    private func rescheduleExpiry() {
        guard let next = sessions.earliestExpiry else { return }
        if let expiryTimer {
            guard next < expiryTimer.deadline else { return }
            expiryTimer.task.cancel()
        }
        let task = manager.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(next)) { [self] in
            expiryTimer = nil
            expireIdleSessions()
        }
        expiryTimer = (next, task)
    }

    /// 128 bits from the system's random source (`getrandom(2)` on Linux), in hex.
    private static func newSessionID() -> String {
        var random = SystemRandomNumberGenerator()
        return [random.next(), random.next()].map { (word: UInt64) in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    private func sessionCookie(_ id: String) -> (name: String, value: String) {
        let expires = Date(timeIntervalSince1970: Double(wallClock()) / 1000 + Double(sessions.idleTimeoutNanoseconds) / 1e9)
        return ("Set-Cookie", "\(Self.cookieName)=\(id); Path=/; Expires=\(Self.httpDate.string(from: expires)); HttpOnly")
    }

    private static let httpDate: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()

    /// The first `ldlm-session` cookie of the request's `Cookie` headers.
    static func cookie(in request: RESTRequest) -> String? {
        for header in request.values(of: "Cookie") {
            for pair in header.split(separator: ";") {
                let pair = pair.trimmingCharacters(in: .whitespaces)
                guard let equals = pair.firstIndex(of: "="), pair[..<equals] == cookieName else { continue }
                var value = pair[pair.index(after: equals)...]
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
                return String(value)
            }
        }
        return nil
    }

    /// HTTP basic auth whose password (the user name is ignored, as in
    /// go-ldlm) is the server's `--password`; anyone without one.
    private func isAuthorized(_ request: RESTRequest) -> Bool {
        guard let password else { return true }
        guard let header = request.values(of: "Authorization").first,
              header.count > 6, header.prefix(6).lowercased() == "basic ",
              let credentials = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let colon = credentials.firstIndex(of: UInt8(ascii: ":"))
        else { return false }
        return constantTimeEquals(Array(credentials[credentials.index(after: colon)...]), password)
    }

    // MARK: Lock calls

    private enum Method {
        case tryLock, unlock, renew
    }

    /// go-ldlm's paths: `/v1/lock` is TryLock, and renewal has been
    /// `/v1/refreshlock`, `/v1/renewlock` and `/v1/renew` in its releases.
    private static let methods: [Substring: Method] = [
        "/v1/lock": .tryLock, "/v1/unlock": .unlock, "/v1/renew": .renew, "/v1/refreshlock": .renew, "/v1/renewlock": .renew,
    ]

    private func call(_ request: RESTRequest, session: SessionID, respond: @escaping (RESTResponse) -> Void) {
        guard let method = Self.methods[request.path] else {
            return respond(.statusError(404, grpcCode: 5, "Not Found"))
        }
        // grpc-gateway answers a known path with the wrong method this way.
        guard request.method == "POST" else {
            return respond(.statusError(501, grpcCode: 12, "Method Not Allowed"))
        }
        do {
            switch method {
            case .tryLock: tryLock(try RESTMessages.decode(RESTMessages.TryLock.self, from: request.body), session, respond)
            case .unlock: unlock(try RESTMessages.decode(RESTMessages.Unlock.self, from: request.body), respond)
            case .renew: renew(try RESTMessages.decode(RESTMessages.Renew.self, from: request.body), session, respond)
            }
        } catch {
            respond(.statusError(400, grpcCode: 3, error.message))
        }
    }

    private func tryLock(_ request: RESTMessages.TryLock, _ session: SessionID, _ respond: @escaping (RESTResponse) -> Void) {
        let arguments = LockArguments(name: request.name, size: request.size ?? 1, leaseSeconds: request.lockTimeoutSeconds ?? 0)
        do {
            guard let grant = try manager.tryLock(arguments, session: session) else {
                return respond(.json(200, RESTMessages.lockResponse(locked: false, name: request.name)))
            }
            let key = grant.key.description
            var response = RESTResponse.json(200, RESTMessages.lockResponse(locked: true, name: request.name, key: key, fencingToken: grant.fencingToken))
            // As over gRPC: a grant whose answer never left is released.
            response.onUndelivered = { [manager] in try? manager.unlock(name: request.name, key: key) }
            manager.afterSync { respond(response) }
        } catch {
            respond(failed(error, session: session) {
                RESTMessages.lockResponse(locked: false, name: request.name, error: LockResponses.ldlmError(error))
            })
        }
    }

    private func unlock(_ request: RESTMessages.Unlock, _ respond: @escaping (RESTResponse) -> Void) {
        do {
            try manager.unlock(name: request.name, key: request.key)
            manager.afterSync { respond(.json(200, RESTMessages.unlockResponse(unlocked: true, name: request.name))) }
        } catch {
            respond(.json(200, RESTMessages.unlockResponse(unlocked: false, name: request.name, error: LockResponses.ldlmError(error))))
        }
    }

    private func renew(_ request: RESTMessages.Renew, _ session: SessionID, _ respond: @escaping (RESTResponse) -> Void) {
        do {
            let token = try manager.renew(name: request.name, key: request.key, leaseSeconds: request.lockTimeoutSeconds, session: session)
            let body = RESTMessages.lockResponse(locked: true, name: request.name, key: request.key, fencingToken: token)
            manager.afterSync { respond(.json(200, body)) }
        } catch {
            respond(failed(error, session: session) {
                RESTMessages.lockResponse(locked: false, name: request.name, error: LockResponses.ldlmError(error))
            })
        }
    }

    /// A server limit is what gRPC calls RESOURCE_EXHAUSTED, which
    /// grpc-gateway answers 429, logged for the operator; any other failure
    /// is an LDLM error in a 200 answer, as over gRPC.
    private func failed(_ failure: LockFailure, session: SessionID, answer: () -> [UInt8]) -> RESTResponse {
        guard failure.isResourceExhausted else { return .json(200, answer()) }
        manager.peer(of: session)?.connection.logger.warning("refused lock call over a server limit", metadata: ["error": "\(failure.message)"])
        return .statusError(429, grpcCode: 8, failure.message)
    }
}
