/// Misc ops: Identity and pass-through ops.
func registerMiscOps(_ r: inout OpRegistry) {
    r.register("Identity") { _ in
        return { inputs, _ in [try inputs.required(0)] }
    }
}
