import Foundation
import ThreadlineBindings

/// Threadline for iOS: one instance per app process, shared by every thread. The Swift twin of the
/// Kotlin facade `dev.threadline.Threadline`: same calls, same options, same upload loop.
///
/// ```swift
/// let analytics = try Threadline(configJson: json, storageDirectory: appSupport.appendingPathComponent("threadline"))
/// analytics.track("Product Viewed", properties: ["sku": "A1", "price": 12.5])
/// let lifecycle = ThreadlineLifecycle(analytics); lifecycle.start()   // iOS: background/foreground + network
/// // or, all in one: let analytics = try ThreadlineIOS.create(configJson: json)
/// ```
///
/// - **Thread-safe.** Every method may be called from any thread at any time; the Rust core takes a short
///   lock per call.
/// - **Never throws** after construction: bad input is reported to `ThreadlineOptions.errorHandler` as a
///   typed `ThreadlineError` and changes nothing; calls after `close()` are ignored and reported.
/// - **No I/O on the caller's thread.** App calls only change memory (properties become one JSON string
///   here, so a `track` is one call into Rust); one background thread per client does the HTTP and every
///   file write, woken by app calls, otherwise asleep until the core's next deadline (`pollTimeoutMs`).
/// - **Nothing lost when the process is killed**: the queue is written within `queue.persistDebounceMs`
///   of a change (before a batch leaves, and at `onBackground()`); what was on the wire is sent again by
///   the next process and the collector de-duplicates by messageId.
///
/// Construction reads the SDK's stored files (small): create the client in
/// `application(_:didFinishLaunchingWithOptions:)` or off the main thread. It throws
/// `InvalidConfiguration` for an invalid configuration, a programming error that should fail the first
/// debug run. One upload at a time: the loop is sequential, so `batch.maxInFlight` above 1 has no effect.
public final class Threadline {
    private let client: Client
    private let options: ThreadlineOptions

    /// Guards every field below and is the loop's sleep/wake condition.
    private let cond = NSCondition()
    private var closed = false
    /// The loop must make no more native calls: set by `close()` and by the kill simulation.
    private var stopping = false
    private var wakeRequested = false
    /// What the loop sleeps to, published under `cond` (see `wakeFor`).
    private var sleepState = Sleep.working
    /// Wake-ups requested by app calls (tests check that most tracks cause none).
    private var wakeups: UInt64 = 0
    private var backgroundRequested: UInt64 = 0
    private var backgroundDone: UInt64 = 0
    private var foregroundRequested = false
    private var loopExited = false
    /// Called once the loop has handled every background request and has nothing due (iOS: ends the
    /// background task).
    private var backgroundIdle: [() -> Void] = []
    /// `onReady` callbacks waiting for a rules artifact (run by the loop on `RulesLoaded`).
    private var readyCallbacks: [() -> Void] = []
    /// Final answers kept by `close()` for the getters.
    private var finalViews: FinalViews?
    private var thread: Thread?

    /// `configJson`: the configuration the web client takes. `storageDirectory`: a private directory for
    /// the SDK's files (created if missing), e.g. `Application Support/threadline`; an unusable one is not
    /// an error (the client runs from memory and says so in `stats()`).
    public init(configJson: String, storageDirectory: URL, options: ThreadlineOptions = ThreadlineOptions()) throws {
        // Fails loudly (checksum mismatch) when the checked-in bindings do not match the linked library.
        uniffiEnsureSdkMobileInitialized()
        do {
            client = try Client(
                configJson: Threadline.withDefaultLibrary(configJson, name: Threadline.libraryName),
                storageDir: storageDirectory.path
            )
        } catch let e as ThreadlineBindings.ThreadlineError {
            throw InvalidConfiguration(message: Threadline.describe(e))
        }
        self.options = options
        if options.reportEnvironment || options.userAgent != nil {
            client.setEnvironment(
                locale: options.reportEnvironment ? Threadline.localeTag() : nil,
                timezone: options.reportEnvironment ? TimeZone.current.identifier : nil,
                userAgent: options.userAgent
            )
        }
        let t = Thread { [self] in runLoop() }
        t.name = "threadline-upload"
        t.qualityOfService = .utility
        thread = t
        t.start()
    }

