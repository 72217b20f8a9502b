import CKernels

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

/// out = act(conv3x3(x, w) + bias + z) by Winograd F(2x2, 3x3): per block of tile rows, the input
/// transform (into packed panels), 16 packed GEMMs and the output transform with the epilogue, blocks split over threads.
func convForwardWinograd(x: UnsafePointer<Float>, weights: WinogradWeights, bias: UnsafePointer<Float>?,
                         z: UnsafePointer<Float>?, act: ConvActivation, out: UnsafeMutablePointer<Float>,
                         batch: Int, _ g: ConvGeometry, threads: Int) {
    let c = weights.inChannels, m = weights.outChannels
    let tw = (g.oW + 1) / 2, th = (g.oH + 1) / 2
    if tw == 0 || th == 0 || m == 0 { return }
    // Tile rows per block: V and M of a block (16 (C + M) floats per tile) within about 2 MB.
    let perRow = 16 * (c + m) * tw
    let rows = max(1, min(th, (1 << 19) / max(perRow, 1)))
    let flops = 16 * m * c * tw * th
    let workers = threads > 1 && flops >= convParallelMinFlops ? threads : 1
    // Blocks of tile rows differing by at most one row, a multiple of the workers in number (when
    // there are enough rows), so every thread gets the same work.
    var blocks = (th + rows - 1) / rows
    if workers > 1 { blocks = min(th, (blocks + workers - 1) / workers * workers) }
    let (kind, alpha, beta) = act.kernelCode
    let nr = weights.u[0].nr
    // Few tiles (small maps): splitting tile rows would pad every block's panels to nr columns and
    // multiply the GEMM work (7x7 maps: 2 blocks of 8 tiles each cost a whole 16-column panel). Then
    // the blocks stay as they are and the threads split the 16 GEMMs of each block instead.
    func paddedColumns(_ count: Int) -> Int {
        (0..<count).reduce(0) { acc, b in acc + (((b + 1) * th / count - b * th / count) * tw + nr - 1) / nr * nr }
    }
    var splitGemms = false
    if workers > 1 {
        let single = (th + rows - 1) / rows
        if 4 * paddedColumns(blocks) > 5 * paddedColumns(single) {
            blocks = single
            splitGemms = true
        }
    }
    let transformScratch = so_f32_wino2x2_scratch_floats(tw)
    let input = f32WinogradInput, output = f32WinogradOutput
    for n in 0..<batch {
        let xn = x + n * c * g.inPlane
        let on = out + n * m * g.outPlane
        let zn = z.map { $0 + n * m * g.outPlane }
        parallelFor(blocks, threads: splitGemms ? 1 : workers) { b in
            let ty0 = b * th / blocks, ty1 = (b + 1) * th / blocks
            let nt = (ty1 - ty0) * tw
            let ntp = (nt + nr - 1) / nr * nr
            ScratchPool.shared.withFloats(16 * (c * ntp + m * nt) + transformScratch + 32) { buf in
                // V is written in the GEMM's packed panels: no packing pass before the 16 GEMMs.
                let v = buf, mb = buf + 16 * c * ntp
                let ts = mb + 16 * m * nt
                input(xn, c, g.iH, g.iW, g.pH, g.pW, tw, ty0, ty1, nr, v, ts)
                let gemmChunks = splitGemms ? workers : 1
                parallelFor(gemmChunks, threads: workers) { t in
                    for xi in (16 * t / gemmChunks)..<(16 * (t + 1) / gemmChunks) {
                        f32PackedGemmPanels(weights.u[xi], pb: v + xi * c * ntp, n: nt,
                                            c: mb + xi * m * nt, ldc: nt, epilogue: .init())
                    }
                }
                output(mb, m, tw, ty0, ty1, g.oH, g.oW, bias, zn, kind, alpha, beta, on, ts)
            }
        }
    }
}
