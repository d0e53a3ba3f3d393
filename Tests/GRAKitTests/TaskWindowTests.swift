import Testing

@testable import GRAKit

/// The stage engine's window of records in work: written in input order however they finish,
/// across many turns of its ring, and each record finished once.
@Suite("Task window")
struct TaskWindowTests {
    /// A stage engine to hang tasks on (its client is never asked anything).
    final class Fixture {
        let http = HTTPClient(maxInFlight: 4)
        let engine: StageEngine
        init() {
            let client = LLMClient(http: http, cache: nil, environment: [:])
            engine = StageEngine(
                name: "test", io: StageIOOptions(), client: client,
                output: OutputSink(fd: -1), diagnostics: Diagnostics(tool: "test", quiet: true))
        }
        func task(_ seq: Int) -> StageTask {
            StageTask(seq: seq, record: ["n": .number(String(seq))], inputLabel: "", line: seq + 1, engine: engine)
        }
        deinit { http.shutdown() }
    }

    @Test func inputOrderAcrossManyTurnsOfTheRing() {
        let f = Fixture()
        let capacity = 5  // rounded up to a ring of 16: 200 records turn it over 12 times
        var window = TaskWindow(capacity: capacity, unordered: false)
        var rng = SystemRandomNumberGenerator()
        var inWork: [StageTask] = [], all: [StageTask] = []
        var next = 0, nextToWrite = 0
        var written: [Int] = []
        while written.count < 200 {
            while window.count < capacity && next < 200 {
                let t = f.task(next)
                window.insert(t)
                inWork.append(t)
                all.append(t)
                next += 1
            }
            // Finish a random record in work; write what is ready, in order.
            let unfinished = inWork.filter { !window.isFinished($0.seq) }
            if let t = unfinished.randomElement(using: &rng) {
                let first = window.finish(t, TaskOutcome(outputs: [t.record]))
                let second = window.finish(t, TaskOutcome())
                #expect(first && !second, "finished once, and a second finish refused")
            }
            while window.isFinished(nextToWrite) {
                let (task, outcome) = window.remove(nextToWrite)
                #expect(task.seq == nextToWrite && outcome.outputs.first == task.record)
                inWork.removeAll { $0 === task }
                written.append(task.seq)
                nextToWrite += 1
            }
        }
        #expect(written == Array(0..<200))
        #expect(window.count == 0 && !window.anyFinished)
        // A record stays finished after it was written: finishing it again is still refused.
        var refused = 0
        for t in all where !window.finish(t, TaskOutcome()) { refused += 1 }
        #expect(refused == 200)
    }

    @Test func unorderedHandsOutWhateverFinished() {
        let f = Fixture()
        var window = TaskWindow(capacity: 16, unordered: true)
        let tasks = (0..<6).map(f.task)
        for t in tasks { window.insert(t) }
        let none = window.removeAnyFinished()
        #expect(!window.anyFinished && none == nil)
        for i in [4, 1, 5] {
            let first = window.finish(tasks[i], TaskOutcome(outputs: [tasks[i].record]))
            #expect(first)
        }
        var seen: [Int] = []
        while let taken = window.removeAnyFinished() {
            let (task, outcome) = taken
            #expect(outcome.outputs.first == task.record)
            seen.append(task.seq)
        }
        #expect(seen.sorted() == [1, 4, 5])
        #expect(window.count == 3)
        let again = window.finish(tasks[4], TaskOutcome())
        #expect(!again, "written, and finished once only")
    }
}
