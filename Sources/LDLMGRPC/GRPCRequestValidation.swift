import LDLMHTTP2

/// The checks a call's headers must pass before its body is read.
extension GRPCServerConnection {
    private static let maxKnownPaths = 8

    /// Starts a stream from its request headers, answering at once a call that
    /// is not gRPC (wrong method or content type) or has a malformed timeout.
    func begin(streamID: Int32, headers: HTTP2HeaderFields, _ onEvent: (GRPCServerEvent) -> Void) {
        var isPost = false
        var method: String?
        var path: String?
        var opensRequestStream = false
        var hasContentType = false
        /// Built only when the value is not the usual `application/grpc`.
        var unusualContentType: String?
        var timeoutText: String?
        headers.forEach { name, value in
            if name.matches(":method") {
                isPost = value.matches("POST")
                // Only a refusal names the method: a POST costs no String.
                method = isPost ? "POST" : String(decoding: value, as: UTF8.self)
            } else if name.matches(":path") {
                (path, opensRequestStream) = internedPath(value)
            } else if name.matches("content-type") {
                hasContentType = true
                unusualContentType = value.matches("application/grpc") ? nil : String(decoding: value, as: UTF8.self)
            } else if name.matches("grpc-timeout") {
                timeoutText = String(decoding: value, as: UTF8.self)
            }
        }
        // An answered stream still needs state so its late DATA frames are ignored.
        func refuse(httpStatus: String, _ status: GRPCStatus) {
            streams[streamID] = .refused
            sendTrailersOnly(streamID: streamID, httpStatus: httpStatus, status: status, stopClient: true)
        }
        guard isPost else {
            refuse(httpStatus: "405", GRPCStatus(.unimplemented, "method \(method ?? "(none)") not allowed: gRPC uses POST"))
            return
        }
        guard hasContentType, unusualContentType.map(Self.isGRPCContentType) ?? true else {
            refuse(httpStatus: "415", GRPCStatus(.invalidArgument, "invalid gRPC request content-type \"\(unusualContentType ?? "")\""))
            return
        }
        var timeout: UInt64?
        if let timeoutText {
            guard let parsed = parseGRPCTimeout(timeoutText) else {
                refuse(httpStatus: "200", GRPCStatus(.invalidArgument, "malformed grpc-timeout \"\(timeoutText)\""))
                return
            }
            timeout = parsed
        }
        let head = GRPCRequestHead(path: path ?? "", headers: headers, timeoutNanoseconds: timeout)
        guard opensRequestStream else {
            streams[streamID] = .receiving(GRPCIncomingRequest(head: head, body: UnaryMessageAccumulator(maxMessageBytes: limits.maxMessageBytes)))
            return
        }
        guard openRequestStreamCount < limits.maxOpenRequestStreams else {
            refuse(httpStatus: "200", GRPCStatus(.resourceExhausted, "more than \(limits.maxOpenRequestStreams) client-streaming calls open on one connection"))
            return
        }
        streams[streamID] = .requestStream(GRPCRequestStream(maxMessageBytes: limits.maxMessageBytes))
        onEvent(.requestStream(GRPCRequest(streamID: streamID, path: head.path, headers: headers, timeoutNanoseconds: timeout, message: [])))
    }

    /// Counted when one opens, which is rare (reflection), rather than kept
    /// up to date on every change of every stream's state.
    private var openRequestStreamCount: Int {
        streams.values.reduce(0) { count, state in
            if case .requestStream = state { return count + 1 }
            return count
        }
    }

    /// The path as a String, and whether its method's client streams.
    private func internedPath(_ bytes: UnsafeBufferPointer<UInt8>) -> (String, Bool) {
        for index in knownPaths.indices where knownPaths[index].bytes.withUnsafeBufferPointer({ $0.hasSameBytes(as: bytes) }) {
            return (knownPaths[index].path, knownPaths[index].opensRequestStream)
        }
        let path = String(decoding: bytes, as: UTF8.self)
        let opensRequestStream = requestStreamPaths.contains(path)
        if knownPaths.count < Self.maxKnownPaths {
            knownPaths.append((Array(bytes), path, opensRequestStream))
        }
        return (path, opensRequestStream)
    }

    static func isGRPCContentType(_ value: String) -> Bool {
        if value == "application/grpc" || value == "application/grpc+proto" { return true }
        let mediaType = value.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
        return mediaType == "application/grpc" || mediaType == "application/grpc+proto"
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var trimmed = self
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