    /// Builds the configuration JSON from a `ThreadlineConfig`; loads its bundled rules artifact, if any
    /// (after the cached copy the client restored: a bundled artifact never overrides a newer one).
    public convenience init(
        config: ThreadlineConfig, storageDirectory: URL, options: ThreadlineOptions = ThreadlineOptions()
    ) throws {
        try self.init(configJson: try config.toJson(), storageDirectory: storageDirectory, options: options)
        if let artifact = config.rulesArtifact {
            native("loadRules") {
                _ = try client.loadRules(artifact: artifact, signature: config.rulesSignature, replace: false)
                wake()
            }
        }
    }

    // MARK: - events

    /// Records a `track` event. `properties` must be JSON-like (see `JSON` for the accepted types).
    public func track(_ event: String, properties: [String: Any]? = nil) {
        record(event, properties, screen: false)
    }

    /// Records a `screen` event.
    public func screen(_ name: String, properties: [String: Any]? = nil) {
        record(name, properties, screen: true)
    }

    private func record(_ name: String, _ properties: [String: Any]?, screen: Bool) {
        let call = screen ? "screen" : "track"
        if isClosed { return report(.closed(call: call)) }
        let json: String?
        do {
            json = try JSON.writeObject(properties)
        } catch let e as JSONFailure {
            return report(.invalidEvent(kind: e.kind, message: e.message))
        } catch {
            return report(.invalidEvent(kind: "event.notSerializable", message: "\(error)"))
        }
        native(call) {
            _ = try screen ? client.screen(name: name, propertiesJson: json)
                : client.track(name: name, propertiesJson: json)
            // Kotlin gets this number back from its JNI track; here it is one more (cheap) C call.
            wakeFor(client.pollTimeoutMs())
        }
    }

    /// Attaches a user id, traits and namespaced ids (e.g. `"email"`), and records an `identify`.
    /// `userToken`, issued by the app's back end for `userId` (never sent with events), lets the SDK fetch
    /// the person's profile from the collector, so decisions here see what they did on their other
    /// devices (with `personalization` granted). A new token replaces a refused or expired one.
    public func identify(
        userId: String? = nil, traits: [String: Any]? = nil, ids: [String: String]? = nil, userToken: String? = nil
    ) {
        if isClosed { return report(.closed(call: "identify")) }
        let t: String?
        let i: String?
        do {
            t = try JSON.writeObject(traits)
            i = try JSON.writeObject(ids)
        } catch let e as JSONFailure {
            return report(.invalidEvent(kind: e.kind, message: e.message))
        } catch {
            return report(.invalidEvent(kind: "event.notSerializable", message: "\(error)"))
        }
        native("identify") {
            _ = try client.identify(userId: userId, traitsJson: t, idsJson: i, userToken: userToken)
            wake()
        }
    }

    /// Links `userId` with `previousId` (by default the current user id, else the device id).
    public func alias(userId: String, previousId: String? = nil) {
        native("alias") {
            _ = try client.alias(userId: userId, previousId: previousId)
            wake()
        }
    }

    /// Logout: forgets the user and rotates the device id.
    public func reset() {
        native("reset") {
            client.reset()
            wake()
        }
    }

    /// Sends what is queued now instead of waiting for a full batch (asynchronously, on the upload thread).
    public func flush() {
        native("flush") {
            client.flush()
            wake()
        }
    }

    // MARK: - decisions

    /// Which offers to show in `placement` now (at most `max`): synchronous, offline, no I/O, from the
    /// rules artifact in use and the on-device profile; safe on the main thread. `context` is merged into
    /// what conditions see (`app`, `cart`, ...), written like event properties. Before any artifact is
    /// loaded, and on a refused call (reported as `ThreadlineError.decide`): an empty list.
    public func decide(_ placement: String, max: Int = 1, context: [String: Any]? = nil) -> [Decision] {
        if isClosed { return reportNil(.closed(call: "decide")) ?? [] }
        let ctx: String?
        do {
            ctx = try JSON.writeObject(context)
        } catch let e as JSONFailure {
            return reportNil(.decide(kind: "decide.invalidContext", message: e.message)) ?? []
        } catch {
            return reportNil(.decide(kind: "decide.invalidContext", message: "\(error)")) ?? []
        }
        let offsetMinutes = Int32(TimeZone.current.secondsFromGMT() / 60)
        let n = UInt32(clamping: Swift.max(1, max))
        let got: [ThreadlineBindings.Decision]? = native("decide") {
            let d = try client.decide(placement: placement, max: n, contextJson: ctx, utcOffsetMinutes: offsetMinutes)
            // A new experiment assignment is stored by the loop (debounced): wake it to set its timer.
            wake()
            return d
        }
        return (got ?? []).map { Decision(native: $0) }
    }

