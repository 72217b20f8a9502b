import CKernels
import Foundation

/// Input and output transforms of Winograd F(2x2, 3x3), chosen once for this CPU.
let f32WinogradInput: so_f32_wino2x2_input_fn = so_f32_wino2x2_input_select(selectedISA)!
let f32WinogradOutput: so_f32_wino2x2_output_fn = so_f32_wino2x2_output_select(selectedISA)!

/// 3x3 weights (M x C x 3 x 3) transformed for Winograd F(2x2, 3x3) once, at plan time: the 16
/// matrices U[xi] (M x C), each packed for the GEMM.
final class WinogradWeights: Sendable {
    let u: [F32PackedMatrix]
    let outChannels: Int, inChannels: Int

    init(_ w: UnsafePointer<Float>, outChannels m: Int, inChannels c: Int) throws {
        outChannels = m
        inChannels = c
        // Transformed straight into the packed layout (no intermediate copy of U). One allocation
        // for the 16 matrices: large enough to be backed in one call (allocateBuffer), where 16
        // small ones would take a page fault per page.
        let count = max(so_f32_gemm_packed_a_floats(f32Gemm.pointee.mr, m, c), 1)
        let storage = try FloatBuffer(count: 16 * count)
        u = (0..<16).map { F32PackedMatrix(packedStorageAt: storage.data + $0 * count, m: m, k: c, owner: storage) }
        var dst: [UnsafeMutablePointer<Float>?] = u.map { $0.data }
        so_f32_wino2x2_weights_packed(m, c, w, f32Gemm.pointee.mr, &dst)
    }

    /// Whether a convolution is worth running this way: 2-D 3x3, stride 1, dilation 1, one group,
    /// and enough channels that the 16 GEMMs, not the transforms, dominate.
    static func suits(weightShape w: [Int], group: Int, strides: [Int]?, dilations: [Int]?) -> Bool {
        guard w.count == 4, w[2] == 3, w[3] == 3, group == 1, w[0] >= 16, w[1] >= 16 else { return false }
        if let s = strides, s.contains(where: { $0 != 1 }) { return false }
        if let d = dilations, d.contains(where: { $0 != 1 }) { return false }
        return true
    }
}

/// Blocks of the Winograd convolution: a block's V and M (16 (C + M) floats per tile) are kept
/// within about this many floats (512 KB), so the 16 GEMMs and the output transform find them in
/// cache (at least one GEMM panel of tiles per block). Chosen on the Xeon (2 MB of L2) from
/// interleaved runs of sr_x2 tiles at 256 KB, 512 KB, 1 MB and 2 MB (512 KB and 1 MB fastest);
/// `SWIFTONNX_WINO_BUDGET` (floats) overrides it, for tuning on other CPUs.
enum WinogradBlocking {
    static let budgetFloats: Int = {
        if let v = ProcessInfo.processInfo.environment["SWIFTONNX_WINO_BUDGET"], let n = Int(v), n > 0 { return n }
        return 1 << 17
    }()
}

/// out = act(conv3x3(x, w) + bias + z) by Winograd F(2x2, 3x3): per block of tiles (tile rows, or
/// a run of tile columns of one row when a row alone is over the block size), the input transform
/// (into packed panels), 16 packed GEMMs and the output transform with the epilogue, blocks split
/// over threads.
func convForwardWinograd(x: UnsafePointer<Float>, weights: WinogradWeights, bias: UnsafePointer<Float>?,
                         z: UnsafePointer<Float>?, act: ConvActivation, out: UnsafeMutablePointer<Float>,
                         batch: Int, _ g: ConvGeometry, threads: Int) {
    let c = weights.inChannels, m = weights.outChannels
    let tw = (g.oW + 1) / 2, th = (g.oH + 1) / 2
    if tw == 0 || th == 0 || m == 0 { return }
    let nr = weights.u[0].nr
    // Tiles per block, a whole number of panels.
    let target = max(nr, WinogradBlocking.budgetFloats / (16 * (c + m)) / nr * nr)
    // A tile row over the target is split into column blocks of equal width; otherwise blocks are
    // runs of whole tile rows.
    let colBlocks = (tw + target - 1) / target
    let rows = colBlocks > 1 ? 1 : max(1, min(th, target / tw))
    let flops = 16 * m * c * tw * th
    let workers = threads > 1 && flops >= convParallelMinFlops ? threads : 1
    // Row blocks differing by at most one row, a multiple of the workers in number (when there are
    // enough rows), so every thread gets the same work.
    var rowBlocks = (th + rows - 1) / rows
    if workers > 1 && colBlocks == 1 { rowBlocks = min(th, (rowBlocks + workers - 1) / workers * workers) }
    let (kind, alpha, beta) = act.kernelCode
    // Few tiles (small maps): splitting tile rows would pad every block's panels to nr columns and
    // multiply the GEMM work (7x7 maps: 2 blocks of 8 tiles each cost a whole 16-column panel). Then
    // the blocks stay as they are and the threads split the 16 GEMMs of each block instead.
    func paddedColumns(_ count: Int) -> Int {
        (0..<count).reduce(0) { acc, b in acc + (((b + 1) * th / count - b * th / count) * tw + nr - 1) / nr * nr }
    }
    var splitGemms = false
    if workers > 1 && colBlocks == 1 {
        let single = (th + rows - 1) / rows
        if 4 * paddedColumns(rowBlocks) > 5 * paddedColumns(single) {
            rowBlocks = single
            splitGemms = true
        }
    }
    let blocks = rowBlocks * colBlocks
    let maxRows = (th + rowBlocks - 1) / rowBlocks, maxCols = (tw + colBlocks - 1) / colBlocks
    let transformScratch = so_f32_wino2x2_scratch_floats(maxCols)
    let input = f32WinogradInput, output = f32WinogradOutput
    for n in 0..<batch {
        let xn = x + n * c * g.inPlane
        let on = out + n * m * g.outPlane
        let zn = z.map { $0 + n * m * g.outPlane }
        parallelFor(blocks, threads: splitGemms ? 1 : workers) { b in
            let rb = b / colBlocks, cb = b % colBlocks
            let ty0 = rb * th / rowBlocks, ty1 = (rb + 1) * th / rowBlocks
            let tx0 = cb * tw / colBlocks, tx1 = (cb + 1) * tw / colBlocks
            let nt = (ty1 - ty0) * (tx1 - tx0)
            let ntp = (nt + nr - 1) / nr * nr
            let ntpMax = (maxRows * maxCols + nr - 1) / nr * nr
            ScratchPool.shared.withFloats(16 * (c * ntpMax + m * maxRows * maxCols) + transformScratch + 32) { buf in
                // V is written in the GEMM's packed panels: no packing pass before the 16 GEMMs.
                let v = buf, mb = buf + 16 * c * ntp
                let ts = mb + 16 * m * nt
                input(xn, c, g.iH, g.iW, g.pH, g.pW, ty0, ty1, tx0, tx1, nr, v, ts)
                let gemmChunks = splitGemms ? workers : 1
                parallelFor(gemmChunks, threads: workers) { t in
                    for xi in (16 * t / gemmChunks)..<(16 * (t + 1) / gemmChunks) {
                        f32PackedGemmPanels(weights.u[xi], pb: v + xi * c * ntp, n: nt,
                                            c: mb + xi * m * nt, ldc: nt, epilogue: .init())
                    }
                }
                output(mb, m, ty0, ty1, tx0, tx1, g.oH, g.oW, bias, zn, kind, alpha, beta, on, ts)
            }
        }
    }
}
