import Foundation

/// The IAB TCF v2 keys a CMP writes to the app's standard `UserDefaults` (iOS) or default
/// SharedPreferences (Android), and the platform-neutral part of reading them (Kotlin: `IabTcf`).
public enum IabTcf {
    public static let tcString = "IABTCF_TCString"
    public static let gdprApplies = "IABTCF_gdprApplies"
    public static let cmpSdkId = "IABTCF_CmpSdkID"
    public static let policyVersion = "IABTCF_PolicyVersion"

    /// Keys whose change means "apply again". The per-purpose keys (`IABTCF_PurposeConsents`, ...) are
    /// derived from the TC string by the CMP; the core decodes the string itself, so they are not read.
    public static let watchedKeys: Set<String> = [tcString, gdprApplies]

    public struct Values: Equatable {
        public let tcString: String?
        public let gdprApplies: Int32?
    }

    public struct BadValue: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads the two values the core needs. CMPs disagree on types: gdprApplies is specified as a number
    /// (0/1) but some store `"1"` or `true`; the TC string must be a string. An empty string means "not
    /// set". Anything else throws `BadValue` (reported as `consent.tcf` by the facade).
    public static func read(_ read: (String) -> Any?) throws -> Values {
        let applies: Int32?
        switch read(gdprApplies) {
        case nil, is NSNull:
            applies = nil
        case let n as NSNumber:
            if CFGetTypeID(n) == CFBooleanGetTypeID() {
                applies = n.boolValue ? 1 : 0
            } else if n.doubleValue == n.doubleValue.rounded(),
                      n.doubleValue >= Double(Int32.min), n.doubleValue <= Double(Int32.max) {
                applies = Int32(n.doubleValue)
            } else {
                throw BadValue(description: "\(gdprApplies)=\(n)")
            }
        case let s as String:
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            if t.isEmpty {
                applies = nil
            } else if let v = Int32(t) {
                applies = v
            } else {
                throw BadValue(description: "\(gdprApplies)=\"\(s)\" is not a number")
            }
        case let other?:
            throw BadValue(description: "\(gdprApplies) has type \(type(of: other))")
        }
        let tc: String?
        switch read(tcString) {
        case nil, is NSNull:
            tc = nil
        case let s as String:
            tc = s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : s
        case let other?:
            throw BadValue(description: "\(tcString) has type \(type(of: other))")
        }
        return Values(tcString: tc, gdprApplies: applies)
    }
}

/// Applies the CMP's IAB TCF values from `UserDefaults` to a `Threadline` client now, and again whenever
/// a CMP changes them (`UserDefaults.didChangeNotification` from any defaults object, since a CMP may
/// write through its own `UserDefaults` instance; filtered on the values of `IabTcf.watchedKeys`, so an
/// unrelated defaults write costs two reads and a comparison). Kotlin's Android counterpart
/// (`android.IabTcfConsent.watch`) does the same with SharedPreferences.
///
/// ```swift
/// let tcf = IabTcfConsent(analytics)   // keep a reference; stop() or release it to stop observing
/// tcf.start()
/// ```
public final class IabTcfConsent {
    private let threadline: Threadline
    private let defaults: UserDefaults
    private let lock = NSLock()
    private var last: [String: String]?
    private var observer: NSObjectProtocol?

    public init(_ threadline: Threadline, defaults: UserDefaults = .standard) {
        self.threadline = threadline
        self.defaults = defaults
    }

    deinit { stop() }

    /// Applies the stored values now (when a CMP stored any) and starts observing.
    public func start() {
        lock.lock()
        let running = observer != nil
        if !running {
            observer = NotificationCenter.default.addObserver(
                forName: UserDefaults.didChangeNotification, object: nil, queue: nil
            ) { [weak self] _ in self?.applyIfChanged() }
        }
        lock.unlock()
        applyIfChanged()
    }

    public func stop() {
        lock.lock()
        let o = observer
        observer = nil
        lock.unlock()
        if let o = o { NotificationCenter.default.removeObserver(o) }
    }

    /// The consent after applying, or nil when the values did not change or were refused (reported
    /// through the client's error handler).
    @discardableResult
    func applyIfChanged() -> Consent? {
        let snapshot = Dictionary(uniqueKeysWithValues: IabTcf.watchedKeys.map { k in
            (k, defaults.object(forKey: k).map { "\(type(of: $0)):\($0)" } ?? "-")
        })
        lock.lock()
        let changed = snapshot != last
        last = snapshot
        lock.unlock()
        // Nothing stored (no CMP, or it has not run yet) is passed on too: the core keeps the consent.
        guard changed else { return nil }
        return threadline.applyIabTcf { self.defaults.object(forKey: $0) }
    }
}
