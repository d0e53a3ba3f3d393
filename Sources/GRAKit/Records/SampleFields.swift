/// The parts of a record the GRA stages read (docs/ARCHITECTURE.md, "The record"): id, instruction, input and response
/// (`output` is accepted for `response`, as in Alpaca files), with clear failures naming the
/// field that is missing or of the wrong type.
public struct SampleFields: Sendable {
    public var id: String
    /// False when the record had no `id` and `id` is a content hash made here.
    public var hadID: Bool
    public var instruction: String
    public var input: String
    public var response: String?

    /// Reads the fields; `needResponse` makes a missing response a failure.
    public static func read(_ record: JSONObject, needResponse: Bool) -> Result<SampleFields, TaskFailure> {
        // The LLM stages see one instruction and its response; a reply reached through tool
        // calls would be judged (or imitated) without them.
        if let steps = record["tool_steps"], steps != .null {
            return .failure(
                TaskFailure(
                    reason:
                        """
                        a tool-call sample ('tool_steps'): this stage handles instruction/response samples \
                        without tool calls
                        """
                ))
        }
        func string(_ key: String) -> Result<String?, TaskFailure> {
            switch record[key] {
            case nil, .null?: return .success(nil)
            case .string(let s)?: return .success(s)
            case let other?:
                return .failure(TaskFailure(reason: "field '\(key)' must be a string, not \(other.kindDescription)"))
            }
        }
        let instruction: String
        switch string("instruction") {
        case .failure(let f): return .failure(f)
        case .success(let s):
            guard let s, !s.isEmpty else {
                return .failure(TaskFailure(reason: "missing required field 'instruction'"))
            }
            instruction = s
        }
        var input = ""
        switch string("input") {
        case .failure(let f): return .failure(f)
        case .success(let s): input = s ?? ""
        }
        var response: String?
        switch string("response") {
        case .failure(let f): return .failure(f)
        case .success(let s): response = s
        }
        if response == nil {
            switch string("output") {
            case .failure(let f): return .failure(f)
            case .success(let s): response = s
            }
        }
        if needResponse && (response ?? "").isEmpty {
            return .failure(TaskFailure(reason: "missing required field 'response' (or 'output')"))
        }
        var id: String
        var hadID = true
        switch record["id"] {
        case .string(let s)? where !s.isEmpty: id = s
        case .number(let n)?: id = n
        case nil, .null?, .string?:
            hadID = false
            id = contentID(instruction: instruction, input: input, response: response ?? "")
        case let other?:
            return .failure(
                TaskFailure(reason: "field 'id' must be a string or a number, not \(other.kindDescription)"))
        }
        return .success(SampleFields(id: id, hadID: hadID, instruction: instruction, input: input, response: response))
    }

    /// The id of a record that has none: a hash of its content, stable across runs.
    public static func contentID(instruction: String, input: String, response: String) -> String {
        "h" + String(SHA256.hex(instruction + "\u{1F}" + input + "\u{1F}" + response).prefix(16))
    }

    /// Template context with the sample's fields.
    public var context: JSONObject {
        var o = JSONObject()
        o.append("id", .string(id))
        o.append("instruction", .string(instruction))
        o.append("input", .string(input))
        o.append("response", .string(response ?? ""))
        return o
    }
}

extension JSONObject {
    /// The object at `gra.<key>`, if any.
    public func graSection(_ key: String) -> JSONObject? {
        self["gra"]?.objectValue?[key]?.objectValue
    }

    /// Sets `gra.<key>`, keeping every other field (and other stages' sections) as it is.
    public mutating func setGRASection(_ key: String, _ value: JSONObject) {
        var gra = self["gra"]?.objectValue ?? JSONObject()
        gra[key] = .object(value)
        self["gra"] = .object(gra)
    }

    /// Sets `id` when the record had none (a content hash; docs/ARCHITECTURE.md, "The record").
    mutating func ensureID(_ fields: SampleFields) {
        if !fields.hadID { self["id"] = .string(fields.id) }
    }
}

/// A number for the record: rounded to 4 decimals, written without trailing zeros.
func roundedNumber(_ x: Double) -> JSONValue {
    let r = (x * 10_000).rounded() / 10_000
    if r == r.rounded(), abs(r) < 1e15 { return .integer(Int(r)) }
    var s = String(format: "%.4f", r)
    while s.hasSuffix("0") { s.removeLast() }
    return .number(s)
}