    /// `decide` for several placements of one screen in one call, keyed by placement: one context and one
    /// pass over the audiences instead of one call per placement (`placements` gives the order to read
    /// them in). An unknown placement refuses the whole call (one screen, one artifact revision). Before
    /// any artifact is loaded, and on a refused call (reported as `ThreadlineError.decide`): an empty
    /// dictionary, so the screen renders its fallbacks (`result[placement] ?? []`).
    public func decideMany(_ placements: [String], max: Int = 1, context: [String: Any]? = nil)
        -> [String: [Decision]] {
        if isClosed { return reportNil(.closed(call: "decideMany")) ?? [:] }
        let ctx: String?
        do {
            ctx = try JSON.writeObject(context)
        } catch let e as JSONFailure {
            return reportNil(.decide(kind: "decide.invalidContext", message: e.message)) ?? [:]
        } catch {
            return reportNil(.decide(kind: "decide.invalidContext", message: "\(error)")) ?? [:]
        }
        let offsetMinutes = Int32(TimeZone.current.secondsFromGMT() / 60)
        let n = UInt32(clamping: Swift.max(1, max))
        let got: [ThreadlineBindings.PlacementDecisions]? = native("decideMany") {
            let d = try client.decideMany(
                placements: placements, max: n, contextJson: ctx, utcOffsetMinutes: offsetMinutes)
            // A new experiment assignment is stored by the loop (debounced): wake it to set its timer.
            wake()
            return d
        }
        var out: [String: [Decision]] = [:]
        // A repeated placement answers the same both times: the first one is kept.
        for p in got ?? [] where out[p.placement] == nil {
            out[p.placement] = p.decisions.map { Decision(native: $0) }
        }
        return out
    }

    /// The app showed `decision`: records `Offer Displayed` and counts an impression for frequency caps.
    /// Returns the event's messageId; nil when this decision was already reported (or on an error,
    /// reported).
    @discardableResult
    public func displayed(_ decision: Decision) -> String? {
        let r: String?? = native("displayed") {
            let id = try client.displayed(decision: decision.native)
            wake()
            return id
        }
        return r ?? nil
    }

    /// The person tapped `decision`: records `Offer Clicked`, once per decision (messageId, or nil).
    @discardableResult
    public func clicked(_ decision: Decision) -> String? {
        let r: String?? = native("clicked") {
            let id = try client.clicked(decision: decision.native)
            wake()
            return id
        }
        return r ?? nil
    }

    /// Uses `artifactJson` (from the app's own backend, say) in place of the current artifact; with a
    /// configured public key, `signature` (base64) must verify. Returns whether it is in use; a refused
    /// artifact is reported as `ThreadlineError.rules` and the previous one stays.
    @discardableResult
    public func loadRules(_ artifactJson: String, signature: String? = nil) -> Bool {
        native("loadRules") { () throws -> Bool in
            let used = try client.loadRules(artifact: artifactJson, signature: signature, replace: true)
            wake()
            return used
        } ?? false
    }

    /// Revalidates the artifact now (the upload thread fetches it, with its ETag).
    public func refreshRules() {
        native("refreshRules") {
            client.refreshRules()
            wake()
        }
    }

    /// Fetches the person's profile from the collector now (the upload thread does it), say after a
    /// purchase on another device; nothing without a user token from `identify`.
    public func refreshProfile() {
        native("refreshProfile") {
            client.refreshProfile()
            wake()
        }
    }

    /// Whether an artifact is in use now.
    public var rulesReady: Bool { isClosed ? false : client.rulesReady() }

    /// The `revision` label of the artifact in use.
    public var rulesRevision: String? { isClosed ? nil : client.rulesRevision() }

