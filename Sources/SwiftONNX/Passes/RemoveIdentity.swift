/// Removes Identity and inference-mode Dropout nodes (whose mask, if named, nobody reads) by rewiring their readers to the source value.
/// A node whose output is a graph output is kept (the output name must stay).
struct RemoveIdentity: GraphPass {
    let name = "remove-identity"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let outputs = graph.outputNames
        // Values something reads: a Dropout whose mask nobody reads is an identity too.
        var read = Set(outputs)
        for n in graph.nodes { read.formUnion(n.inputs); read.formUnion(n.implicitInputs) }
        var rename: [String: String] = [:]
        var kept: [Node] = []
        for n in graph.nodes {
            let isIdentity = n.isStandardDomain && (n.opType == "Identity" ||
                (n.opType == "Dropout" && n.inputs.count == 1 && n.outputs.dropFirst().allSatisfy { $0.isEmpty || !read.contains($0) }))
            if isIdentity, n.inputs.count >= 1, !n.inputs[0].isEmpty, let o = n.outputs.first, !outputs.contains(o) {
                rename[o] = rename[n.inputs[0]] ?? n.inputs[0]
                continue
            }
            kept.append(n)
        }
        guard !rename.isEmpty else { return false }
        // Subgraphs that read a renamed value through outer scope keep working only if we leave those alone.
        let subgraphReads = Set(kept.flatMap(\.implicitInputs))
        if !subgraphReads.isDisjoint(with: rename.keys) { return false }
        for i in kept.indices {
            kept[i].inputs = kept[i].inputs.map { rename[$0] ?? $0 }
        }
        graph.nodes = kept
        return true
    }
}
