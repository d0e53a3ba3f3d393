import Foundation
import GRAKit
import Testing

/// Every --help lists its option groups in one order, and the flags the tools share are
/// described by the same text (one definition each, so the help cannot drift).
@Suite("Help reads the same in every tool")
struct HelpConsistencyTests {
    static let tools = ["gra-format", "gra-map", "gra-generate", "gra-review", "gra-adjudicate", "gra-dedup"]
    static let order = [
        "ROLES AND PROMPTS:", "REPLIES:", "SAMPLING:", "MODELS, CONCURRENCY AND CACHE:", "INPUT:",
        "FAILED RECORDS, STATISTICS, DRY RUN:", "OPTIONS:"
    ]

    static func help(_ tool: String) throws -> String { try ToolRunner.sh("\(tool) --help").stdoutText }

    /// The option's entry: its line and the indented lines under it.
    static func entry(_ option: String, in help: String) -> String? {
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        guard let i = lines.firstIndex(where: { $0.hasPrefix("  \(option) ") || $0 == "  \(option)" }) else {
            return nil
        }
        var block = [lines[i]]
        for line in lines[(i + 1)...] {
            guard line.hasPrefix("      ") else { break }
            block.append(line)
        }
        return block.joined(separator: "\n")
    }

    @Test(arguments: tools)
    func groupsComeInOneOrder(_ tool: String) throws {
        let headers = try Self.help(tool).split(separator: "\n").map(String.init).filter {
            $0.hasSuffix(":") && $0 == $0.uppercased() && !$0.hasPrefix(" ")
        }
        .map {
            $0.replacingOccurrences(of: "SUMMARY COMPLETION: ", with: "").replacingOccurrences(
                of: " (METHOD SEMANTIC)", with: "")
        }
        .filter { Self.order.contains($0) }
        let positions = headers.map { Self.order.firstIndex(of: $0)! }
        #expect(positions == positions.sorted() && headers.count >= 3, "\(tool): \(headers)")
    }

    @Test(arguments: [
        "--errors", "--stats", "--unordered", "--parse-retries", "--no-response-format", "--sampling-seed",
        "--max-connect-failures", "--progress/--no-progress"
    ])
    func sharedFlagsReadTheSame(_ option: String) throws {
        var seen: [String: String] = [:]
        for tool in ["gra-map", "gra-generate", "gra-review", "gra-adjudicate"] {
            if let e = Self.entry(option, in: try Self.help(tool)) { seen[tool] = e }
        }
        let missing = Set(["gra-map", "gra-generate", "gra-review", "gra-adjudicate"]).subtracting(seen.keys)
        #expect(seen.count == 4, "\(option) missing from \(missing)")
        #expect(Set(seen.values).count == 1, "\(option) is described differently: \(seen)")
    }
}
