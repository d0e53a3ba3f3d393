/// The ways a gra tool can fail, each with the exit status (sysexits) the tools use.
///
/// The library throws these; only the command-line front ends print them and exit.
public enum GRAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Wrong flags or arguments (exit 64).
    case usage(String)
    /// Input that is not valid data, with where it is (exit 65).
    case badInput(String)
    /// An input file does not exist or cannot be read (exit 66).
    case noInput(String)
    /// A server that is needed cannot be reached (exit 69).
    case unavailable(String)
    /// A server refused the API key (exit 77).
    case noPermission(String)
    /// Reading or writing a file failed (exit 74).
    case io(String)
    /// Standard output was closed by the reader (`| head`): stop quietly (exit 0).
    case brokenPipe
    /// SIGINT or SIGTERM arrived; complete lines were flushed (exit 130).
    case interrupted

    /// A malformed record that `--skip-bad-input` could skip: the message says so.
    public static func badRecord(_ place: String, _ message: String) -> GRAError {
        .badInput("\(place): \(message) (--skip-bad-input skips such records)")
    }

    public var exitCode: Int32 {
        switch self {
        case .usage: return GRAExit.usage
        case .badInput: return GRAExit.dataError
        case .noInput: return GRAExit.noInput
        case .unavailable: return GRAExit.unavailable
        case .noPermission: return GRAExit.noPermission
        case .io: return GRAExit.ioError
        case .brokenPipe: return GRAExit.ok
        case .interrupted: return GRAExit.interrupted
        }
    }

    public var description: String {
        switch self {
        case .usage(let m), .badInput(let m), .noInput(let m), .unavailable(let m), .noPermission(let m), .io(let m):
            return m
        case .brokenPipe: return "output closed"
        case .interrupted: return "interrupted"
        }
    }
}

/// Exit statuses shared by every gra tool (sysexits.h values). (Not `ExitCode`: that is
/// ArgumentParser's error type, which the commands throw.)
public enum GRAExit {
    public static let ok: Int32 = 0
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let unavailable: Int32 = 69
    public static let ioError: Int32 = 74
    public static let tempFailure: Int32 = 75
    public static let noPermission: Int32 = 77
    public static let interrupted: Int32 = 130
}
