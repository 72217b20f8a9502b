/// Resize ops.
func registerResizeOps(_ r: inout OpRegistry) {
}
