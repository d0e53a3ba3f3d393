/// Gets the JSON a model was asked for out of its reply, strictly (docs/ARCHITECTURE.md, "Replies").
///
/// In order: the whole text (after any `<think>` block) as JSON; else the last fenced code
/// block (```json or ```) that parses; else the last balanced `{…}` object that parses.
/// Nothing is guessed: a reply with none of these is a parse failure.
public enum ReplyJSON {
    public static func extract(_ reply: String) -> Result<JSONValue, ReplyProblem> {
        let text = LLMClient.splitThink(reply).answer
        if let v = try? JSONParser.parse(text) { return .success(v) }
        if let v = lastFencedBlock(text) { return .success(v) }
        if let v = lastBalancedObject(text) { return .success(v) }
        let preview = text.count > 120 ? String(text.prefix(120)) + "…" : text
        return .failure("the reply holds no JSON object: \(preview.debugDescription)")
    }

    /// Extracts the JSON and checks it against `schema`; a violation is a parse failure too.
    public static func extract(_ reply: String, schema: JSONSchema) -> Result<JSONValue, ReplyProblem> {
        switch extract(reply) {
        case .failure(let p): return .failure(p)
        case .success(let v):
            if let violation = schema.violation(v) { return .failure("reply does not match the schema: \(violation)") }
            return .success(v)
        }
    }

    private static func lastFencedBlock(_ text: String) -> JSONValue? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var blocks: [String] = []
        var current: [Substring]?
        for line in lines {
            let t = line.drop { $0 == " " }
            if t.hasPrefix("```") {
                if let c = current {
                    blocks.append(c.joined(separator: "\n"))
                    current = nil
                } else {
                    current = []
                }
            } else if current != nil {
                current!.append(line)
            }
        }
        for block in blocks.reversed() {
            if let v = try? JSONParser.parse(block) { return v }
        }
        return nil
    }

    private static func lastBalancedObject(_ text: String) -> JSONValue? {
        let b = Array(text.utf8)
        // Try each '}' from the end as a closing brace and walk back to its opening brace.
        var end = b.count - 1
        while end >= 0 {
            if b[end] == UInt8(ascii: "}") {
                var start = end
                while start >= 0 {
                    if b[start] == UInt8(ascii: "{"),
                        let v = try? JSONParser.parse(Array(b[start...end])), case .object = v
                    {
                        return v
                    }
                    start -= 1
                }
            }
            end -= 1
        }
        return nil
    }
}

/// A JSON Schema subset for checking model replies: `type` (one or a list), `properties`,
/// `required`, `additionalProperties: false`, `items`, `enum`, `minimum`, `maximum`,
/// `minLength`, `maxLength`, `minItems`, `maxItems`. Other keywords are ignored (and still
/// sent to the server, which may enforce them).
public struct JSONSchema: Sendable {
    public let schema: JSONValue

    public init(_ schema: JSONValue) throws(GRAError) {
        guard case .object = schema else { throw GRAError.usage("a JSON schema must be an object") }
        if let problem = JSONSchema.problem(in: schema, at: "$") {
            throw GRAError.usage("not a valid JSON Schema: \(problem)")
        }
        self.schema = schema
    }

    static let typeNames: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

