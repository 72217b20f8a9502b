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

/// `bytes` unpacked by a protobuf-c `unpack(length, data)` (an empty buffer as zero bytes at a valid
/// address), owned with its `free`; nil when the bytes are not such a message.
func unpackMessage<T>(_ bytes: UnsafeRawBufferPointer, _ unpack: (Int, UnsafePointer<UInt8>) -> UnsafeMutablePointer<T>?,
                      free: @escaping (UnsafeMutablePointer<T>) -> Void) -> ProtoMessage<T>? {
    let empty: [UInt8] = [0]
    let m: UnsafeMutablePointer<T>?
    if let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) {
        m = unpack(bytes.count, base)
    } else {
        m = empty.withUnsafeBufferPointer { unpack(0, $0.baseAddress!) }
    }
    return m.map { ProtoMessage($0, free: free) }
}

func unpackTensorProto(_ bytes: UnsafeRawBufferPointer) -> ProtoMessage<Onnx__TensorProto>? {
    unpackMessage(bytes, { onnx__tensor_proto__unpack(nil, $0, $1) }, free: { onnx__tensor_proto__free_unpacked($0, nil) })
}

func unpackSequenceProto(_ bytes: UnsafeRawBufferPointer) -> ProtoMessage<Onnx__SequenceProto>? {
    unpackMessage(bytes, { onnx__sequence_proto__unpack(nil, $0, $1) }, free: { onnx__sequence_proto__free_unpacked($0, nil) })
}

func unpackOptionalProto(_ bytes: UnsafeRawBufferPointer) -> ProtoMessage<Onnx__OptionalProto>? {
    unpackMessage(bytes, { onnx__optional_proto__unpack(nil, $0, $1) }, free: { onnx__optional_proto__free_unpacked($0, nil) })
}

@inline(__always) func cString(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    return String(cString: p)
}

@inline(__always) func binaryString(_ b: ProtobufCBinaryData) -> String {
    guard let d = b.data, b.len > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: d, count: b.len), as: UTF8.self)
}
