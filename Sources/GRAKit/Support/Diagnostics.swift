import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// Messages to standard error, prefixed with the tool's name ("gra-format: …").
///
/// stdout carries data only; everything a person should read goes through here.
public final class Diagnostics: @unchecked Sendable {
    /// The running tool's name (for messages that suggest a command line).
    public static var toolName: String {
        CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "gra") } ?? "gra"
    }

    public let tool: String
    public var quiet: Bool
    /// `--progress` (true) / `--no-progress` (false): whether a live status line is drawn,
    /// whatever stderr is; nil: when stderr is a terminal.
    public var progress: Bool?
    private let lock = Mutex()

    public init(tool: String, quiet: Bool = false) {
        self.tool = tool
        self.quiet = quiet
    }

    /// A warning or per-record report: always printed (even with --quiet it is data loss news).
    public func warn(_ message: String) { emit("\(tool): \(message)\n") }

    /// A warning that may come back many times (the same failure for many records): printed
    /// the first time; repeats with the same `fold` key are counted and reported by
    /// `reportFolded` as "… and N more like this".
    public func warn(_ message: String, fold key: String) {
        if firstOfKind(key) { warn(message) }
    }

    /// Progress and summaries: silenced by --quiet.
    public func info(_ message: String) {
        if !quiet { emit("\(tool): \(message)\n") }
    }

    /// `info`, folded like `warn(_:fold:)`.
    public func info(_ message: String, fold key: String) {
        if firstOfKind(key) { info(message) }
    }

    /// Keys of folded messages with how many repeats were held back, in order of first use.
    private var folded: [(key: String, repeats: Int)] = []
    private var foldIndex: [String: Int] = [:]
    /// Distinct keys folded at most (beyond them, messages print as they come).
    private static let maxFoldKeys = 10_000

    private func firstOfKind(_ key: String) -> Bool {
        lock.locked {
            if let i = foldIndex[key] {
                folded[i].repeats += 1
                return false
            }
            guard folded.count < Diagnostics.maxFoldKeys else { return true }
            foldIndex[key] = folded.count
            folded.append((key, 0))
            return true
        }
    }

    /// Prints "… and N more like this: KEY" for each folded message that came back, and starts
    /// counting afresh.
    public func reportFolded() {
        let repeats = lock.locked { () -> [(key: String, repeats: Int)] in
            defer {
                for i in folded.indices { folded[i].repeats = 0 }
            }
            return folded.filter { $0.repeats > 0 }
        }
        for r in repeats {
            let key = r.key.count > 160 ? String(r.key.prefix(160)) + "…" : r.key
            warn("… and \(r.repeats) more like this: \(key)")
        }
    }

    /// An error that ends the run.
    public func error(_ message: String) { emit("\(tool): error: \(message)\n") }

    /// Writes `text` as it is (for a live progress line on a terminal).
    public func emitRaw(_ text: String) { emit(text) }

    private func emit(_ text: String) {
        lock.locked {
            var text = text
            text.withUTF8 { buf in
                var done = 0
                while done < buf.count {
                    let n = write(2, buf.baseAddress! + done, buf.count - done)
                    if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return }
                }
            }
        }
    }
}
