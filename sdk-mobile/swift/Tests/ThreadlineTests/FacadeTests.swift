import Foundation
import XCTest
@testable import Threadline
import ThreadlineBindings

/// The facade against the real native library, with an in-memory server behind the Transport
/// (one to one with the Kotlin FacadeTest).
final class FacadeTests: XCTestCase {
    private var dirs: [URL] = []
    private var clients: [Threadline] = []

    override func setUp() {
        super.setUp()
        uniffiEnsureSdkMobileInitialized() // the checked-in bindings match the linked library
    }

    override func tearDown() {
        clients.forEach { $0.close() }
        clients = []
        for d in dirs { try? FileManager.default.removeItem(at: d) }
        dirs = []
        super.tearDown()
    }

    private func dir(_ name: String) -> URL {
        let d = tempDir(name)
        dirs.append(d)
        return d
    }

    private func client(
        _ dir: URL, extra: String = "", batch: String = #"{"maxAgeMs":0}"#, server: Transport = FakeServer(),
        errors: Errors = Errors(), notices: Notices? = nil, flushOnBackground: Bool = true
    ) throws -> Threadline {
        let c = try Threadline(
            configJson: testConfig(extra: extra, batch: batch), storageDirectory: dir,
            options: ThreadlineOptions(
                transport: server, errorHandler: errors.handler, noticeListener: notices?.listener,
                flushOnBackground: flushOnBackground
            )
        )
        clients.append(c)
        return c
    }

    /// Never sends on its own and writes only when made to: what is on disk is what onBackground wrote.
    private let quietExtra = #","queue":{"persistDebounceMs":600000}"#
    private let quietBatch = #"{"maxAgeMs":600000}"#

