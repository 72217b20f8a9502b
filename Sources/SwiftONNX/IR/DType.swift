/// Every ONNX tensor element type (TensorProto.DataType), with its ONNX code as raw value.
public enum DType: Int32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// 32-bit IEEE 754 floating point (ONNX `FLOAT`, code 1), Swift `Float`: the type most models compute in.
    case float32 = 1
    /// 8-bit unsigned integer (ONNX `UINT8`, code 2), Swift `UInt8`: image bytes, quantized weights.
    case uint8 = 2
    /// 8-bit signed integer (ONNX `INT8`, code 3), Swift `Int8`: quantized weights and activations.
    case int8 = 3
    /// 16-bit unsigned integer (ONNX `UINT16`, code 4), Swift `UInt16`.
    case uint16 = 4
    /// 16-bit signed integer (ONNX `INT16`, code 5), Swift `Int16`.
    case int16 = 5
    /// 32-bit signed integer (ONNX `INT32`, code 6), Swift `Int32`.
    case int32 = 6
    /// 64-bit signed integer (ONNX `INT64`, code 7), Swift `Int64`: the type of shapes, axes and indices in ONNX.
    case int64 = 7
    /// UTF-8 text (ONNX `STRING`, code 8). String tensors keep their elements apart from numeric memory:
    /// build them with ``Tensor/init(shape:strings:)`` and read them with ``Tensor/strings()``.
    case string = 8
    /// Boolean (ONNX `BOOL`, code 9), Swift `Bool`: one byte per element, 0 or 1.
    case bool = 9
    /// 16-bit IEEE 754 floating point (ONNX `FLOAT16`, code 10), Swift `Float16` where the platform has it.
    case float16 = 10
    /// 64-bit IEEE 754 floating point (ONNX `DOUBLE`, code 11), Swift `Double`.
    case float64 = 11
    /// 32-bit unsigned integer (ONNX `UINT32`, code 12), Swift `UInt32`.
    case uint32 = 12
    /// 64-bit unsigned integer (ONNX `UINT64`, code 13), Swift `UInt64`.
    case uint64 = 13
    /// Complex number of two float32 values, real then imaginary (ONNX `COMPLEX64`, code 14). Loaded and
    /// passed through; kernels do not compute on it (``isComputable`` is false).
    case complex64 = 14
    /// Complex number of two float64 values, real then imaginary (ONNX `COMPLEX128`, code 15). Loaded
    /// and passed through; kernels do not compute on it (``isComputable`` is false).
    case complex128 = 15
    /// Brain floating point (ONNX `BFLOAT16`, code 16): the upper 16 bits of a float32; see ``BFloat16``.
    case bfloat16 = 16
    /// 8-bit float with 4 exponent and 3 mantissa bits, NaN but no infinities (ONNX `FLOAT8E4M3FN`,
    /// code 17). Stored one element per byte; kernels do not compute on it, `Cast` converts to and from it.
    case float8e4m3fn = 17
    /// 8-bit float with 4 exponent and 3 mantissa bits, no infinities and no negative zero (ONNX
    /// `FLOAT8E4M3FNUZ`, code 18). Stored one element per byte; kernels do not compute on it, `Cast`
    /// converts to and from it.
    case float8e4m3fnuz = 18
    /// 8-bit float with 5 exponent and 2 mantissa bits, with infinities and NaN (ONNX `FLOAT8E5M2`,
    /// code 19). Stored one element per byte; kernels do not compute on it, `Cast` converts to and from it.
    case float8e5m2 = 19
    /// 8-bit float with 5 exponent and 2 mantissa bits, no infinities and no negative zero (ONNX
    /// `FLOAT8E5M2FNUZ`, code 20). Stored one element per byte; kernels do not compute on it, `Cast`
    /// converts to and from it.
    case float8e5m2fnuz = 20
    /// 4-bit unsigned integer, 0...15 (ONNX `UINT4`, code 21). Unpacked in memory, one element per byte
    /// (packed two per byte in files); kernels do not compute on it, `Cast` converts to and from it.
    case uint4 = 21
    /// 4-bit signed integer, -8...7 (ONNX `INT4`, code 22). Unpacked in memory, one element per byte
    /// (packed two per byte in files); kernels do not compute on it, `Cast` converts to and from it.
    case int4 = 22
    /// 4-bit float with 2 exponent bits and 1 mantissa bit, no infinities and no NaN (ONNX `FLOAT4E2M1`,
    /// code 23). Unpacked in memory, one element per byte (packed two per byte in files); kernels do
    /// not compute on it, `Cast` converts to and from it.
    case float4e2m1 = 23
    /// 8-bit exponent-only float, a power of two (ONNX `FLOAT8E8M0`, code 24): the scale type of
    /// microscaling formats. Stored one element per byte; kernels do not compute on it.
    case float8e8m0 = 24
    /// 2-bit unsigned integer, 0...3 (ONNX `UINT2`, code 25). Unpacked in memory, one element per byte
    /// (packed four per byte in files); kernels do not compute on it, `Cast` converts to and from it.
    case uint2 = 25
    /// 2-bit signed integer, -2...1 (ONNX `INT2`, code 26). Unpacked in memory, one element per byte
    /// (packed four per byte in files); kernels do not compute on it, `Cast` converts to and from it.
    case int2 = 26

    /// Bytes one element takes in this runtime's memory. Sub-byte types (int4, uint4, float4, int2, uint2)
    /// are kept unpacked, one element per byte. Strings are stored apart and report 0.
    public var byteSize: Int {
        switch self {
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64, .complex64: return 8
        case .complex128: return 16
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .uint8, .int8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz,
             .uint4, .int4, .float4e2m1, .float8e8m0, .uint2, .int2: return 1
        case .string: return 0
        }
    }

    /// Whether kernels of this runtime compute on this type (the others load and pass through, and
    /// ops that need arithmetic on them report them as unsupported).
    public var isComputable: Bool {
        switch self {
        case .complex64, .complex128, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz,
             .uint4, .int4, .float4e2m1, .float8e8m0, .uint2, .int2: return false
        default: return true
        }
    }

    /// Whether this is a floating-point type the kernels compute on: float32, float64, float16 or
    /// bfloat16 (the float8 and float4 types are not counted).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: return true
        default: return false
        }
    }

    /// Whether this is one of the eight signed or unsigned integer types of 8 to 64 bits (not bool,
    /// not the 4- and 2-bit types).
    public var isInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64: return true
        default: return false
        }
    }

    /// Whether this is int8, int16, int32 or int64.
    public var isSignedInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64: return true
        default: return false
        }
    }

    /// The type's name as the case spells it: "float32", "int64", "float8e4m3fn".
    public var description: String {
        switch self {
        case .float32: return "float32"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .string: return "string"
        case .bool: return "bool"
        case .float16: return "float16"
        case .float64: return "float64"
        case .uint32: return "uint32"
        case .uint64: return "uint64"
        case .complex64: return "complex64"
        case .complex128: return "complex128"
        case .bfloat16: return "bfloat16"
        case .float8e4m3fn: return "float8e4m3fn"
        case .float8e4m3fnuz: return "float8e4m3fnuz"
        case .float8e5m2: return "float8e5m2"
        case .float8e5m2fnuz: return "float8e5m2fnuz"
        case .uint4: return "uint4"
        case .int4: return "int4"
        case .float4e2m1: return "float4e2m1"
        case .float8e8m0: return "float8e8m0"
        case .uint2: return "uint2"
        case .int2: return "int2"
        }
    }

    /// Maps an ONNX TensorProto.DataType code to a DType, or nil for UNDEFINED/unknown codes.
    ///
    /// - Parameter onnxCode: A `TensorProto.DataType` value (1 float, 7 int64...).
    public init?(onnxCode: Int32) { self.init(rawValue: onnxCode) }
}
