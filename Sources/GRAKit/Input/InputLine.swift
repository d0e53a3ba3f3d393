import Foundation

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

    /// The entry an errors or rejects file keeps for input skipped with --skip-bad-input:
    /// {stage, where, reason} and the input itself, so that nothing is lost: `value` when it was
    /// JSON but not an object; else `raw`, the line as text when it is UTF-8, or `raw_base64`
    /// when it is not (a lossy decode would change the bytes). A line over --max-line-bytes is
    /// never held in memory, so only its length (`bytes`) is kept.
    public static func skippedEntry(
        stage: String, place: String, message: String, raw: UnsafeBufferPointer<UInt8>? = nil,
        value: JSONValue? = nil, overlongBytes: Int? = nil
    ) -> JSONObject {
        var entry = JSONObject()
        entry.append("stage", .string(stage))
        entry.append("where", .string(place))
        entry.append("reason", .string(message))
        if let value {
            entry.append("value", value)
        } else if let raw {
            if let text = String(validating: raw, as: UTF8.self) {
                entry.append("raw", .string(text))
            } else {
                entry.append("raw_base64", .string(Data(raw).base64EncodedString()))
            }
        } else if let overlongBytes {
            entry.append("bytes", .integer(overlongBytes))
        }
        return entry
    }

    /// True when `bytes` holds only spaces, tabs and carriage returns (or nothing).
    static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for c in bytes where !(c == 0x20 || c == 0x09 || c == 0x0D) { return false }
        return true
    }
}
