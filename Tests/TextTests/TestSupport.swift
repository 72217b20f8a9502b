import Foundation
import XCTest

/// Files beside the tests (Tests/TextTests/Resources) and in the repository's Models folder.
enum TextTestFiles {
    static let resources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let tokenizer = resources.appendingPathComponent("bert-base-uncased.tokenizer.json")

    /// Models/ (or $SWIFTONNX_MODELS_DIR, as the other model tests).
    static var modelsDir: URL {
        if let d = ProcessInfo.processInfo.environment["SWIFTONNX_MODELS_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        return repository.appendingPathComponent("Models")
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: resources.appendingPathComponent(name))
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "TextTests", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) is not a JSON object"])
        }
        return o
    }

    /// A fresh temporary folder, removed when the test ends.
    static func temporaryFolder(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("TextTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}
