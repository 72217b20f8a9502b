/// Elementwise ops.
func registerElementwiseOps(_ r: inout OpRegistry) {
}
