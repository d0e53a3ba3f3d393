import Foundation
import GRAKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The client library used in-process against a gra-testserver child process.
@Suite("LLM client in process")
struct ClientInProcessTests {
    /// A running gra-testserver; stopped when the test ends.
    final class Server {
        let dir = ToolRunner.scratch()
        let pid: Int32
        let url: String

        init(script: String = #"{"rules":[]}"#) throws {
            try Data(script.utf8).write(to: dir.appendingPathComponent("script.json"))
            let r = try ToolRunner.sh(
                """
                gra-testserver --port 0 --port-file url.txt --log log.ndjson --script script.json -q > /dev/null \
                2>&1 & echo $!
                """,
                in: dir)
            pid = Int32(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            var waited = 0
            while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("url.txt").path) && waited < 200 {
                usleep(50_000)
                waited += 1
            }
            url = try String(contentsOf: dir.appendingPathComponent("url.txt"), encoding: .utf8)
        }

        var requestPaths: [String] {
            ((try? jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson")))) ?? []).compactMap {
                $0["path"] as? String
            }
        }

        deinit { kill(pid, SIGKILL) }
    }

    func wait<T: Sendable>(_ body: (@escaping @Sendable (T) -> Void) -> Void) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = Box<T>()
        body { value in
            box.value = value
            done.signal()
        }
        done.wait()
        return box.value!
    }

    final class Box<T>: @unchecked Sendable { var value: T? }

    @Test func embeddingsAreBatchedOrderedAndCached() throws {
        let server = try Server()
        let cacheDir = server.dir.appendingPathComponent("cache").path
        let model = ModelEndpoint(name: "embedder", baseURLs: [server.url])
        let inputs = (0..<10).map { "text \($0 % 7)" }  // 7 distinct texts, 3 repeated
        func run() throws -> [[Float]] {
            let client = LLMClient(
                http: HTTPClient(maxInFlight: 4), cache: try ResponseCache(directory: cacheDir), environment: [:])
            defer { client.http.shutdown() }
            let r: Result<[[Float]], RequestFailure> = wait { done in
                client.embeddings(model: model, inputs: inputs, batchSize: 4) { done($0) }
            }
            return try r.get()
        }
        let first = try run()
        #expect(first.count == 10)
        #expect(first.allSatisfy { $0.count == 16 })
        for v in first {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
        }
        #expect(first[0] == first[7])  // same text, same vector, across batches
        #expect(first[0] != first[1])
        #expect(server.requestPaths.filter { $0 == "/v1/embeddings" }.count == 3)
        let second = try run()
        #expect(second == first)
        #expect(server.requestPaths.filter { $0 == "/v1/embeddings" }.count == 3)  // all from the cache
    }

    @Test func listModelsAndSlidingWindowCap() throws {
        let server = try Server(script: #"{"rules":[{"model":"m","delay_ms":200}]}"#)
        let http = HTTPClient(maxInFlight: 3)
        let client = LLMClient(http: http, cache: nil, environment: [:])
        defer { http.shutdown() }
        let models = client.listModels(baseURL: server.url)
        #expect((try? models.get()) == ["m"])
        // 9 requests of 200 ms each through 3 slots: about 3 rounds, never 9 at once.
        let model = ModelEndpoint(name: "m", baseURLs: [server.url])
        let start = Date()
        let group = DispatchGroup()
        let failures = Box<Int>()
        failures.value = 0
        let lock = NSLock()
        for i in 0..<9 {
            group.enter()
            client.chat(
                ChatRequest(model: model, messages: [.object(["role": .string("user"), "content": .string("q\(i)")])])
            ) { r in
                if case .failure = r {
                    lock.lock()
                    failures.value! += 1
                    lock.unlock()
                }
                group.leave()
            }
        }
        group.wait()
        let elapsed = Date().timeIntervalSince(start)
        #expect(failures.value == 0)
        #expect(elapsed >= 0.55, "finished in \(elapsed) s: more than 3 were in flight")
        #expect(elapsed < 5)
    }

    /// A stage is woken once per loop round through `afterCompletions`: the hook must run after
    /// every round in which completions ran (after the last one too, or the stage would sleep
    /// with replies queued), and never for a round without any.
    @Test func afterCompletionsFollowsEveryRoundOfCompletions() throws {
        let server = try Server()
        let http = HTTPClient(maxInFlight: 8)
        defer { http.shutdown() }
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var completed = 0, hooks = 0, completedAtLastHook = 0, hookWithNothingNew = 0
        }
        let counts = Counts()
        let allSeen = DispatchSemaphore(value: 0)
        let total = 40
        http.afterCompletions = {
            counts.lock.lock()
            counts.hooks += 1
            if counts.completed == counts.completedAtLastHook { counts.hookWithNothingNew += 1 }
            counts.completedAtLastHook = counts.completed
            let done = counts.completed == total
            counts.lock.unlock()
            if done { allSeen.signal() }
        }
        for _ in 0..<total {
            http.send(HTTPRequest(url: server.url + "/models", endpoint: server.url)) { response in
                counts.lock.lock()
                counts.completed += response.status == 200 ? 1 : 0
                counts.lock.unlock()
            }
        }
        // Generous: it only fails when the hook never runs after the last completions.
        #expect(allSeen.wait(timeout: .now() + 30) == .success, "no hook after the last completions")
        counts.lock.lock()
        defer { counts.lock.unlock() }
        #expect(counts.completed == total)
        #expect(counts.hooks >= 1 && counts.hooks <= total)
        #expect(counts.hookWithNothingNew == 0)
    }

    /// Each easy handle is given a URL parsed once (CURLOPT_CURLU); a URL libcurl's URL API
    /// refuses is set as text instead. One handle (a window of 1) goes back and forth between
    /// the two ways and between URLs: each request must reach its own URL, and the refused one
    /// must fail with libcurl's error, not go to the URL the handle had before.
    @Test func oneHandleMovesBetweenParsedAndRefusedURLs() throws {
        let server = try Server()
        let http = HTTPClient(maxInFlight: 1)
        defer { http.shutdown() }
        func get(_ path: String) -> HTTPResponse {
            wait { done in http.send(HTTPRequest(url: server.url + path, endpoint: server.url)) { done($0) } }
        }
        #expect(get("/models").status == 200)
        let refused = get("/mod els")
        #expect(refused.status == 0)
        #expect(
            refused.curlCode == 3,
            "CURLE_URL_MALFORMAT expected, got \(refused.curlCode) \(refused.transportError ?? "")")
        #expect(get("/models").status == 200)
        #expect(get("/nothing-here").status == 404)
        #expect(get("/models").status == 200)
        #expect(server.requestPaths == ["/v1/models", "/v1/models", "/v1/nothing-here", "/v1/models"])
    }
}
