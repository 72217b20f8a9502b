import Foundation
import XCTest
@testable import SwiftONNX

/// TensorProtos serialized by onnx 1.23.2 (numpy_helper.from_array(...).SerializeToString()), base64.
private let onnxProtos: [String: String] = [
    // from_array(np.array([[1, -2, 3.5]], np.float32), name="x")
    "f32": "CAEIAxABQgF4SgwAAIA/AAAAwAAAYEA=",
]

final class TensorEncodingTests: XCTestCase {
    func roundTrip(_ t: Tensor, name: String = "t", file: StaticString = #filePath, line: UInt = #line) throws -> Tensor {
        let bytes = try TensorProto.encode(t, name: name)
        let (n, back) = try TensorProto.decode(bytes)
        XCTAssertEqual(n, name, file: file, line: line)
        XCTAssertEqual(back.dtype, t.dtype, file: file, line: line)
        XCTAssertEqual(back.shape, t.shape, file: file, line: line)
        return back
    }

    func testNumericRoundTrips() throws {
        let tensors: [Tensor] = [
            try Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0) - 2.5 }),
            try Tensor(shape: [2], scalars: [Double(1e-300), -7]),
            try Tensor(shape: [3], scalars: [Int8(-128), 0, 127]),
            try Tensor(shape: [2], scalars: [Int16(-300), 300]),
            try Tensor(shape: [2], scalars: [Int32.min, Int32.max]),
            try Tensor(shape: [2, 1], scalars: [Int64.min, Int64.max]),
            try Tensor(shape: [2], scalars: [UInt8(0), 255]),
            try Tensor(shape: [2], scalars: [UInt16(0), 65535]),
            try Tensor(shape: [2], scalars: [UInt32(0), .max]),
            try Tensor(shape: [2], scalars: [UInt64(0), .max]),
            try Tensor(shape: [3], scalars: [true, false, true]),
            Tensor(scalar: Float(42)),
            try Tensor(shape: [0, 4], scalars: [Float]()),
            try Tensor(shape: [2], scalars: [BFloat16(1.5), BFloat16(-3)]),
            try Tensor(dtype: .float16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0]),
            try Tensor(dtype: .float8e4m3fn, shape: [3], bytes: [0x38, 0x7E, 0x01]),
            try Tensor(dtype: .complex64, shape: [1], bytes: [0, 0, 128, 63, 0, 0, 0, 64]),
        ]
        for t in tensors {
            let back = try roundTrip(t)
            XCTAssertEqual(back.bytes(), t.bytes(), "\(t)")
        }
    }

    func testStrings() throws {
        let t = try Tensor(shape: [2, 2], strings: ["a", "", "héllo", "日本"])
        XCTAssertEqual(try roundTrip(t).strings(), ["a", "", "héllo", "日本"])
    }

    func testSubByteTypesArePacked() throws {
        // int4: 5 elements -> 3 bytes, low nibble first; values sign-extended on decode.
        let i4 = try Tensor(dtype: .int4, shape: [5], bytes: [0x01, 0xFF, 0x07, 0xF8, 0x03])
        XCTAssertEqual(try roundTrip(i4).bytes(), i4.bytes())
        let u4 = try Tensor(dtype: .uint4, shape: [3], bytes: [15, 0, 9])
        XCTAssertEqual(try roundTrip(u4).bytes(), u4.bytes())
        let u2 = try Tensor(dtype: .uint2, shape: [5], bytes: [3, 2, 1, 0, 3])
        XCTAssertEqual(try roundTrip(u2).bytes(), u2.bytes())
        let i2 = try Tensor(dtype: .int2, shape: [4], bytes: [0xFE, 0x01, 0xFF, 0x00])
        XCTAssertEqual(try roundTrip(i2).bytes(), i2.bytes())
        // The packed raw_data of uint4 [15, 0, 9] is [0x0F, 0x09].
        let bytes = try TensorProto.encode(u4, name: "")
        XCTAssertTrue(bytes.count < 16)
        XCTAssertNotNil(bytes.firstRange(of: [0x0F, 0x09] as [UInt8]))
    }

    func testMatchesOnnxSerialization() throws {
        let t = try Tensor(shape: [1, 3], scalars: [Float(1), -2, 3.5])
        let expected = [UInt8](Data(base64Encoded: onnxProtos["f32"]!)!)
        let (name, decoded) = try TensorProto.decode(expected)
        XCTAssertEqual(name, "x")
        XCTAssertEqual(try decoded.scalars(as: Float.self), [1, -2, 3.5])
        XCTAssertEqual(try TensorProto.encode(t, name: "x"), expected)
    }
}
