import CONNXProto
import Foundation

/// Where external tensor data may be read from, and the files already mapped.
final class ExternalDataResolver {
    let baseDirectory: String?
    private var files: [String: MappedFile] = [:]
    private(set) var mapped: [MappedFile] = []

    init(baseDirectory: String?) { self.baseDirectory = baseDirectory }

    /// Maps `location` relative to the model folder; refuses absolute paths and paths escaping it.
    func file(_ location: String, tensor: String) throws -> MappedFile {
        if let f = files[location] { return f }
        guard let base = baseDirectory else {
            throw ONNXError.invalidGraph("tensor '\(tensor)' uses external data '\(location)' but the model was not loaded from a file")
        }
        guard !location.isEmpty, !location.hasPrefix("/"), !location.contains("\0") else {
            throw ONNXError.invalidGraph("tensor '\(tensor)': external data location '\(location)' must be a relative path inside the model's folder")
        }
        let baseURL = URL(fileURLWithPath: base).standardizedFileURL.resolvingSymlinksInPath()
        let target = baseURL.appendingPathComponent(location).standardizedFileURL.resolvingSymlinksInPath()
        let basePath = baseURL.path.hasSuffix("/") ? baseURL.path : baseURL.path + "/"
        guard target.path.hasPrefix(basePath) else {
            throw ONNXError.invalidGraph("tensor '\(tensor)': external data location '\(location)' escapes the model's folder")
        }
        let f = try MappedFile(path: target.path)
        files[location] = f
        mapped.append(f)
        return f
    }
}

/// Multiplies dims, refusing negative dims and overflow (so a hostile file cannot ask for a huge allocation silently).
/// `fail` turns the reason into the error (default: an invalid graph, the reason prefixed with `what`).
func checkedElementCount(_ dims: [Int], what: String, fail: ((String) -> ONNXError)? = nil) throws(ONNXError) -> Int {
    let fail = fail ?? { ONNXError.invalidGraph("\(what): \($0)") }
    var n = 1
    for d in dims {
        guard d >= 0 else { throw fail("negative dimension in \(describeShape(dims))") }
        let (r, o) = n.multipliedReportingOverflow(by: d)
        guard !o, r < (1 << 40) else { throw fail("shape \(describeShape(dims)) is too large") }
        n = r
    }
    return n
}

private func isPacked4Bit(_ dt: DType) -> Bool { dt == .int4 || dt == .uint4 || dt == .float4e2m1 }
private func isPacked2Bit(_ dt: DType) -> Bool { dt == .int2 || dt == .uint2 }

