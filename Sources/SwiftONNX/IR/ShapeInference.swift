/// Fills in types and shapes of values the model does not declare, from op rules.
enum ShapeInference {
    static func infer(_ graph: Graph, opsets: [String: Int]) {
        // Per-op rules are added by op families (see Ops/*); unknown results stay unknown.
    }
}
