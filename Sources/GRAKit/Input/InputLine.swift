/// One input line or JSON-array element, sorted the way every tool sorts it: a record, a blank
/// line to pass over, or malformed input, with the message the tools print for it. The stage
/// engine, `gra-format` and `gra-dedup` all read records through `classify`, so a bad line reads
/// the same in every tool (see docs/ARCHITECTURE.md, "Input").
public enum InputLine {
    /// A line of only spaces, tabs and carriage returns: not a record, not an error.
    case blank
    case record(JSONObject)
    /// Malformed: the message every tool prints for it ("invalid JSON: …", "expected a JSON
    /// object …"), and the value when it was JSON but not an object.
    case bad(String, value: JSONValue?)

    /// Sorts `bytes`, a line (`isElement` false) or an array element (never blank: the array
    /// reader hands out only elements it found).
    public static func classify(_ bytes: UnsafeBufferPointer<UInt8>, isElement: Bool = false) -> InputLine {
        if !isElement && isBlank(bytes) { return .blank }
        switch JSONParser.parseResult(bytes) {
        case .failure(let error):
            return .bad("invalid JSON: \(error)", value: nil)
        case .success(.object(let record)):
            return .record(record)
        case .success(let other):
            return .bad("expected a JSON object (one record per line), found \(other.kindDescription)", value: other)
        }
    }

    /// The message for a line or element over the size cap (`LineReader.Item.tooLong`):
    /// "line is N bytes, over the M-byte limit (--max-line-bytes)".
    public static func tooLongMessage(bytes: Int, element: Int?, limit: Int) -> String {
        "\(element == nil ? "line" : "element") is \(bytes) bytes, over the \(limit)-byte limit (--max-line-bytes)"
    }

    /// True when `bytes` holds only spaces, tabs and carriage returns (or nothing).
    static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for c in bytes where !(c == 0x20 || c == 0x09 || c == 0x0D) { return false }
        return true
    }
}
