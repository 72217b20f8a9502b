import CONNXProto

/// Serializes a tensor as an ONNX TensorProto (the format of the ONNX test suite's .pb files and of
/// `swift-onnx run --output-format pb`). The inverse of `decodeTensorProto(bytes:)`.
///
/// Numeric, bool, float16, bfloat16 and float8 tensors go to `raw_data` (little-endian); int4, uint4,
/// float4e2m1 are packed two per byte (low nibble first) and int2, uint2 four per byte, as the ONNX
/// spec says; strings go to `string_data`.
func encodeTensorProto(_ t: Tensor, name: String) throws -> [UInt8] {
    if t.isContainer { throw ONNXError.unsupportedType("'\(name)' is a \(t.kind) value; a TensorProto holds a tensor") }
    var msg = Onnx__TensorProto()
    onnx__tensor_proto__init(&msg)

    let n = t.count
    var dims = t.shape.map { Int64($0) }
    guard t.shape.allSatisfy({ $0 >= 0 }) else {
        throw ONNXError.invalidInput(name: name, reason: "negative dimension in \(describeShape(t.shape))")
    }
    msg.has_data_type = 1
    msg.data_type = t.dtype.rawValue

    var nameBytes = Array(name.utf8CString)

    // Raw payload (non-string types).
    var payload: [UInt8] = []
    if t.dtype != .string {
        let src = UnsafeRawBufferPointer(start: t.raw, count: n * t.dtype.byteSize)
        switch t.dtype {
        case .int4, .uint4, .float4e2m1:
            payload = [UInt8](repeating: 0, count: (n + 1) / 2)
            for i in 0..<n { payload[i >> 1] |= (src[i] & 0x0F) << UInt8((i & 1) * 4) }
        case .int2, .uint2:
            payload = [UInt8](repeating: 0, count: (n + 3) / 4)
            for i in 0..<n { payload[i >> 2] |= (src[i] & 0x03) << UInt8((i & 3) * 2) }
        case .bool:
            payload = [UInt8](repeating: 0, count: n)
            for i in 0..<n { payload[i] = src[i] != 0 ? 1 : 0 }
        default:
            payload = Array(src)
        }
    }

    // String payload: protobuf-c needs pointers that stay valid until packing is done.
    var stringBuffers: [UnsafeMutablePointer<UInt8>] = []
    var stringData: [ProtobufCBinaryData] = []
    defer { for b in stringBuffers { b.deallocate() } }
    if t.dtype == .string {
        let strings = try t.strings()
        stringData.reserveCapacity(strings.count)
        for s in strings {
            let utf8 = Array(s.utf8)
            let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: max(utf8.count, 1))
            stringBuffers.append(buf)
            if !utf8.isEmpty { buf.initialize(from: utf8, count: utf8.count) }
            stringData.append(ProtobufCBinaryData(len: utf8.count, data: buf))
        }
    }

    return dims.withUnsafeMutableBufferPointer { dimsBuf -> [UInt8] in
        nameBytes.withUnsafeMutableBufferPointer { nameBuf -> [UInt8] in
            payload.withUnsafeMutableBufferPointer { payloadBuf -> [UInt8] in
                stringData.withUnsafeMutableBufferPointer { stringBuf -> [UInt8] in
                    msg.n_dims = dimsBuf.count
                    msg.dims = dimsBuf.baseAddress
                    msg.name = nameBuf.baseAddress
                    if t.dtype == .string {
                        msg.n_string_data = stringBuf.count
                        msg.string_data = stringBuf.baseAddress
                    } else if payloadBuf.count > 0 {
                        // Empty tensors carry no data field at all (the typed fields are then empty too).
                        msg.has_raw_data = 1
                        msg.raw_data = ProtobufCBinaryData(len: payloadBuf.count, data: payloadBuf.baseAddress)
                    }
                    let size = onnx__tensor_proto__get_packed_size(&msg)
                    var out = [UInt8](repeating: 0, count: size)
                    let written = out.withUnsafeMutableBufferPointer { onnx__tensor_proto__pack(&msg, $0.baseAddress) }
                    precondition(written == size, "protobuf-c packed \(written) bytes, expected \(size)")
                    return out
                }
            }
        }
    }
}

/// The ONNX TensorProto serialization of a tensor: the format of the ONNX test suite's `.pb` files
/// and of `swift-onnx run --output-format pb`.
public enum TensorProto {
    /// Parses a serialized TensorProto; returns its name and tensor. `path` names the source in errors.
    /// Throws `ONNXError.io` when the bytes are not a TensorProto (truncated, or another kind of
    /// file), `.invalidGraph` when its fields do not agree with its shape (or it refers to external
    /// data, which needs a model file), and `.unsupportedType` for an element type code this runtime
    /// does not know.
    ///
    /// - Parameters:
    ///   - bytes: A serialized TensorProto message.
    ///   - path: The name of the source in error messages.
    public static func decode(_ bytes: [UInt8], path: String = "<bytes>") throws(ONNXError) -> (name: String, tensor: Tensor) {
        try typedONNX { try decodeTensorProto(bytes: bytes, path: path) }
    }

    /// Parses a serialized SequenceProto of tensors (a `.pb` file of the ONNX test suite holding a
    /// sequence) into a sequence value (see ``Tensor/init(sequence:elementType:)``). Throws
    /// `ONNXError.io` when the bytes are not a SequenceProto, `.unsupportedType` for a sequence of
    /// anything but tensors, and `.invalidGraph` when its tensors are of different types.
    ///
    /// - Parameters:
    ///   - bytes: A serialized SequenceProto message.
    ///   - elementType: The element type of an empty sequence (the message does not say); when
    ///     nil, float32.
    ///   - path: The name of the source in error messages.
    public static func decodeSequence(_ bytes: [UInt8], elementType: DType? = nil,
                                      path: String = "<bytes>") throws(ONNXError) -> (name: String, value: Tensor) {
        try typedONNX { try decodeSequenceProto(bytes: bytes, elementType: elementType, path: path) }
    }

    /// Parses a serialized OptionalProto holding a tensor, a sequence of tensors, or nothing, into an
    /// optional value (see ``Tensor/init(optional:elementType:elementKind:)``). Throws `ONNXError.io`
    /// when the bytes are not an OptionalProto and `.unsupportedType` for an optional of a sparse
    /// tensor, a map or an optional.
    ///
    /// - Parameters:
    ///   - bytes: A serialized OptionalProto message.
    ///   - elementType: The element type of an empty optional (the message does not say); when
    ///     nil, float32.
    ///   - path: The name of the source in error messages.
    public static func decodeOptional(_ bytes: [UInt8], elementType: DType? = nil,
                                      path: String = "<bytes>") throws(ONNXError) -> (name: String, value: Tensor) {
        try typedONNX { try decodeOptionalProto(bytes: bytes, elementType: elementType, path: path) }
    }

    /// Serializes `tensor` under `name`. Numeric, bool, float16, bfloat16 and float8 tensors go to
    /// `raw_data` (little-endian); int4, uint4, float4e2m1 are packed two per byte (low nibble
    /// first) and int2, uint2 four per byte, as the ONNX spec says; strings go to `string_data`.
    /// Throws `ONNXError.invalidInput` for a negative dimension.
    ///
    /// - Parameters:
    ///   - tensor: The tensor to serialize.
    ///   - name: The name stored in the message (TensorProto.name).
    public static func encode(_ tensor: Tensor, name: String) throws(ONNXError) -> [UInt8] {
        try typedONNX { try encodeTensorProto(tensor, name: name) }
    }
}
