/// Quantization ops.
func registerQuantizationOps(_ r: inout OpRegistry) {
}
