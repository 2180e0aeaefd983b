import Foundation

/// Lets `JSON.normalise` see through an `Optional` stored in an `Any` without reflection.
private protocol AnyOptional {
    var wrappedAny: Any? { get }
}

extension Optional: AnyOptional {
    fileprivate var wrappedAny: Any? {
        switch self {
        case let .some(v): return v
        case .none: return nil
        }
    }
}

/// Why a value could not be written as JSON. Thrown only inside the SDK: the facade turns it into
/// `ThreadlineError.invalidEvent` for the error handler.
struct JSONFailure: Error {
    let kind: String
    let message: String
}

/// The Swift side of "one crossing per event": properties and traits become one JSON string here
/// (`JSONSerialization`), and the Rust core parses and validates it again, so this step only has to be
/// correct, not policy-aware. Mirrors the Kotlin JsonWriter's accepted types and error kinds.
///
/// `JSONSerialization` raises an Objective-C exception (a crash, not a Swift error) on values it cannot
/// write, so every value is first checked and normalised here: `nil`/`NSNull`, `String`, `Character`,
/// `Bool`, every number bridged to `NSNumber` (finite only: NaN and ±infinity have no JSON form and are
/// refused rather than silently changed), `Date` (ISO-8601 UTC with milliseconds, the Segment spec's
/// timestamp form), `URL`, `UUID`, enums by raw value, dictionaries with `String` keys, arrays and sets.
/// Anything else is refused with kind `event.notSerializable`; nesting deeper than `maxDepth` with
/// `event.tooDeep`.
enum JSON {
    /// Deeper than any core limit (`limits.maxPropertyDepth`), shallow enough to stop a cycle early.
    static let maxDepth = 64

    private static let iso: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f
    }()
    private static let isoLock = NSLock()

    /// `nil` stays `nil` (no properties), a dictionary becomes an object.
    static func writeObject(_ map: [String: Any]?) throws -> String? {
        guard let map = map else { return nil }
        return try write(map)
    }

    static func write(_ value: Any) throws -> String {
        let v = try normalise(value, depth: 0)
        var options: JSONSerialization.WritingOptions = [.fragmentsAllowed]
        if #available(iOS 13.0, macOS 10.15, *) { options.insert(.withoutEscapingSlashes) }
        guard JSONSerialization.isValidJSONObject([v]) else {
            throw JSONFailure(kind: "event.notSerializable", message: "properties cannot be written as JSON")
        }
        let data = try JSONSerialization.data(withJSONObject: v, options: options)
        guard let s = String(data: data, encoding: .utf8) else {
            throw JSONFailure(kind: "event.notSerializable", message: "properties are not UTF-8")
        }
        return s
    }

    private static func normalise(_ value: Any, depth: Int) throws -> Any {
        // An `Optional` inside `Any` (`["a": x as String?]`) is unwrapped; `nil` is JSON null.
        if let o = value as? AnyOptional {
            guard let inner = o.wrappedAny else { return NSNull() }
            return try normalise(inner, depth: depth)
        }
        switch value {
        case is NSNull:
            return value
        case let s as String:
            return s
        case let c as Character:
            return String(c)
        case let d as Date:
            isoLock.lock()
            defer { isoLock.unlock() }
            return iso.string(from: d)
        case let u as URL:
            return u.absoluteString
        case let u as UUID:
            return u.uuidString
        case let n as NSNumber:
            // Bool bridges to a CFBoolean; JSONSerialization writes it as true/false.
            if CFGetTypeID(n) == CFBooleanGetTypeID() { return n }
            if !n.doubleValue.isFinite {
                throw JSONFailure(kind: "event.notSerializable", message: "\(n) is not a JSON number")
            }
            return n
        case let m as [String: Any]:
            if depth + 1 > maxDepth { throw tooDeep() }
            var out = [String: Any](minimumCapacity: m.count)
            for (k, v) in m { out[k] = try normalise(v, depth: depth + 1) }
            return out
        case let m as NSDictionary:
            if depth + 1 > maxDepth { throw tooDeep() }
            var out = [String: Any](minimumCapacity: m.count)
            for (k, v) in m {
                guard let key = k as? String else {
                    throw JSONFailure(
                        kind: "event.notSerializable",
                        message: "property names must be strings, not \(type(of: k))"
                    )
                }
                out[key] = try normalise(v, depth: depth + 1)
            }
            return out
        case let a as [Any]:
            if depth + 1 > maxDepth { throw tooDeep() }
            return try a.map { try normalise($0, depth: depth + 1) }
        case let set as NSSet: // a Swift Set bridges here; Kotlin accepts any Iterable
            if depth + 1 > maxDepth { throw tooDeep() }
            return try set.allObjects.map { try normalise($0, depth: depth + 1) }
        case let r as any RawRepresentable: // a Swift enum: its raw value (Kotlin writes an enum's name)
            return try normalise(r.rawValue, depth: depth)
        default:
            throw JSONFailure(
                kind: "event.notSerializable",
                message: "a \(type(of: value)) cannot be sent as a property (use strings, numbers, booleans, "
                    + "dictionaries, arrays)"
            )
        }
    }

    private static func tooDeep() -> JSONFailure {
        JSONFailure(kind: "event.tooDeep", message: "properties nest deeper than \(maxDepth) levels")
    }

    /// Parses what the core returns (always an object); `[:]` for anything else.
    static func parseObject(_ json: String) -> [String: Any] {
        guard let data = json.data(using: .utf8),
              let v = try? JSONSerialization.jsonObject(with: data, options: []),
              let m = v as? [String: Any]
        else { return [:] }
        return m
    }
}
