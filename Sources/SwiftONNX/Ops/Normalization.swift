/// Normalization ops.
func registerNormalizationOps(_ r: inout OpRegistry) {
}
