import GRAKit
import Testing

/// `--shard i/n` at the unit level: the hash spreads ids evenly and the same way every time;
/// bad specs are usage errors. (What the tools do with shards: FilterContractTests.)
@Suite("Shards")
struct ShardTests {
    static func record(_ id: String) -> JSONObject { ["id": .string(id), "instruction": .string("q")] }

    @Test func idsSpreadEvenlyOverTheShards() throws {
        let shards = try (0..<3).map { try Shard("\($0)/3") }
        var counts = [0, 0, 0]
        for i in 0..<3000 {
            let owners = shards.indices.filter { shards[$0].contains(Self.record("r\(i)")) }
            #expect(owners.count == 1, "r\(i) belongs to \(owners)")
            if let o = owners.first { counts[o] += 1 }
        }
        #expect(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "\(counts)")
    }

    /// The owner is FNV-1a-64 of the id mod n: fixed values, so every process and machine agrees.
    @Test func theOwnerIsFixed() throws {
        for id in ["r0", "seed-17", "ünïcode"] {
            let expected = Int(StableHash.fnv1a(id) % 4)
            #expect(try Shard("\(expected)/4").contains(Self.record(id)))
        }
        // A record without a string id goes by its compact JSON.
        let noID: JSONObject = ["instruction": .string("q"), "id": .number("7")]
        let owner = Int(StableHash.fnv1a(JSONWriter.string(.object(noID))) % 2)
        #expect(try Shard("\(owner)/2").contains(noID))
        #expect(try !Shard("\(1 - owner)/2").contains(noID))
    }

    @Test(arguments: ["3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"])
    func badSpecsAreUsageErrors(_ spec: String) {
        #expect(throws: GRAError.self) { try Shard(spec) }
    }
}
