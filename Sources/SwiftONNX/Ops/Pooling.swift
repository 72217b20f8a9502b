/// Pooling ops.
func registerPoolingOps(_ r: inout OpRegistry) {
}
