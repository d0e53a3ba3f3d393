// The `lines` target: LineReader against a plain split on '\n'.

import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Input: four header bytes (missing ones count as 0), then the body.
///
///  - byte 0: bits 0-5 pick the reader's `readSize` from `readSizes`; bit 6: some calls are
///    `next(mayRead: false)`; bit 7: the reader reads a temporary file, else a pipe.
///  - byte 1: `maxLineBytes`: the byte itself below 0xC0, else one of `bigCaps`.
///  - byte 2: 0xA0...0xAF: each 0xFF byte of the body becomes a run of bytes "a" (at most
///    `maxExpanded` bytes in all) as long as one of 16 sizes around the reader's read size and
///    its first buffer's capacity (`runLength`), for lines that make it move and grow its
///    buffer; else the body is used as is. Rare on purpose (not 0xFF, which mutations love):
///    with the default 1 MiB read size the runs are megabytes, and slow.
///  - byte 3 (pipe only): a writer thread fills the pipe in pieces of 1...`pieceSizes[bits 0-2]`
///    bytes (a generator seeded by bits 3-7 picks each), waiting for each piece to be read
///    before writing the next, so a `read(2)` returns at most one piece and runs repeat.
///
/// To bound the cost of one run (a piece costs two context switches): `readSize` is at least
/// body/1024, pieces at least body/64 bytes, and bodies over 256 KiB are read from a file.
///
/// The reader must hand out the body's lines as split on '\n' (a final line without '\n' is a
/// line; nothing after a final '\n'), numbered from 1, lines longer than maxLineBytes as
/// `.tooLong` with their full length, `lastLineOffset` the line's start; then nil, and nil again.
func checkLines(_ data: UnsafeBufferPointer<UInt8>) throws(CheckFailure) {
    let header = (0..<4).map { $0 < data.count ? data[$0] : 0 }
    let mode = header[0]
    let mixNoRead = mode & 0x40 != 0
    let useFile = mode & 0x80 != 0
    let maxLine =
        header[1] < 0xC0 ? Int(header[1]) : LinesConfig.bigCaps[Int(header[1] - 0xC0) % LinesConfig.bigCaps.count]
    let rawBody = data.count > 4 ? UnsafeBufferPointer(rebasing: data[4...]) : UnsafeBufferPointer(start: nil, count: 0)
    let chosenReadSize = LinesConfig.readSizes[Int(mode & 0x3F) % LinesConfig.readSizes.count]
    let body = expand(rawBody, header[2], readSize: chosenReadSize)

    // The reference: split on '\n'.
    var expected: [(start: Int, length: Int)] = []
    var lineStart = 0
    for (i, c) in body.enumerated() where c == 0x0A {
        expected.append((lineStart, i - lineStart))
        lineStart = i + 1
    }
    if lineStart < body.count { expected.append((lineStart, body.count - lineStart)) }

    let readSize = max(chosenReadSize, body.count / 1024)
    var rng = SplitMix(seed: UInt64(mode))
    let feed: Feed
    if useFile || body.count > 256 << 10 || !PipeFeed.available {
        feed = try FileFeed(body)
    } else {
        let maxPiece = LinesConfig.pieceSizes[Int(header[3] & 7)]
        let floor = max(1, body.count / 64)
        var pieces: [Int] = []
        var left = body.count
        var pieceRng = SplitMix(seed: UInt64(header[3] >> 3) &* 0x9E37 &+ 1)
        while left > 0 {
            let n = min(left, min(4096, max(floor, 1 + Int(pieceRng.next() % UInt64(maxPiece)))))
            pieces.append(n)
            left -= n
        }
        feed = try PipeFeed(body, pieces: pieces)
    }
    defer { feed.finish() }

    let reader = LineReader(fd: feed.readFD, maxLineBytes: maxLine, readSize: readSize)
    var index = 0
    var forceRead = false
    var calls = 0
    while true {
        calls += 1
        try require(calls <= 4 * expected.count + 2 * body.count + 16, "LineReader made no progress (\(calls) calls)")
        let mayRead = !mixNoRead || forceRead || rng.next() % 3 != 0
        forceRead = false
        let item: LineReader.Item?
        do throws(GRAError) {
            item = try reader.next(mayRead: mayRead)
        } catch {
            throw CheckFailure(message: "next() threw \(error)")
        }
        guard let item else {
            if !mayRead {
                forceRead = true
                continue
            }
            try require(
                index == expected.count,
                """
                next() returned nil after \(index) of \(expected.count) lines (maxLineBytes \(maxLine), body \
                \(body.count) bytes)
                """
            )
            break
        }
        try require(
            index < expected.count,
            "next() handed out a line \(index + 1) beyond the \(expected.count) lines: \(describe(item))")
        let want = expected[index]
        index += 1
        switch item {
        case .line(let number, let bytes):
            try require(number == index, "line number \(number), expected \(index)")
            try require(
                want.length <= maxLine,
                "line \(index) of \(want.length) bytes handed out as a line, but maxLineBytes is \(maxLine)")
            try require(bytes.count == want.length, "line \(index): \(bytes.count) bytes, expected \(want.length)")
            let same = body.withUnsafeBufferPointer { b in
                bytes.count == 0 || memcmp(bytes.baseAddress!, b.baseAddress! + want.start, bytes.count) == 0
            }
            try require(
                same,
                """
                line \(index): wrong bytes: \(escaped(bytes)) expected \
                \(escaped(body[want.start..<(want.start + want.length)]))
                """
            )
            try require(
                reader.lastLineOffset == want.start,
                "line \(index): lastLineOffset \(reader.lastLineOffset), expected \(want.start)")
        case .element:
            throw CheckFailure(message: "next() handed out an array element: \(describe(item))")
        case .tooLong(let number, let length, let element):
            try require(element == nil, "next() handed out a tooLong array element: \(describe(item))")
            try require(number == index, "tooLong line number \(number), expected \(index)")
            try require(
                want.length > maxLine,
                "line \(index) of \(want.length) bytes reported tooLong (\(length) bytes), maxLineBytes \(maxLine)")
            try require(length == want.length, "tooLong line \(index): \(length) bytes, expected \(want.length)")
        }
    }
    let after: LineReader.Item?
    do throws(GRAError) {
        after = try reader.next()
    } catch {
        throw CheckFailure(message: "next() after the end threw \(error)")
    }
    if let after { throw CheckFailure(message: "next() after the end gave \(describe(after))") }
}

