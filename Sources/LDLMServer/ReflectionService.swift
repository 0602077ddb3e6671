import LDLMCore
import LDLMGRPC
import LDLMProtocol

/// gRPC server reflection (`Protos/reflection.proto`), so grpcurl, grpcui and
/// grpcio-reflection list the services and fetch their schema without a copy
/// of the .proto files. Served under both package names clients call,
/// `grpc.reflection.v1` and the older `grpc.reflection.v1alpha`, which share
/// their wire format.
///
/// One bidirectional stream per client: each request is answered as it
/// arrives, in order, and the call ends with status OK when the client
/// half-closes. A question without an answer (an unknown file or symbol, any
/// extension: our protos declare none) gets an `error_response` and the
/// stream goes on; a message that is not a request ends it INVALID_ARGUMENT.
/// The lock password guards it as it guards the lock service
/// (``PasswordInterceptor``).
final class ReflectionService: RPCService {
    static let v1Name = "grpc.reflection.v1.ServerReflection"
    static let v1alphaName = "grpc.reflection.v1alpha.ServerReflection"

    let serviceName: String
    /// What `list_services` answers, sorted.
    private let listedServices: [String]
    private let descriptors = ReflectionDescriptors.generated
    /// How much of an unknown name an error answer echoes.
    private static let echoedNameScalars = 200

    private init(serviceName: String, listedServices: [String]) {
        self.serviceName = serviceName
        self.listedServices = listedServices
    }

    /// Both versions, each listing `served` and themselves.
    static func bothVersions(listing served: [RPCService]) -> [RPCService] {
        let names = (served.map(\.serviceName) + [v1Name, v1alphaName]).sorted()
        return [v1Name, v1alphaName].map { ReflectionService(serviceName: $0, listedServices: names) }
    }

    var methods: [String: RPCMethod] { [:] }

    var requestStreamMethods: [String: RPCRequestStreamMethod] {
        [
            "ServerReflectionInfo": { [self] responder in
                RPCRequestStreamHandler(
                    receive: { [self] message in answer(message, through: responder) },
                    clientEnded: { responder.finish() },
                    // Each answer is sent as its request arrives: nothing is left to stop.
                    cancel: {}
                )
            },
        ]
    }

    private func answer(_ message: ArraySlice<UInt8>, through responder: RPCResponder) {
        let request: ServerReflectionRequest
        do {
            request = try ServerReflectionRequest(serializedBytes: message)
        } catch {
            responder.fail(GRPCStatus(.invalidArgument, "cannot decode reflection request: \(error)"))
            return
        }
        responder.send(LockResponses.encoded(response(to: request)))
    }

    func response(to request: ServerReflectionRequest) -> ServerReflectionResponse {
        ServerReflectionResponse(validHost: request.host, originalRequest: request, answer: answer(to: request.query))
    }

    private func answer(to query: ServerReflectionRequest.Query?) -> ServerReflectionResponse.Answer {
        switch query {
        case .listServices:
            return .services(listedServices)
        case .fileByFilename(let name):
            return descriptors.descriptors(ofFile: name).map { .fileDescriptors($0) } ?? Self.notFound("file \(quotedEcho(name, maxScalars: Self.echoedNameScalars)) not found")
        case .fileContainingSymbol(let symbol):
            return descriptors.descriptors(declaring: symbol).map { .fileDescriptors($0) } ?? Self.notFound("symbol \(quotedEcho(symbol, maxScalars: Self.echoedNameScalars)) not found")
        case .fileContainingExtension(let containingType, let number):
            guard descriptors.isMessageType(containingType) else {
                return Self.notFound("message type \(quotedEcho(containingType, maxScalars: Self.echoedNameScalars)) not found")
            }
            return Self.notFound("extension \(number) of \(containingType) not found: the server's protos declare no extensions")
        case .allExtensionNumbersOfType(let type):
            guard descriptors.isMessageType(type) else {
                return Self.notFound("message type \(quotedEcho(type, maxScalars: Self.echoedNameScalars)) not found")
            }
            return .extensionNumbers(baseTypeName: type, numbers: [])
        case nil:
            return .error(code: Int32(GRPCStatus.Code.invalidArgument.rawValue), message: "the request asks nothing: message_request is not set")
        }
    }

    private static func notFound(_ message: String) -> ServerReflectionResponse.Answer {
        .error(code: Int32(GRPCStatus.Code.notFound.rawValue), message: message)
    }
}
