import Foundation
import ThreadlineBindings

// The facade's value types, one to one with the Kotlin layer's Types.kt (same names, same fields).

/// One consent purpose's state, as the core spells it on the wire (`"granted"`, ...).
public enum Choice: String, Equatable, CaseIterable {
    case pending, granted, denied

    /// The wire form (`"granted"`); Kotlin: `Choice.wire`.
    public var wire: String { rawValue }

    /// Anything unknown (or missing) reads as `pending`, as in Kotlin's `Choice.of`.
    public static func of(_ wire: Any?) -> Choice {
        (wire as? String).flatMap(Choice.init(rawValue:)) ?? .pending
    }
}

/// The consent in force (`getConsent()` of the core).
public struct Consent: Equatable {
    public let analytics: Choice
    public let personalization: Choice
    public let advertising: Choice
    public let sale: Choice
    /// A Global Privacy Control style opt-out is on (it denies `sale` and `advertising`).
    public let gpc: Bool

    public init(analytics: Choice, personalization: Choice, advertising: Choice, sale: Choice, gpc: Bool) {
        self.analytics = analytics
        self.personalization = personalization
        self.advertising = advertising
        self.sale = sale
        self.gpc = gpc
    }

    static func parse(_ json: String) -> Consent {
        let m = JSON.parseObject(json)
        return Consent(
            analytics: .of(m["analytics"]), personalization: .of(m["personalization"]),
            advertising: .of(m["advertising"]), sale: .of(m["sale"]), gpc: (m["gpc"] as? Bool) == true
        )
    }
}

/// Who the SDK thinks the user is (`getIdentity()` of the core).
public struct Identity {
    /// Sent as `anonymousId`; `nil` until `analytics` consent is granted.
    public let deviceId: String?
    public let userId: String?
    public let traits: [String: Any]
    /// Namespaced ids as sent (hashed where the configuration says so).
    public let ids: [String: Any]
    public let sessionId: Int64?
    public let sessionStartMs: Int64?

    static func parse(_ json: String) -> Identity {
        let m = JSON.parseObject(json)
        let session = m["session"] as? [String: Any]
        return Identity(
            deviceId: m["deviceId"] as? String, userId: m["userId"] as? String,
            traits: m["traits"] as? [String: Any] ?? [:], ids: m["ids"] as? [String: Any] ?? [:],
            sessionId: (session?["id"] as? NSNumber)?.int64Value,
            sessionStartMs: (session?["start"] as? NSNumber)?.int64Value
        )
    }
}

/// The core's and the file store's counters. The common ones are typed; `raw` has every field the core
/// reports (names as in the web binding's `stats()`), so a new counter needs no SDK release.
public struct Stats {
    public let raw: [String: Any]

    private func n(_ k: String) -> Int64 { (raw[k] as? NSNumber)?.int64Value ?? 0 }
    public var accepted: Int64 { n("accepted") }
    public var rejected: Int64 { n("rejected") }
    public var restored: Int64 { n("restored") }
    public var queued: Int64 { n("queued") }
    public var inFlight: Int64 { n("inFlight") }
    public var delivered: Int64 { n("delivered") }
    public var uploads: Int64 { n("uploads") }
    public var retries: Int64 { n("retries") }
    public var held: Int64 { n("held") }
    public var droppedConsent: Int64 { n("droppedConsent") }
    public var storageWrites: Int64 { n("writes") }
    public var storageFailures: Int64 { n("storageFailures") }
    public var storageAvailable: Bool { (raw["storageAvailable"] as? Bool) == true }

    static func parse(_ json: String) -> Stats { Stats(raw: JSON.parseObject(json)) }
}

/// Something the app may want to hear about; delivered on the SDK's upload thread.
public enum Notice: Equatable {
    case sessionStarted(sessionId: Int64)
    case consentChanged(Consent)
    /// A rules artifact is in use now (bundled, cached, loaded or fetched): `Threadline.decide` answers.
    case rulesLoaded(revision: String?)
    /// An artifact or its signature was refused; the previous artifact, if any, stays in use.
    case rulesRejected(kind: String, message: String)
    /// The collector's profile of the person (what they did on their other devices) arrived and
    /// `Threadline.decide` uses it; `audiences` are the ones the collector evaluated.
    case profileSynced(audiences: [String])
    /// The collector refused the user token (`status` 401 or 403): decisions use this device's history
    /// only, and nothing is fetched until `Threadline.identify` brings a new token.
    case profileSyncRefused(status: Int)
}

