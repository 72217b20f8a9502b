import XCTest
import Foundation
@testable import SwiftONNX

// References computed with the ONNX reference implementation (numpy), inputs sin(i*k)*s.
final class NormalizationTests: XCTestCase {
    func testBatchNormInference() throws {
        let sc = try Tensor(shape: [2], scalars: [Float(0.5), 2]), b = try Tensor(shape: [2], scalars: [Float(0.1), -0.3])
        let m = try Tensor(shape: [2], scalars: [Float(0.2), -0.1]), v = try Tensor(shape: [2], scalars: [Float(1.5), 0.25])
        let y = try runOp("BatchNormalization", opset: 15, [sinTensor([1, 2, 5, 7]), sc, b, m, v], ["epsilon": .float(1e-3)])[0]
        try assertClose(y, NormRef.bn, tol: 1e-5)
        XCTAssertThrowsError(try runOp("BatchNormalization", opset: 15, [sinTensor([1, 3, 2, 2]), sc, b, m, v]))
    }
    func testLayerNormWithStats() throws {
        let out = try runOp("LayerNormalization", opset: 17, [sinTensor([2, 3, 4]), sinTensor([4], 0.9, 1), sinTensor([4], 1.3, 0.5)],
                            ["axis": .int(-1)], outputs: 3)
        try assertClose(out[0], NormRef.ln_y, tol: 1e-5)
        XCTAssertEqual(out[1].shape, [2, 3, 1])
        try assertClose(out[1], NormRef.ln_mean, tol: 1e-5)
        try assertClose(out[2], NormRef.ln_inv, tol: 1e-5)
    }
    func testGroupAndInstanceNorm() throws {
        let x = sinTensor([2, 4, 3, 2])
        let g = try runOp("GroupNormalization", opset: 21, [x, sinTensor([4], 0.5, 1), sinTensor([4], 0.7, 1)], ["num_groups": .int(2)])[0]
        try assertClose(g, NormRef.gn, tol: 1e-5)
        let i = try runOp("InstanceNormalization", [x, sinTensor([4], 0.5, 1), sinTensor([4], 0.7, 1)])[0]
        try assertClose(i, NormRef.inorm, tol: 1e-5)
        XCTAssertThrowsError(try runOp("GroupNormalization", opset: 21, [x, sinTensor([4]), sinTensor([4])], ["num_groups": .int(3)]))
    }
    func testLRN() throws {
        let y = try runOp("LRN", [sinTensor([2, 4, 3, 2])], ["size": .int(3), "alpha": .float(0.01), "beta": .float(0.75), "bias": .float(1)])[0]
        try assertClose(y, NormRef.lrn, tol: 1e-5)
    }
    func testLpNormAndMVN() throws {
        let x = try Tensor(shape: [2, 2], scalars: [Float(3), 4, 0, 0])
        let y = try runOp("LpNormalization", [x], ["axis": .int(1), "p": .int(2)])[0]
        XCTAssertEqual(try y.scalars(as: Float.self), [0.6, 0.8, 0, 0])
        let m = try runOp("MeanVarianceNormalization", [Tensor(shape: [1, 1, 1, 2], scalars: [Float(1), 3])])[0]
        let mv = try m.scalars(as: Float.self)
        XCTAssertEqual(mv[0], -1, accuracy: 1e-6); XCTAssertEqual(mv[1], 1, accuracy: 1e-6)
    }
}


