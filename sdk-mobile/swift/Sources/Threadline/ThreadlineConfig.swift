import Foundation

/// A Swift way to write the configuration JSON (the same JSON the web client takes). The common settings
/// are properties; any other key by its dotted path: `set("retry.maxAttempts", 5)`. Kotlin:
/// `ThreadlineConfig`.
///
/// ```swift
/// let config = ThreadlineConfig(endpoint: "https://collect.example.com", writeKey: "wk_live_...") {
///     $0.consentDefault = .pending
///     $0.batchMaxEvents = 20
/// }
/// ```
public struct ThreadlineConfig {
    public let endpoint: String
    public let writeKey: String
    /// `consent.default`: the state of every purpose before the app or CMP says anything.
    public var consentDefault: Choice?
    /// `batch.maxEvents`: a batch leaves when it has this many events.
    public var batchMaxEvents: Int?
    /// `batch.maxAgeMs`: ... or when its oldest event is this old.
    public var batchMaxAgeMs: Int64?
    /// `queue.persistDebounceMs`: how long queue changes may stay in memory only.
    public var persistDebounceMs: Int64?
    /// `rules.url`: where the rules artifact is fetched (and revalidated with its ETag).
    public var rulesUrl: String?
    /// `rules.publicKey`: base64 Ed25519 key; when set, only artifacts with a valid `.sig` are used.
    public var rulesPublicKey: String?
    /// `rules.refreshIntervalMs`: how often the artifact is revalidated.
    public var rulesRefreshIntervalMs: Int64?
    /// An artifact bundled with the app (e.g. from the main bundle), used at start only when no cached
    /// copy exists, so decisions work on the first launch offline. Not part of the configuration JSON.
    public var rulesArtifact: String?
    /// The bundled artifact's detached signature (base64), needed when `rulesPublicKey` is set.
    public var rulesSignature: String?

    private var extra: [(String, Any)] = []

    public init(endpoint: String, writeKey: String, _ configure: (inout ThreadlineConfig) -> Void = { _ in }) {
        self.endpoint = endpoint
        self.writeKey = writeKey
        configure(&self)
    }

    /// Sets any configuration key by its dotted path (`"identity.sessionTimeoutMs"`); later calls win.
    @discardableResult
    public mutating func set(_ path: String, _ value: Any) -> ThreadlineConfig {
        extra.append((path, value))
        return self
    }

    /// The configuration JSON; throws `InvalidConfiguration` when a path runs through a non-object
    /// (`set("batch", 1)` then `set("batch.maxEvents", 2)`) or a value is not JSON.
    public func toJson() throws -> String {
        var root: [String: Any] = [:]
        func put(_ path: String, _ v: Any?) throws {
            guard let v = v else { return }
            try ThreadlineConfig.put(&root, path.split(separator: ".").map(String.init)[...], v, path)
        }
        try put("endpoint", endpoint)
        try put("writeKey", writeKey)
        try put("consent.default", consentDefault?.wire)
        try put("batch.maxEvents", batchMaxEvents)
        try put("batch.maxAgeMs", batchMaxAgeMs)
        try put("queue.persistDebounceMs", persistDebounceMs)
        try put("rules.url", rulesUrl)
        try put("rules.publicKey", rulesPublicKey)
        try put("rules.refreshIntervalMs", rulesRefreshIntervalMs)
        for (k, v) in extra { try put(k, v) }
        do {
            return try JSON.write(root)
        } catch let e as JSONFailure {
            throw InvalidConfiguration(message: e.message)
        }
    }

    private static func put(_ m: inout [String: Any], _ parts: ArraySlice<String>, _ v: Any, _ path: String) throws {
        guard let first = parts.first else { throw InvalidConfiguration(message: "empty configuration path") }
        if parts.count == 1 {
            m[first] = v
            return
        }
        var child: [String: Any]
        switch m[first] {
        case nil: child = [:]
        case let c as [String: Any]: child = c
        default: throw InvalidConfiguration(message: "\(path): '\(first)' is not an object")
        }
        try put(&child, parts.dropFirst(), v, path)
        m[first] = child
    }
}
