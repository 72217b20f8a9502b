/// ControlFlow ops.
func registerControlFlowOps(_ r: inout OpRegistry) {
}