    /// Blocks the calling thread up to `timeoutMs` until a rules artifact is in use (cached, bundled,
    /// loaded or fetched); true if one is. **Not on the main thread**: use `onReady` there.
    public func ready(timeoutMs: Int) -> Bool {
        let end = Date(timeIntervalSinceNow: Double(Swift.max(0, timeoutMs)) / 1000)
        cond.lock()
        defer { cond.unlock() }
        while true {
            if closed { return false }
            if client.rulesReady() { return true }
            if !cond.wait(until: end) { return !closed && client.rulesReady() }
        }
    }

    /// Runs `callback` once a rules artifact is in use: at once on the calling thread when one is
    /// already, otherwise on the SDK's thread when it is loaded. Never runs after `close()`.
    public func onReady(_ callback: @escaping () -> Void) {
        cond.lock()
        if closed {
            cond.unlock()
            return report(.closed(call: "onReady"))
        }
        let now = client.rulesReady()
        if !now { readyCallbacks.append(callback) }
        cond.unlock()
        if now { callback() }
    }

    // MARK: - consent

    /// Applies the app's consent choices; purposes left `nil` keep their state. Returns the consent now in
    /// force, or nil when refused (reported) or closed.
    @discardableResult
    public func setConsent(
        analytics: Choice? = nil, personalization: Choice? = nil, advertising: Choice? = nil, sale: Choice? = nil
    ) -> Consent? {
        var m: [String: Any] = [:]
        if let c = analytics { m["analytics"] = c.wire }
        if let c = personalization { m["personalization"] = c.wire }
        if let c = advertising { m["advertising"] = c.wire }
        if let c = sale { m["sale"] = c.wire }
        // Strings only: cannot fail.
        return setConsentJson((try? JSON.write(m)) ?? "{}")
    }

    /// As `setConsent`, with the web client's JSON (`{"analytics":"granted"}`).
    @discardableResult
    public func setConsentJson(_ consentJson: String) -> Consent? {
        consentCall("setConsent") { try client.setConsent(consentJson: consentJson) }
    }

    /// Applies an IAB TCF TC string; one that cannot be decoded is refused (reported) and changes nothing.
    @discardableResult
    public func setConsentTcf(_ tcString: String) -> Consent? {
        consentCall("setConsentTcf") { try client.setConsentTcf(tcString: tcString) }
    }

    /// The CMP says GDPR does not apply to this person.
    @discardableResult
    public func setTcfNotApplicable() -> Consent? {
        consentCall("setTcfNotApplicable") { client.setTcfNotApplicable() }
    }

    /// Applies the values a CMP stored under the IAB keys (`IABTCF_TCString`, `IABTCF_gdprApplies`); the
    /// core decides what they mean (gdprApplies 0: not applicable; a TC string: its purposes).
    @discardableResult
    public func applyIabTcf(tcString: String?, gdprApplies: Int32?) -> Consent? {
        consentCall("applyIabTcf") { try client.setConsentIab(tcString: tcString, gdprApplies: gdprApplies) }
    }

    /// As `applyIabTcf(tcString:gdprApplies:)`, reading the keys through `read` (`UserDefaults`'
    /// `object(forKey:)`, a test dictionary). CMPs differ in the types they store (`1`, `"1"`, `true`); all
    /// are accepted, anything else is reported as `consent.tcf` and changes nothing. `IabTcfConsent` does
    /// this from `UserDefaults.standard` and again on every change.
    @discardableResult
    public func applyIabTcf(read: (String) -> Any?) -> Consent? {
        if isClosed { return reportNil(.closed(call: "applyIabTcf")) }
        let values: IabTcf.Values
        do {
            values = try IabTcf.read(read)
        } catch {
            return reportNil(.invalidConsent(kind: "consent.tcf", message: "\(error)"))
        }
        return applyIabTcf(tcString: values.tcString, gdprApplies: values.gdprApplies)
    }

    /// A Global Privacy Control style opt-out signal from the app's settings.
    public func setGpc(_ on: Bool) {
        native("setGpc") {
            client.setGpc(on: on)
            wake()
        }
    }

    private func consentCall(_ call: String, _ f: () throws -> String) -> Consent? {
        native(call) { () throws -> String in
            let json = try f()
            wake()
            return json
        }.map(Consent.parse)
    }