fileprivate enum NormRef {
    static let bn: [Double] = [0.0183775499, 0.313536942, 0.568747878, 0.749468744, 0.831239939, 0.802993953, 0.668553829, 0.446115375, 0.165784657, -0.134496957, -0.414087743, -0.63514632, -0.767753541, -0.793961644, -0.710223377, -0.527872443, -0.2715891, 0.0239398181, 0.31871596, 0.572842658, 0.75192517, 0.831725419, 0.801442802, 0.665176034, 0.441368133, 0.160310417, -0.139957249, -0.418795079, -0.638463557, -0.769231677, -0.793400705, -0.707699239, -0.523726702, -0.266382933, 0.0295018479, 3.08753991, 5.56260586, 7.29822493, 8.05949116, 7.74336815, 6.39264488, 4.19013262, 1.43393254, -1.50291705, -4.22292757, -6.35795784, -7.61904192, -7.83549786, -6.97802925, -5.16269064, -2.63517928, 0.262417555, 3.13792419, 5.60215378, 7.32158518, 8.06349945, 7.7274847, 6.35901833, 4.14331484, 1.38025904, -1.55618167, -4.26857328, -6.38980818, -7.63278484, -7.8292737, -6.95268011, -5.12164783, -2.58399773, 0.316810846, 3.18816733]
    static let ln_y: [Double] = [0, 0.200069755, 0.810407043, 0.179238528, 0, 1.0776912, 0.138261154, -1.02102506, 0, 0.794472575, -0.25933075, -0.885114551, 0, -0.227160394, 0.161459893, 0.364132136, 0, 0.142499477, 0.743267536, 0.212462395, 0, 1.34104753, 0.858245909, -1.00408661]
    static let ln_mean: [Double] = [0.965801001, 1.63888288, -0.668600678, -1.76012921, 0.349413127, 1.823493]
    static let ln_inv: [Double] = [1.48258913, 2.68181896, 1.35772455, 3.92895412, 1.28989661, 6.47325993]
    static let gn: [Double] = [0, 0, 0, 0, 0, 0, 1.04007321, 0.812425114, 0.525528833, 0.218214434, -0.0679245125, -0.294160512, -0.137273533, -0.172207602, -0.060588654, 0.182476135, 0.524089183, 0.918014666, 1.24904753, 1.65059418, 1.9335631, 2.05965581, 2.01180619, 1.79649051, 0, 0, 0, 0, 0, 0, 0.0485460842, 0.147062985, 0.358546004, 0.654371945, 0.994502152, 1.33290159, 1.60969918, 1.85222306, 1.95859728, 1.91442446, 1.72568331, 1.41791897, 0.919322574, 0.432855636, -0.017693496, -0.371345121, -0.58023416, -0.616088452]
    static let inorm: [Double] = [0, 0, 0, 0, 0, 0, 1.32546854, 1.09320509, 0.800492406, 0.486947596, 0.195007563, -0.0358150601, 0.249350011, 0.175106227, 0.412324786, 0.92889899, 1.65491319, 2.49210477, -1.07409012, 0.381376922, 1.40704083, 1.86408317, 1.69064498, 0.910200417, 0, 0, 0, 0, 0, 0, 0.079048574, 0.182009369, 0.403032035, 0.712202132, 1.06767499, 1.42133904, 0.372654796, 1.45963371, 1.93639719, 1.73841703, 0.892489374, -0.486893713, 2.57163787, 1.70427644, 0.900955796, 0.270401597, -0.102043629, -0.16597116]
    static let lrn: [Double] = [0, 0.720312745, 1.34204164, 1.77654203, 1.96678693, 1.8929994, 1.56868911, 1.03369276, 0.356622865, -0.369846034, -1.0450883, -1.5767192, -1.89419741, -1.95679046, -1.75661538, -1.31905894, -0.701220021, 0.0134588388, 0.728193841, 1.33921122, 1.76910621, 1.96471027, 1.89891007, 1.57497404, 1.02360938, 0.344948924, -0.386121673, -1.06685066, -1.59911422, -1.90946585, -1.95545132, -1.75057342, -1.3090882, -0.688644098, 0.0269170351, 0.738745747, 1.34859774, 1.77425154, 1.96026713, 1.88307821, 1.55240992, 1.01075566, 0.33269975, -0.39793936, -1.06896188, -1.59256486, -1.90387073, -1.96314554]
}
