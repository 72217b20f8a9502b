import Foundation
import XCTest
@testable import SwiftONNX

/// .npy files written by numpy 2.4 (np.save / numpy.lib.format.write_array), base64-encoded.
/// Regenerate with the snippet in the comment at the end of this file.
private let numpyFiles: [String: String] = [
        "f4_2x3": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8=",
        "f2_4": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPgDA/3sANA==",
        "f8_scalar": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAKQA==",
        "i1": "k05VTVBZAQB2AHsnZGVzY3InOiAnfGkxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAAH8=",
        "i2": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGkyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIArU/iwB",
        "i4": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqQ7v7/AQAAAAIAAAA=",
        "i8_2x1x2": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDEsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAP///wUAAAAAAAAABgAAAAAAAAAAAAAAAAAAQA==",
        "u1": "k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoA/w==",
        "u2": "k05VTVBZAQB2AHsnZGVzY3InOiAnPHUyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr//wcA",
        "u4": "k05VTVBZAQB2AHsnZGVzY3InOiAnPHU0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAKGvu",
        "u8": "k05VTVBZAQB2AHsnZGVzY3InOiAnPHU4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoFAAAAAAAAgA==",
        "b1": "k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=",
        "empty_0x3": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDAsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo=",
        "v2_f4": "k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQAAAQEA=",
        "v3_f4": "k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQAAAQEA=",
        "fortran": "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEA=",
        "bigendian": "k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/gAAAQAAAAA==",
        "unicode": "k05VTVBZAQB2AHsnZGVzY3InOiAnPFUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAphAAAAYgAAAA==",
]

private func numpyFile(_ key: String) -> [UInt8] { [UInt8](Data(base64Encoded: numpyFiles[key]!)!) }

final class NPYTests: XCTestCase {
    func testReadsNumpyFloat32() throws {
        let t = try NPY.decode(numpyFile("f4_2x3"))
        XCTAssertEqual(t.dtype, .float32)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(try t.scalars(as: Float.self), [-1, -0.5, 0, 0.5, 1, 1.5])
    }

    func testWriterMatchesNumpyByteForByte() throws {
        let t = try Tensor(shape: [2, 3], scalars: [Float(-1), -0.5, 0, 0.5, 1, 1.5])
        XCTAssertEqual(try NPY.encode(t), numpyFile("f4_2x3"))
        XCTAssertEqual(try NPY.encode(Tensor(scalar: 3.25)), numpyFile("f8_scalar"))
        XCTAssertEqual(try NPY.encode(Tensor(shape: [3], scalars: [true, false, true])), numpyFile("b1"))
        XCTAssertEqual(try NPY.encode(Tensor(shape: [0, 3], scalars: [Float]())), numpyFile("empty_0x3"))
    }

    func testReadsEveryNumpyDtype() throws {
        var t = try NPY.decode(numpyFile("f2_4"))
        XCTAssertEqual(t.dtype, .float16)
        XCTAssertEqual(try t.doubles(), [1.5, -2, 65504, 0.25])
        t = try NPY.decode(numpyFile("f8_scalar"))
        XCTAssertEqual(t.shape, [])
        XCTAssertEqual(try t.scalars(as: Double.self), [3.25])
        XCTAssertEqual(try NPY.decode(numpyFile("i1")).scalars(as: Int8.self), [-128, 0, 127])
        t = try NPY.decode(numpyFile("i2"))
        XCTAssertEqual(t.shape, [1, 2])
        XCTAssertEqual(try t.scalars(as: Int16.self), [-300, 300])
        XCTAssertEqual(try NPY.decode(numpyFile("i4")).scalars(as: Int32.self), [-70000, 1, 2])
        t = try NPY.decode(numpyFile("i8_2x1x2"))
        XCTAssertEqual(t.shape, [2, 1, 2])
        XCTAssertEqual(try t.scalars(as: Int64.self), [-(1 << 40), 5, 6, 1 << 62])
        XCTAssertEqual(try NPY.decode(numpyFile("u1")).scalars(as: UInt8.self), [0, 255])
        XCTAssertEqual(try NPY.decode(numpyFile("u2")).scalars(as: UInt16.self), [65535, 7])
        XCTAssertEqual(try NPY.decode(numpyFile("u4")).scalars(as: UInt32.self), [4_000_000_000])
        XCTAssertEqual(try NPY.decode(numpyFile("u8")).scalars(as: UInt64.self), [(1 << 63) + 5])
        t = try NPY.decode(numpyFile("b1"))
        XCTAssertEqual(t.dtype, .bool)
        XCTAssertEqual(try t.scalars(as: Bool.self), [true, false, true])
        t = try NPY.decode(numpyFile("empty_0x3"))
        XCTAssertEqual(t.shape, [0, 3])
        XCTAssertEqual(t.count, 0)
    }