    // MARK: - getters

    /// The consent in force. After `close()`: as it was at close.
    public func consent() -> Consent { Consent.parse(view { client.getConsent() } ?? closedView { $0.consent }) }

    /// Device id, user id, traits, ids and session. After `close()`: as they were at close.
    public func identity() -> Identity {
        Identity.parse(view { client.getIdentity() } ?? closedView { $0.identity })
    }

    /// The counters. After `close()`: as they were at close.
    public func stats() -> Stats { Stats.parse(view { client.stats() } ?? closedView { $0.stats }) }

    private func view(_ get: () -> String) -> String? { isClosed ? nil : get() }

    private struct FinalViews {
        let consent: String
        let identity: String
        let stats: String
    }

    private func closedView(_ pick: (FinalViews) -> String) -> String {
        cond.lock()
        defer { cond.unlock() }
        return finalViews.map(pick) ?? "{}"
    }

    // MARK: - lifecycle

    /// The app went to the background (`UIApplication.didEnterBackgroundNotification`; wired by
    /// `ThreadlineLifecycle`): the upload thread writes everything now and, with
    /// `ThreadlineOptions.flushOnBackground`, sends what is queued while the OS still allows. Returns at
    /// once: no disk or network work on the caller's (main) thread.
    public func onBackground() { onBackground(whenIdle: nil) }

    /// As `onBackground()`; `whenIdle` runs on the upload thread once that work is done and nothing more
    /// is due (or at once when the client is closed), to end an iOS background task.
    func onBackground(whenIdle: (() -> Void)?) {
        cond.lock()
        if closed {
            cond.unlock()
            whenIdle?()
            return report(.closed(call: "onBackground"))
        }
        backgroundRequested += 1
        if let w = whenIdle { backgroundIdle.append(w) }
        wakeLocked()
        cond.unlock()
    }

    /// The app came back: the upload thread catches up with what came due while suspended.
    public func onForeground() {
        cond.lock()
        if closed {
            cond.unlock()
            return report(.closed(call: "onForeground"))
        }
        foregroundRequested = true
        wakeLocked()
        cond.unlock()
    }

    /// Connectivity came back (`NWPathMonitor`, wired by `ThreadlineLifecycle`): ends a wait caused by
    /// network errors.
    public func networkAvailable() {
        native("networkAvailable") {
            client.networkAvailable()
            wake()
        }
    }

    /// Stops the upload thread, writes everything and keeps the final consent, identity and stats for the
    /// getters. Idempotent; every later call is ignored and reported as `ThreadlineError.closed`. Waits up
    /// to 2 s for a request in progress; an unanswered upload stays stored and is sent again by the next
    /// client.
    public func close() {
        cond.lock()
        if closed {
            cond.unlock()
            return
        }
        closed = true
        stopping = true
        wakeLocked()
        if Thread.current !== thread {
            let end = Date(timeIntervalSinceNow: Threadline.closeWait)
            while !loopExited && cond.wait(until: end) {}
        }
        cond.unlock()
        client.onBackground() // force-writes the queue, identity and device records
        let views = FinalViews(consent: client.getConsent(), identity: client.getIdentity(), stats: client.stats())
        cond.lock()
        finalViews = views
        readyCallbacks = []
        let idle = backgroundIdle
        backgroundIdle = []
        cond.broadcast()
        cond.unlock()
        idle.forEach { $0() }
    }

    // MARK: - the upload loop

    private var isClosed: Bool {
        cond.lock()
        defer { cond.unlock() }
        return closed
    }

    private enum Sleep {
        /// Between waking and publishing its next deadline: any change may be missed, so wake it.
        case working
        /// Asleep with nothing scheduled.
        case idle
        /// Asleep until this `DispatchTime` uptime, in nanoseconds.
        case until(UInt64)
    }

    /// Wakes the loop only when an app call brought the core's deadline (`ms` from now, nil: none)
    /// before the one the loop sleeps to. Most tracks do not (the batch deadline was set by the batch's
    /// first event), so they cost a lock and a clock read, and the loop sleeps on.
    private func wakeFor(_ ms: UInt64?) {
        guard let ms = ms else { return }
        cond.lock()
        defer { cond.unlock() }
        switch sleepState {
        case .working, .idle:
            wakeLocked()
        case let .until(t):
            // The slack absorbs the millisecond rounding of the core's answer (Kotlin: WAKE_SLACK_NANOS).
            let due = Threadline.deadline(after: ms, from: DispatchTime.now().uptimeNanoseconds)
            if due < t &- min(t, Threadline.wakeSlackNanos) { wakeLocked() }
        }
    }

