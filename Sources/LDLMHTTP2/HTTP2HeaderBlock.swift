import CNGHTTP2

/// Header fields laid out once as nghttp2 name/value pairs, so a block sent on
/// every response (`:status: 200`, `grpc-status: 0`) is not rebuilt each time.
/// nghttp2 copies the fields when a frame is submitted, so one block can be
/// submitted any number of times, on any connection.
public final class HTTP2HeaderBlock: @unchecked Sendable {
    public let headers: [HTTP2Header]
    private let storage: UnsafeMutableBufferPointer<UInt8>
    private let fields: UnsafeMutableBufferPointer<nghttp2_nv>

    public init(_ headers: [HTTP2Header]) {
        self.headers = headers
        let byteCount = headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        // At least one byte and one field, so both buffers have a base address.
        storage = .allocate(capacity: max(byteCount, 1))
        fields = .allocate(capacity: max(headers.count, 1))
        var offset = 0
        for (index, header) in headers.enumerated() {
            let name = storage.baseAddress! + offset
            offset = storage[offset...].initialize(from: header.name.utf8).index
            let value = storage.baseAddress! + offset
            offset = storage[offset...].initialize(from: header.value.utf8).index
            fields[index] = nghttp2_nv(
                name: name,
                value: value,
                namelen: header.name.utf8.count,
                valuelen: header.value.utf8.count,
                flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
            )
        }
    }

    deinit {
        storage.deallocate()
        fields.deallocate()
    }

    func withFields<Result>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> Result) -> Result {
        body(UnsafePointer(fields.baseAddress!), headers.count)
    }
}
