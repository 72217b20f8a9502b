/// Registry of per-op inference rules (key "domain::OpType").
func registerInferenceRules(_ r: inout [String: InferenceRule]) {
}
