import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs shell pipelines over the built gra tools, with real pipes, and collects what they did.
///
/// stdin, stdout and stderr go through temporary files (never pipes read by this process),
/// so a test cannot deadlock on a full pipe buffer.
struct ToolRunner {
    struct Outcome {
        var status: Int32
        var stdout: Data
        var stderr: String
        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        var stdoutLines: [String] {
            stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        }
    }

    /// The folder holding the built executables: the test bundle's own folder.
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["GRA_BIN_DIR"] { return dir }
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside an .xctest bundle on Darwin the binary sits deeper; on Linux it is a plain file.
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("gra-format").path) && url.path != "/"
        {
            url.deleteLastPathComponent()
        }
        return url.path
    }()

    /// A fresh scratch directory for one test.
    static func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gra-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs `script` with /bin/sh in `directory`, the tools first on PATH, `stdin` as input.
    static func sh(_ script: String, stdin: Data = Data(), in directory: URL? = nil, env: [String: String] = [:]) throws
        -> Outcome
    {
        let dir = directory ?? scratch()
        let inURL = dir.appendingPathComponent(".stdin-\(UUID().uuidString)")
        let outURL = dir.appendingPathComponent(".stdout-\(UUID().uuidString)")
        let errURL = dir.appendingPathComponent(".stderr-\(UUID().uuidString)")
        try stdin.write(to: inURL)
        defer {
            for u in [inURL, outURL, errURL] { try? FileManager.default.removeItem(at: u) }
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = binDirectory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        for (k, v) in env { environment[k] = v }
        let full = "cd '\(dir.path)' && { \(script)\n} < '\(inURL.path)' > '\(outURL.path)' 2> '\(errURL.path)'"
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", full]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let rc = posix_spawn(&pid, "/bin/sh", nil, nil, argv, envp)
        guard rc == 0 else { throw NSError(domain: "posix_spawn", code: Int(rc)) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Outcome(
            status: exit,
            stdout: (try? Data(contentsOf: outURL)) ?? Data(),
            stderr: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        )
    }

    static func sh(_ script: String, stdin: String, in directory: URL? = nil) throws -> Outcome {
        try sh(script, stdin: Data(stdin.utf8), in: directory)
    }
}

/// Parses NDJSON output into objects with Foundation (an independent oracle, not gra's parser).
func jsonLines(_ data: Data) throws -> [[String: Any]] {
    try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8), options: [.fragmentsAllowed]) as! [String: Any]
    }
}