enum LinesConfig {
    static let readSizes = [
        1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129,
        255, 256, 257, 1000, 2047, 2048, 2049, 4095, 4096, 4097, 65536, LineReader.defaultReadSize
    ]
    static let pieceSizes = [1, 2, 3, 5, 16, 100, 1024, 4096]
    static let bigCaps = [
        255, 256, 1000, 4095, 4096, 65535, 65536, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
        2 << 20, (2 << 20) + 1, 3 << 20, LineReader.defaultMaxLineBytes
    ]
    static let maxExpanded = 3 << 20

    /// Run length `k` (0...15) for a reader with `readSize`: sizes around the read size and
    /// the capacity of its first buffer, and twice that (LineReader: max(2 * readSize, 4096)).
    static func runLength(_ k: Int, readSize: Int) -> Int {
        let c = max(2 * readSize, 4096)
        return [
            1, 100, readSize - 1, readSize, readSize + 1, c / 2 + 1, c - 2, c - 1, c, c + 1,
            2 * c - 1, 2 * c, 2 * c + 1, c + readSize - 1, c + readSize, c + readSize + 1
        ][k]
    }
}

private func expand(_ raw: UnsafeBufferPointer<UInt8>, _ selector: UInt8, readSize: Int) -> [UInt8] {
    guard selector >= 0xA0 && selector <= 0xAF else { return Array(raw) }
    let run = max(0, LinesConfig.runLength(Int(selector - 0xA0), readSize: readSize))
    var out: [UInt8] = []
    out.reserveCapacity(raw.count)
    for c in raw {
        if c == 0xFF && out.count + run <= LinesConfig.maxExpanded {
            out.append(contentsOf: repeatElement(UInt8(ascii: "a"), count: run))
        } else {
            out.append(c)
        }
    }
    return out
}

