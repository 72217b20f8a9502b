import Foundation
import XCTest
@testable import SwiftONNX

/// The FFT kernel (``FFTPlan``: mixed radix, and Bluestein for lengths with a large prime factor)
/// against the transform's definition summed directly in Double, and DFT / STFT on lengths the
/// definition's sums refused, against numpy.fft references (numpy 2.4, float64). The inputs are the
/// SplitMix64 test generator's uniform(-1, 1) floats, which Python reproduces exactly (the same integer
/// steps, then float32(-1 + 2 float32(z >> 40) / 2^24)); the references are np.fft.rfft(x) and, for
/// the STFT, np.fft.rfft(signal[160 f : 160 f + 400] * hann) per frame f.
final class FFTTests: XCTestCase {
    /// X[k] = sum_t x[t] e^(-+2 pi i k t / n) for the bins `bins`, by the definition (twiddles of
    /// (k t mod n) computed directly).
    private func directDFT(_ re: [Double], _ im: [Double], inverse: Bool, bins: [Int]? = nil) -> (re: [Double], im: [Double]) {
        let n = re.count
        let sign: Double = inverse ? 1 : -1
        let c = (0..<n).map { cos(2 * Double.pi * Double($0) / Double(n)) }
        let s = (0..<n).map { sign * sin(2 * Double.pi * Double($0) / Double(n)) }
        let ks = bins ?? Array(0..<n)
        var outRe: [Double] = [], outIm: [Double] = []
        for k in ks {
            var sr = 0.0, si = 0.0, e = 0
            for t in 0..<n {
                sr += re[t] * c[e] - im[t] * s[e]
                si += re[t] * s[e] + im[t] * c[e]
                e += k
                if e >= n { e -= n }
            }
            outRe.append(sr); outIm.append(si)
        }
        return (outRe, outIm)
    }

    private func randomLine(_ n: Int, seed: UInt64) -> (re: [Double], im: [Double]) {
        var g = SplitMix64(seed: seed)
        return ((0..<n).map { _ in Double(g.uniform(-1, 1)) }, (0..<n).map { _ in Double(g.uniform(-1, 1)) })
    }

    /// The accuracy target: 1e-9 sqrt(n) log2(n) (log2 taken as at least 1).
    private func tolerance(_ n: Int) -> Double { 1e-9 * sqrt(Double(n)) * max(1, log2(Double(n))) }

    func testKernelAgainstTheDirectSum() {
        let lengths = [1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 31, 60, 64, 97, 100, 128, 243, 1000, 1024, 4095,
                       // Bluestein: a prime factor above the radix limit
                       134, 257, 1009, 4099]
        var report: [String] = []
        for n in lengths {
            for inverse in [false, true] {
                let (re, im) = randomLine(n, seed: UInt64(n) &* 31 &+ (inverse ? 1 : 0))
                let want = directDFT(re, im, inverse: inverse)
                var gotRe = re, gotIm = im
                let plan = FFTPlan(count: n, inverse: inverse)
                plan.transform(re: &gotRe, im: &gotIm)
                var err = 0.0
                for k in 0..<n { err = max(err, abs(gotRe[k] - want.re[k]), abs(gotIm[k] - want.im[k])) }
                XCTAssertLessThan(err, tolerance(n), "n \(n) \(inverse ? "inverse" : "forward")")
                if !inverse { report.append("\(n)\(plan.usesBluestein ? "b" : ""): \(String(format: "%.1e", err))") }
            }
        }
        print("FFT max abs error vs the direct sum:", report.joined(separator: ", "))
        XCTAssertTrue(FFTPlan(count: 97, inverse: false).usesBluestein)
        XCTAssertTrue(FFTPlan(count: 4099, inverse: true).usesBluestein)
        XCTAssertFalse(FFTPlan(count: 4095, inverse: false).usesBluestein)
        XCTAssertFalse(FFTPlan(count: 61, inverse: false).usesBluestein)
    }

    /// 2^16 (radix 4) and 65537 (a prime: Bluestein with m = 2^18): a few bins by the direct sum.
    func testLongKernelBinsAgainstTheDirectSum() {
        for n in [65536, 65537] {
            for inverse in [false, true] {
                let (re, im) = randomLine(n, seed: 99 &+ UInt64(n))
                var gotRe = re, gotIm = im
                FFTPlan(count: n, inverse: inverse).transform(re: &gotRe, im: &gotIm)
                let bins = [0, 1, 2, 3, 777, n / 2, n / 2 + 1, n / 3, n - 2, n - 1]
                let want = directDFT(re, im, inverse: inverse, bins: bins)
                var err = 0.0
                for (i, k) in bins.enumerated() { err = max(err, abs(gotRe[k] - want.re[i]), abs(gotIm[k] - want.im[i])) }
                XCTAssertLessThan(err, tolerance(n), "n \(n) \(inverse ? "inverse" : "forward")")
                print("FFT n \(n) \(inverse ? "inverse" : "forward"): max abs error on \(bins.count) bins \(String(format: "%.1e", err))")
                // Parseval: sum |X|² = n sum |x|²
                let e1 = zip(re, im).reduce(0.0) { $0 + $1.0 * $1.0 + $1.1 * $1.1 }
                let e2 = zip(gotRe, gotIm).reduce(0.0) { $0 + $1.0 * $1.0 + $1.1 * $1.1 }
                XCTAssertEqual(e2 / (Double(n) * e1), 1, accuracy: 1e-12)
            }
        }
    }

