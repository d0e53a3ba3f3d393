/// The ways a gra tool can fail, each with the exit status (sysexits) the tools use.
///
/// The library throws these; only the command-line front ends print them and exit.
public enum GRAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Wrong flags or arguments (exit 64).
    case usage(String)
    /// Input that is not valid data, with where it is (exit 65).
    case badInput(String)
    /// Reading or writing a file failed (exit 74).
    case io(String)
    /// Standard output was closed by the reader (`| head`): stop quietly (exit 0).
    case brokenPipe
    /// SIGINT or SIGTERM arrived; complete lines were flushed (exit 130).
    case interrupted

    public var exitCode: Int32 {
        switch self {
        case .usage: return ExitCode.usage
        case .badInput: return ExitCode.dataError
        case .io: return ExitCode.ioError
        case .brokenPipe: return ExitCode.ok
        case .interrupted: return ExitCode.interrupted
        }
    }

    public var description: String {
        switch self {
        case .usage(let m), .badInput(let m), .io(let m): return m
        case .brokenPipe: return "output closed"
        case .interrupted: return "interrupted"
        }
    }
}

/// Exit statuses shared by every gra tool (sysexits.h values).
public enum ExitCode {
    public static let ok: Int32 = 0
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let unavailable: Int32 = 69
    public static let ioError: Int32 = 74
    public static let tempFailure: Int32 = 75
    public static let interrupted: Int32 = 130
}