    func testBadInputIsReportedTypedAndQueuesNothing() throws {
        let errors = Errors()
        let server = FakeServer()
        let c = try client(dir("bad"), server: server, errors: errors)
        c.track("Too Large", properties: ["blob": String(repeating: "x", count: 40_000)])
        c.track("")
        c.track("NaN", properties: ["v": Double.nan])
        final class Opaque {}
        c.track("Object", properties: ["v": Opaque()])
        var deep: [String: Any] = ["k": 1]
        for key in ["j", "i", "h", "g", "f", "e", "d", "c", "b", "a"] { deep = [key: deep] }
        c.screen("Deep", properties: deep)
        c.identify(userId: "u-1", ids: ["email": "not-an-email"])
        c.setConsentJson(#"{"analytics":"maybe"}"#)
        XCTAssertEqual(errors.kinds, [
            "event.tooLarge", "event.empty", "event.notSerializable", "event.notSerializable", "event.tooDeep",
            "identity.badEmail", "consent.invalid",
        ])
        for e in errors.all.prefix(6) {
            if case .invalidEvent = e {} else { XCTFail("not invalidEvent: \(e)") }
        }
        if case .invalidConsent? = errors.all.last {} else { XCTFail("not invalidConsent: \(errors.all)") }
        XCTAssertFalse(errors.all.first?.message.isEmpty ?? true)
        c.flush()
        let s = c.stats()
        XCTAssertEqual(s.accepted, 0, "nothing recorded: \(s.raw)")
        XCTAssertEqual(s.queued, 0)
        XCTAssertEqual(c.consent().analytics, .granted, "the refused consent changed nothing")
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(server.requests, 0, "nothing sent")
    }

    func testPendingConsentSendsAndStoresNothingUntilGranted() throws {
        let d = dir("pending")
        let server = FakeServer()
        let notices = Notices()
        let c = try client(
            d, extra: #","consent":{"default":"pending"},"queue":{"persistDebounceMs":0}"#, server: server,
            notices: notices
        )
        for i in 0..<3 { c.track("held \(i)") }
        c.identify(userId: "u-7", traits: ["plan": "pro"])
        c.onBackground()
        XCTAssertTrue(c.awaitBackground(timeoutMs: 5_000))
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(files(d), [], "nothing stored while pending")
        XCTAssertEqual(server.requests, 0, "nothing sent while pending")
        XCTAssertEqual(c.stats().held, 4)
        XCTAssertNil(c.identity().deviceId, "no device id before consent")

        let consent = c.setConsent(analytics: .granted)
        XCTAssertEqual(consent?.analytics, .granted)
        waitUntil("the held events sent") {
            !server.named("held 2").isEmpty && server.events.contains { ($0["type"] as? String) == "identify" }
        }
        let held = Set(server.events.compactMap { $0["event"] as? String }.filter { $0.hasPrefix("held") })
        XCTAssertEqual(held, ["held 0", "held 1", "held 2"])
        waitUntil("the device record written") { files(d).contains("device.tl") }
        XCTAssertNotNil(c.identity().deviceId)
        XCTAssertEqual(c.identity().userId, "u-7")
        waitUntil("consent notice") {
            notices.all.contains {
                if case let .consentChanged(n) = $0 { return n.analytics == .granted }
                return false
            }
        }
    }

    func testIabTcfKeysFromTheCmp() throws {
        let errors = Errors()
        let c = try client(
            dir("iab"), extra: #","consent":{"default":"pending","tcf":{"purposes":{"analytics":[1,9,10]}}}"#,
            errors: errors
        )
        // From sdk-core/src/tcf.rs: the IAB's example string (purposes 1, 9, 10 consented, 4 not).
        let tc = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
            + ".argAC0gAAAAAAAAAAAA"
        var prefs: [String: Any] = [:]

        // The CMP has not run yet: nothing changes, nothing is reported.
        XCTAssertEqual(c.applyIabTcf { prefs[$0] }?.analytics, .pending)
        // Garbage in either key: reported, consent unchanged.
        prefs[IabTcf.gdprApplies] = "yes"
        XCTAssertNil(c.applyIabTcf { prefs[$0] })
        prefs[IabTcf.gdprApplies] = 1
        prefs[IabTcf.tcString] = "not a TC string"
        XCTAssertNil(c.applyIabTcf { prefs[$0] })
        prefs[IabTcf.gdprApplies] = 2
        prefs[IabTcf.tcString] = tc
        XCTAssertNil(c.applyIabTcf { prefs[$0] })
        XCTAssertEqual(errors.kinds, ["consent.tcf", "consent.tcf", "consent.invalid"])
        for e in errors.all {
            if case .invalidConsent = e {} else { XCTFail("not invalidConsent: \(e)") }
        }
        XCTAssertEqual(c.consent().analytics, .pending, "refused input changed nothing")

        // A TC string (gdprApplies stored as the string "1" by some CMPs): its purposes.
        prefs[IabTcf.gdprApplies] = "1"
        let granted = c.applyIabTcf { prefs[$0] }
        XCTAssertEqual(granted?.analytics, .granted)
        XCTAssertEqual(granted?.advertising, .denied, "purpose 4 was not consented")
        XCTAssertEqual(granted, c.consent())
        // gdprApplies = 0: GDPR does not apply, whatever string is left over.
        prefs[IabTcf.gdprApplies] = 0
        XCTAssertEqual(c.applyIabTcf { prefs[$0] }?.advertising, .granted)
        // The two-value form and Boolean storage agree.
        XCTAssertEqual(c.applyIabTcf(tcString: tc, gdprApplies: 1)?.advertising, .denied)
        prefs[IabTcf.gdprApplies] = false
        XCTAssertEqual(c.applyIabTcf { prefs[$0] }?.advertising, .granted)
        XCTAssertEqual(errors.all.count, 3, "no further errors")
    }

    func testNoticesReachTheListener() throws {
        let notices = Notices()
        let c = try client(dir("notices"), extra: #","consent":{"default":"pending"}"#, notices: notices)
        c.track("First")
        c.setConsent(analytics: .granted, advertising: .denied)
        waitUntil("a session and a consent notice") {
            let all = notices.all
            return all.contains { if case .sessionStarted = $0 { return true }; return false }
                && all.contains { if case .consentChanged = $0 { return true }; return false }
        }
        let consents = notices.all.compactMap { n -> Consent? in
            if case let .consentChanged(c) = n { return c }
            return nil
        }
        XCTAssertEqual(consents.last?.analytics, .granted)
        XCTAssertEqual(consents.last?.advertising, .denied)
        let session = notices.all.compactMap { n -> Int64? in
            if case let .sessionStarted(id) = n { return id }
            return nil
        }.first
        waitUntil("identity has the session") { c.identity().sessionId != nil }
        XCTAssertEqual(c.identity().sessionId, session)
        XCTAssertEqual((c.stats().raw["noticesPending"] as? NSNumber)?.intValue, 0, "drained by the upload thread")
    }

    func testOnBackgroundWritesEverythingAndSends() throws {
        let d = dir("background")
        let quietServer = FakeServer()
        let first = try client(d, extra: quietExtra, batch: quietBatch, server: quietServer, flushOnBackground: false)
        for i in 0..<5 { first.track("bg \(i)", properties: ["n": i]) }
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertFalse(files(d).contains("queue.tl"), "debounced: not yet written (\(files(d)))")
        first.onBackground()
        XCTAssertTrue(first.awaitBackground(timeoutMs: 5_000))
        XCTAssertTrue(files(d).contains("queue.tl"), "written at background: \(files(d))")
        XCTAssertEqual(quietServer.requests, 0, "flushOnBackground=false sends nothing")
        first.simulateKill()

        let server = FakeServer()
        let second = try client(d, server: server)
        XCTAssertEqual(second.stats().restored, 5)
        waitUntil("the restored events sent") { server.events.count == 5 }
        XCTAssertEqual(Set(server.events.compactMap { $0["event"] as? String }), Set((0..<5).map { "bg \($0)" }))

        // With flushOnBackground (the default), background also sends what the batch timer still holds.
        let s2 = FakeServer()
        let third = try client(dir("background2"), extra: quietExtra, batch: quietBatch, server: s2)
        third.track("now")
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(s2.requests, 0)
        third.onBackground()
        waitUntil("sent at background") { !s2.named("now").isEmpty }
    }

    func testBackgroundIdleCallbackRunsOnceNothingIsDue() throws {
        let server = FakeServer()
        let c = try client(dir("idle"), extra: quietExtra, batch: quietBatch, server: server)
        c.track("before suspension")
        let idle = DispatchSemaphore(value: 0)
        c.onBackground(whenIdle: { idle.signal() })
        XCTAssertEqual(idle.wait(timeout: .now() + 10), .success, "the background task would end")
        XCTAssertEqual(server.named("before suspension").count, 1, "sent before the task ended")
    }

    func testCloseIsIdempotentAndLaterCallsAreReported() throws {
        let d = dir("close")
        let errors = Errors()
        let c = try client(d, extra: quietExtra, batch: quietBatch, errors: errors)
        for i in 0..<3 { c.track("kept \(i)") }
        c.close()
        XCTAssertTrue(files(d).contains("queue.tl"), "close wrote the queue: \(files(d))")
        c.close() // idempotent, not an error
        XCTAssertEqual(errors.all.count, 0)
        c.track("after")
        c.identify(userId: "u")
        c.flush()
        c.onBackground()
        XCTAssertNil(c.setConsent(analytics: .denied))
        XCTAssertEqual(Set(errors.kinds), ["client.closed"])
        XCTAssertEqual(errors.all.map { e -> String in
            if case let .closed(call) = e { return call }
            return "?"
        }, ["track", "identify", "flush", "onBackground", "setConsent"])
        // Getters answer from the state at close, without throwing.
        XCTAssertEqual(c.stats().accepted, 3)
        XCTAssertEqual(c.consent().analytics, .granted)
        XCTAssertNotNil(c.identity().deviceId)

        let server = FakeServer()
        let next = try client(d, server: server)
        XCTAssertEqual(next.stats().restored, 3)
        waitUntil("sent by the next client") { server.events.count == 3 }
    }

    func testNetworkErrorsAndTransportFailuresAreRetried() throws {
        struct BuggyInterceptor: Error {}
        let lock = NSLock()
        var n = 0
        let server = FakeServer()
        let errors = Errors()
        let transport = ClosureTransport { url, headers, body in
            lock.lock()
            let i = n
            n += 1
            lock.unlock()
            switch i {
            case 0: throw URLError(.networkConnectionLost)
            case 1: return .networkError(nil)
            case 2: throw BuggyInterceptor()
            default: return try server.post(url: url, headers: headers, body: body)
            }
        }
        let c = try client(dir("network"), server: transport, errors: errors)
        c.track("Offline")
        waitUntil("a few failures") { lock.lock(); defer { lock.unlock() }; return n >= 3 }
        c.networkAvailable()
        waitUntil("delivered after the network came back", timeout: 30) { !server.named("Offline").isEmpty }
        XCTAssertEqual(errors.kinds, ["upload.transport"], "only the unexpected error is reported")
        XCTAssertTrue(server.headersSeen.first?.keys.contains { $0.lowercased() == "authorization" } ?? false)
        XCTAssertEqual(c.stats().delivered, 1)
    }

    func testAppCallsNeverWaitForTheNetworkOrTheDisk() throws {
        let release = DispatchSemaphore(value: 0)
        let inTransport = DispatchSemaphore(value: 0)
        let server = FakeServer()
        let blocking = ClosureTransport { url, headers, body in
            inTransport.signal()
            release.wait() // a request hanging on a dead network
            return try server.post(url: url, headers: headers, body: body)
        }
        let c = try client(dir("blocking"), extra: #","queue":{"persistDebounceMs":0}"#, server: blocking)
        c.track("first")
        XCTAssertEqual(inTransport.wait(timeout: .now() + 5), .success)
        let t0 = Date()
        for i in 0..<100 { c.track("while blocked", properties: ["i": i]) }
        c.identify(userId: "u-1")
        c.setConsent(personalization: .denied)
        c.flush()
        c.onBackground()
        c.onForeground()
        c.networkAvailable()
        _ = c.stats()
        let ms = Date().timeIntervalSince(t0) * 1000
        XCTAssertLessThan(ms, 1000, "app calls took \(ms) ms while the upload thread was stuck")
        XCTAssertFalse(c.awaitBackground(timeoutMs: 100), "the background write waits for the upload thread")
        for _ in 0..<1000 { release.signal() } // the hung request, and every later one, pass
        XCTAssertTrue(c.awaitBackground(timeoutMs: 5_000))
        waitUntil("everything sent") { server.named("while blocked").count == 100 }
    }

    func testMostTracksDoNotWakeTheUploadThread() throws {
        let server = FakeServer()
        // A batch leaves at 100 events or after 60 s: only the first event of a batch sets a deadline.
        let c = try client(dir("wake"), batch: #"{"maxAgeMs":60000,"maxEvents":100}"#, server: server)
        Thread.sleep(forTimeInterval: 0.1) // the loop is asleep, with nothing scheduled
        let before = c.wakeupCount
        for i in 0..<99 { c.track("quiet", properties: ["i": i]) }
        let wakes = c.wakeupCount - before
        XCTAssertLessThanOrEqual(wakes, 5, "99 tracks woke the upload thread \(wakes) times")
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(server.requests, 0)
        c.track("quiet", properties: ["i": 99]) // the 100th makes the batch due: this one wakes it
        waitUntil("the full batch sent") { server.named("quiet").count == 100 }
        XCTAssertEqual(server.requests, 1)
    }

    func testConfigBuilderAndBadConfig() throws {
        var cfg = ThreadlineConfig(endpoint: "https://collect.example.com", writeKey: "wk") {
            $0.consentDefault = .pending
            $0.batchMaxEvents = 20
        }
        cfg.set("retry.maxAttempts", 5)
        cfg.set("identity.sessionTimeoutMs", 60_000)
        let m = JSON.parseObject(try cfg.toJson())
        XCTAssertEqual(m["endpoint"] as? String, "https://collect.example.com")
        XCTAssertEqual(m["writeKey"] as? String, "wk")
        XCTAssertEqual(m["consent"] as? [String: String], ["default": "pending"])
        XCTAssertEqual(m["batch"] as? [String: Int], ["maxEvents": 20])
        XCTAssertEqual(m["retry"] as? [String: Int], ["maxAttempts": 5])
        XCTAssertEqual(m["identity"] as? [String: Int], ["sessionTimeoutMs": 60_000])
        let c = try Threadline(
            config: cfg, storageDirectory: dir("builder"), options: ThreadlineOptions(transport: FakeServer())
        )
        clients.append(c)
        XCTAssertEqual(c.consent().analytics, .pending)
        XCTAssertThrowsError(try Threadline(configJson: "{}", storageDirectory: dir("badcfg"))) { e in
            XCTAssertTrue(e is InvalidConfiguration, "\(e)")
            XCTAssertTrue("\(e)".contains("Threadline"), "\(e)")
        }
    }

    /// A killed process (loop stopped mid-way, nothing flushed, closed or written) loses nothing: the
    /// next client on the same directory sends every event (Kotlin: CollectorFlowTest, without HTTP).
    func testAKilledProcessLosesNothing() throws {
        let d = dir("kill")
        let extra = #","queue":{"persistDebounceMs":0}"#
        let down = FakeServer { _ in 503 }
        let first = try client(d, extra: extra, server: down)
        for i in 0..<20 { first.track("Kill Event", properties: ["seq": i]) }
        XCTAssertEqual(first.stats().accepted, 20)
        // Kill once the loop has written the queue after the last track (stored within
        // persistDebounceMs, and before each request) and a request has failed since.
        let writes = first.stats().storageWrites
        let requests = down.requests
        waitUntil("a write and a failed request after the last track") {
            first.stats().storageWrites > writes && down.requests > requests
        }
        first.simulateKill()

        let up = FakeServer()
        let errors = Errors()
        let second = try client(d, extra: extra, server: up, errors: errors)
        XCTAssertGreaterThanOrEqual(second.stats().restored, 20, "nothing was delivered before the kill")
        second.flush()
        waitUntil("all 20 events delivered by the next process") { up.named("Kill Event").count >= 20 }
        let seqs = Set(up.named("Kill Event").compactMap { ($0["properties"] as? [String: Any])?["seq"] as? Int })
        XCTAssertEqual(seqs, Set(0..<20))
        XCTAssertEqual(up.messageIds.count, 20)
        XCTAssertEqual(errors.all.count, 0, "\(errors.all)")
    }
}
