import CLDLMProto
import CProtobufC

// Swift views of the messages in `Protos/reflection.proto` (package
// `grpc.reflection.v1`). The v1alpha messages are wire-identical, so both
// versions of the service read and write these.

public struct ServerReflectionRequest: Equatable, Sendable {
    /// What the client asks for: the `message_request` oneof.
    public enum Query: Equatable, Sendable {
        case fileByFilename(String)
        case fileContainingSymbol(String)
        case fileContainingExtension(containingType: String, extensionNumber: Int32)
        case allExtensionNumbersOfType(String)
        case listServices(String)
    }

    public var host: String
    /// Nil when the client set none (or one this schema does not know).
    public var query: Query?

    public init(host: String = "", query: Query?) {
        self.host = host
        self.query = query
    }
}

public struct ServerReflectionResponse: Equatable, Sendable {
    /// The `message_response` oneof.
    public enum Answer: Equatable, Sendable {
        /// Serialized FileDescriptorProtos.
        case fileDescriptors([[UInt8]])
        case extensionNumbers(baseTypeName: String, numbers: [Int32])
        /// Fully qualified service names.
        case services([String])
        case error(code: Int32, message: String)
    }

    public var validHost: String
    public var originalRequest: ServerReflectionRequest?
    public var answer: Answer?

    public init(validHost: String = "", originalRequest: ServerReflectionRequest?, answer: Answer?) {
        self.validHost = validHost
        self.originalRequest = originalRequest
        self.answer = answer
    }
}

extension ServerReflectionRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: grpc__reflection__v1__server_reflection_request__unpack, free: grpc__reflection__v1__server_reflection_request__free_unpacked) {
            ServerReflectionRequest($0)
        }
    }

    init(_ message: Grpc__Reflection__V1__ServerReflectionRequest) {
        let query: Query?
        switch message.message_request_case {
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
            query = .fileByFilename(string(message.file_by_filename))
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
            query = .fileContainingSymbol(string(message.file_containing_symbol))
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
            let request = message.file_containing_extension?.pointee
            query = .fileContainingExtension(containingType: string(request?.containing_type), extensionNumber: request?.extension_number ?? 0)
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
            query = .allExtensionNumbersOfType(string(message.all_extension_numbers_of_type))
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
            query = .listServices(string(message.list_services))
        default:
            query = nil
        }
        self.init(host: string(message.host), query: query)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena)
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: grpc__reflection__v1__server_reflection_request__get_packed_size, pack: grpc__reflection__v1__server_reflection_request__pack)
        }
    }

    func cMessage(in arena: inout EncodeArena) -> Grpc__Reflection__V1__ServerReflectionRequest {
        var message = Grpc__Reflection__V1__ServerReflectionRequest()
        grpc__reflection__v1__server_reflection_request__init(&message)
        message.host = arena.string(host)
        switch query {
        case .fileByFilename(let name):
            message.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME
            message.file_by_filename = arena.string(name)
        case .fileContainingSymbol(let symbol):
            message.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL
            message.file_containing_symbol = arena.string(symbol)
        case .fileContainingExtension(let containingType, let extensionNumber):
            var request = Grpc__Reflection__V1__ExtensionRequest()
            grpc__reflection__v1__extension_request__init(&request)
            request.containing_type = arena.string(containingType)
            request.extension_number = extensionNumber
            message.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION
            message.file_containing_extension = arena.object(request)
        case .allExtensionNumbersOfType(let type):
            message.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE
            message.all_extension_numbers_of_type = arena.string(type)
        case .listServices(let value):
            message.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES
            message.list_services = arena.string(value)
        case nil:
            break
        }
        return message
    }
}

extension ServerReflectionResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: grpc__reflection__v1__server_reflection_response__unpack, free: grpc__reflection__v1__server_reflection_response__free_unpacked) { message in
            let answer: Answer?
            switch message.message_response_case {
            case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE:
                let files = message.file_descriptor_response.pointee
                answer = .fileDescriptors((0..<files.n_file_descriptor_proto).map { index in
                    let file = files.file_descriptor_proto[index]
                    return Array(UnsafeBufferPointer(start: file.data, count: file.len))
                })
            case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE:
                let numbers = message.all_extension_numbers_response.pointee
                answer = .extensionNumbers(
                    baseTypeName: string(numbers.base_type_name),
                    numbers: Array(UnsafeBufferPointer(start: numbers.extension_number, count: numbers.n_extension_number))
                )
            case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE:
                answer = .services(elements(message.list_services_response.pointee.service, count: message.list_services_response.pointee.n_service).map { string($0.name) })
            case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE:
                let error = message.error_response.pointee
                answer = .error(code: error.error_code, message: string(error.error_message))
            default:
                answer = nil
            }
            return ServerReflectionResponse(
                validHost: string(message.valid_host),
                originalRequest: message.original_request.map { ServerReflectionRequest($0.pointee) },
                answer: answer
            )
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = Grpc__Reflection__V1__ServerReflectionResponse()
            grpc__reflection__v1__server_reflection_response__init(&message)
            message.valid_host = arena.string(validHost)
            message.original_request = originalRequest.map { arena.object($0.cMessage(in: &arena)) }
            switch answer {
            case .fileDescriptors(let files):
                var response = Grpc__Reflection__V1__FileDescriptorResponse()
                grpc__reflection__v1__file_descriptor_response__init(&response)
                response.n_file_descriptor_proto = files.count
                response.file_descriptor_proto = arena.values(files.map { arena.bytes($0) })
                message.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
                message.file_descriptor_response = arena.object(response)
            case .extensionNumbers(let baseTypeName, let numbers):
                var response = Grpc__Reflection__V1__ExtensionNumberResponse()
                grpc__reflection__v1__extension_number_response__init(&response)
                response.base_type_name = arena.string(baseTypeName)
                response.n_extension_number = numbers.count
                response.extension_number = arena.values(numbers)
                message.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE
                message.all_extension_numbers_response = arena.object(response)
            case .services(let names):
                var response = Grpc__Reflection__V1__ListServiceResponse()
                grpc__reflection__v1__list_service_response__init(&response)
                response.n_service = names.count
                response.service = arena.array(names.map { name in
                    var service = Grpc__Reflection__V1__ServiceResponse()
                    grpc__reflection__v1__service_response__init(&service)
                    service.name = arena.string(name)
                    return arena.object(service)
                })
                message.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
                message.list_services_response = arena.object(response)
            case .error(let code, let text):
                var response = Grpc__Reflection__V1__ErrorResponse()
                grpc__reflection__v1__error_response__init(&response)
                response.error_code = code
                response.error_message = arena.string(text)
                message.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
                message.error_response = arena.object(response)
            case nil:
                break
            }
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: grpc__reflection__v1__server_reflection_response__get_packed_size, pack: grpc__reflection__v1__server_reflection_response__pack)
        }
    }
}
