import CONNXProto

/// Owns an unpacked protobuf-c message and frees it exactly once, when no tensor aliases it any more.
final class ProtoMessage<T>: @unchecked Sendable {   // @unchecked: owns a C message, immutable after unpacking
    let pointer: UnsafeMutablePointer<T>
    private let free: (UnsafeMutablePointer<T>) -> Void

    init(_ pointer: UnsafeMutablePointer<T>, free: @escaping (UnsafeMutablePointer<T>) -> Void) {
        self.pointer = pointer
        self.free = free
    }

    deinit { free(pointer) }
}

func unpackModelProto(_ bytes: UnsafeRawBufferPointer) -> ProtoMessage<Onnx__ModelProto>? {
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? (bytes.count == 0 ? nil : nil) else {
        return nil
    }
    guard let m = onnx__model_proto__unpack(nil, bytes.count, base) else { return nil }
    return ProtoMessage(m) { onnx__model_proto__free_unpacked($0, nil) }
}

func unpackTensorProto(_ bytes: UnsafeRawBufferPointer) -> ProtoMessage<Onnx__TensorProto>? {
    let empty: [UInt8] = [0]
    let m: UnsafeMutablePointer<Onnx__TensorProto>?
    if let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) {
        m = onnx__tensor_proto__unpack(nil, bytes.count, base)
    } else {
        m = empty.withUnsafeBufferPointer { onnx__tensor_proto__unpack(nil, 0, $0.baseAddress!) }
    }
    guard let m else { return nil }
    return ProtoMessage(m) { onnx__tensor_proto__free_unpacked($0, nil) }
}

@inline(__always) func cString(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    return String(cString: p)
}

@inline(__always) func binaryString(_ b: ProtobufCBinaryData) -> String {
    guard let d = b.data, b.len > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: d, count: b.len), as: UTF8.self)
}
