/// Conv ops.
func registerConvOps(_ r: inout OpRegistry) {
}
