/// The op families. Each family file registers its ops here; keep one line per family.
func registerAllOps(_ r: inout OpRegistry) {
    registerElementwiseOps(&r)
    registerBinaryOps(&r)
    registerReductionOps(&r)
    registerShapeOps(&r)
    registerConvOps(&r)
    registerPoolingOps(&r)
    registerNormalizationOps(&r)
    registerMatMulOps(&r)
    registerResizeOps(&r)
    registerControlFlowOps(&r)
    registerRecurrentOps(&r)
    registerQuantizationOps(&r)
    registerMiscOps(&r)
}
