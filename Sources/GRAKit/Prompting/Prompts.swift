/// The prompt files of GRA's roles (one per role and round), built into the binary in English
/// and Chinese and overridable file by file from a directory (`--prompts DIR`).
///
/// The shipped files live in `Sources/GRAKit/Resources/Prompts/{en,zh}/`; copy one of those directories,
/// edit, and pass it with `--prompts`: a file present there replaces the built-in one of the
/// same name (`generate.txt`, `review-instruction.txt`, …), the others stay built in. A prompt's
/// version (part of every cache key) is the hash of its text, so an edited prompt re-asks only
/// the requests it affects.
public struct PromptSet: Sendable {
    /// The roles and rounds that have a prompt.
    public enum Name: String, CaseIterable, Sendable {
        case classify
        case extract
        case generate
        case reviewInstruction = "review-instruction"
        case reviewResponse = "review-response"
        /// The review rounds of `gra-review --dimensions`: a score per dimension and overall.
        case reviewInstructionDimensions = "review-instruction-dimensions"
        case reviewResponseDimensions = "review-response-dimensions"
        /// Round 2 with `gra-review --neighbours`: the sample's nearest neighbours shown, a novelty
        /// score asked for (with and without dimensions).
        case reviewResponseNeighbours = "review-response-neighbours"
        case reviewResponseDimensionsNeighbours = "review-response-dimensions-neighbours"
        case adjudicate

        public var fileName: String { rawValue + ".txt" }
    }

    private var templates: [Name: PromptTemplate]
    /// Where each prompt came from ("built-in en" or a path), for messages.
    public private(set) var sources: [Name: String]

    /// `spec`: nil or "en" for the built-in English set, "zh" for the Chinese one, or a
    /// directory whose files override the English set.
    public init(_ spec: String?) throws(GRAError) {
        let language = (spec == "zh") ? "zh" : "en"
        templates = [:]
        sources = [:]
        for name in Name.allCases {
            let text = PromptSet.builtIn(name, language: language)
            templates[name] = try PromptSet.parse(text, what: "built-in \(language) \(name.fileName)")
            sources[name] = "built-in \(language)"
        }
        guard let dir = spec, dir != "en", dir != "zh" else { return }
        guard isDirectory(dir) else {
            throw GRAError.usage("--prompts \(dir): not a directory (give a directory of prompt files, or en / zh)")
        }
        var found = 0
        for name in Name.allCases {
            let path = dir.hasSuffix("/") ? dir + name.fileName : dir + "/" + name.fileName
            guard let text = readTextFile(path) else { continue }
            templates[name] = try PromptSet.parse(text, what: path)
            sources[name] = path
            found += 1
        }
        if found == 0 {
            throw GRAError.usage(
                """
                --prompts \(dir): no prompt files in it (expected \
                \(Name.allCases.map(\.fileName).joined(separator: ", ")))
                """
            )
        }
    }

    public subscript(name: Name) -> PromptTemplate { templates[name]! }

    /// Stops a run whose `--prompts` directory holds none of the prompts `tool` uses (a wrong
    /// directory, or files meant for another stage), before any request: one message, exit 64.
    /// A directory with some of them is fine: the rest stay built in, as documented.
    public func require(_ names: [Name], for tool: String) throws(GRAError) {
        guard names.allSatisfy({ sources[$0]?.hasPrefix("built-in") == true }),
            let dir = sources.values.first(where: { !$0.hasPrefix("built-in") }).map({
                String($0.prefix(upTo: $0.lastIndex(of: "/") ?? $0.endIndex))
            })
        else { return }
        let has = Name.allCases.filter { sources[$0]?.hasPrefix("built-in") == false }.map(\.fileName)
        throw GRAError.usage(
            """
            --prompts \(dir) holds none of the prompts \(tool) uses \
            (\(names.map(\.fileName).joined(separator: ", "))); it has \(has.joined(separator: ", "))
            """
        )
    }

    private static func parse(_ text: String, what: String) throws(GRAError) -> PromptTemplate {
        do { return try PromptTemplate(text) } catch { throw GRAError.usage("prompt \(what): \(error)") }
    }

    static func builtIn(_ name: Name, language: String) -> String {
        let bytes: [UInt8]
        switch (name, language) {
        case (.classify, "zh"): bytes = PackageResources.classify_zh_txt
        case (.extract, "zh"): bytes = PackageResources.extract_zh_txt
        case (.generate, "zh"): bytes = PackageResources.generate_zh_txt
        case (.reviewInstruction, "zh"): bytes = PackageResources.review_instruction_zh_txt
        case (.reviewResponse, "zh"): bytes = PackageResources.review_response_zh_txt
        case (.adjudicate, "zh"): bytes = PackageResources.adjudicate_zh_txt
        case (.reviewInstructionDimensions, "zh"): bytes = PackageResources.review_instruction_dimensions_zh_txt
        case (.reviewResponseDimensions, "zh"): bytes = PackageResources.review_response_dimensions_zh_txt
        case (.reviewResponseNeighbours, "zh"): bytes = PackageResources.review_response_neighbours_zh_txt
        case (.reviewResponseDimensionsNeighbours, "zh"):
            bytes = PackageResources.review_response_dimensions_neighbours_zh_txt
        case (.classify, _): bytes = PackageResources.classify_txt
        case (.extract, _): bytes = PackageResources.extract_txt
        case (.generate, _): bytes = PackageResources.generate_txt
        case (.reviewInstruction, _): bytes = PackageResources.review_instruction_txt
        case (.reviewResponse, _): bytes = PackageResources.review_response_txt
        case (.adjudicate, _): bytes = PackageResources.adjudicate_txt
        case (.reviewInstructionDimensions, _): bytes = PackageResources.review_instruction_dimensions_txt
        case (.reviewResponseDimensions, _): bytes = PackageResources.review_response_dimensions_txt
        case (.reviewResponseNeighbours, _): bytes = PackageResources.review_response_neighbours_txt
        case (.reviewResponseDimensionsNeighbours, _):
            bytes = PackageResources.review_response_dimensions_neighbours_txt
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Renders a prompt into chat messages, or says which variables the record lacks.
public func renderPrompt(_ template: PromptTemplate, _ context: JSONObject) -> Result<[JSONValue], TaskFailure> {
    var missing: [String] = []
    let text = template.render(.object(context), missing: &missing).trimmingWhitespace()
    if !missing.isEmpty {
        let names = Array(Set(missing)).sorted().map { "'\($0)'" }.joined(separator: ", ")
        return .failure(TaskFailure(reason: "the prompt uses \(names), missing from the record"))
    }
    return .success([.object(["role": .string("user"), "content": .string(text)])])
}
