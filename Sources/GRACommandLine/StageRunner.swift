import ArgumentParser
import Foundation
import GRAKit

/// Runs a stage body and turns its outcome into the exit status every gra tool uses.
public enum StageRunner {
    public static func run(_ diagnostics: Diagnostics, _ body: () throws(GRAError) -> Int32) throws {
        defer { diagnostics.reportFolded() }
        do {
            let status = try body()
            if status != 0 { throw ExitCode(status) }
        } catch let error as GRAError {
            if error == .brokenPipe { throw ExitCode(0) }
            if error != .interrupted { diagnostics.error(error.description) }
            throw ExitCode(error.exitCode)
        }
    }
}