    func testReadsVersion2And3Headers() throws {
        for key in ["v2_f4", "v3_f4"] {
            let t = try NPY.decode(numpyFile(key))
            XCTAssertEqual(t.shape, [3], key)
            XCTAssertEqual(try t.scalars(as: Float.self), [1, 2, 3], key)
        }
    }

    /// np.save writes an F-contiguous array (np.asfortranarray, a transpose) in Fortran order; it reads
    /// back as the same array, in C order.
    func testReadsFortranOrder() throws {
        let t = try NPY.decode(numpyFile("fortran"))   // np.asfortranarray([[0, 1, 2], [3, 4, 5]], f4)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(try t.scalars(as: Float.self), [0, 1, 2, 3, 4, 5])
        // 3-D, 1-byte and 8-byte elements: the file's data is column-major
        let shape = [3, 4, 5]
        func fortranFile(_ descr: String, _ elementBytes: (Int) -> [UInt8]) -> [UInt8] {
            var header = "{'descr': '\(descr)', 'fortran_order': True, 'shape': (3, 4, 5), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            out += Array(header.utf8)
            for k in 0..<5 { for j in 0..<4 { for i in 0..<3 { out += elementBytes((i * 4 + j) * 5 + k) } } }
            return out
        }
        let u8 = try NPY.decode(fortranFile("|u1") { [UInt8($0)] })
        XCTAssertEqual(u8.shape, shape)
        XCTAssertEqual(try u8.scalars(as: UInt8.self), (0..<60).map { UInt8($0) })
        let f8 = try NPY.decode(fortranFile("<f8") { withUnsafeBytes(of: Double($0) * 0.5) { Array($0) } })
        XCTAssertEqual(try f8.scalars(as: Double.self), (0..<60).map { Double($0) * 0.5 })
    }

    /// numpy writes arrays of a '>' dtype big-endian; they read as numpy reads them.
    func testReadsBigEndian() throws {
        XCTAssertEqual(try NPY.decode(numpyFile("bigendian")).scalars(as: Float.self), [1, 2])   // np.array([1, 2], '>f4')
        func file(_ descr: String, _ shape: String, fortran: Bool = false, _ data: [UInt8]) -> [UInt8] {
            var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
                + Array(header.utf8) + data
        }
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        let f8 = try NPY.decode(file(">f8", "(2,)", [-0.5, 3.25].flatMap { be(($0 as Double).bitPattern) }))
        XCTAssertEqual(try f8.scalars(as: Double.self), [-0.5, 3.25])
        let i2 = try NPY.decode(file(">i2", "(3,)", [Int16(-300), 7, 1000].flatMap { be($0) }))
        XCTAssertEqual(try i2.scalars(as: Int16.self), [-300, 7, 1000])
        // complex64: each of the two floats is big-endian on its own
        let c8 = try NPY.decode(file(">c8", "(1,)", [Float(1.5), -2].flatMap { be($0.bitPattern) }))
        XCTAssertEqual(c8.dtype, .complex64)
        XCTAssertEqual(c8.raw.withMemoryRebound(to: Float.self, capacity: 2) { [$0[0], $0[1]] }, [1.5, -2])
        // big-endian and Fortran order at once: [[0, 1, 2], [3, 4, 5]] stored column by column
        let f = try NPY.decode(file(">f4", "(2, 3)", fortran: true, [0, 3, 1, 4, 2, 5].flatMap { be(Float($0).bitPattern) }))
        XCTAssertEqual(try f.scalars(as: Float.self), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try NPY.decode(file(">u1", "(2,)", [7, 9])).scalars(as: UInt8.self), [7, 9])
    }

