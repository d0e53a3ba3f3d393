import ArgumentParser
import Foundation
import GRAKit

/// Sampling flags sent to the server as they are.
public struct SamplingOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Sampling temperature.", valueName: "t"))
    public var temperature: Double?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Nucleus sampling top_p.", valueName: "p"))
    public var topP: Double?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Most tokens in a reply.", valueName: "n"))
    public var maxTokens: Int?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A stop sequence (repeatable).", valueName: "text"))
    public var stop: [String] = []

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Sampling seed sent to the server with every request (the server's 'seed'; not --seed, which draws roles).",
            valueName: "n"))
    public var samplingSeed: Int?

    public init() {}

    /// The parameters for the request body.
    public func parameters() -> JSONObject {
        let seed = samplingSeed
        var parameters = JSONObject()
        if let temperature { parameters.append("temperature", .number(String(temperature))) }
        if let topP { parameters.append("top_p", .number(String(topP))) }
        if let maxTokens { parameters.append("max_tokens", .integer(maxTokens)) }
        if let seed { parameters.append("seed", .integer(seed)) }
        if !stop.isEmpty { parameters.append("stop", .array(stop.map { .string($0) })) }
        return parameters
    }
}