    /// Wakes the loop unconditionally (calls other than track/screen: rare, and their effect on the
    /// deadline is not returned).
    private func wake() {
        cond.lock()
        wakeLocked()
        cond.unlock()
    }

    private func wakeLocked() {
        if wakeRequested { return }
        wakeRequested = true
        wakeups += 1
        cond.broadcast()
    }

    private struct Stopped: Error {}

    /// A native call from the loop; none once `stopping` is set (close or simulated kill).
    private func loopCall<T>(_ f: () throws -> T) throws -> T {
        cond.lock()
        let stop = stopping
        cond.unlock()
        if stop { throw Stopped() }
        return try f()
    }

    private func runLoop() {
        defer {
            cond.lock()
            loopExited = true
            thread = nil // the Thread holds this closure, which holds self
            cond.broadcast()
            cond.unlock()
        }
        while true {
            cond.lock()
            if stopping {
                cond.unlock()
                return
            }
            sleepState = .working
            wakeRequested = false
            cond.unlock()
            // After an unexpected error: pause, then try again (Kotlin: LOOP_ERROR_PAUSE_MS).
            var timeout: UInt64? = Threadline.loopErrorPauseMs
            do {
                try cycle()
                timeout = try loopCall { client.pollTimeoutMs() }
            } catch is Stopped {
                return
            } catch {
                report(internalError("uploadLoop", error))
            }
            cond.lock()
            // Published before sleeping, under the lock app calls take: a deadline moved earlier after
            // the core was asked is never slept through (wakeFor saw .working, or sees this one).
            let now = DispatchTime.now().uptimeNanoseconds
            sleepState = timeout.map { Sleep.until(Threadline.deadline(after: $0, from: now)) } ?? Sleep.idle
            // A wake between the reset above and here is not slept through: wakeRequested is still set.
            if !wakeRequested && !stopping {
                if let ms = timeout {
                    _ = cond.wait(until: Date(timeIntervalSinceNow: Double(ms) / 1000))
                } else {
                    cond.wait()
                }
            }
            cond.unlock()
        }
    }

    /// One pass: lifecycle requests, due storage work, notices, every due upload in turn, then the rules
    /// and profile requests that are due (`pollTimeoutMs` counts their due time too).
    private func cycle() throws {
        cond.lock()
        let bg = backgroundRequested
        let bgPending = bg != backgroundDone
        let fg = foregroundRequested
        foregroundRequested = false
        cond.unlock()
        if bgPending {
            if options.flushOnBackground { try loopCall { client.flush() } }
            try loopCall { client.onBackground() }
            cond.lock()
            backgroundDone = bg
            cond.broadcast()
            cond.unlock()
        }
        if fg { try loopCall { client.onForeground() } }
        try loopCall { client.persist() }
        try deliverNotices()
        while true {
            cond.lock()
            let newBackground = backgroundRequested != backgroundDone
            cond.unlock()
            if newBackground { return } // handle it first, next pass
            guard let u = try loopCall({ client.nextUpload() }) else { break }
            // The core stores the queue as events leave: a kill during the request loses nothing.
            try loopCall { client.persist() }
            var headers: [String: String] = [:]
            for h in u.headers { headers[h.name] = h.value }
            let result: TransportResult
            do {
                result = try options.transport.post(url: u.url, headers: headers, body: u.body)
            } catch let e as URLError {
                result = .networkError(e.localizedDescription)
            } catch {
                report(internalError("transport", error))
                result = .networkError("\(error)")
            }
            // A killed process never reports: the upload stays stored and the next process sends it.
            try loopCall {
                switch result {
                case let .response(status, retryAfter):
                    let code = UInt16(clamping: status)
                    try client.uploadFinished(id: u.id, status: code, retryAfter: retryAfter, networkError: false)
                case .networkError:
                    try client.uploadFinished(id: u.id, status: nil, retryAfter: nil, networkError: true)
                }
            }
            try loopCall { client.persist() }
            try deliverNotices()
        }
        try fetchRules()
        try fetchProfile()
        // Nothing more is due: a background window can end now.
        cond.lock()
        let idle = backgroundRequested == backgroundDone ? backgroundIdle : []
        if !idle.isEmpty { backgroundIdle = [] }
        cond.unlock()
        idle.forEach { $0() }
    }