/// One offer to show in a placement, as `Threadline.decide` chose it. Hand it back unchanged to
/// `displayed` / `clicked` (it may be kept across a restart). Kotlin: `dev.threadline.Decision`.
public struct Decision: Equatable, Hashable {
    public let decisionId: String
    public let placement: String
    public let offerId: String
    /// The offer's `content` from the artifact as JSON text: the SDK never interprets it.
    public let content: String
    public let experimentId: String?
    public let variantId: String?
    /// The placement's default offer (no consent, held out, or nothing qualified).
    public let isDefault: Bool

    public init(
        decisionId: String, placement: String, offerId: String, content: String,
        experimentId: String?, variantId: String?, isDefault: Bool
    ) {
        self.decisionId = decisionId
        self.placement = placement
        self.offerId = offerId
        self.content = content
        self.experimentId = experimentId
        self.variantId = variantId
        self.isDefault = isDefault
    }

    /// `content` read into dictionaries, arrays, strings, numbers, booleans and `NSNull`.
    public func contentValue() -> Any? {
        guard let data = content.data(using: .utf8) else { return nil }
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// `content` as a dictionary; empty when it is not a JSON object.
    public func contentMap() -> [String: Any] { contentValue() as? [String: Any] ?? [:] }

    init(native d: ThreadlineBindings.Decision) {
        self.init(
            decisionId: d.decisionId, placement: d.placement, offerId: d.offerId, content: d.contentJson,
            experimentId: d.experimentId, variantId: d.variantId, isDefault: d.isDefault
        )
    }

    var native: ThreadlineBindings.Decision {
        ThreadlineBindings.Decision(
            decisionId: decisionId, placement: placement, offerId: offerId, contentJson: content,
            experimentId: experimentId, variantId: variantId, isDefault: isDefault
        )
    }
}

/// What went wrong in a call that the SDK refused or could not do. Analytics calls never throw into app
/// code; they report one of these to `ThreadlineOptions.errorHandler` and change nothing.
///
/// `kind` is the cross-platform name (`event.tooLarge`, `identity.badEmail`, `consent.tcf`, ... as in
/// `tests/scenarios/README.md`; plus `event.notSerializable` and `event.tooDeep` from the Swift JSON
/// step, `client.closed`, `upload.transport` and `internal`).
public enum ThreadlineError: Error, CustomStringConvertible {
    /// An event, its properties, traits or ids were refused; nothing was recorded.
    case invalidEvent(kind: String, message: String)
    /// Consent input (JSON, TC string, IAB values) was refused; consent did not change.
    case invalidConsent(kind: String, message: String)
    /// `Threadline.decide` could not answer (`decide.unknownPlacement`, `decide.invalidContext`); it
    /// returned an empty list.
    case decide(kind: String, message: String)
    /// A rules artifact or its signature was refused (`rules.artifact`, `rules.signature`, ...); the
    /// artifact in use, if any, stays.
    case rules(kind: String, message: String)
    /// A profile answer from the collector was refused (`sync.unauthorized`, `profile.wrongUser`,
    /// `profile.corrupt`, ...); decisions keep what they had.
    case sync(kind: String, message: String)
    /// A call after `Threadline.close()`: ignored.
    case closed(call: String)
    /// The transport or a listener failed unexpectedly, or the native layer did.
    case `internal`(kind: String, message: String, cause: Error?)

    public var kind: String {
        switch self {
        case let .invalidEvent(kind, _), let .invalidConsent(kind, _), let .internal(kind, _, _): return kind
        case let .decide(kind, _), let .rules(kind, _), let .sync(kind, _): return kind
        case .closed: return "client.closed"
        }
    }

    public var message: String {
        switch self {
        case let .invalidEvent(_, message), let .invalidConsent(_, message), let .internal(_, message, _):
            return message
        case let .decide(_, message), let .rules(_, message), let .sync(_, message): return message
        case let .closed(call): return "\(call) after close() is ignored"
        }
    }

