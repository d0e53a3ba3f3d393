import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

@main
struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-map",
        abstract: "Ask a model about every record and store the reply in a field.",
        discussion: """
            For each NDJSON record read from the FILEs or standard input, renders the --prompt \
            template with the record's fields ({{field}}, {{a.b}}, {{#list}}…{{/list}}), sends it \
            to the model, and writes the record with the reply stored at --into (a dotted path, \
            e.g. gra.map.translation). With --json-schema the reply must be JSON matching the \
            schema: it is requested with response_format, extracted strictly (whole reply, last \
            ```json block, last {...} object — never guessed), validated, and re-asked up to \
            --parse-retries times before the record counts as failed.

            Every record ends up on stdout or, if its request failed after retries, in the \
            --errors file (record, reason, HTTP status, attempts). Output follows input order \
            (--unordered writes as replies arrive). Replies are cached: rerunning the same \
            command sends only the requests that never finished.

            Models: --model NAME@BASE_URL, --config FILE, or GRA_MODELS (comma-separated names) \
            at OPENAI_BASE_URL. API keys come from the environment only (OPENAI_API_KEY, or the \
            variable a config entry names with api_key_env).

            Exit status: 0 success, 64 usage error, 65 malformed input, 74 I/O error, 75 some \
            records failed after retries (rerun to retry them), 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Prompt template file (Mustache: {{field}}, {{a.b}}, {{#list}}…{{/list}}, {{^x}}…{{/x}}).",
            valueName: "file"))
    var prompt: String

    @Option(name: .long, help: ArgumentHelp("System message template file.", valueName: "file"))
    var system: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Where the reply goes: a dotted field path such as gra.map.NAME.", valueName: "path"))
    var into: String

    @Option(
        name: .long,
        help: ArgumentHelp("JSON schema file: the reply must be JSON that conforms to it.", valueName: "file"))
    var jsonSchema: String?

    @Option(name: .long, help: ArgumentHelp("Which model of the pool to use (default: the first).", valueName: "name"))
    var use: String?

    /// Before 0.5 gra-map's --seed was the server's seed; it is --sampling-seed now, as in
    /// every stage (--seed draws roles there). Kept to say so.
    @Option(name: .long, help: .hidden)
    var seed: String?

    @OptionGroup(title: "Replies")
    var replies: ReplyOptions

    @OptionGroup(title: "Sampling")
    var sampling: SamplingOptions

    @OptionGroup(title: "Models, concurrency and cache")
    var client: ClientOptions

    @OptionGroup(title: "Input")
    var input: InputOptions

    @OptionGroup(title: "Failed records, statistics, dry run")
    var outputs: RunOutputOptions

    func validate() throws {
        if seed != nil {
            throw ValidationError(
                """
                gra-map has no --seed: the server's sampling seed is --sampling-seed (as in every gra stage, \
                where --seed draws roles)
                """
            )
        }
    }

    func run() throws {
        Signals.install()
        let diagnostics = Diagnostics(tool: "gra-map", quiet: input.quiet)
        let environment = ProcessInfo.processInfo.environment
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            let setup = try StageSetup(client, diagnostics: diagnostics, environment: environment)
            let pool = setup.pool
            let llm = setup.client
            defer { setup.shutdown() }
            let model = try pool.model(use: use)
            var options = MapOptions(template: try loadTemplate(prompt), into: try fieldPath(into), model: model)
            options.systemTemplate = try system.map { path throws(GRAError) in try loadTemplate(path) }
            if let jsonSchema {
                guard let text = readTextFile(jsonSchema) else {
                    throw GRAError.usage("cannot read --json-schema \(jsonSchema)")
                }
                do { options.schema = try JSONSchema(JSONParser.parse(text)) } catch let e as JSONParseError {
                    throw GRAError.usage("--json-schema \(jsonSchema): invalid JSON: \(e)")
                } catch let e as GRAError {
                    throw GRAError.usage("--json-schema \(jsonSchema): \(e.description)")
                } catch { throw GRAError.usage("--json-schema \(jsonSchema): \(error)") }
            }
            options.sendResponseFormat = !replies.noResponseFormat
            options.parseRetries = replies.parseRetries
            options.parameters = sampling.parameters()
            options.io = outputs.io(input)
            if !outputs.dryRun { setup.checkModels([model], diagnostics) }
            let stage = MapStage(options: options, client: llm, output: OutputSink(fd: 1), diagnostics: diagnostics)
            let summary = try stage.run()
            return summary.exitStatus
        }
    }

    private func loadTemplate(_ path: String) throws(GRAError) -> PromptTemplate {
        guard let text = readTextFile(path) else { throw GRAError.usage("cannot read template \(path)") }
        do { return try PromptTemplate(text) } catch { throw GRAError.usage("template \(path): \(error)") }
    }

    private func fieldPath(_ text: String) throws(GRAError) -> [String] {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw GRAError.usage("--into '\(text)' is not a dotted field path")
        }
        return parts
    }
}