    /// Performs the due rules requests; a follow-up (the signature of a changed artifact) at once.
    private func fetchRules() throws {
        guard var fetch = try loopCall({ client.nextRulesFetch() }) else { return }
        while true {
            let r: RulesResult
            do {
                r = try options.rulesTransport.get(url: fetch.url, etag: fetch.etag)
            } catch is URLError {
                r = RulesResult(status: nil)
            } catch {
                report(internalError("rulesTransport", error))
                r = RulesResult(status: nil)
            }
            let status = r.status.flatMap { (100...599).contains($0) ? UInt16($0) : nil }
            let current = fetch
            let next: RulesFetch?
            do {
                next = try loopCall {
                    try client.rulesFetched(id: current.id, status: status, etag: r.etag, body: r.body)
                }
            } catch let e as ThreadlineBindings.ThreadlineError {
                report(mapError(e))
                next = nil
            }
            guard let n = next else { break }
            fetch = n
        }
        try loopCall { client.persist() } // the new artifact's cache record
        try deliverNotices()
    }

    /// Performs the due profile request (one at a time; the core says when the next is due).
    private func fetchProfile() throws {
        guard let fetch = try loopCall({ client.nextProfileFetch() }) else { return }
        let r: ProfileResult
        do {
            r = try options.profileTransport.get(url: fetch.url, token: fetch.token)
        } catch is URLError {
            r = ProfileResult(status: nil)
        } catch {
            report(internalError("profileTransport", error))
            r = ProfileResult(status: nil)
        }
        let status = r.status.flatMap { (100...599).contains($0) ? UInt16($0) : nil }
        do {
            try loopCall { try client.profileFetched(id: fetch.id, status: status, body: r.body) }
        } catch let e as ThreadlineBindings.ThreadlineError {
            report(mapError(e))
        }
        try loopCall { client.persist() } // the profile record with the collector's part
        try deliverNotices()
    }

    private func deliverNotices() throws {
        let notices = try loopCall { client.takeNotices() }
        if notices.contains(where: { if case .rulesLoaded = $0 { return true } else { return false } }) {
            cond.lock()
            let callbacks = readyCallbacks
            readyCallbacks = []
            cond.broadcast()
            cond.unlock()
            callbacks.forEach { $0() }
        }
        guard let listener = options.noticeListener else { return }
        for n in notices {
            let notice: Notice
            switch n {
            case let .sessionStarted(sessionId):
                notice = .sessionStarted(sessionId: Int64(bitPattern: sessionId))
            case let .consentChanged(consentJson):
                notice = .consentChanged(Consent.parse(consentJson))
            case let .rulesLoaded(revision):
                notice = .rulesLoaded(revision: revision)
            case let .rulesRejected(kind, message):
                notice = .rulesRejected(kind: kind, message: message)
            case let .profileSynced(audiences):
                notice = .profileSynced(audiences: audiences)
            case let .profileSyncRefused(status):
                notice = .profileSyncRefused(status: Int(status))
            }
            listener(notice)
        }
    }

    // MARK: - errors

    /// Runs an app-facing native call; errors go to the handler, never to the caller.
    @discardableResult
    private func native<T>(_ call: String, _ f: () throws -> T) -> T? {
        if isClosed { return reportNil(.closed(call: call)) }
        do {
            return try f()
        } catch let e as ThreadlineBindings.ThreadlineError {
            return reportNil(mapError(e))
        } catch {
            return reportNil(internalError(call, error))
        }
    }

