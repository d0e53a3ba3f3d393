#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exact-duplicate index: each entry's 64-bit hash of its normalized text.
final class ExactIndex {
    private(set) var hashes: [UInt64] = []
    private let table = SlotTable()

    func insert(_ hash: UInt64) {
        let entry = hashes.count
        hashes.append(hash)
        if table.isFull {
            table.growAndClear()
            for e in 0..<entry { table.add(hashes[e], entry: e) }
        }
        table.add(hash, entry: entry)
    }

    /// The first entry with this hash, if any.
    func first(_ hash: UInt64) -> Int? {
        var found: Int?
        hashes.withUnsafeBufferPointer { h in
            table.lookup(hash) { e in if found == nil || e < found! { if h[e] == hash { found = e } } }
        }
        return found
    }

    var memoryBytes: Int { hashes.capacity * 8 + table.memoryBytes }
}
