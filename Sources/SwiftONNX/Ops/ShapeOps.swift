/// Shape ops.
func registerShapeOps(_ r: inout OpRegistry) {
}