/// Turns a TensorProto into a Tensor. Raw and external data are aliased when aligned; `owner` keeps them alive.
/// `raw`: the tensor's raw_data when the loader took it out of the unpacked message
/// (RawDataSplit), in memory `rawOwner` keeps alive (the mapped file).
func decodeTensor(_ tp: UnsafePointer<Onnx__TensorProto>, owner: AnyObject, external: ExternalDataResolver?,
                  fallbackName: String = "", raw: UnsafeRawBufferPointer? = nil, rawOwner: AnyObject? = nil) throws -> Tensor {
    let t = tp.pointee
    let name = t.name.map { String(cString: $0) } ?? fallbackName
    let what = "tensor '\(name)'"
    guard t.has_data_type != 0 || t.data_type != 0 else { throw ONNXError.invalidGraph("\(what) has no data type") }
    guard let dtype = DType(onnxCode: t.data_type) else {
        throw ONNXError.unsupportedType("\(what) has unknown data type code \(t.data_type)")
    }
    var dims: [Int] = []
    for i in 0..<t.n_dims { dims.append(Int(t.dims[i])) }
    let n = try checkedElementCount(dims, what: what)

    if t.segment != nil { throw ONNXError.unsupportedType("\(what) is segmented (TensorProto.segment), which is not supported") }

    // External data.
    if t.has_data_location != 0 && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
        var location = "", offset = 0, length: Int? = nil
        for i in 0..<t.n_external_data {
            guard let e = t.external_data[i] else { continue }
            let k = cString(e.pointee.key), v = cString(e.pointee.value)
            switch k {
            case "location": location = v
            case "offset":
                guard let o = Int(v), o >= 0 else { throw ONNXError.invalidGraph("\(what): bad external data offset '\(v)'") }
                offset = o
            case "length":
                guard let l = Int(v), l >= 0 else { throw ONNXError.invalidGraph("\(what): bad external data length '\(v)'") }
                length = l
            default: break
            }
        }
        guard let external else { throw ONNXError.invalidGraph("\(what) uses external data, which is not available here") }
        let file = try external.file(location, tensor: name)
        let expected = storedByteCount(dtype, n)
        let len = length ?? (file.size - offset)
        guard offset <= file.size, len <= file.size - offset else {
            throw ONNXError.invalidGraph("\(what): external data [\(offset), +\(len)) is outside '\(location)' (\(file.size) bytes)")
        }
        guard len == expected else {
            throw ONNXError.invalidGraph("\(what): external data holds \(len) bytes, shape \(describeShape(dims)) of \(dtype) needs \(expected)")
        }
        let src = UnsafeRawBufferPointer(start: file.base.map { $0 + offset }, count: len)
        return try tensorFromRaw(src, dtype: dtype, dims: dims, n: n, owner: file, what: what)
    }

    if t.has_raw_data != 0 || raw != nil {
        let rd = raw ?? UnsafeRawBufferPointer(start: t.raw_data.data, count: t.raw_data.len)
        let expected = storedByteCount(dtype, n)
        guard rd.count == expected else {
            throw ONNXError.invalidGraph("\(what): raw_data holds \(rd.count) bytes, shape \(describeShape(dims)) of \(dtype) needs \(expected)")
        }
        if dtype == .string { throw ONNXError.invalidGraph("\(what): string tensors cannot use raw_data") }
        let tensor = try tensorFromRaw(rd, dtype: dtype, dims: dims, n: n, owner: raw != nil ? (rawOwner ?? owner) : owner, what: what)
        // Copied out of the mapped file (misaligned, or unpacked from sub-byte types): its pages
        // need not stay in this process's memory.
        if raw != nil, let file = rawOwner as? MappedFile, tensor.storage.owner !== file { file.dropPages(rd) }
        return tensor
    }

    func check(_ have: Int, _ field: String, per: Int = 1) throws {
        guard have * per >= n && have == (n + per - 1) / per else {
            throw ONNXError.invalidGraph("\(what): \(field) holds \(have) values, shape \(describeShape(dims)) needs \(n)")
        }
    }

    switch dtype {
    case .string:
        try check(t.n_string_data, "string_data")
        var s: [String] = []
        s.reserveCapacity(n)
        for i in 0..<n {
            let b = t.string_data[i]
            guard let v = b.len == 0 ? "" : String(validating: UnsafeBufferPointer(start: b.data, count: b.len), as: UTF8.self) else {
                throw ONNXError.invalidGraph("\(what): string \(i) is not valid UTF-8")
            }
            s.append(v)
        }
        return Tensor(validShape: dims, strings: s)
    case .float32:
        try check(t.n_float_data, "float_data")
        return try copyTensor(UnsafeRawPointer(t.float_data), dtype: dtype, dims: dims, bytes: n * 4)
    case .complex64:
        guard t.n_float_data == 2 * n else { throw ONNXError.invalidGraph("\(what): float_data holds \(t.n_float_data) values, complex64 shape \(describeShape(dims)) needs \(2 * n)") }
        return try copyTensor(UnsafeRawPointer(t.float_data), dtype: dtype, dims: dims, bytes: n * 8)
    case .float64:
        try check(t.n_double_data, "double_data")
        return try copyTensor(UnsafeRawPointer(t.double_data), dtype: dtype, dims: dims, bytes: n * 8)
    case .complex128:
        guard t.n_double_data == 2 * n else { throw ONNXError.invalidGraph("\(what): double_data holds \(t.n_double_data) values, complex128 shape \(describeShape(dims)) needs \(2 * n)") }
        return try copyTensor(UnsafeRawPointer(t.double_data), dtype: dtype, dims: dims, bytes: n * 16)
    case .int64:
        try check(t.n_int64_data, "int64_data")
        return try copyTensor(UnsafeRawPointer(t.int64_data), dtype: dtype, dims: dims, bytes: n * 8)
    case .uint64, .uint32:
        try check(t.n_uint64_data, "uint64_data")
        let out = try Tensor.uninitialized(dtype, dims)
        if dtype == .uint64 {
            for i in 0..<n { out.pointer(UInt64.self)[i] = t.uint64_data[i] }
        } else {
            for i in 0..<n { out.pointer(UInt32.self)[i] = UInt32(truncatingIfNeeded: t.uint64_data[i]) }
        }
        return out
    case .int32:
        try check(t.n_int32_data, "int32_data")
        return try copyTensor(UnsafeRawPointer(t.int32_data), dtype: dtype, dims: dims, bytes: n * 4)
    case .int16, .uint16, .float16, .bfloat16:
        try check(t.n_int32_data, "int32_data")
        let out = try Tensor.uninitialized(dtype, dims)
        for i in 0..<n { out.pointer(UInt16.self)[i] = UInt16(truncatingIfNeeded: t.int32_data[i]) }
        return out
    case .int8, .uint8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
        try check(t.n_int32_data, "int32_data")
        let out = try Tensor.uninitialized(dtype, dims)
        for i in 0..<n { out.pointer(UInt8.self)[i] = UInt8(truncatingIfNeeded: t.int32_data[i]) }
        return out
    case .int4, .uint4, .float4e2m1:
        try check(t.n_int32_data, "int32_data", per: 2)
        let packed = (0..<t.n_int32_data).map { UInt8(truncatingIfNeeded: t.int32_data[$0]) }
        return try packed.withUnsafeBytes { try unpackSubByte($0, dtype: dtype, dims: dims, n: n, bits: 4) }
    case .int2, .uint2:
        try check(t.n_int32_data, "int32_data", per: 4)
        let packed = (0..<t.n_int32_data).map { UInt8(truncatingIfNeeded: t.int32_data[$0]) }
        return try packed.withUnsafeBytes { try unpackSubByte($0, dtype: dtype, dims: dims, n: n, bits: 2) }
    }
}