    private func mapError(_ e: ThreadlineBindings.ThreadlineError) -> ThreadlineError {
        switch e {
        case let .InvalidEvent(kind, detail): return .invalidEvent(kind: kind, message: detail)
        case let .InvalidConsent(kind, detail): return .invalidConsent(kind: kind, message: detail)
        case let .Decide(kind, detail): return .decide(kind: kind, message: detail)
        case let .Rules(kind, detail): return .rules(kind: kind, message: detail)
        case let .Sync(kind, detail): return .sync(kind: kind, message: detail)
        default: return .internal(kind: "internal", message: Threadline.describe(e), cause: e)
        }
    }

    private func internalError(_ call: String, _ e: Error) -> ThreadlineError {
        .internal(kind: call == "transport" ? "upload.transport" : "internal", message: "\(call): \(e)", cause: e)
    }

    private func report(_ e: ThreadlineError) {
        // Swift cannot catch a crash in the handler; Kotlin's try/catch around it has no equivalent.
        options.errorHandler(e)
    }

    private func reportNil<T>(_ e: ThreadlineError) -> T? {
        report(e)
        return nil
    }

    private static func describe(_ e: ThreadlineBindings.ThreadlineError) -> String {
        switch e {
        case let .InvalidConfig(detail): return "invalid configuration: \(detail)"
        case let .Storage(detail): return "storage: \(detail)"
        default: return String(describing: e)
        }
    }

    /// BCP 47 (`en-US`), as Kotlin's `Locale.toLanguageTag()`; `Locale.identifier` is `en_US@calendar=...`.
    private static func localeTag() -> String {
        let id = Locale.current.identifier
        let base = id.split(separator: "@", maxSplits: 1).first.map(String.init) ?? id
        return base.replacingOccurrences(of: "_", with: "-")
    }

    /// `context.library.name` unless the configuration names one: collectors tell platforms apart by it.
    static let libraryName = "threadline-ios"

    /// `configJson` with `"library": {"name": name, "version": <core version>}` added when it has no
    /// `library` key; anything else (including JSON the core will refuse) unchanged, byte for byte.
    /// Kotlin: `Threadline.withDefaultLibrary`.
    static func withDefaultLibrary(_ configJson: String, name: String) -> String {
        guard let data = configJson.data(using: .utf8),
              let m = (try? JSONSerialization.jsonObject(with: data, options: [])) as? [String: Any],
              m["library"] == nil,
              let open = configJson.firstIndex(of: "{"),
              let lib = try? JSONSerialization.data(
                  withJSONObject: ["name": name, "version": coreVersion()], options: [.sortedKeys]),
              let libText = String(data: lib, encoding: .utf8)
        else { return configJson }
        let rest = configJson[configJson.index(after: open)...]
        return String(configJson[...open]) + "\"library\":" + libText + (m.isEmpty ? "" : ",") + String(rest)
    }

    static let closeWait: TimeInterval = 2
    static let wakeSlackNanos: UInt64 = 2_000_000

    /// `from` + `ms` milliseconds in nanoseconds, saturating (the core may say "in a very long time").
    static func deadline(after ms: UInt64, from now: UInt64) -> UInt64 {
        let (ns, o1) = ms.multipliedReportingOverflow(by: 1_000_000)
        let (t, o2) = now.addingReportingOverflow(ns)
        return o1 || o2 ? .max : t
    }
    static let loopErrorPauseMs: UInt64 = 1000

    // MARK: - test hooks (`@testable import Threadline`)

    /// Waits until the upload thread has handled every `onBackground()` so far (written everything).
    func awaitBackground(timeoutMs: Int) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        let target = backgroundRequested
        let end = Date(timeIntervalSinceNow: Double(timeoutMs) / 1000)
        while backgroundDone < target && !stopping {
            if !cond.wait(until: end) { break }
        }
        return backgroundDone >= target
    }

    /// A killed process, for tests: the loop stops making native calls at once (an upload in progress is
    /// never reported), nothing is flushed or written, and the native object is abandoned, not closed.
    func simulateKill() {
        cond.lock()
        stopping = true
        closed = true
        wakeLocked()
        let end = Date(timeIntervalSinceNow: 10)
        while !loopExited && cond.wait(until: end) {}
        cond.unlock()
    }

    /// Wake-ups requested so far (Kotlin: `wakeups`).
    var wakeupCount: UInt64 {
        cond.lock()
        defer { cond.unlock() }
        return wakeups
    }

    /// The UniFFI object, for tests.
    var nativeClient: Client { client }
}
