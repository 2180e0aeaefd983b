import Foundation
import XCTest
@testable import Threadline

/// A fresh, empty directory per test.
func tempDir(_ name: String) -> URL {
    let d = FileManager.default.temporaryDirectory
        .appendingPathComponent("tl-swift-\(name)-\(UUID().uuidString)", isDirectory: true)
    try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

func files(_ dir: URL) -> Set<String> {
    Set((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
}

/// Polls `check` every 10 ms until it holds or `timeout` seconds pass (then fails with `what`).
func waitUntil(
    _ what: String, timeout: TimeInterval = 20, file: StaticString = #filePath, line: UInt = #line,
    _ check: () -> Bool
) {
    let end = Date(timeIntervalSinceNow: timeout)
    while !check() {
        if Date() > end {
            XCTFail("timed out after \(timeout) s waiting for: \(what)", file: file, line: line)
            return
        }
        Thread.sleep(forTimeInterval: 0.01)
    }
}

/// Collects what the SDK reports to its error handler. Thread-safe.
final class Errors {
    private let lock = NSLock()
    private var list: [ThreadlineError] = []

    var handler: (ThreadlineError) -> Void { { [self] e in lock.lock(); list.append(e); lock.unlock() } }
    var all: [ThreadlineError] { lock.lock(); defer { lock.unlock() }; return list }
    var kinds: [String] { all.map(\.kind) }
}

/// Collects notices. Thread-safe.
final class Notices {
    private let lock = NSLock()
    private var list: [Notice] = []

    var listener: (Notice) -> Void { { [self] n in lock.lock(); list.append(n); lock.unlock() } }
    var all: [Notice] { lock.lock(); defer { lock.unlock() }; return list }
}

/// An in-memory collector behind the `Transport` protocol: remembers every accepted event (parsed),
/// answers per `fail` (request number -> status, nil = 200). Thread-safe.
final class FakeServer: Transport {
    private let lock = NSLock()
    private let fail: (Int) -> Int?
    private var count = 0
    private var received: [[String: Any]] = []
    private var headers: [[String: String]] = []

    init(fail: @escaping (Int) -> Int? = { _ in nil }) { self.fail = fail }

    func post(url: String, headers: [String: String], body: Data) throws -> TransportResult {
        lock.lock()
        let n = count
        count += 1
        self.headers.append(headers)
        lock.unlock()
        if let status = fail(n) { return .response(status: status, retryAfter: nil) }
        let root = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        let batch = root?["batch"] as? [[String: Any]] ?? []
        lock.lock()
        received.append(contentsOf: batch)
        lock.unlock()
        return .response(status: 200, retryAfter: nil)
    }

    var requests: Int { lock.lock(); defer { lock.unlock() }; return count }
    var events: [[String: Any]] { lock.lock(); defer { lock.unlock() }; return received }
    var headersSeen: [[String: String]] { lock.lock(); defer { lock.unlock() }; return headers }
    var messageIds: Set<String> { Set(events.compactMap { $0["messageId"] as? String }) }
    func named(_ name: String) -> [[String: Any]] {
        events.filter { ($0["event"] as? String) == name || ($0["name"] as? String) == name }
    }
}

/// Sends at once, retries within milliseconds, never gives up (the Kotlin tests' `testConfig`).
func testConfig(
    endpoint: String = "https://collector.example.com", extra: String = "", batch: String = #"{"maxAgeMs":0}"#
) -> String {
    """
    {"endpoint":"\(endpoint)","writeKey":"demo-write-key","batch":\(batch),
     "retry":{"baseBackoffMs":1,"maxBackoffMs":20,"maxAttempts":100000}\(extra)}
    """
}

/// A `Transport` from a closure (Kotlin's `Transport` is a fun interface).
final class ClosureTransport: Transport {
    private let f: (String, [String: String], Data) throws -> TransportResult
    init(_ f: @escaping (String, [String: String], Data) throws -> TransportResult) { self.f = f }
    func post(url: String, headers: [String: String], body: Data) throws -> TransportResult {
        try f(url, headers, body)
    }
}
