import CLDLMProto

/// The descriptors of `Protos/*.proto` that gRPC server reflection serves, as
/// `codegen/generate.sh` compiled them (`reflection_descriptors.c`): each
/// file's serialized FileDescriptorProto with the files it imports, and the
/// file declaring each fully qualified symbol.
struct ReflectionDescriptors {
    struct File {
        let name: String
        let descriptor: [UInt8]
        /// Indices into ``files`` of the files it imports, directly or not.
        let dependencies: [Int]
    }

    let files: [File]
    private let fileIndexByName: [String: Int]
    private let symbols: [String: (file: Int, isMessage: Bool)]

    static let generated = ReflectionDescriptors()

    private init() {
        let fileTable = UnsafeBufferPointer(start: ldlm_reflection_files, count: ldlm_reflection_file_count)
        files = fileTable.map { file in
            File(
                name: String(cString: file.name),
                descriptor: Array(UnsafeBufferPointer(start: file.descriptor, count: file.descriptor_length)),
                dependencies: UnsafeBufferPointer(start: file.dependencies, count: file.dependency_count).map(Int.init)
            )
        }
        fileIndexByName = Dictionary(uniqueKeysWithValues: files.enumerated().map { ($1.name, $0) })
        let symbolTable = UnsafeBufferPointer(start: ldlm_reflection_symbols, count: ldlm_reflection_symbol_count)
        symbols = Dictionary(uniqueKeysWithValues: symbolTable.map { (String(cString: $0.name), (Int($0.file), $0.is_message)) })
    }

    /// The file compiled as `name` and the files it imports, itself first, as
    /// grpc's reflection answers; nil for an unknown name.
    func descriptors(ofFile name: String) -> [[UInt8]]? {
        fileIndexByName[name].map(descriptorsWithDependencies)
    }

    /// The file declaring `symbol` (e.g. `ldlm.LDLM.Lock`) and the files it imports.
    func descriptors(declaring symbol: String) -> [[UInt8]]? {
        symbols[symbol].map { descriptorsWithDependencies($0.file) }
    }

    func isMessageType(_ symbol: String) -> Bool {
        symbols[symbol]?.isMessage ?? false
    }

    private func descriptorsWithDependencies(_ index: Int) -> [[UInt8]] {
        [files[index].descriptor] + files[index].dependencies.map { files[$0].descriptor }
    }
}