    /// DFT of 131072 real points, one-sided (refused before: more than 65,536 points), against
    /// numpy.fft.rfft of the same values.
    func testLongOneSidedDFTMatchesNumpy() throws {
        let n = 131_072
        var g = SplitMix64(seed: 2024)
        let xs = (0..<n).map { _ in Double(g.uniform(-1, 1)) }
        let x = Tensor(validShape: [1, n, 1], scalars: xs)
        let start = Date()
        let y = try runOp("DFT", opset: 20, [x, nil, Tensor(scalar: Int64(1))], ["onesided": .int(1)])[0]
        print("DFT of \(n) points (one-sided, double): \(String(format: "%.3f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(y.shape, [1, n / 2 + 1, 2])
        let v = try y.doubles()
        // numpy.fft.rfft(x): bins and sums over all 65537 bins
        let numpy: [(Int, Double, Double)] = [
            (0, -47.915000319480896, 0.0),
            (1, -312.5802460446631, -41.15649886379681),
            (2, 332.52444147053257, -52.098239094243),
            (1000, 113.92282844322386, -87.91495690657078),
            (32768, 32.36310398578644, -219.02297806739807),
            (65535, 21.189117013956974, -61.43059847727217),
            (65536, -93.78404462337494, 0.0),
        ]
        for (k, re, im) in numpy {
            XCTAssertEqual(v[2 * k], re, accuracy: 1e-9 * max(1, abs(re)), "bin \(k)")
            XCTAssertEqual(v[2 * k + 1], im, accuracy: 1e-9 * max(1, abs(im)), "bin \(k)")
        }
        var sumRe = 0.0, sumIm = 0.0, energy = 0.0
        for k in 0...(n / 2) {
            sumRe += v[2 * k]; sumIm += v[2 * k + 1]
            energy += v[2 * k] * v[2 * k] + v[2 * k + 1] * v[2 * k + 1]
        }
        XCTAssertEqual(sumRe, 16020.267665028583, accuracy: 1e-9 * 16020.27)
        XCTAssertEqual(sumIm, 15465.986510782226, accuracy: 1e-9 * 15465.99)
        XCTAssertEqual(energy, 2878614335.0905914, accuracy: 1e-9 * 2878614335.09)
        // Parseval over the full spectrum: |X0|² + |X(n/2)|² + 2 sum of the bins between = n sum x²
        let full = 2 * energy - v[0] * v[0] - v[n] * v[n]
        XCTAssertEqual(full / (Double(n) * xs.reduce(0) { $0 + $1 * $1 }), 1, accuracy: 1e-12)
        // a few bins by the direct sum over those bins only
        let direct = directDFT(xs, [Double](repeating: 0, count: n), inverse: false, bins: [3, 4321, 65535])
        for (i, k) in [3, 4321, 65535].enumerated() {
            XCTAssertEqual(v[2 * k], direct.re[i], accuracy: 1e-9 * max(1, abs(direct.re[i])))
            XCTAssertEqual(v[2 * k + 1], direct.im[i], accuracy: 1e-9 * max(1, abs(direct.im[i])))
        }
        // float input: the same transform, rounded to float
        let y32 = try runOp("DFT", opset: 17, [Tensor(validShape: [1, n, 1], scalars: xs.map { Float($0) })],
                            ["axis": .int(1), "onesided": .int(1)])[0]
        XCTAssertEqual(y32.dtype, .float32)
        try assertClose(y32, v, tol: 1e-5)
    }

    /// Forward then inverse DFT on awkward lengths (a prime above the radix limit: Bluestein; 1001 =
    /// 7 11 13 and 4095 mixed radix; 1018 = 2 509) gives the input back.
    func testRoundTripsOnAwkwardLengths() throws {
        for n in [1009, 4095, 1018] {
            var g = SplitMix64(seed: UInt64(n))
            let xs = (0..<(2 * n * 2)).map { _ in Double(g.uniform(-1, 1)) }
            let x = Tensor(validShape: [2, n, 2], scalars: xs)
            let spectrum = try runOp("DFT", opset: 20, [x, nil, Tensor(scalar: Int64(1))])[0]
            let back = try runOp("DFT", opset: 20, [spectrum, nil, Tensor(scalar: Int64(1))], ["inverse": .int(1)])[0]
            XCTAssertEqual(back.shape, [2, n, 2])
            let b = try back.doubles()
            var err = 0.0
            for i in 0..<xs.count { err = max(err, abs(b[i] - xs[i])) }
            XCTAssertLessThan(err, 1e-9, "complex round trip, n \(n)")
        }
        // real signals: the one-sided spectrum's inverse (dft_length n, odd or even) is the signal
        for n in [1001, 1018, 1009] {
            var g = SplitMix64(seed: 5 &+ UInt64(n))
            let xs = (0..<(3 * n)).map { _ in Double(g.uniform(-1, 1)) }
            let x = Tensor(validShape: [3, n, 1], scalars: xs)
            let half = try runOp("DFT", opset: 20, [x, nil, Tensor(scalar: Int64(1))], ["onesided": .int(1)])[0]
            XCTAssertEqual(half.shape, [3, n / 2 + 1, 2])
            let len = Tensor(validShape: [1], scalars: [Int64(n)])
            let back = try runOp("DFT", opset: 20, [half, len, Tensor(scalar: Int64(1))], ["inverse": .int(1), "onesided": .int(1)])[0]
            XCTAssertEqual(back.shape, [3, n, 1])
            let b = try back.doubles()
            var err = 0.0
            for i in 0..<xs.count { err = max(err, abs(b[i] - xs[i])) }
            XCTAssertLessThan(err, 1e-9, "one-sided round trip, n \(n)")
        }
    }

    /// STFT of one second at 16 kHz (frame 400, hop 160, periodic Hann window, one-sided: 98 frames of
    /// 201 bins) against numpy.fft.rfft of each windowed frame, and the direct sum on a few frames.
    func testSpeechSTFTMatchesNumpy() throws {
        let length = 16_000, frame = 400, hop = 160
        var g = SplitMix64(seed: 7)
        let noise = (0..<length).map { _ in Double(g.uniform(-1, 1)) }
        let signal = (0..<length).map { 0.5 * noise[$0] + sin(2 * Double.pi * 440 * Double($0) / 16_000) }
        let window = (0..<frame).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(frame)) }
        let y = try runOp("STFT", opset: 17, [Tensor(validShape: [1, length, 1], scalars: signal), Tensor(scalar: Int64(hop)),
                                              Tensor(validShape: [frame], scalars: window)])[0]
        let frames = (length - frame) / hop + 1, bins = frame / 2 + 1
        XCTAssertEqual(y.shape, [1, frames, bins, 2])
        let v = try y.doubles()
        func at(_ f: Int, _ k: Int) -> (Double, Double) { (v[(f * bins + k) * 2], v[(f * bins + k) * 2 + 1]) }
        let numpy: [(Int, Int, Double, Double)] = [
            (0, 0, -1.3111321252610277, 0.0),
            (0, 11, 1.4754340669976331, -102.45772342568273),
            (1, 11, 59.41949030989785, 79.80041068592996),
            (50, 11, -1.597725165072001, -100.1240316420004),
            (50, 200, 5.117676927474517, 0.0),
            (97, 3, 0.11132063949136417, -0.30455903119904326),
            (97, 100, 1.7675473581466568, -0.2237542016948253),
        ]
        for (f, k, re, im) in numpy {
            let (gr, gi) = at(f, k)
            XCTAssertEqual(gr, re, accuracy: 1e-9 * max(1, abs(re)), "frame \(f) bin \(k)")
            XCTAssertEqual(gi, im, accuracy: 1e-9 * max(1, abs(im)), "frame \(f) bin \(k)")
        }
        var sumRe = 0.0, sumIm = 0.0, energy = 0.0
        for i in stride(from: 0, to: v.count, by: 2) {
            sumRe += v[i]; sumIm += v[i + 1]; energy += v[i] * v[i] + v[i + 1] * v[i + 1]
        }
        XCTAssertEqual(sumRe, -38.18426517700082, accuracy: 1e-7)   // sums of 19698 values of up to ~100
        XCTAssertEqual(sumIm, 6.240524083499837, accuracy: 1e-7)
        XCTAssertEqual(energy, 1705633.7254224224, accuracy: 1e-9 * 1705633.7)
        var err = 0.0
        for f in [0, 1, 50, 97] {
            let windowed = (0..<frame).map { signal[f * hop + $0] * window[$0] }
            let want = directDFT(windowed, [Double](repeating: 0, count: frame), inverse: false, bins: Array(0..<bins))
            for k in 0..<bins {
                let (gr, gi) = at(f, k)
                err = max(err, abs(gr - want.re[k]), abs(gi - want.im[k]))
            }
        }
        XCTAssertLessThan(err, 1e-10)
        print("STFT 16000 / 400 / 160: max abs error vs the direct sum on 4 frames \(String(format: "%.1e", err))")
    }

    /// Lengths above the cap are typed errors naming the op and the length; the cap itself runs.
    func testTransformLengthCap() throws {
        let over = Int64(maxTransformLength + 1)
        XCTAssertThrowsError(try runOp("DFT", opset: 20, [sinTensor([1, 4, 1]), Tensor(validShape: [1], scalars: [over]),
                                                          Tensor(scalar: Int64(1))])) { e in
            XCTAssertTrue("\(e)".contains("DFT") && "\(e)".contains("\(over)"), "\(e)")
        }
        let y = try runOp("DFT", opset: 20, [sinTensor([1, 4, 1]), Tensor(validShape: [1], scalars: [Int64(maxTransformLength)]),
                                             Tensor(scalar: Int64(1))], ["onesided": .int(1)])[0]
        XCTAssertEqual(y.shape, [1, maxTransformLength / 2 + 1, 2])
    }
}