/// Bytes a tensor takes in a file (sub-byte types packed).
func storedByteCount(_ dtype: DType, _ n: Int) -> Int {
    if isPacked4Bit(dtype) { return (n + 1) / 2 }
    if isPacked2Bit(dtype) { return (n + 3) / 4 }
    return n * dtype.byteSize
}

private func copyTensor(_ src: UnsafeRawPointer?, dtype: DType, dims: [Int], bytes: Int) throws -> Tensor {
    let out = try Tensor.uninitialized(dtype, dims)
    if bytes > 0, let src { out.raw.copyMemory(from: src, byteCount: bytes) }
    return out
}

private func tensorFromRaw(_ src: UnsafeRawBufferPointer, dtype: DType, dims: [Int], n: Int, owner: AnyObject,
                           what: String) throws -> Tensor {
    if isPacked4Bit(dtype) { return try unpackSubByte(src, dtype: dtype, dims: dims, n: n, bits: 4) }
    if isPacked2Bit(dtype) { return try unpackSubByte(src, dtype: dtype, dims: dims, n: n, bits: 2) }
    let align = max(dtype.byteSize, 1)
    if let base = src.baseAddress, Int(bitPattern: base) % align == 0, src.count > 0 {
        // Alias: no copy. The storage must never be written (ops always produce new tensors).
        return Tensor(dtype: dtype, shape: dims,
                      storage: try TensorStorage(aliasing: UnsafeMutableRawPointer(mutating: base), byteCount: src.count, owner: owner))
    }
    if let file = owner as? MappedFile, src.count > 0 {
        let out = try Tensor.uninitialized(dtype, dims)
        if file.read(src, into: out.raw) { return out }
    }
    return try copyTensor(src.baseAddress, dtype: dtype, dims: dims, bytes: src.count)
}

/// Unpacks 4-bit (low nibble first) or 2-bit elements into one byte each, sign-extending signed types.
private func unpackSubByte(_ src: UnsafeRawBufferPointer, dtype: DType, dims: [Int], n: Int, bits: Int) throws -> Tensor {
    let out = try Tensor.uninitialized(dtype, dims)
    let d = out.pointer(UInt8.self)
    let perByte = 8 / bits
    let mask = UInt8((1 << bits) - 1)
    let signed = dtype == .int4 || dtype == .int2
    for i in 0..<n {
        let byte = src[i / perByte]
        var v = (byte >> UInt8((i % perByte) * bits)) & mask
        if signed && (v & (1 << UInt8(bits - 1))) != 0 { v |= ~mask }
        d[i] = v
    }
    return out
}

