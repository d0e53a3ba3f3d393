import Foundation
import Testing

@testable import GRAKit

@Suite("Prompt sets")
struct PromptSetTests {
    /// A context with every variable any role's prompt may use.
    static let context: JSONValue = {
        let sample = #"{"instruction":"Add 2 and 3.","input":"","response":"5"}"#
        let text = #"""
            {"id":"x","instruction":"Add 2 and \#
            3.","input":"numbers","response":"5","domain":"math","domain_list":"math, code",
             "seed":\#(sample),"keywords":"addition","summary":"Adding.","shots":[\#(sample)],"has_shots":true,\#
            "variant":1,"variants":2,
             "reviews":[{"round":1,"round_name":"instruction","score":9,"comment":"ok"}],
             "round1":{"mean":9,"variance":0},"round2":{"mean":8,"variance":3}}
            """#
        return try! JSONParser.parse(text)
    }()

    @Test(arguments: ["en", "zh"]) func builtInSetsParseAndRenderEveryRole(_ language: String) throws {
        let set = try PromptSet(language)
        for name in PromptSet.Name.allCases {
            var missing: [String] = []
            let text = set[name].render(Self.context, missing: &missing)
            #expect(missing.isEmpty, "\(language) \(name): missing \(missing)")
            #expect(text.contains("Add 2 and 3."), "\(language) \(name) does not show the sample")
            #expect(!text.contains("{{"), "\(language) \(name) left a tag unrendered")
            #expect(set.sources[name] == "built-in \(language)")
            if language == "zh" { #expect(text.unicodeScalars.contains { (0x4E00...0x9FFF).contains($0.value) }) }
        }
        #expect(try PromptSet("en")[.generate].version != PromptSet("zh")[.generate].version)
    }

    @Test func aDirectoryOverridesFileByFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gra-prompts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: GRAError.self) { try PromptSet(dir.path) }  // no prompt files in it
        try Data("Rate: {{instruction}}".utf8).write(to: dir.appendingPathComponent("review-instruction.txt"))
        let set = try PromptSet(dir.path)
        var missing: [String] = []
        #expect(set[.reviewInstruction].render(Self.context, missing: &missing) == "Rate: Add 2 and 3.")
        #expect(set.sources[.reviewInstruction] == dir.path + "/review-instruction.txt")
        #expect(set.sources[.reviewResponse] == "built-in en")
        #expect(set[.reviewResponse].version == (try PromptSet(nil))[.reviewResponse].version)
        try Data("Rate: {{#instruction}".utf8).write(to: dir.appendingPathComponent("adjudicate.txt"))
        #expect(throws: GRAError.self) { try PromptSet(dir.path) }  // a template that does not parse
        #expect(throws: GRAError.self) { try PromptSet(dir.path + "/nope") }
    }
}
