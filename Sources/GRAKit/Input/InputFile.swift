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
