import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

extension DedupKeep: ExpressibleByArgument {}

@main
struct DedupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-dedup",
        abstract: "Drop exact, near (MinHash) and semantic duplicates; decontaminate against reference sets.",
        discussion: """
            Reads NDJSON (or a JSON array) from the FILEs or standard input and writes the records \
            that duplicate no earlier record, unchanged and in input order. The compared text is the \
            --fields of each record, NFKC-normalized, case-folded, whitespace collapsed.

            Methods (--method, combinable): exact (equal normalized text), minhash (MinHash \
            signatures over --shingle shingles with LSH banding propose candidates; a candidate is \
            a duplicate when the exact Jaccard similarity of the two shingle sets reaches \
            --threshold, the earlier record's text read again from its input file or from a \
            temporary spool file), semantic (embeddings, cosine >= --cosine). --against FILE loads \
            a reference set first (seeds, a benchmark's test split): records too close to any \
            reference record are dropped as method "against".

            Dropped records go to --rejects FILE, one line each with where, id, reason, method, \
            duplicate_of and similarity; --mark writes them to stdout instead, with gra.dedup \
            {method, duplicate_of, similarity}. --keep best keeps the highest-scored copy of each \
            cluster (gra.adjudication.score, else the mean review round score) and writes only at \
            the end. Counts per method go to stderr at the end.

            Exit status: 0 success (also when the reader of stdout goes away), 64 usage error, \
            65 malformed input (stops at the bad line unless --skip-bad-input), 74 I/O error, \
            75 some embeddings failed (see --errors; rerun to retry them), 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(
        name: .long, help: ArgumentHelp("Methods to use, comma-separated: exact, minhash, semantic.", valueName: "list")
    )
    var method = "exact,minhash"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Fields compared, comma-separated (output = response; other names are top-level string fields).",
            valueName: "list"))
    var fields = "instruction,input"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "MinHash shingles: word:K (K consecutive words; CJK characters count as words) or char:K.",
            valueName: "word:K|char:K"))
    var shingle = "word:5"

    @Option(name: .long, help: ArgumentHelp("MinHash permutations (signature length).", valueName: "n"))
    var numPerm = 128

    @Option(
        name: .long,
        help: ArgumentHelp("Jaccard similarity at or above which records are near duplicates.", valueName: "j"))
    var threshold = 0.8

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "LSH bands (default: chosen from --threshold to favour recall; see the man page).", valueName: "b"))
    var bands: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("LSH rows per band (default: chosen from --threshold).", valueName: "r"))
    var rows: Int?

    @Option(
        name: .long,
        help: ArgumentHelp("Cosine similarity at or above which records are semantic duplicates.", valueName: "c"))
    var cosine = 0.9

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The embedding model (a name in the pool, or NAME@URL; default: the pool's first model).", valueName: "name"
        ))
    var embeddingModel: String?

    @Option(name: .long, help: ArgumentHelp("Texts per /v1/embeddings request.", valueName: "n"))
    var embeddingBatchSize = 64

    @Option(
        name: .long, parsing: .singleValue,
        help: ArgumentHelp(
            """
            A reference set (NDJSON or JSON array; repeat for more): records too close to any of its records are \
            dropped.
            """,
            valueName: "file"))
    var against: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Which copy survives: first (streaming) or best (highest review score; output at the end).",
            valueName: "first|best"))
    var keep: DedupKeep = .first

    @Flag(
        name: .long,
        help: "Write duplicates to stdout with gra.dedup {method, duplicate_of, similarity} instead of dropping them.")
    var mark = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write dropped records here (NDJSON: stage, where, id, reason, method, duplicate_of, similarity, record).",
            valueName: "file"))
    var rejects: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write records whose embedding could not be had here (NDJSON with the reason); exit status 75.",
            valueName: "file"))
    var errors: String?

    @OptionGroup(title: "Models, concurrency and cache (method semantic)")
    var client: ClientOptions

    @OptionGroup(title: "Input")
    var input: InputOptions

    func validate() throws {
        guard threshold > 0 && threshold <= 1 else { throw ValidationError("--threshold must be in (0, 1]") }
        guard (1...4096).contains(numPerm) else { throw ValidationError("--num-perm must be 1...4096") }
        do {
            _ = try DedupMethod.list(method)
            _ = try ShingleSpec(shingle)
            _ = try LSHBanding.choose(threshold: threshold, numPerm: numPerm, bands: bands, rows: rows)
        } catch { throw ValidationError(error.description) }
        if fieldList.isEmpty { throw ValidationError("--fields: name at least one field") }
        guard cosine > -1 && cosine <= 1 else { throw ValidationError("--cosine must be in (-1, 1]") }
        guard embeddingBatchSize > 0 else { throw ValidationError("--embedding-batch-size must be positive") }
    }

    /// The model that embeds: --embedding-model (a pool name, or NAME@URL), else the pool's first.
    func embeddingEndpoint(_ pool: ModelPool, environment: [String: String]) throws(GRAError) -> ModelEndpoint {
        guard let name = embeddingModel else { return pool.models[0] }
        return try pool.model(spec: name, environment: environment)
    }

    var fieldList: [String] {
        var list: [String] = []
        for f in fields.split(separator: ",") {
            var name = f.trimmingCharacters(in: .whitespaces)
            if name == "output" { name = "response" }
            if !name.isEmpty && !list.contains(name) { list.append(name) }
        }
        return list
    }

    func run() throws {
        Signals.install()
        let diagnostics = Diagnostics(tool: "gra-dedup", quiet: input.quiet)
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            var options = DedupOptions()
            options.methods = try DedupMethod.list(method)
            options.fields = fieldList
            options.shingle = try ShingleSpec(shingle)
            options.numPerm = numPerm
            options.threshold = threshold
            options.banding = try LSHBanding.choose(threshold: threshold, numPerm: numPerm, bands: bands, rows: rows)
            options.against = against
            options.keep = keep
            options.mark = mark
            options.io = input.ioOptions
            options.io.rejectsPath = rejects
            options.io.errorsPath = errors
            options.cosine = cosine
            let environment = ProcessInfo.processInfo.environment
            var setup: StageSetup?
            defer { setup?.shutdown() }
            if options.methods.contains(.semantic) {
                let s = try StageSetup(client, diagnostics: diagnostics, environment: environment)
                setup = s
                let model = try embeddingEndpoint(s.pool, environment: environment)
                s.checkModels([model], diagnostics)
                options.embedder = DedupEmbedder(client: s.client, model: model, batchSize: embeddingBatchSize)
            }
            let stage = DedupStage(
                options: options, output: OutputSink(fd: 1), diagnostics: diagnostics, environment: environment)
            return try stage.run().exitStatus
        }
    }
}