/// Parses a serialized TensorProto (a .pb file of the ONNX test suite or `swift-onnx run`).
func decodeTensorProto(bytes: [UInt8], path: String = "<bytes>") throws -> (name: String, tensor: Tensor) {
    let msg: ProtoMessage<Onnx__TensorProto>? = bytes.withUnsafeBytes { unpackTensorProto($0) }
    guard let msg else { throw ONNXError.io(path: path, reason: "not a serialized TensorProto (truncated, or another kind of file)") }
    let t = try decodeTensor(msg.pointer, owner: msg, external: ExternalDataResolver(baseDirectory: nil))
    // Copy aliased bytes out so the tensor does not pin the message (it is small).
    return (cString(msg.pointer.pointee.name), t)
}

/// Parses a serialized SequenceProto of tensors (a test suite's sequence input or output) into a
/// sequence value; `elementType` types an empty sequence (the message does not say).
func decodeSequenceProto(bytes: [UInt8], elementType: DType?, path: String = "<bytes>") throws -> (name: String, value: Tensor) {
    let msg = bytes.withUnsafeBytes { unpackSequenceProto($0) }
    guard let msg else { throw ONNXError.io(path: path, reason: "not a serialized SequenceProto (truncated, or another kind of file)") }
    return (cString(msg.pointer.pointee.name), try sequenceValue(msg.pointer, owner: msg, elementType: elementType, path: path))
}

/// Parses a serialized OptionalProto holding a tensor, a sequence of tensors, or nothing.
/// `elementType` types an empty optional (the message does not say).
func decodeOptionalProto(bytes: [UInt8], elementType: DType?, path: String = "<bytes>") throws -> (name: String, value: Tensor) {
    let msg = bytes.withUnsafeBytes { unpackOptionalProto($0) }
    guard let msg else { throw ONNXError.io(path: path, reason: "not a serialized OptionalProto (truncated, or another kind of file)") }
    let o = msg.pointer.pointee
    let name = cString(o.name)
    let fallback = elementType ?? .float32
    if let tp = o.tensor_value {
        let t = try decodeTensor(tp, owner: msg, external: ExternalDataResolver(baseDirectory: nil))
        return (name, try Tensor(optional: t, elementType: t.dtype))
    }
    if let sp = o.sequence_value {
        let s = try sequenceValue(sp, owner: msg, elementType: elementType, path: path)
        return (name, try Tensor(optional: s, elementType: s.dtype))
    }
    if o.sparse_tensor_value != nil || o.map_value != nil || o.optional_value != nil {
        throw ONNXError.unsupportedType("\(path): an optional holding a sparse tensor, a map or an optional")
    }
    let kind: ValueKind = Int(o.elem_type) == Int(ONNX__OPTIONAL_PROTO__DATA_TYPE__SEQUENCE.rawValue) ? .sequence(.tensor) : .tensor
    return (name, try Tensor(optional: nil, elementType: fallback, elementKind: kind))
}

private func sequenceValue(_ sp: UnsafePointer<Onnx__SequenceProto>, owner: AnyObject, elementType: DType?, path: String) throws -> Tensor {
    let s = sp.pointee
    if s.n_sparse_tensor_values > 0 || s.n_sequence_values > 0 || s.n_map_values > 0 || s.n_optional_values > 0 {
        throw ONNXError.unsupportedType("\(path): a sequence of sparse tensors, sequences, maps or optionals (sequences of tensors are supported)")
    }
    var elements: [Tensor] = []
    for i in 0..<s.n_tensor_values {
        guard let tp = s.tensor_values[i] else { continue }
        elements.append(try decodeTensor(tp, owner: owner, external: ExternalDataResolver(baseDirectory: nil)))
    }
    let dtype = elements.first?.dtype ?? elementType ?? .float32
    do {
        return try Tensor(sequence: elements, elementType: dtype)
    } catch {
        throw ONNXError.invalidGraph("\(path): \(error)")
    }
}
