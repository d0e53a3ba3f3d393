import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

@main
struct IFDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-ifd",
        abstract: "Score each sample's Instruction-Following Difficulty (IFD) into gra.ifd.",
        discussion: """
            For each NDJSON sample read from the FILEs or standard input (instruction, optional input, \
            response or output), has the model score two prompts without generating: the context (the \
            instruction, then the input, then a blank line; --prompt sets another) followed by the \
            response, and the response alone. IFD = perplexity of the response given the context ÷ \
            perplexity of the response alone, from the log-probabilities of the response's tokens \
            (POST /v1/completions with echo: true, logprobs: 1, max_tokens: 1, as vLLM answers it). \
            Near 1 or above, the instruction hardly helps: a hard sample. The record is written with \
            gra.ifd = {score, ppl_given_instruction, ppl_response, response_tokens, model}.

            Before the run one short prompt is scored: a server that gives no prompt log-probabilities \
            (llama.cpp, Ollama; SGLang sends no text offsets) stops the run there, named, with exit 69.

            Every record ends up on stdout or in the --errors file. Replies are cached: rerunning the \
            same command sends only the requests that never finished.

            Models: --model NAME@BASE_URL, --config FILE, or GRA_MODELS at OPENAI_BASE_URL; --use picks \
            one of the pool (default: the first).

            Exit status: 0 success, 64 usage error, 65 malformed input, 69 the server gives no prompt \
            log-probabilities or cannot be reached, 74 I/O error, 75 some records failed after retries \
            (rerun to retry them), 77 API key refused, 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            Template of the text before the response (Mustache over id, instruction, input, response; \
            default: the instruction, a blank line, the input and a blank line when there is one).
            """,
            valueName: "file"))
    var prompt: String?

    @Option(name: .long, help: ArgumentHelp("Which model of the pool to use (default: the first).", valueName: "name"))
    var use: String?

    @OptionGroup(title: "Models, concurrency and cache")
    var client: ClientOptions

    @OptionGroup(title: "Input")
    var input: InputOptions

    @OptionGroup(title: "Failed records, statistics, dry run")
    var outputs: RunOutputOptions

    func run() throws {
        Signals.install()
        let diagnostics = Diagnostics(tool: "gra-ifd", quiet: input.quiet)
        let environment = ProcessInfo.processInfo.environment
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            let setup = try StageSetup(client, diagnostics: diagnostics, environment: environment)
            let pool = setup.pool
            defer { setup.shutdown() }
            let model = try pool.model(use: use)
            var options = IFDOptions(model: model)
            if let prompt {
                guard let text = readTextFile(prompt) else { throw GRAError.usage("cannot read --prompt \(prompt)") }
                do { options.context = try PromptTemplate(text) } catch {
                    throw GRAError.usage("--prompt \(prompt): \(error)")
                }
            }
            options.io = outputs.io(input)
            if !outputs.dryRun { setup.checkModels([model], diagnostics) }
            let stage = IFDStage(
                options: options, client: setup.client, output: OutputSink(fd: 1), diagnostics: diagnostics)
            return try stage.run().exitStatus
        }
    }
}