    public var description: String {
        let name: String
        switch self {
        case .invalidEvent: name = "InvalidEvent"
        case .invalidConsent: name = "InvalidConsent"
        case .decide: name = "Decide"
        case .rules: name = "Rules"
        case .sync: name = "Sync"
        case .closed: name = "Closed"
        case .internal: name = "Internal"
        }
        return "\(name)(\(kind): \(message))"
    }
}

/// The configuration JSON was refused at construction: a programming error that should fail the first
/// debug run (Kotlin throws `IllegalArgumentException`).
public struct InvalidConfiguration: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "Threadline: \(message)" }
}

/// The answer to one upload.
public enum TransportResult: Equatable {
    /// The server answered: `status` and the raw `Retry-After` header, if any.
    case response(status: Int, retryAfter: String?)
    /// No answer: offline, DNS, TLS, timeout, connection reset. The core backs off.
    case networkError(String?)
}

/// Performs one `POST`. Called on the SDK's upload thread only, one request at a time, so it may block.
/// A thrown `URLError` counts as `.networkError`; any other error too, and is also reported as
/// `upload.transport`. Swap in a fake here for tests.
public protocol Transport: AnyObject {
    func post(url: String, headers: [String: String], body: Data) throws -> TransportResult
}

/// The answer to one rules request: `status` nil means no answer (network error).
public struct RulesResult {
    public let status: Int?
    public let etag: String?
    public let body: Data?

    public init(status: Int?, etag: String? = nil, body: Data? = nil) {
        self.status = status
        self.etag = etag
        self.body = body
    }
}

/// Performs one rules `GET` (`etag`: send it as `If-None-Match`), bypassing every HTTP cache: the core
/// decides freshness from the ETag. Called on the SDK's thread only; may block. A thrown error counts as
/// no answer. Kotlin: `RulesTransport`.
public protocol RulesTransport: AnyObject {
    func get(url: String, etag: String?) throws -> RulesResult
}

/// The answer to one profile request: `status` nil means no answer (network error).
public struct ProfileResult {
    public let status: Int?
    public let body: Data?

    public init(status: Int?, body: Data? = nil) {
        self.status = status
        self.body = body
    }
}

/// Performs one `GET` of the person's profile with `Authorization: Bearer <token>` (`token` is the
/// person's credential: never log it), bypassing every HTTP cache. Called on the SDK's thread only; may
/// block. A thrown error counts as no answer. Kotlin: `ProfileTransport`.
public protocol ProfileTransport: AnyObject {
    func get(url: String, token: String) throws -> ProfileResult
}

/// Everything but the configuration and the directory; all optional.
public struct ThreadlineOptions {
    public var transport: Transport
    /// Called with every refused or failed call, on the caller's thread or the upload thread.
    public var errorHandler: (ThreadlineError) -> Void
    public var noticeListener: ((Notice) -> Void)?
    /// Send what is queued when the app goes to the background (the upload window before suspension).
    public var flushOnBackground: Bool
    /// Sent in the events' context.
    public var userAgent: String?
    /// Locale and time zone of the device, sent in the events' context.
    public var reportEnvironment: Bool
    /// Performs the rules artifact requests (when the configuration has `rules.url`).
    public var rulesTransport: RulesTransport
    /// Performs the profile requests (after `Threadline.identify` with a user token).
    public var profileTransport: ProfileTransport

    public init(
        transport: Transport = URLSessionTransport(),
        errorHandler: @escaping (ThreadlineError) -> Void = ThreadlineOptions.log,
        noticeListener: ((Notice) -> Void)? = nil,
        flushOnBackground: Bool = true,
        userAgent: String? = nil,
        reportEnvironment: Bool = true,
        rulesTransport: RulesTransport = URLSessionRulesTransport(),
        profileTransport: ProfileTransport = URLSessionProfileTransport()
    ) {
        self.transport = transport
        self.errorHandler = errorHandler
        self.noticeListener = noticeListener
        self.flushOnBackground = flushOnBackground
        self.userAgent = userAgent
        self.reportEnvironment = reportEnvironment
        self.rulesTransport = rulesTransport
        self.profileTransport = profileTransport
    }

    /// The default error handler: one line on the console (Kotlin: `ErrorHandler.LOG`).
    public static let log: (ThreadlineError) -> Void = { e in NSLog("Threadline: %@", e.description) }
}
