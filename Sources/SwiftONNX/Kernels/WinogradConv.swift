import CKernels
import Foundation

/// The two Winograd variants for 3x3 stride-1 convolutions: F(2x2, 3x3) (4x4 transformed tiles,
/// 16 GEMMs, 2.25x fewer multiplies than direct) and F(4x4, 3x3) (6x6 transformed tiles, 36 GEMMs,
/// 4x fewer; its transforms' larger coefficients cost some precision, see ``WinogradWeights``).
enum WinogradVariant: Int, Sendable {
    case f2x2 = 2, f4x4 = 4
    /// Output rows and columns per tile.
    var tile: Int { rawValue }
    /// Positions of a transformed tile: GEMMs per block.
    var positions: Int { (rawValue + 2) * (rawValue + 2) }
    var input: so_f32_wino2x2_input_fn { self == .f2x2 ? f32Winograd2Input : f32Winograd4Input }
    var output: so_f32_wino2x2_output_fn { self == .f2x2 ? f32Winograd2Output : f32Winograd4Output }
    func scratchFloats(_ bw: Int) -> Int {
        self == .f2x2 ? so_f32_wino2x2_scratch_floats(bw) : so_f32_wino4x4_scratch_floats(bw)
    }
}

extension WinogradVariant {
    /// `SWIFTONNX_WINOGRAD` = 2 or 4 forces one variant (for measuring).
    private static let forced: WinogradVariant? = {
        switch ProcessInfo.processInfo.environment["SWIFTONNX_WINOGRAD"] {
        case "4": return .f4x4
        case "2": return .f2x2
        default: return nil
        }
    }()

    /// The variant a convolution runs: F(4x4, 3x3) for at most 64 input and output channels on a
    /// map at least 64 wide and 16 high, where a block's tile rows are long enough for whole
    /// vectors and the GEMMs (short: K = C) dominate (sr_x4 on 664 x 664 tiles, Xeon, 1 thread:
    /// 509-645 ms against 620-656 for F(2x2, 3x3), minimum of 8 runs, two rounds); F(2x2, 3x3)
    /// otherwise (a 7 x 7 map is 4 tiles of 4 x 4; with many channels the GEMMs run at full speed
    /// and F(4x4, 3x3)'s precision costs more than its speed gains).
    static func preferred(outChannels m: Int, inChannels c: Int, outputHeight oh: Int, outputWidth ow: Int) -> WinogradVariant {
        if let forced { return forced }
        return max(m, c) <= 64 && ow >= 64 && oh >= 16 ? .f4x4 : .f2x2
    }

    /// Every variant ``preferred(outChannels:inChannels:outputHeight:outputWidth:)`` may pick for
    /// these channels on some map: what a plan that does not know the input's shape prepares, so
    /// that it runs each shape exactly as the plan made for that shape does (the same bits).
    static func candidates(outChannels m: Int, inChannels c: Int) -> [WinogradVariant] {
        if let forced { return [forced] }
        return max(m, c) <= 64 ? [.f2x2, .f4x4] : [.f2x2]
    }
}

/// Transforms of both variants, chosen once for this CPU.
let f32Winograd2Input: so_f32_wino2x2_input_fn = so_f32_wino2x2_input_select(selectedISA)!
let f32Winograd2Output: so_f32_wino2x2_output_fn = so_f32_wino2x2_output_select(selectedISA)!
let f32Winograd4Input: so_f32_wino2x2_input_fn = so_f32_wino4x4_input_select(selectedISA)!
let f32Winograd4Output: so_f32_wino2x2_output_fn = so_f32_wino4x4_output_select(selectedISA)!

/// 3x3 weights (M x C x 3 x 3) transformed for Winograd once, at plan time: the 16 (F(2x2, 3x3))
/// or 36 (F(4x4, 3x3)) matrices U[xi] (M x C), each packed for the GEMM.
final class WinogradWeights: Sendable {
    let u: [F32PackedMatrix]
    let outChannels: Int, inChannels: Int
    let variant: WinogradVariant

    init(_ w: UnsafePointer<Float>, outChannels m: Int, inChannels c: Int, variant: WinogradVariant = .f2x2) throws {
        outChannels = m
        inChannels = c
        self.variant = variant
        // Transformed straight into the packed layout (no intermediate copy of U). One allocation
        // for the matrices: large enough to be backed in one call (allocateBuffer), where many
        // small ones would take a page fault per page.
        let count = max(so_f32_gemm_packed_a_floats(f32Gemm.pointee.mr, m, c), 1)
        let n = variant.positions
        let storage = try FloatBuffer(count: n * count)
        u = (0..<n).map { F32PackedMatrix(packedStorageAt: storage.data + $0 * count, m: m, k: c, owner: storage) }
        var dst: [UnsafeMutablePointer<Float>?] = u.map { $0.data }
        switch variant {
        case .f2x2: so_f32_wino2x2_weights_packed(m, c, w, f32Gemm.pointee.mr, &dst)
        case .f4x4: so_f32_wino4x4_weights_packed(m, c, w, f32Gemm.pointee.mr, &dst)
        }
    }

    /// Whether a convolution is worth running this way: 2-D 3x3, stride 1, dilation 1, one group,
    /// and enough channels that the GEMMs, not the transforms, dominate.
    static func suits(weightShape w: [Int], group: Int, strides: [Int]?, dilations: [Int]?) -> Bool {
        guard w.count == 4, w[2] == 3, w[3] == 3, group == 1, w[0] >= 16, w[1] >= 16 else { return false }
        if let s = strides, s.contains(where: { $0 != 1 }) { return false }
        if let d = dilations, d.contains(where: { $0 != 1 }) { return false }
        return true
    }
}

