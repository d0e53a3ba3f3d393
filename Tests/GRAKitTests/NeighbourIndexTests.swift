import Foundation
import Testing

@testable import GRAKit

/// NeighbourIndex: nearest by MinHash (estimated Jaccard of words) and by cosine, most similar
/// first, never the sample itself.
@Suite struct NeighbourIndexTests {
    func record(_ id: String, _ instruction: String) -> JSONObject {
        ["id": .string(id), "instruction": .string(instruction), "response": .string("r")]
    }

    @Test func nearestByWordsMostSimilarFirst() {
        let index = NeighbourIndex()
        index.add(record("a", "sort a list of numbers in python"))
        index.add(record("b", "bake a loaf of sourdough bread at home"))
        index.add(record("c", "sort a list of names in python alphabetically"))
        index.add(record("self", "sort a list of numbers in python quickly"))
        index.add(["id": .string("x"), "response": .string("no instruction: left out")])
        #expect(index.entries.map(\.id) == ["a", "b", "c", "self"])
        let near = index.nearest(
            instruction: "sort a list of numbers in python quickly", input: "", id: "self", k: 2)
        #expect(near.map { index.entries[$0.entry].id } == ["a", "c"])
        #expect(near[0].similarity > near[1].similarity && near[1].similarity > 0.3)
        // Without an id to leave out, the identical entry comes first, at similarity 1.
        let all = index.nearest(instruction: "sort a list of numbers in python quickly", input: "", id: nil, k: 10)
        #expect(all.count == 4 && index.entries[all[0].entry].id == "self" && all[0].similarity == 1)
        #expect(index.nearest(instruction: "   ", input: "", id: nil, k: 3).isEmpty)
    }

    @Test func nearestByCosine() throws {
        let index = NeighbourIndex()
        for id in ["a", "b", "c"] { index.add(record(id, "text \(id)")) }
        #expect(index.texts == ["text a", "text b", "text c"])
        try index.setVectors([[1, 0, 0], [0, 2, 0], [1, 1, 0]])
        #expect(index.usesEmbeddings)
        let near = index.nearest(vector: [3, 1, 0], id: nil, k: 2)
        #expect(near.map(\.entry) == [0, 2])
        #expect(abs(near[0].similarity - 3 / 10.0.squareRoot()) < 1e-6)
        #expect(index.nearest(vector: [3, 1, 0], id: "a", k: 1).map(\.entry) == [2])
        #expect(throws: GRAError.self) { try index.setVectors([[1, 0], [0, 1]]) }
    }
}
