import Foundation

/// Reads and writes NumPy `.npy` files as tensors.
///
/// Supported: format versions 1.0, 2.0 and 3.0, C or Fortran order (read into C order, as numpy
/// reads it), little- or big-endian element types f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1
/// c8 c16. Object arrays and structured dtypes are refused with an error that says
/// so. Files are written as version 1.0 (2.0 when the header is too long), with the header padded
/// to a multiple of 64 bytes as numpy does.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads the `.npy` file at a file URL (see ``read(path:)``).
    ///
    /// - Parameter url: A file URL of a `.npy` file.
    public static func read(contentsOf url: URL) throws(ONNXError) -> Tensor {
        try read(path: url.path)
    }

    /// Reads a `.npy` file into a tensor of the matching element type, its elements in row-major order
    /// (a Fortran-order file is reordered) and little-endian (a big-endian file is swapped). Throws
    /// `ONNXError.io` when the file is missing, unreadable or not a usable `.npy` file (bad magic,
    /// malformed or truncated header or data, structured dtype), and `.unsupportedType` for an element
    /// type other than those listed for ``NPY`` (object arrays among them).
    ///
    /// - Parameter path: The path of a `.npy` file.
    public static func read(path: String) throws(ONNXError) -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ONNXError.io(path: path, reason: FileManager.default.fileExists(atPath: path)
                               ? "the file cannot be read" : "no such file")
        }
        return try decode([UInt8](data), path: path)
    }

    /// Writes a tensor as a `.npy` file (replacing any file at `path`). Throws `ONNXError.unsupportedType`
    /// for element types `.npy` cannot hold (string, bfloat16, the float8, 4- and 2-bit types) and
    /// `.io` when the file cannot be written.
    ///
    /// - Parameters:
    ///   - tensor: The tensor to save.
    ///   - path: Where to write the file.
    public static func write(_ tensor: Tensor, path: String) throws(ONNXError) {
        let bytes = try encode(tensor)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw ONNXError.io(path: path, reason: "the file cannot be written")
        }
    }

    /// Writes a tensor as a `.npy` file at a file URL (see ``write(_:path:)``).
    ///
    /// - Parameters:
    ///   - tensor: The tensor to save.
    ///   - url: A file URL of where to write the file.
    public static func write(_ tensor: Tensor, to url: URL) throws(ONNXError) { try write(tensor, path: url.path) }

    /// Parses the bytes of a `.npy` file, as ``read(path:)`` does; `path` names the source in errors.
    ///
    /// - Parameters:
    ///   - bytes: The whole file: magic, header and data.
    ///   - path: The name of the source in error messages.
    public static func decode(_ bytes: [UInt8], path: String = "<bytes>") throws(ONNXError) -> Tensor {
        try typedONNX { try decodeBytes(bytes, path: path) }
    }

    private static func decodeBytes(_ bytes: [UInt8], path: String) throws -> Tensor {
        func fail(_ reason: String) -> ONNXError { .io(path: path, reason: "not a usable .npy file: \(reason)") }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("no \\x93NUMPY magic") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("format version \(major).\(bytes[7]) is not supported (1, 2 and 3 are)")
        }
        guard headerLength <= bytes.count - headerStart else { throw fail("truncated header") }
        let headerBytes = bytes[headerStart..<(headerStart + headerLength)]
        // v1/v2 headers are latin-1 (in practice ASCII); v3 is UTF-8.
        let header = major == 3 ? String(decoding: headerBytes, as: UTF8.self)
                                : String(headerBytes.map { Character(Unicode.Scalar($0)) })
        let fields = try parseHeader(header, fail: fail)

        let descr = fields.descr
        guard let order = descr.first, "<>|=".contains(order) else { throw fail("dtype '\(descr)' has no byte-order mark") }
        // '>': big-endian data (numpy writes it for arrays of a '>' dtype); swapped after the copy.
        let bigEndian = order == ">"
        guard let dtype = dtypeFor(code: String(descr.dropFirst())) else {
            throw ONNXError.unsupportedType(".npy dtype '\(descr)' in '\(path)' (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1 c8 c16)")
        }
        let shape = fields.shape
        let n = try checkedElementCount(shape, what: "'\(path)'", fail: fail)
        let dataStart = headerStart + headerLength
        let expected = n * dtype.byteSize
        guard bytes.count - dataStart >= expected else {
            throw fail("shape \(describeShape(shape)) of \(dtype) needs \(expected) bytes of data, the file has \(bytes.count - dataStart)")
        }
        let out = try Tensor.uninitialized(dtype, shape)
        if expected > 0 {
            bytes.withUnsafeBytes { src in
                if fields.fortranOrder && shape.count > 1 {
                    copyFortranOrder(src.baseAddress! + dataStart, into: out.raw, shape: shape, elementSize: dtype.byteSize)
                } else {
                    out.raw.copyMemory(from: src.baseAddress! + dataStart, byteCount: expected)
                }
            }
        }
        if bigEndian && expected > 0 {
            // Complex numbers are two floats, each swapped on its own.
            let width = dtype == .complex64 || dtype == .complex128 ? dtype.byteSize / 2 : dtype.byteSize
            if width > 1 { swapByteOrder(out.raw, count: expected / width, width: width) }
        }
        if dtype == .bool {
            let p = out.pointer(UInt8.self)
            for i in 0..<n where p[i] > 1 { p[i] = 1 }
        }
        return out
    }

    /// Reverses the bytes of each of `count` elements of `width` bytes (2, 4 or 8) in place.
    static func swapByteOrder(_ p: UnsafeMutableRawPointer, count: Int, width: Int) {
        switch width {
        case 2: let q = p.assumingMemoryBound(to: UInt16.self); for i in 0..<count { q[i] = q[i].byteSwapped }
        case 4: let q = p.assumingMemoryBound(to: UInt32.self); for i in 0..<count { q[i] = q[i].byteSwapped }
        case 8: let q = p.assumingMemoryBound(to: UInt64.self); for i in 0..<count { q[i] = q[i].byteSwapped }
        default: break
        }
    }

    /// Copies column-major (Fortran-order) elements into row-major order: `np.save` writes any
    /// F-contiguous array (a transposed image, say) this way, and numpy reads it back as the same array.
    static func copyFortranOrder(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, shape: [Int], elementSize es: Int) {
        let r = shape.count
        var fStride = [Int](repeating: 1, count: r)    // in elements: axis 0 varies fastest
        for k in 1..<r { fStride[k] = fStride[k - 1] * shape[k - 1] }
        let inner = shape[r - 1], step = fStride[r - 1] * es
        let rows = shape.dropLast().reduce(1, *)
        var idx = [Int](repeating: 0, count: r - 1)
        var off = 0                                    // bytes of the row's first element in src
        var out = dst
        for _ in 0..<rows {
            var s = src + off
            for _ in 0..<inner {
                out.copyMemory(from: s, byteCount: es)
                out += es
                s += step
            }
            var a = r - 2
            while a >= 0 {
                idx[a] += 1
                off += fStride[a] * es
                if idx[a] < shape[a] { break }
                off -= fStride[a] * es * shape[a]
                idx[a] = 0
                a -= 1
            }
        }
    }

    /// The bytes of a `.npy` file holding `tensor`, as ``write(_:path:)`` writes them. Throws
    /// `ONNXError.unsupportedType` for element types `.npy` cannot hold.
    ///
    /// - Parameter tensor: The tensor to encode.
    public static func encode(_ tensor: Tensor) throws(ONNXError) -> [UInt8] {
        try typedONNX { try encodeBytes(tensor) }
    }

    private static func encodeBytes(_ tensor: Tensor) throws -> [UInt8] {
        if tensor.isContainer { throw ONNXError.unsupportedType("a \(tensor.kind) value is not a tensor; .npy holds one tensor") }
        guard let code = codeFor(tensor.dtype) else {
            throw ONNXError.unsupportedType(".npy cannot hold \(tensor.dtype) tensors (use a TensorProto .pb instead)")
        }
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shapeText), }"
        // magic(6) + version(2) + length (2 bytes in v1, 4 in v2) + header + '\n', padded with spaces
        // so the data starts at a multiple of 64. v2 only when the header does not fit 65535 bytes.
        func padded(_ prefix: Int) -> String {
            let total = prefix + header.utf8.count + 1
            return header + String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        }
        var out = magic
        if padded(10).utf8.count <= 65535 {
            header = padded(10)
            let hlen = header.utf8.count
            out += [1, 0, UInt8(hlen & 0xFF), UInt8(hlen >> 8)]
        } else {
            header = padded(12)
            let hlen = header.utf8.count
            out += [2, 0, UInt8(hlen & 0xFF), UInt8((hlen >> 8) & 0xFF), UInt8((hlen >> 16) & 0xFF), UInt8(hlen >> 24)]
        }
        out += Array(header.utf8)
        let count = tensor.count * tensor.dtype.byteSize
        out.reserveCapacity(out.count + count)
        out += UnsafeRawBufferPointer(start: tensor.raw, count: count)
        return out
    }

    // MARK: - header

    struct Header {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// Parses the Python dict literal of a header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
    static func parseHeader(_ text: String, fail: (String) -> ONNXError) throws -> Header {
        let s = Array(text.unicodeScalars)
        var i = 0
        func skipSpace() { while i < s.count, s[i].properties.isWhitespace { i += 1 } }
        func expect(_ c: Unicode.Scalar) throws {
            skipSpace()
            guard i < s.count, s[i] == c else { throw fail("malformed header: expected '\(c)' in \(text)") }
            i += 1
        }
        func string() throws -> String {
            skipSpace()
            guard i < s.count, s[i] == "'" || s[i] == "\"" else { throw fail("malformed header: expected a string in \(text)") }
            let q = s[i]
            i += 1
            var r = String.UnicodeScalarView()
            while i < s.count, s[i] != q { r.append(s[i]); i += 1 }
            guard i < s.count else { throw fail("malformed header: unterminated string") }
            i += 1
            return String(r)
        }
        func word() -> String {
            skipSpace()
            var r = String.UnicodeScalarView()
            while i < s.count, s[i].properties.isAlphabetic || ("0"..."9").contains(s[i]) { r.append(s[i]); i += 1 }
            return String(r)
        }
        var descr: String?, fortran: Bool?, shape: [Int]?
        try expect("{")
        while true {
            skipSpace()
            if i < s.count, s[i] == "}" { break }
            let key = try string()
            try expect(":")
            skipSpace()
            switch key {
            case "descr":
                guard i < s.count, s[i] == "'" || s[i] == "\"" else {
                    throw fail(i < s.count && s[i] == "[" ? "structured dtypes are not supported" : "malformed header: descr is not a dtype string")
                }
                descr = try string()
            case "fortran_order":
                let w = word()
                guard w == "True" || w == "False" else { throw fail("malformed header: fortran_order is '\(w)'") }
                fortran = w == "True"
            case "shape":
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if i < s.count, s[i] == ")" { i += 1; break }
                    let w = word()
                    guard let d = Int(w), d >= 0 else { throw fail("malformed header: shape element '\(w)'") }
                    dims.append(d)
                    skipSpace()
                    if i < s.count, s[i] == "," { i += 1 }
                }
                shape = dims
            default:
                throw fail("malformed header: unknown key '\(key)'")
            }
            skipSpace()
            if i < s.count, s[i] == "," { i += 1; continue }
            skipSpace()
            guard i < s.count, s[i] == "}" else { throw fail("malformed header: \(text)") }
        }
        guard let descr, let fortran, let shape else {
            throw fail("header lacks descr, fortran_order or shape: \(text)")
        }
        return Header(descr: descr, fortranOrder: fortran, shape: shape)
    }

    static func dtypeFor(code: String) -> DType? {
        switch code {
        case "f2": return .float16
        case "f4": return .float32
        case "f8": return .float64
        case "i1": return .int8
        case "i2": return .int16
        case "i4": return .int32
        case "i8": return .int64
        case "u1": return .uint8
        case "u2": return .uint16
        case "u4": return .uint32
        case "u8": return .uint64
        case "b1": return .bool
        case "c8": return .complex64
        case "c16": return .complex128
        default: return nil
        }
    }

    static func codeFor(_ dtype: DType) -> String? {
        switch dtype {
        case .float16: return "<f2"
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .uint8: return "|u1"
        case .uint16: return "<u2"
        case .uint32: return "<u4"
        case .uint64: return "<u8"
        case .bool: return "|b1"
        case .complex64: return "<c8"
        case .complex128: return "<c16"
        default: return nil
        }
    }
}