    func testRefusesStringsAndTruncation() {
        func message(_ key: String) -> String {
            do { _ = try NPY.decode(numpyFile(key), path: "\(key).npy"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("unicode").contains("<U1"), message("unicode"))
        XCTAssertThrowsError(try NPY.decode([1, 2, 3]))
        // Truncated data.
        let f = numpyFile("f4_2x3")
        XCTAssertThrowsError(try NPY.decode(Array(f.dropLast(4))))
    }

    func testRoundTripsEveryType() throws {
        let tensors: [Tensor] = [
            try Tensor(shape: [2, 2], scalars: [Float(1), -2, .infinity, 0.125]),
            try Tensor(shape: [3], scalars: [Double(1e300), -0.0, 7]),
            try Tensor(shape: [2], scalars: [Int8(-5), 5]),
            try Tensor(shape: [2], scalars: [Int16(-5), 500]),
            try Tensor(shape: [1, 1, 2], scalars: [Int32.min, Int32.max]),
            try Tensor(shape: [2], scalars: [Int64.min, Int64.max]),
            try Tensor(shape: [2], scalars: [UInt8(0), 200]),
            try Tensor(shape: [2], scalars: [UInt16(1), 60000]),
            try Tensor(shape: [2], scalars: [UInt32(1), 4_000_000_000]),
            try Tensor(shape: [2], scalars: [UInt64(1), .max]),
            try Tensor(shape: [], scalars: [true]),
            try Tensor(dtype: .float16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0]),
        ]
        for t in tensors {
            let back = try NPY.decode(try NPY.encode(t))
            XCTAssertEqual(back.dtype, t.dtype)
            XCTAssertEqual(back.shape, t.shape)
            XCTAssertEqual(back.bytes(), t.bytes(), "\(t)")
        }
        XCTAssertThrowsError(try NPY.encode(Tensor(shape: [1], strings: ["x"])))
        XCTAssertThrowsError(try NPY.encode(Tensor(shape: [1], scalars: [BFloat16(1)])))
    }

    func testFileRoundTrip() throws {
        let path = NSTemporaryDirectory() + "swiftonnx-npy-\(getpid()).npy"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = try Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0) })
        try NPY.write(t, path: path)
        XCTAssertEqual(try NPY.read(path: path).scalars(as: Float.self), [0, 1, 2, 3, 4, 5])
        XCTAssertThrowsError(try NPY.read(path: path + ".missing")) { error in
            XCTAssertTrue("\(error)".contains("no such file"))
        }
    }

    func testLongHeaderUsesVersion2() throws {
        // A rank-25000 shape of ones makes a header longer than 65535 bytes.
        let shape = [Int](repeating: 1, count: 25000)
        let t = try Tensor(shape: shape, scalars: [Float(4)])
        let bytes = try NPY.encode(t)
        XCTAssertEqual(bytes[6], 2)
        let back = try NPY.decode(bytes)
        XCTAssertEqual(back.shape, shape)
        XCTAssertEqual(try back.scalars(as: Float.self), [4])
    }
}

// Regenerating numpyFiles:
//   import numpy as np, io, base64; b = io.BytesIO(); np.save(b, arr); base64.b64encode(b.getvalue())
//   (v2/v3: numpy.lib.format.write_array(b, arr, version=(2, 0)))
