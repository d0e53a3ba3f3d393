import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("SHA-256")
struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    ])
    func knownDigests(_ input: String, _ hex: String) {
        #expect(SHA256.hex(input) == hex)
    }

    @Test func matchesPythonHashlibOnUnicodeAndBlockEdges() throws {
        for n in [55, 56, 63, 64, 65, 119, 120, 128] {
            let s = String(repeating: "é", count: n / 2) + String(repeating: "x", count: n % 2)
            let r = try runPython("import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", s)
            #expect(SHA256.hex(s) == r, "length \(n)")
        }
    }

    /// Long inputs fed whole, byte by byte through a non-contiguous collection, and in uneven
    /// pieces all give Python's digest.
    @Test func longInputsInPiecesMatchHashlib() throws {
        let text = (0..<700).map { "w\($0 * 7919 % 1000) " }.joined()
        let expected = try runPython(
            "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", text)
        let bytes = Array(text.utf8)
        #expect(SHA256.hexString(SHA256.hash(bytes)) == expected)
        #expect(SHA256.hexString(SHA256.hash(bytes.lazy.map { $0 })) == expected)
        var s = SHA256()
        var i = 0
        for size in [1, 63, 64, 65, 3, 200, 1000] where i < bytes.count {
            s.update(bytes[i..<min(i + size, bytes.count)])
            i += size
        }
        if i < bytes.count { s.update(bytes[i...]) }
        #expect(SHA256.hexString(s.finalize()) == expected)
    }
}

/// Runs a Python one-liner as an oracle (python3 is part of the machine image).
func runPython(_ code: String, _ arg: String) throws -> String {
    let escapedCode = code.replacingOccurrences(of: "'", with: "'\\''")
    let escapedArg = arg.replacingOccurrences(of: "'", with: "'\\''")
    let pipe = popen("python3 -c '\(escapedCode)' '\(escapedArg)'", "r")!
    defer { pclose(pipe) }
    var out = ""
    var bytes: [UInt8] = []
    while true {
        let c = fgetc(pipe)
        if c == EOF { break }
        bytes.append(UInt8(c))
    }
    out = String(decoding: bytes, as: UTF8.self)
    return out.trimmingWhitespace()
}
