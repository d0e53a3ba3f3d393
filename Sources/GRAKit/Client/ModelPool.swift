#if canImport(Glibc)
import Glibc
#endif

/// One model the pool can call: its name as the server knows it, the base URLs that serve it
/// (replicas; the least loaded wins) and the environment variable holding its API key.
public struct ModelEndpoint: Sendable, Equatable {
    public var name: String
    /// Normalized base URLs, e.g. "http://127.0.0.1:8000/v1".
    public var baseURLs: [String]
    /// Name of the environment variable with the API key (the key itself is never stored here).
    public var apiKeyVariable: String
    /// Set apart in cache keys (config `cache_namespace`, `--cache-namespace`): for different
    /// weights served under one name. By default a model is known in the cache by its name
    /// alone, so replicas, and a server that moved, share the cached replies.
    public var cacheNamespace: String?
    /// Its published rate limits (config `rpm`/`tpm`, `--rpm`/`--tpm`).
    public var rateLimits: RateLimits

    public init(
        name: String, baseURLs: [String], apiKeyVariable: String = "OPENAI_API_KEY", cacheNamespace: String? = nil,
        rateLimits: RateLimits = RateLimits()
    ) {
        self.name = name
        self.baseURLs = baseURLs
        self.apiKeyVariable = apiKeyVariable
        self.cacheNamespace = cacheNamespace
        self.rateLimits = rateLimits
    }
}

/// The models a run may use, from `--model NAME@URL` flags, a `--config` file or the
/// environment (`OPENAI_BASE_URL` with `GRA_MODELS`).
public struct ModelPool: Sendable, Equatable {
    public var models: [ModelEndpoint]

    public init(models: [ModelEndpoint] = []) { self.models = models }

    public func model(named name: String) -> ModelEndpoint? { models.first { $0.name == name } }

    /// `--use NAME`: that model of the pool (a usage error naming the pool when there is none);
    /// nil: the pool's first.
    public func model(use name: String?) throws(GRAError) -> ModelEndpoint {
        guard let name else { return models[0] }
        guard let m = model(named: name) else {
            throw GRAError.usage(
                "--use \(name): no such model in the pool (\(models.map(\.name).joined(separator: ", ")))")
        }
        return m
    }

