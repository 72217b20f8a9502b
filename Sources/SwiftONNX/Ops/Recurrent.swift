/// Recurrent ops.
func registerRecurrentOps(_ r: inout OpRegistry) {
}