    /// The first thing in `schema` that JSON Schema does not allow, for the keywords gra
    /// checks (a misspelt type, `required` that is not a list of names, …), so that a broken
    /// schema stops the run once instead of failing every record.
    static func problem(in schema: JSONValue, at path: String) -> String? {
        guard case .object(let s) = schema else {
            if case .bool = schema { return nil }  // true / false are schemas too
            return "\(path) should be a schema (an object), not \(schema.kindDescription)"
        }
        if let t = s["type"] {
            let names: [JSONValue]
            switch t {
            case .string: names = [t]
            case .array(let list) where !list.isEmpty: names = list
            default: return "\(path).type should be a type name or a list of them"
            }
            for n in names {
                guard let name = n.stringValue, typeNames.contains(name) else {
                    return
                        """
                        \(path).type: \(JSONWriter.string(n)) is not a JSON Schema type \
                        (\(typeNames.sorted().joined(separator: ", ")))
                        """
                }
            }
        }
        if let p = s["properties"] {
            guard case .object(let props) = p else { return "\(path).properties should be an object" }
            for f in props.fields {
                if let problem = problem(in: f.value, at: "\(path).properties.\(f.key)") { return problem }
            }
        }
        if let r = s["required"] {
            guard case .array(let names) = r, names.allSatisfy({ $0.stringValue != nil }) else {
                return "\(path).required should be a list of field names"
            }
        }
        if let items = s["items"], let problem = problem(in: items, at: "\(path).items") { return problem }
        if let a = s["additionalProperties"] {
            if case .bool = a {
            } else if let problem = problem(in: a, at: "\(path).additionalProperties") {
                return problem
            }
        }
        if let e = s["enum"], e.arrayValue == nil { return "\(path).enum should be a list" }
        for key in ["minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"] {
            if let v = s[key], v.doubleValue == nil { return "\(path).\(key) should be a number" }
        }
        return nil
    }

    /// Nil when `value` conforms; else the first violation, with its path.
    public func violation(_ value: JSONValue) -> String? {
        JSONSchema.check(value, against: schema, path: "$")
    }

    private static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "boolean"
        case .number(let n): return n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? "number" : "integer"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    private static func check(_ v: JSONValue, against schema: JSONValue, path: String) -> String? {
        guard case .object(let s) = schema else { return nil }
        if let t = s["type"] {
            let allowed: [String] = t.stringValue.map { [$0] } ?? (t.arrayValue?.compactMap(\.stringValue) ?? [])
            let actual = typeName(v)
            let ok =
                allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))
                || (actual == "number" && allowed.contains("integer")
                    && (Double(v.doubleValue ?? 0.5).rounded() == v.doubleValue))
            if !ok { return "\(path) should be \(allowed.joined(separator: " or ")), not \(actual)" }
        }
        if case .array(let options)? = s["enum"], !options.contains(v) {
            return "\(path) should be one of \(options.map { JSONWriter.string($0) }.joined(separator: ", "))"
        }
        if let d = v.doubleValue {
            if let min = s["minimum"]?.doubleValue, d < min { return "\(path) is \(d), below the minimum \(min)" }
            if let max = s["maximum"]?.doubleValue, d > max { return "\(path) is \(d), above the maximum \(max)" }
        }
        if case .string(let str) = v {
            if let min = s["minLength"]?.doubleValue, Double(str.count) < min {
                return "\(path) is shorter than \(Int(min)) characters"
            }
            if let max = s["maxLength"]?.doubleValue, Double(str.count) > max {
                return "\(path) is longer than \(Int(max)) characters"
            }
        }
        if case .array(let items) = v {
            if let min = s["minItems"]?.doubleValue, Double(items.count) < min {
                return "\(path) has fewer than \(Int(min)) items"
            }
            if let max = s["maxItems"]?.doubleValue, Double(items.count) > max {
                return "\(path) has more than \(Int(max)) items"
            }
            if let itemSchema = s["items"] {
                for (i, item) in items.enumerated() {
                    if let p = check(item, against: itemSchema, path: "\(path)[\(i)]") { return p }
                }
            }
        }
        if case .object(let o) = v {
            if case .array(let required)? = s["required"] {
                for r in required {
                    if let name = r.stringValue, o[name] == nil { return "\(path) is missing '\(name)'" }
                }
            }
            let properties = s["properties"]?.objectValue ?? JSONObject()
            for f in o.fields {
                if let ps = properties[f.key] {
                    if let p = check(f.value, against: ps, path: "\(path).\(f.key)") { return p }
                } else if s["additionalProperties"] == .bool(false) {
                    return "\(path) has an unexpected field '\(f.key)'"
                }
            }
        }
        return nil
    }
}
