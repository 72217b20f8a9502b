/// Binary ops.
func registerBinaryOps(_ r: inout OpRegistry) {
}
