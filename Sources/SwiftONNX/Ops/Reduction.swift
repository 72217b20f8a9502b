/// Reduction ops.
func registerReductionOps(_ r: inout OpRegistry) {
}
