/// Misc ops.
func registerMiscOps(_ r: inout OpRegistry) {
}