    /// A model a flag names (`--embedding-model`, `--neighbour-model`): a model of the pool, or
    /// NAME@URL (a bare name not in the pool is served at `OPENAI_BASE_URL`).
    public func model(spec: String, environment: [String: String]) throws(GRAError) -> ModelEndpoint {
        if let m = model(named: spec) { return m }
        var extra = ModelPool()
        try extra.add(spec: spec, defaultBaseURL: environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 })
        return extra.models[0]
    }

    /// Normalizes a base URL: no trailing slash, `/v1` appended when the path is empty, scheme
    /// and host lower-cased.
    public static func normalizeBaseURL(_ raw: String) throws(GRAError) -> String {
        var s = raw.trimmingWhitespace()
        while s.hasSuffix("/") { s.removeLast() }
        guard let schemeEnd = s.range(of: "://") else {
            throw GRAError.usage("base URL '\(raw)' needs a scheme, e.g. http://127.0.0.1:8000/v1")
        }
        let scheme = s[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw GRAError.usage("base URL '\(raw)': only http and https are supported")
        }
        let rest = s[schemeEnd.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let host = rest[..<slash].lowercased()
        guard !host.isEmpty else { throw GRAError.usage("base URL '\(raw)' has no host") }
        var path = String(rest[slash...])
        if path.isEmpty { path = "/v1" }
        return "\(scheme)://\(host)\(path)"
    }

    /// Adds `NAME@BASE_URL` (a repeated name adds a replica).
    public mutating func add(spec: String, defaultBaseURL: String?, apiKeyVariable: String = "OPENAI_API_KEY")
        throws(GRAError)
    {
        let name: String
        let url: String
        if let at = spec.lastIndex(of: "@"), spec[spec.index(after: at)...].contains("://") {
            name = String(spec[..<at])
            url = String(spec[spec.index(after: at)...])
        } else if let d = defaultBaseURL {
            name = spec
            url = d
        } else {
            throw GRAError.usage(
                "model '\(spec)' has no base URL: write NAME@http://HOST:PORT/v1 or set OPENAI_BASE_URL")
        }
        guard !name.isEmpty else { throw GRAError.usage("model spec '\(spec)' has an empty name") }
        try add(name: name, baseURL: ModelPool.normalizeBaseURL(url), apiKeyVariable: apiKeyVariable)
    }

    mutating func add(
        name: String, baseURL: String, apiKeyVariable: String, cacheNamespace: String? = nil,
        rateLimits: RateLimits = RateLimits()
    ) {
        if let i = models.firstIndex(where: { $0.name == name }) {
            if !models[i].baseURLs.contains(baseURL) { models[i].baseURLs.append(baseURL) }
            if models[i].cacheNamespace == nil { models[i].cacheNamespace = cacheNamespace }
            if models[i].rateLimits.isEmpty { models[i].rateLimits = rateLimits }
        } else {
            models.append(
                ModelEndpoint(
                    name: name, baseURLs: [baseURL], apiKeyVariable: apiKeyVariable, cacheNamespace: cacheNamespace,
                    rateLimits: rateLimits))
        }
    }

    /// Reads a config file: `{"models": [{"name": "...", "base_urls": ["..."] (or "base_url"),
    /// "api_key_env": "VAR", "cache_namespace": "...", "rpm": N, "tpm": N}]}`. Other top-level keys
    /// are left for the stages that use them.
    public mutating func load(configText text: String, source: String) throws(GRAError) {
        let root: JSONValue
        do { root = try JSONParser.parse(text) } catch {
            throw GRAError.usage("\(source): invalid JSON: \(error)")
        }
        guard case .object(let o) = root else { throw GRAError.usage("\(source): expected a JSON object") }
        guard let models = o["models"] else { return }
        guard case .array(let items) = models else { throw GRAError.usage("\(source): 'models' must be an array") }
        for (i, item) in items.enumerated() {
            guard case .object(let m) = item, case .string(let name)? = m["name"] else {
                throw GRAError.usage("\(source): models[\(i)] needs a string 'name'")
            }
            var urls: [String] = []
            if case .string(let u)? = m["base_url"] { urls.append(u) }
            if case .array(let us)? = m["base_urls"] {
                for u in us {
                    guard case .string(let s) = u else {
                        throw GRAError.usage("\(source): models[\(i)].base_urls must hold strings")
                    }
                    urls.append(s)
                }
            }
            guard !urls.isEmpty else {
                throw GRAError.usage("\(source): models[\(i)] ('\(name)') needs 'base_url' or 'base_urls'")
            }
            var keyVar = "OPENAI_API_KEY"
            if case .string(let k)? = m["api_key_env"] { keyVar = k }
            if m["api_key"] != nil {
                throw GRAError.usage(
                    """
                    \(source): models[\(i)] has 'api_key'; keys come from the environment only — name the \
                    variable with 'api_key_env'
                    """
                )
            }
            var namespace: String?
            if let ns = m["cache_namespace"] {
                guard case .string(let n) = ns, !n.isEmpty else {
                    throw GRAError.usage("\(source): models[\(i)].cache_namespace must be a non-empty string")
                }
                namespace = n
            }
            var limits = RateLimits()
            for (key, path) in [("rpm", \RateLimits.requestsPerMinute), ("tpm", \RateLimits.tokensPerMinute)] {
                guard let v = m[key] else { continue }
                guard let n = v.doubleValue, n > 0 else {
                    throw GRAError.usage("\(source): models[\(i)].\(key) must be a positive number")
                }
                limits[keyPath: path] = n
            }
            for u in urls {
                add(
                    name: name, baseURL: try ModelPool.normalizeBaseURL(u), apiKeyVariable: keyVar,
                    cacheNamespace: namespace, rateLimits: limits)
            }
        }
    }

    /// Builds the pool the way every LLM stage does: `--config` files, then `--model` flags,
    /// then, if still empty, `GRA_MODELS` (comma-separated specs) at `OPENAI_BASE_URL`.
    /// `cacheNamespace` (`--cache-namespace`) and `rateLimits` (`--rpm`, `--tpm`) apply to every
    /// model without its own.
    public static func resolve(
        modelSpecs: [String], configPath: String?, environment: [String: String],
        cacheNamespace: String? = nil, rateLimits: RateLimits = RateLimits()
    ) throws(GRAError) -> ModelPool {
        var pool = ModelPool()
        let defaultBase = environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let configPath {
            guard let text = readTextFile(configPath) else {
                throw GRAError.usage("cannot read config file \(configPath)")
            }
            try pool.load(configText: text, source: configPath)
        }
        for spec in modelSpecs { try pool.add(spec: spec, defaultBaseURL: defaultBase) }
        if pool.models.isEmpty, let list = environment["GRA_MODELS"], !list.isEmpty {
            for spec in list.split(separator: ",") {
                try pool.add(spec: String(spec).trimmingWhitespace(), defaultBaseURL: defaultBase)
            }
        }
        if let cacheNamespace {
            for i in pool.models.indices where pool.models[i].cacheNamespace == nil {
                pool.models[i].cacheNamespace = cacheNamespace
            }
        }
        for i in pool.models.indices {
            if pool.models[i].rateLimits.requestsPerMinute == nil {
                pool.models[i].rateLimits.requestsPerMinute = rateLimits.requestsPerMinute
            }
            if pool.models[i].rateLimits.tokensPerMinute == nil {
                pool.models[i].rateLimits.tokensPerMinute = rateLimits.tokensPerMinute
            }
        }
        return pool
    }
}
