import Dispatch

/// A batch of whole input lines, or elements of a JSON array document, copied out of a
/// `LineReader`, with their line numbers.
struct LineBatch: Sendable {
    enum Line: Sendable {
        case text(number: Int, start: Int, count: Int)
        /// An array element (0-based `index`) starting on line `number`.
        case element(index: Int, number: Int, start: Int, count: Int)
        /// A line (element nil) or array element over the size cap.
        case tooLong(number: Int, bytes: Int, element: Int?)
    }
    var bytes: [UInt8] = []
    var lines: [Line] = []
    /// The file offset of each line (-1 for an overlong one), when asked for.
    var offsets: [Int]?

    /// Reads lines (or, with `arrayElements`, the elements of a JSON array document) until
    /// about `bytes` bytes are collected, waiting for input only for the first one and only
    /// when `mayBlock`; nil when nothing was read (end of input, or nothing buffered without
    /// blocking). With `fileStart` (the file position reading began at), each line's file
    /// offset is recorded in `offsets` (lines only).
    static func read(
        from reader: LineReader, bytes limit: Int, mayBlock: Bool, arrayElements: Bool = false,
        fileStart: Int? = nil
    ) throws(GRAError) -> LineBatch? {
        var b = LineBatch()
        if fileStart != nil && !arrayElements { b.offsets = [] }
        b.bytes.reserveCapacity(limit + limit / 4)
        while b.bytes.count < limit {
            let mayRead = mayBlock && b.lines.isEmpty
            guard let item = try arrayElements ? reader.nextElement(mayRead: mayRead) : reader.next(mayRead: mayRead)
            else { break }
            switch item {
            case .line(let number, let bytes):
                b.lines.append(.text(number: number, start: b.bytes.count, count: bytes.count))
                b.bytes.append(contentsOf: bytes)
                if let fileStart { b.offsets?.append(fileStart + reader.lastLineOffset) }
            case .element(let index, let number, let bytes):
                b.lines.append(.element(index: index, number: number, start: b.bytes.count, count: bytes.count))
                b.bytes.append(contentsOf: bytes)
            case .tooLong(let number, let n, let element):
                b.lines.append(.tooLong(number: number, bytes: n, element: element))
                b.offsets?.append(-1)
            }
        }
        return b.lines.isEmpty ? nil : b
    }
}

/// The ordered batch pipeline gra-format and gra-dedup stream through: this thread reads
/// batches with `next`; each is handed to `process` on a pool thread as soon as it is read (at
/// most `inFlight` at once, which bounds memory); `process` may answer later (gra-dedup waits
/// for embeddings); a serial queue merges the results strictly in input order as they come,
/// then flushes once caught up. No thread waits for a whole round, so every core stays busy.
///
/// After a merge or flush failure the remaining results are only counted off; that failure is
/// thrown first (it happened earlier in the input than a read error, which comes next).
enum OrderedBatches {
    static func run<Batch: Sendable, Output: Sendable>(
        inFlight: Int, label: String,
        next: () throws(GRAError) -> Batch?,
        process: @escaping @Sendable (Batch, @escaping @Sendable (Output) -> Void) -> Void,
        merge: @escaping @Sendable (Output) throws(GRAError) -> Void,
        flush: @escaping @Sendable () throws(GRAError) -> Void
    ) throws(GRAError) {
        let slots = DispatchSemaphore(value: inFlight)
        let group = DispatchGroup()
        let mergeQueue = DispatchQueue(label: label)
        let state = OrderedMergeState<Output>()
        var readError: GRAError?
        var index = 0
        while mergeQueue.sync(execute: { state.failure == nil }) {
            if Signals.interrupted {
                readError = .interrupted
                break
            }
            let batch: Batch
            do {
                guard let b = try next() else { break }
                batch = b
            } catch {
                readError = error
                break
            }
            slots.wait()
            let i = index
            index += 1
            group.enter()
            DispatchQueue.global().async {
                process(batch) { output in
                    mergeQueue.async {
                        state.pending[i] = output
                        while let r = state.pending.removeValue(forKey: state.nextToMerge) {
                            state.nextToMerge += 1
                            if state.failure == nil {
                                do throws(GRAError) { try merge(r) } catch { state.failure = error }
                            }
                            slots.signal()
                            group.leave()
                        }
                        if state.failure == nil {
                            do throws(GRAError) { try flush() } catch { state.failure = error }
                        }
                    }
                }
            }
        }
        group.wait()
        if let failure = mergeQueue.sync(execute: { state.failure }) { throw failure }
        if let readError { throw readError }
    }
}

/// Results waiting for their turn to be merged; touched only on the merge queue.
private final class OrderedMergeState<Output>: @unchecked Sendable {
    var pending: [Int: Output] = [:]
    var nextToMerge = 0
    var failure: GRAError?
}
