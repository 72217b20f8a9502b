/// MatMul ops.
func registerMatMulOps(_ r: inout OpRegistry) {
}
