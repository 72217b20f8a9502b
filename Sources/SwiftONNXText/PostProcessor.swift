/// What the post-processor adds around a single sequence: BERT's `[CLS] A [SEP]`, from a
/// TemplateProcessing template ("single") or BertProcessing, with each part's type id.
struct PostProcessor: Sendable, Equatable {
    enum Item: Sendable, Equatable {
        /// A special token: its ids and tokens (usually one of each) and the type id they get.
        case special(ids: [Int], tokens: [String], typeId: Int)
        /// The sequence itself, with the type id its tokens get.
        case sequence(typeId: Int)
    }

    let single: [Item]

    /// No special tokens; type id 0.
    static let none = PostProcessor(single: [.sequence(typeId: 0)])

    /// How many tokens the template adds to a sequence.
    var addedTokenCount: Int {
        single.reduce(0) { n, item in if case .special(let ids, _, _) = item { return n + ids.count } else { return n } }
    }
}
