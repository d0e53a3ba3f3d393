import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// Every successful LLM response, keyed by the SHA-256 of its canonical request.
///
/// Stored in SQLite (`DIR/responses.sqlite3`) in WAL mode: several gra processes (the stages
/// of one pipe, parallel shards) read and write it at once, each insert commits on its own so
/// a `kill -9` loses nothing that was answered, and a torn WAL tail is ignored by SQLite's
/// frame checksums. A file that SQLite reports as corrupt is moved aside (with a warning) and
/// a new cache is started, so a damaged cache never stops a run.
public final class ResponseCache: @unchecked Sendable {
    public let path: String
    private var db: OpaquePointer?
    private var selectStatement: OpaquePointer?
    private var insertStatement: OpaquePointer?
    private let lock = Mutex()

    /// The default location: `$XDG_CACHE_HOME/gra`, else `~/.cache/gra`.
    public static func defaultDirectory(environment: [String: String]) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/gra" }
        let home = environment["HOME"] ?? "."
        return home + "/.cache/gra"
    }

    /// Opens (creating if needed) the cache in `directory`. `warn` receives notices such as a
    /// corrupt file being moved aside.
    public init(directory: String, warn: (String) -> Void = { _ in }) throws(GRAError) {
        try ResponseCache.makeDirectories(directory)
        path = directory + "/responses.sqlite3"
        do throws(SQLiteFailure) {
            try open()
        } catch  where error.meansDamagedFile {
            // Corrupt or not a database: keep it for inspection and start afresh.
            close()
            let aside = path + ".corrupt-\(time(nil))"
            for suffix in ["", "-wal", "-shm"] { rename(path + suffix, aside + suffix) }
            warn("cache \(path) could not be opened (\(error.message)); moved it to \(aside) and started a new one")
            do throws(SQLiteFailure) { try open() } catch { throw GRAError.io("cache \(path): \(error.message)") }
        } catch {
            close()
            throw GRAError.io("cache \(path): \(error.message)")
        }
    }

    /// An SQLite result code with its message; only some codes mean the file is damaged
    /// (busy and locked only mean another process is at work).
    struct SQLiteFailure: Error {
        var code: Int32
        var message: String
        var meansDamagedFile: Bool {
            let primary = code & 0xFF
            return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_IOERR
                || primary == SQLITE_FORMAT
        }
    }

    deinit { close() }

    private static func makeDirectories(_ directory: String) throws(GRAError) {
        var current = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw GRAError.io("cannot create cache directory \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    private func check(_ rc: Int32, _ what: String) throws(SQLiteFailure) {
        guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            throw SQLiteFailure(code: rc, message: "\(what): \(message)")
        }
    }

    private func open() throws(SQLiteFailure) {
        try check(
            sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil), "open")
        sqlite3_busy_timeout(db, 30_000)
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=NORMAL")
        try exec(
            """
            CREATE TABLE IF NOT EXISTS responses (key BLOB PRIMARY KEY, body BLOB NOT NULL, created INTEGER NOT \
            NULL) WITHOUT ROWID
            """
        )
        try check(
            sqlite3_prepare_v2(db, "SELECT body FROM responses WHERE key = ?1", -1, &selectStatement, nil), "prepare")
        try check(
            sqlite3_prepare_v2(
                db, "INSERT OR REPLACE INTO responses (key, body, created) VALUES (?1, ?2, ?3)", -1, &insertStatement,
                nil), "prepare")
        // Touch the table once so that a corrupt file fails here, not in the middle of a run.
        _ = try lookupUnlocked(Array(repeating: 0, count: 32))
    }

    /// Runs `sql`, waiting out other processes: switching to WAL or creating the table can
    /// meet a lock that SQLite's busy handler does not wait for.
    private func exec(_ sql: String) throws(SQLiteFailure) {
        var tries = 0
        while true {
            var err: UnsafeMutablePointer<CChar>?
            let rc = sqlite3_exec(db, sql, nil, nil, &err)
            if let err { sqlite3_free(err) }
            let primary = rc & 0xFF
            if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && tries < 600 {
                tries += 1
                usleep(50_000)
                continue
            }
            try check(rc, sql)
            return
        }
    }

    private func close() {
        if let s = selectStatement { sqlite3_finalize(s) }
        if let s = insertStatement { sqlite3_finalize(s) }
        if let db { sqlite3_close_v2(db) }
        selectStatement = nil
        insertStatement = nil
        db = nil
    }

    /// The stored response body for `key`, or nil.
    public func lookup(_ key: [UInt8]) throws(GRAError) -> [UInt8]? {
        do {
            return try lock.locked { () throws(SQLiteFailure) -> [UInt8]? in try lookupUnlocked(key) }
        } catch {
            throw GRAError.io("cache \(path): \(error.message)")
        }
    }

    private func lookupUnlocked(_ key: [UInt8]) throws(SQLiteFailure) -> [UInt8]? {
        guard let s = selectStatement else { return nil }
        defer { sqlite3_reset(s) }
        key.withUnsafeBytes { _ = gra_sqlite3_bind_blob_copy(s, 1, $0.baseAddress, Int32($0.count)) }
        let rc = sqlite3_step(s)
        if rc == SQLITE_ROW {
            let n = Int(sqlite3_column_bytes(s, 0))
            guard n > 0, let p = sqlite3_column_blob(s, 0) else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: n))
        }
        try check(rc, "lookup")
        return nil
    }

    /// Stores `body` under `key` (committed at once).
    public func store(_ key: [UInt8], _ body: [UInt8]) throws(GRAError) {
        do {
            try storeUnlocked(key, body)
        } catch {
            throw GRAError.io("cache \(path): \(error.message)")
        }
    }

    /// Stores several entries in one transaction (one commit instead of one each: the
    /// embeddings of a batch).
    public func store(_ entries: [(key: [UInt8], body: [UInt8])]) throws(GRAError) {
        do {
            try lock.locked { () throws(SQLiteFailure) in
                guard insertStatement != nil else { return }
                try exec("BEGIN IMMEDIATE")
                do throws(SQLiteFailure) {
                    for e in entries { try insertUnlocked(e.key, e.body) }
                    try exec("COMMIT")
                } catch {
                    try? exec("ROLLBACK")
                    throw error
                }
            }
        } catch {
            throw GRAError.io("cache \(path): \(error.message)")
        }
    }

    private func storeUnlocked(_ key: [UInt8], _ body: [UInt8]) throws(SQLiteFailure) {
        try lock.locked { () throws(SQLiteFailure) in try insertUnlocked(key, body) }
    }

    private func insertUnlocked(_ key: [UInt8], _ body: [UInt8]) throws(SQLiteFailure) {
        guard let s = insertStatement else { return }
        defer { sqlite3_reset(s) }
        key.withUnsafeBytes { _ = gra_sqlite3_bind_blob_copy(s, 1, $0.baseAddress, Int32($0.count)) }
        body.withUnsafeBytes { _ = gra_sqlite3_bind_blob_copy(s, 2, $0.baseAddress, Int32($0.count)) }
        sqlite3_bind_int64(s, 3, Int64(time(nil)))
        try check(sqlite3_step(s), "store")
    }
}