private func describe(_ item: LineReader.Item) -> String {
    switch item {
    case .line(let n, let b): return "line \(n) \(escaped(b, limit: 80))"
    case .element(let i, let n, let b): return "element \(i) on line \(n) \(escaped(b, limit: 80))"
    case .tooLong(let n, let len, let e): return "tooLong \(n) (\(len) bytes\(e.map { ", element \($0)" } ?? ""))"
    }
}

/// A tiny deterministic generator (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Feeding a descriptor

protocol Feed {
    var readFD: Int32 { get }
    func finish()
}

/// The body in an unlinked temporary file (one per process, rewritten for each input).
final class FileFeed: Feed {
    nonisolated(unsafe) private static var shared: Int32 = -1
    let readFD: Int32

    init(_ body: [UInt8]) throws(CheckFailure) {
        if FileFeed.shared < 0 {
            let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
            var template = Array("\(dir)/gra-fuzz-lines-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { fatalError("gra-fuzz: mkstemp in \(dir): \(String(cString: strerror(errno)))") }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            FileFeed.shared = fd
        }
        readFD = FileFeed.shared
        guard ftruncate(readFD, 0) == 0 else { fatalError("gra-fuzz: ftruncate: \(String(cString: strerror(errno)))") }
        var off = 0
        while off < body.count {
            let n = body.withUnsafeBytes { pwrite(readFD, $0.baseAddress! + off, body.count - off, off_t(off)) }
            guard n > 0 else { fatalError("gra-fuzz: pwrite: \(String(cString: strerror(errno)))") }
            off += n
        }
        _ = lseek(readFD, 0, SEEK_SET)
    }

    func finish() {}
}

#if os(Linux)
/// A pipe; a thread writes the body into it piece by piece, each once the previous one was read.
final class PipeFeed: Feed {
    static let available = true
    let readFD: Int32
    private let writeFD: Int32
    private var thread = pthread_t()
    private var closed = false

    /// What the writer thread needs (it owns its reference).
    private final class Job {
        let body: [UInt8]
        let pieces: [Int]
        let fd: Int32
        init(body: [UInt8], pieces: [Int], fd: Int32) {
            self.body = body
            self.pieces = pieces
            self.fd = fd
        }
    }

    init(_ body: [UInt8], pieces: [Int]) throws(CheckFailure) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("gra-fuzz: pipe: \(String(cString: strerror(errno)))") }
        readFD = fds[0]
        writeFD = fds[1]
        // One page (the least): see `write`. 1031 is F_SETPIPE_SZ (Linux 2.6.35).
        guard fcntl(writeFD, 1031, 4096) >= 0 else {
            fatalError("gra-fuzz: F_SETPIPE_SZ: \(String(cString: strerror(errno)))")
        }
        let job = Unmanaged.passRetained(Job(body: body, pieces: pieces, fd: writeFD)).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                PipeFeed.write(job)
                return nil
            }, job)
        guard rc == 0 else { fatalError("gra-fuzz: pthread_create: \(rc)") }
    }

    private static func write(_ job: Job) {
        defer { close(job.fd) }
        job.body.withUnsafeBytes { raw in
            var off = 0
            for piece in job.pieces {
                // The pipe holds one page: writable again only once the reader has taken all
                // of the last piece, so no two pieces merge into one read. POLLERR: it has gone.
                var p = pollfd(fd: job.fd, events: Int16(POLLOUT), revents: 0)
                while poll(&p, 1, -1) < 0 && errno == EINTR {}
                if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return }
                var done = 0
                while done < piece {
                    let n = systemWrite(job.fd, raw.baseAddress! + off + done, piece - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return  // EPIPE: the reader stopped
                    }
                    done += n
                }
                off += piece
            }
        }
    }

    func finish() {
        guard !closed else { return }
        closed = true
        close(readFD)  // a writer still waiting sees POLLERR or EPIPE and ends
        pthread_join(thread, nil)
    }

    deinit { finish() }
}

private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
#else
/// Elsewhere the lines target reads files only (the pipe writer is Linux pthread code).
final class PipeFeed: Feed {
    static let available = false
    var readFD: Int32 { -1 }
    init(_ body: [UInt8], pieces: [Int]) throws(CheckFailure) { fatalError("unavailable") }
    func finish() {}
}
#endif
