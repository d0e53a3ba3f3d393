/// `--shard i/n`: which records this process handles when N processes (machines, Slurm or
/// GNU parallel jobs) split one run; their outputs concatenate to the whole.
///
/// A record belongs to shard `FNV-1a-64(id) mod n`; a record without a string `id` is placed
/// by the hash of its compact JSON. The hash is fixed (not Swift's per-process seeded one), so
/// shards agree across processes, runs and machines.
public struct Shard: Sendable, Equatable {
    public var index: Int
    public var count: Int

    /// Parses "i/n" with 0 ≤ i < n.
    public init(_ text: String) throws(GRAError) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n > 0, i >= 0, i < n else {
            throw GRAError.usage("--shard '\(text)': expected i/n with 0 <= i < n, e.g. 0/4")
        }
        index = i
        count = n
    }

    public func contains(_ record: JSONObject) -> Bool {
        if count == 1 { return true }
        let key: String
        if case .string(let id)? = record["id"] { key = id } else { key = JSONWriter.string(.object(record)) }
        return Int(StableHash.fnv1a(key) % UInt64(count)) == index
    }
}
