/// The op families. Each family file registers its ops (with their inference and lowering) and the
/// rewrites it owns here; keep one line per family. Within a rewrite phase, rewrites run in the
/// order registered, so this order matters for them: affine chains are fused (Normalization) before
/// decomposed HardSwish is recognised (Elementwise), both before Conv takes residual adds and
/// activations into its epilogue.
func registerAllOps(_ r: inout OpRegistry) {
    registerNormalizationOps(&r)
    registerElementwiseOps(&r)
    registerConvOps(&r)
    registerBinaryOps(&r)
    registerReductionOps(&r)
    registerShapeOps(&r)
    registerPoolingOps(&r)
    registerMatMulOps(&r)
    registerAttentionOps(&r)
    registerStateSpaceOps(&r)
    registerSignalOps(&r)
    registerStringOps(&r)
    registerResizeOps(&r)
    registerSamplingOps(&r)
    registerControlFlowOps(&r)
    registerSequenceOps(&r)
    registerImageOps(&r)
    registerRecurrentOps(&r)
    registerQuantizationOps(&r)
    registerQuantizationContribOps(&r)
    registerMiscOps(&r)
    registerElementwiseChainOps(&r)   // last: the chains take what no other fusion took
}
