import Foundation
import XCTest
@testable import Threadline

/// Many threads on one client at once — track, screen, identify, setConsent, flush, stats, lifecycle —
/// while the upload loop runs against a server that fails 30% of requests: nothing reaches a caller,
/// nothing is reported, and the counters balance (the Kotlin StressTest).
final class StressTests: XCTestCase {
    private enum Action { case identify, screen, consent, flush, stats, track }

    private static func action(_ i: Int) -> Action {
        if i % 50 == 7 { return .identify }
        if i % 40 == 3 { return .screen }
        if i % 100 == 11 { return .consent }
        if i % 30 == 5 { return .flush }
        if i % 20 == 9 { return .stats }
        return .track
    }

    func testManyThreadsKeepTheCountersBalanced() throws {
        let threads = 8
        let iterations = 400
        let d = tempDir("stress")
        defer { try? FileManager.default.removeItem(at: d) }
        var rng = SystemRandomNumberGenerator()
        let rngLock = NSLock()
        let server = FakeServer { _ in
            rngLock.lock()
            defer { rngLock.unlock() }
            return Int.random(in: 0..<10, using: &rng) < 3 ? 503 : nil
        }
        let errors = Errors()
        let t = try Threadline(
            configJson: testConfig(extra: #","queue":{"persistDebounceMs":5}"#), storageDirectory: d,
            options: ThreadlineOptions(transport: server, errorHandler: errors.handler, noticeListener: { _ in })
        )
        defer { t.close() }
        let countLock = NSLock()
        var recorded = 0
        // Meanwhile the app goes to the background and back, and connectivity flaps.
        let stop = DispatchSemaphore(value: 0)
        let stopped = DispatchSemaphore(value: 0)
        Thread {
            var n = 0
            while stop.wait(timeout: .now() + .milliseconds(2)) == .timedOut {
                switch n % 3 {
                case 0: t.onBackground()
                case 1: t.onForeground()
                default: t.networkAvailable()
                }
                n += 1
            }
            stopped.signal()
        }.start()
        DispatchQueue.concurrentPerform(iterations: threads) { th in
            for i in 0..<iterations {
                var records = true
                switch StressTests.action(i) {
                case .identify: t.identify(userId: "user-\(th)", traits: ["plan": "pro", "i": i])
                case .screen: t.screen("Screen \(th)", properties: ["i": i])
                case .consent: t.setConsent(analytics: .granted); records = false
                case .flush: t.flush(); records = false
                case .stats: XCTAssertGreaterThanOrEqual(t.stats().accepted, 0); records = false
                case .track: t.track("Stress", properties: ["t": th, "i": i, "tags": ["a", "b"]])
                }
                if records {
                    countLock.lock()
                    recorded += 1
                    countLock.unlock()
                }
            }
        }
        stop.signal()
        XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success)
        t.flush()
        waitUntil("the queue drained", timeout: 60) { let s = t.stats(); return s.queued == 0 && s.inFlight == 0 }

        let s = t.stats()
        XCTAssertEqual(errors.all.count, 0, "nothing reported: \(errors.all)")
        XCTAssertEqual(s.accepted, Int64(recorded), "every call recorded once: \(s.raw)")
        XCTAssertEqual(s.delivered, s.accepted, "everything delivered: \(s.raw)")
        XCTAssertEqual(s.rejected, 0)
        XCTAssertGreaterThan(s.retries, 0, "the 503s caused retries: \(s.raw)")
        XCTAssertEqual(server.messageIds.count, recorded, "distinct messageIds at the server")
        XCTAssertEqual(server.events.count, recorded, "a 503 here stores nothing, so nothing arrives twice")
        let expected = threads * (0..<iterations).filter {
            [Action.identify, .screen, .track].contains(StressTests.action($0))
        }.count
        XCTAssertEqual(recorded, expected, "the calls that record an event")
    }
}
