import CKernels

// The C microkernels (Sources/CKernels) chosen once for this CPU. Each family has a portable
// scalar reference and AVX2 / AVX-512 variants compiled with per-function target attributes, so
// the library runs them with no build flags.

/// The ISA level kernels run at: the CPU's best, capped by SWIFTONNX_ISA (scalar | avx2 | avx512).
let selectedISA: Int32 = Int32(so_isa_selected())

/// Name of an ISA level ("scalar", "avx2", "avx512").
func isaName(_ level: Int32) -> String { String(cString: so_isa_name(level)) }

/// The float32 GEMM micro-kernel family. (The kernel tables are `static const` C data chosen once and
/// never written: `nonisolated(unsafe)` only because C pointers and structs holding a name string
/// are not Sendable.)
nonisolated(unsafe) let f32Gemm: UnsafePointer<so_f32_gemm> = so_f32_gemm_select(selectedISA)
/// im2col written straight into packed GEMM panels.
let f32Im2colPacked: so_f32_im2col_packed_fn = so_f32_im2col_packed_select(selectedISA)!

/// Depthwise 2-D convolution of one plane, with its epilogue.
let f32DepthwiseConv2D: so_f32_dwconv2d_fn = so_f32_dwconv2d_select(selectedISA)!
/// Depthwise 2-D convolution of a block of planes interleaved channel-last (small or strided planes).
nonisolated(unsafe) let f32DepthwiseConv2DBlocked: so_f32_dwconv2d_cb = so_f32_dwconv2d_cb_select(selectedISA).pointee

/// Whether the channel-blocked depthwise kernel is the faster for geometry g: its scratch (the padded
/// channel-interleaved image, and the taps) must stay in L2 (measured on Zen 3 / AVX2: 3x faster on
/// 14x14 and 7x7 maps and on stride 2, even at 56x56, slower at 112x112 where the image spills to L3).
func depthwiseBlockedWins(_ g: so_dw_geom) -> Bool {
    var g = g
    let k = f32DepthwiseConv2DBlocked
    return k.lanes > 1 && k.scratch(&g) <= 256 << 10
}

/// Unary activations.
let f32UnaryKernel: so_f32_unary_fn = so_f32_unary_select(selectedISA)!

/// p = act(p + bias + z).
let f32BiasActKernel: so_f32_bias_act_fn = so_f32_bias_act_select(selectedISA)!

/// Binary arithmetic with scalar broadcast.
let f32BinaryKernel: so_f32_binary_fn = so_f32_binary_select(selectedISA)!

/// Softmax / LogSoftmax over contiguous rows.
let f32SoftmaxKernel: so_f32_softmax_fn = so_f32_softmax_select(selectedISA)!

/// Pooling.
let f32MaxPoolKernel: so_f32_maxpool_fn = so_f32_maxpool_select(selectedISA)!
let f32AvgPoolKernel: so_f32_avgpool_fn = so_f32_avgpool_select(selectedISA)!
let f32GlobalPoolKernel: so_f32_global_pool_fn = so_f32_global_pool_select(selectedISA)!

/// Per-channel affine maps and mean / variance.
let f32ChannelAffineKernel: so_f32_channel_affine_fn = so_f32_channel_affine_select(selectedISA)!
let f32MinMaxKernel: so_f32_minmax_fn = so_f32_minmax_select(selectedISA)!
let f32MeanVarianceKernel: so_f32_meanvar_fn = so_f32_meanvar_select(selectedISA)!
/// Row normalization (LayerNorm, RMSNorm).
let f32NormRowsKernel: so_f32_norm_rows_fn = so_f32_norm_rows_select(selectedISA)!

extension ActivationKind {
    /// The SO_ACT_* code of the C unary family, nil for kinds it does not cover.
    var kernelCode: Int32? {
        switch self {
        case .identity: return Int32(SO_ACT_IDENTITY)
        case .relu: return Int32(SO_ACT_RELU)
        case .leakyRelu: return Int32(SO_ACT_LEAKY_RELU)
        case .clip: return Int32(SO_ACT_CLIP)
        case .sigmoid: return Int32(SO_ACT_SIGMOID)
        case .hardSigmoid: return Int32(SO_ACT_HARD_SIGMOID)
        case .hardSwish: return Int32(SO_ACT_HARD_SWISH)
        case .tanh: return Int32(SO_ACT_TANH)
        case .gelu: return Int32(SO_ACT_GELU)
        case .geluTanh: return Int32(SO_ACT_GELU_TANH)
        case .elu: return Int32(SO_ACT_ELU)
        case .selu: return Int32(SO_ACT_SELU)
        case .celu: return Int32(SO_ACT_CELU)
        case .softsign: return Int32(SO_ACT_SOFTSIGN)
        case .thresholdedRelu: return Int32(SO_ACT_THRESHOLDED_RELU)
        case .swish: return Int32(SO_ACT_SWISH)
        case .exp: return Int32(SO_ACT_EXP)
        case .erf: return Int32(SO_ACT_ERF)
        case .abs: return Int32(SO_ACT_ABS)
        case .neg: return Int32(SO_ACT_NEG)
        case .sqrt: return Int32(SO_ACT_SQRT)
        case .floor: return Int32(SO_ACT_FLOOR)
        case .ceil: return Int32(SO_ACT_CEIL)
        case .round: return Int32(SO_ACT_ROUND)
        case .reciprocal: return Int32(SO_ACT_RECIPROCAL)
        case .sign: return Int32(SO_ACT_SIGN)
        case .softplus, .mish: return nil
        }
    }
}

extension F32BinaryOp {
    var kernelCode: Int32 {
        switch self {
        case .add: return Int32(SO_BIN_ADD)
        case .sub: return Int32(SO_BIN_SUB)
        case .mul: return Int32(SO_BIN_MUL)
        case .div: return Int32(SO_BIN_DIV)
        }
    }
}
