import Foundation

/// The client's circuit breaker: which models still get requests.
///
/// A model is blocked when
/// - every one of its endpoints has failed `maxConnectFailures` connection attempts in a row
///   (host not found, connection refused, connect timeout), the first of them at least
///   `minimumSeconds` ago: its servers went away;
/// - the start-up probe could not connect to any of its endpoints;
/// - a server refused its API key (HTTP 401 or 403).
///
/// A blocked model's requests fail at once without touching the network (replies in the cache
/// still answer), so a dead server costs one message instead of a storm of retries, and the
/// stage ends with 69 (unreachable) or 77 (key refused) instead of 75.
public final class ModelHealth: @unchecked Sendable {
    /// Why a model gets no more requests.
    public enum Block: Sendable, Equatable {
        /// None of its endpoints can be reached (exit 69, EX_UNAVAILABLE).
        case unreachable(String)
        /// A server refused the API key (exit 77, EX_NOPERM).
        case denied(String)

        public var message: String {
            switch self {
            case .unreachable(let m), .denied(let m): return m
            }
        }

        public var exitStatus: Int32 {
            switch self {
            case .unreachable: return GRAExit.unavailable
            case .denied: return GRAExit.noPermission
            }
        }
    }

    /// Connection failures in a row, per endpoint, that count an endpoint as gone; 0 turns the
    /// breaker off (the probe and refused keys still block).
    public let maxConnectFailures: Int
    /// The shortest span of such a streak: a server restarting for a moment is waited out by
    /// the retries instead.
    public let minimumSeconds: Double
    /// Told once per blocked model, with the model's name and why.
    public let onBlock: (@Sendable (String, Block) -> Void)?

    private let lock = Mutex()
    /// Per endpoint: connection failures in a row and when the first of them happened.
    private var streaks: [String: (count: Int, since: Double)] = [:]
    /// Endpoints the start-up probe could not reach (until a request reaches them).
    private var probedDown: Set<String> = []
    private var blocks: [(model: String, block: Block)] = []

    public init(
        maxConnectFailures: Int = 16, minimumSeconds: Double = 10, onBlock: (@Sendable (String, Block) -> Void)? = nil
    ) {
        self.maxConnectFailures = maxConnectFailures
        self.minimumSeconds = minimumSeconds
        self.onBlock = onBlock
    }

    /// Why `model` gets no more requests, or nil when it still does.
    public func block(for model: String) -> Block? {
        lock.locked {
            for b in blocks where b.model == model { return b.block }
            return nil
        }
    }

    /// The exit status the blocks call for: 77 if a key was refused, else 69 if a model is
    /// unreachable, else nil.
    public var exitStatus: Int32? {
        lock.locked {
            if blocks.contains(where: { if case .denied = $0.block { return true } else { return false } }) {
                return GRAExit.noPermission
            }
            return blocks.isEmpty ? nil : GRAExit.unavailable
        }
    }

    /// Whether `base` looks down (so that a replica that answers is preferred).
    func looksDown(_ base: String) -> Bool {
        lock.locked {
            probedDown.contains(base) || (maxConnectFailures > 0 && (streaks[base]?.count ?? 0) >= maxConnectFailures)
        }
    }

    /// A request reached `base` (any HTTP status): its streak ends.
    func reached(_ base: String) {
        lock.locked {
            if !streaks.isEmpty { streaks[base] = nil }
            if !probedDown.isEmpty { probedDown.remove(base) }
        }
    }

    /// A connection to `base` failed; blocks `model` when that leaves none of its endpoints.
    func connectFailed(_ base: String, model: ModelEndpoint, message: String, now: Double) {
        guard maxConnectFailures > 0 else { return }
        let newBlock: Block? = lock.locked {
            var streak = streaks[base] ?? (0, now)
            streak.count += 1
            streaks[base] = streak
            for b in model.baseURLs {
                guard let s = streaks[b], s.count >= maxConnectFailures, now - s.since >= minimumSeconds else {
                    return nil
                }
            }
            return add(
                model.name,
                .unreachable(
                    """
                    model '\(model.name)' is unreachable: \(message) — every endpoint of it failed \
                    \(maxConnectFailures) connection attempts in a row, for \
                    \(String(format: "%g", minimumSeconds)) s or more, so no more requests are sent to it
                    """
                ))
        }
        if let newBlock { onBlock?(model.name, newBlock) }
    }

    /// The start-up probe could not connect to `base`; blocks `model` (without telling
    /// `onBlock`: the probe reports once per server) when none of its endpoints answered.
    /// Returns whether it did.
    @discardableResult
    public func probeFailed(_ base: String, model: ModelEndpoint, message: String) -> Bool {
        lock.locked {
            probedDown.insert(base)
            guard model.baseURLs.allSatisfy({ probedDown.contains($0) }) else { return false }
            return add(
                model.name,
                .unreachable("cannot reach model '\(model.name)': \(message); only cached replies can be used")) != nil
        }
    }

    /// A server refused `model`'s API key. `report` false: the caller tells the user.
    public func denied(_ model: ModelEndpoint, message: String, report: Bool = true) {
        let newBlock: Block? = lock.locked { add(model.name, .denied(message)) }
        if report, let newBlock { onBlock?(model.name, newBlock) }
    }

    /// Records a block unless the model has one; returns it when it is new. Under the lock.
    private func add(_ model: String, _ block: Block) -> Block? {
        guard !blocks.contains(where: { $0.model == model }) else { return nil }
        blocks.append((model, block))
        return block
    }
}
