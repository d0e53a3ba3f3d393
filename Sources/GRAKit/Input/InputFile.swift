#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An input named on the command line: a file, or standard input for "-".
public struct InputFile: Sendable {
    public let fd: Int32
    /// How messages name it: the path, or "" for standard input (messages then say "line N").
    public let label: String

    public init(_ path: String) throws(GRAError) {
        if path == "-" {
            fd = 0
            label = ""
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw GRAError.noInput("cannot open \(path): \(String(cString: strerror(errno)))") }
            label = path
        }
    }

    /// "line 3" for standard input, "file.jsonl:3" for a file; "… (array element 2)" after
    /// it for an element of a JSON array document (1-based).
    public func place(_ line: Int, element: Int? = nil) -> String { InputFile.place(line, in: label, element: element) }

    /// "line 3" when `label` is empty (standard input), else "label:3"; then the element.
    static func place(_ line: Int, in label: String, element: Int? = nil) -> String {
        let at = label.isEmpty ? "line \(line)" : "\(label):\(line)"
        guard let element else { return at }
        return at + " (array element \(element))"
    }

    public func close() { if fd > 2 { closeDescriptor(fd) } }
}

extension InputFile {
    /// Calls `body` with each record of an NDJSON file written by gra (a run's files, reference
    /// sets); a missing file has none. A line that is not a record is an error naming the file
    /// and line.
    public static func forEachRecord(
        _ path: String, _ body: (JSONObject) throws(GRAError) -> Void
    ) throws(GRAError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return }
            throw GRAError.noInput("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { closeDescriptor(fd) }
        let reader = LineReader(fd: fd)
        while let item = try reader.next() {
            switch item {
            case .line(let number, let bytes):
                switch InputLine.classify(bytes) {
                case .blank: continue
                case .record(let o): try body(o)
                case .bad(let problem, _): throw GRAError.badInput("\(path):\(number): \(problem)")
                }
            case .element, .tooLong(_, _, _):
                throw GRAError.badInput("\(path): not NDJSON as gra writes it")
            }
        }
    }
}