/// Blocks of the Winograd convolution: a block's V and M (16 or 36 times (C + M) floats per tile)
/// are kept within about this many floats (512 KB; twice that for F(4x4, 3x3), whose blocks were
/// fastest at 1 MB: sr_x4 on 664 x 664, 509-645 ms against 580-619 at 512 KB and 618-726 at 2 MB),
/// so the GEMMs and the output transform find them in
/// cache (at least one GEMM panel of tiles per block). Chosen on the Xeon (2 MB of L2) from
/// interleaved runs of sr_x2 tiles at 256 KB, 512 KB, 1 MB and 2 MB (512 KB and 1 MB fastest);
/// `SWIFTONNX_WINO_BUDGET` (floats) overrides it, for tuning on other CPUs.
enum WinogradBlocking {
    private static let budgetFromEnvironment: Int? = {
        if let v = ProcessInfo.processInfo.environment["SWIFTONNX_WINO_BUDGET"], let n = Int(v), n > 0 { return n }
        return nil
    }()
    static func budgetFloats(_ variant: WinogradVariant) -> Int {
        budgetFromEnvironment ?? (variant == .f4x4 ? 1 << 18 : 1 << 17)
    }
}

/// out = act(conv3x3(x, w) + bias + z) by Winograd (the weights' variant): per block of tiles (tile
/// rows, or a run of tile columns of one row when a row alone is over the block size), the input
/// transform (into packed panels), one packed GEMM per transformed position and the output
/// transform with the epilogue, blocks split over threads.
func convForwardWinograd(x: UnsafePointer<Float>, weights: WinogradWeights, bias: UnsafePointer<Float>?,
                         z: UnsafePointer<Float>?, act: ConvActivation, out: UnsafeMutablePointer<Float>,
                         batch: Int, _ g: ConvGeometry, threads: Int) {
    let c = weights.inChannels, m = weights.outChannels
    let variant = weights.variant, ts = variant.tile, np = variant.positions
    let tw = (g.oW + ts - 1) / ts, th = (g.oH + ts - 1) / ts
    if tw == 0 || th == 0 || m == 0 { return }
    let nr = weights.u[0].nr
    // Tiles per block, a whole number of panels.
    let target = max(nr, WinogradBlocking.budgetFloats(variant) / (np * (c + m)) / nr * nr)
    // A tile row over the target is split into column blocks (see below); otherwise blocks are
    // runs of whole tile rows.
    let colBlocks = (tw + target - 1) / target
    let rows = colBlocks > 1 ? 1 : max(1, min(th, target / tw))
    let flops = np * m * c * tw * th
    let workers = threads > 1 && flops >= convParallelMinFlops ? threads : 1
    // Row blocks differing by at most one row, a multiple of the workers in number (when there are
    // enough rows), so every thread gets the same work.
    var rowBlocks = (th + rows - 1) / rows
    if workers > 1 && colBlocks == 1 { rowBlocks = min(th, (rowBlocks + workers - 1) / workers * workers) }
    let (kind, alpha, beta) = act.kernelCode
    // Few tiles (small maps): splitting tile rows would pad every block's panels to nr columns and
    // multiply the GEMM work (7x7 maps: 2 blocks of 8 tiles each cost a whole 16-column panel). Then
    // the blocks stay as they are and the threads split the GEMMs of each block instead.
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
    // Column blocks are `target` tiles wide (a whole number of GEMM panels), the last one takes the
    // rest: the transforms' loops over a block's tiles then run whole vectors except in that last
    // block (equal widths, e.g. 166 tiles as 6 x 27.7, left a scalar tail of 11 or 12 tiles in
    // every block, a quarter of the transform time of a 664-pixel-wide sr_x4 tile).
    let maxRows = (th + rowBlocks - 1) / rowBlocks, maxCols = colBlocks > 1 ? target : tw
    let transformScratch = variant.scratchFloats(maxCols)
    let input = variant.input, output = variant.output
    for n in 0..<batch {
        let xn = x + n * c * g.inPlane
        let on = out + n * m * g.outPlane
        let zn = z.map { $0 + n * m * g.outPlane }
        parallelFor(blocks, threads: splitGemms ? 1 : workers) { b in
            let rb = b / colBlocks, cb = b % colBlocks
            let ty0 = rb * th / rowBlocks, ty1 = (rb + 1) * th / rowBlocks
            let tx0 = colBlocks > 1 ? cb * target : 0, tx1 = colBlocks > 1 ? min(tw, tx0 + target) : tw
            let nt = (ty1 - ty0) * (tx1 - tx0)
            let ntp = (nt + nr - 1) / nr * nr
            let ntpMax = (maxRows * maxCols + nr - 1) / nr * nr
            ScratchPool.shared.withFloats(np * (c * ntpMax + m * maxRows * maxCols) + transformScratch + 32) { buf in
                // V is written in the GEMM's packed panels: no packing pass before the GEMMs.
                let v = buf, mb = buf + np * c * ntp
                let tsb = mb + np * m * nt
                input(xn, c, g.iH, g.iW, g.pH, g.pW, ty0, ty1, tx0, tx1, nr, v, tsb)
                let gemmChunks = splitGemms ? workers : 1
                parallelFor(gemmChunks, threads: workers) { t in
                    for xi in (np * t / gemmChunks)..<(np * (t + 1) / gemmChunks) {
                        f32PackedGemmPanels(weights.u[xi], pb: v + xi * c * ntp, n: nt,
                                            c: mb + xi * m * nt, ldc: nt, epilogue: .init())
                    }
                }
                output(mb, m, ty0, ty1, tx0, tx1, g.oH, g.oW, bias, zn, kind, alpha, beta, on, tsb)
            }
        }
    }
}
