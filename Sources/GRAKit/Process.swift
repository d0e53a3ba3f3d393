import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// Messages to standard error, prefixed with the tool's name ("gra-format: …").
///
/// stdout carries data only; everything a person should read goes through here.
public final class Diagnostics: @unchecked Sendable {
    /// The running tool's name (for messages that suggest a command line).
    public static var toolName: String { CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "gra") } ?? "gra" }

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

/// A small pthread mutex (Synchronization.Mutex needs newer deployment targets on Darwin).
public final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    public init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    @inline(__always)
    public func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

nonisolated(unsafe) private var interruptFlag: sig_atomic_t = 0

/// Process-wide set-up shared by every gra tool: signals, and the allocator's thresholds.
///
/// SIGPIPE is ignored so a closed stdout shows up as EPIPE (then the tools exit 0 quietly);
/// SIGINT and SIGTERM set a flag the stages poll, so they flush complete lines and exit 130.
public enum Signals {
    public static func install() {
        // Not a signal, but every tool wants it at start-up too: see gra_tune_allocator.
        gra_tune_allocator()
        signal(SIGPIPE, SIG_IGN)
        // No SA_RESTART: a read(2) blocked on a quiet stdin returns EINTR and the tool stops.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in interruptFlag = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        unblockTermination()
    }

    /// Unblocks SIGINT and SIGTERM. A parent may have blocked them (libdispatch's threads do,
    /// and a blocked mask survives exec): without this, Ctrl-C or kill would never arrive.
    public static func unblockTermination() {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// True once SIGINT or SIGTERM has arrived.
    public static var interrupted: Bool { interruptFlag != 0 }
}
