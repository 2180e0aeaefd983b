import Foundation
import XCTest
@testable import Threadline
import ThreadlineBindings

/// The repository's shop artifact (this file is sdk-mobile/swift/Tests/ThreadlineTests/...).
private let shop: String = {
    let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    return (try? String(contentsOf: root.appendingPathComponent("tests/artifacts/shop.json"), encoding: .utf8)) ?? ""
}()
private let revision = "demo-shop-2026-11-24"

/// A rules CDN behind `RulesTransport`: serves `body` with an ETag, 304 to a matching If-None-Match,
/// and records what each request carried (Kotlin: a local HttpServer).
final class FakeRulesServer: RulesTransport {
    private let lock = NSLock()
    private let body: String
    private let etag: String
    private var seen: [String?] = []

    init(body: String, etag: String = "\"r1\"") {
        self.body = body
        self.etag = etag
    }

    func get(url: String, etag sent: String?) throws -> RulesResult {
        lock.lock()
        seen.append(sent)
        lock.unlock()
        if sent == etag { return RulesResult(status: 304, etag: etag) }
        return RulesResult(status: 200, etag: etag, body: Data(body.utf8))
    }

    var ifNoneMatch: [String?] { lock.lock(); defer { lock.unlock() }; return seen }
}

/// One to one with the Kotlin DecisionsTest.
final class DecisionsTests: XCTestCase {
    private var dirs: [URL] = []
    private var clients: [Threadline] = []

    override func setUp() {
        super.setUp()
        uniffiEnsureSdkMobileInitialized()
        XCTAssertFalse(shop.isEmpty, "tests/artifacts/shop.json")
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
        _ dir: URL, server: FakeServer = FakeServer(), rules: RulesTransport = FakeRulesServer(body: shop),
        errors: Errors = Errors(), notices: Notices? = nil, _ configure: (inout ThreadlineConfig) -> Void = { _ in }
    ) throws -> Threadline {
        let config = ThreadlineConfig(endpoint: "https://collector.example.com", writeKey: "wk") {
            $0.consentDefault = .granted
            $0.batchMaxAgeMs = 0
            configure(&$0)
        }
        let c = try Threadline(
            config: config, storageDirectory: dir,
            options: ThreadlineOptions(
                transport: server, errorHandler: errors.handler, noticeListener: notices?.listener,
                rulesTransport: rules
            )
        )
        clients.append(c)
        return c
    }

    private func viewSlacks(_ t: Threadline) {
        for _ in 0..<2 { t.track("Product Viewed", properties: ["productId": "slacks-01"]) }
    }

    private func home(_ t: Threadline) -> Decision? {
        let d = t.decide("home")
        XCTAssertEqual(d.count, 1)
        return d.first
    }

    func testFetchesWithEtagRevalidatesWith304AndIsReady() throws {
        let cdn = FakeRulesServer(body: shop)
        let notices = Notices()
        let t = try client(dir("fetch"), rules: cdn, notices: notices) { $0.rulesUrl = "https://cdn.example.com/shop.json" }
        XCTAssertTrue(t.ready(timeoutMs: 10_000))
        XCTAssertEqual(t.rulesRevision, revision)
        XCTAssertEqual(cdn.ifNoneMatch, [nil])
        waitUntil("RulesLoaded notice") { notices.all.contains(.rulesLoaded(revision: revision)) }
        t.refreshRules()
        waitUntil("the revalidation") { cdn.ifNoneMatch.count == 2 }
        XCTAssertEqual(cdn.ifNoneMatch[1], "\"r1\"")
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(t.rulesRevision, revision, "a 304 keeps the artifact")
    }

    func testSlacksStoryEndToEndWithFeedbackAtTheCollector() throws {
        let server = FakeServer()
        let errors = Errors()
        let t = try client(dir("story"), server: server, errors: errors) { $0.rulesArtifact = shop }
        XCTAssertTrue(t.ready(timeoutMs: 0))
        XCTAssertNotEqual(home(t)?.offerId, "slacks-discount")
        viewSlacks(t)
        let d = try XCTUnwrap(home(t))
        XCTAssertEqual(d.offerId, "slacks-discount")
        XCTAssertEqual(d.contentMap()["code"] as? String, "SLACKS10")
        let shown = try XCTUnwrap(t.displayed(d))
        XCTAssertNil(t.displayed(d))
        let clicked = try XCTUnwrap(t.clicked(d))
        t.track("Order Completed", properties: ["products": [["productId": "slacks-01"]]])
        XCTAssertEqual(home(t)?.offerId, "vip-shipping")
        t.flush()
        waitUntil("feedback uploaded") { server.messageIds.isSuperset(of: [shown, clicked]) }
        for e in server.events where [shown, clicked].contains(e["messageId"] as? String) {
            let p = e["properties"] as? [String: Any] ?? [:]
            XCTAssertEqual(p["decisionId"] as? String, d.decisionId)
            XCTAssertEqual(p["offerId"] as? String, "slacks-discount")
        }
        XCTAssertEqual(t.decide("nowhere"), [])
        XCTAssertEqual(errors.kinds, ["decide.unknownPlacement"])
        XCTAssertFalse(t.loadRules(#"{"version":1}"#))
        XCTAssertEqual(errors.kinds.last, "rules.artifact")
        XCTAssertEqual(t.rulesRevision, revision)
    }

    func testDecideManyAnswersPerPlacementAndReportsRefusals() throws {
        let errors = Errors()
        let none = try client(dir("many-none"), errors: errors)
        XCTAssertEqual(none.decideMany(["home", "hero"]), [:], "no artifact: empty, not an error")
        XCTAssertEqual(errors.kinds, [])
        let t = try client(dir("many"), errors: errors) { $0.rulesArtifact = shop }
        viewSlacks(t)
        let many = t.decideMany(["hero", "home"])
        XCTAssertEqual(Set(many.keys), ["hero", "home"])
        XCTAssertEqual(many["home"]?.map(\.offerId), ["slacks-discount"])
        for (placement, ds) in many {
            let one = t.decide(placement)
            XCTAssertEqual(one.map(\.offerId), ds.map(\.offerId), placement)
            XCTAssertEqual(one.map(\.variantId), ds.map(\.variantId), placement)
        }
        XCTAssertEqual(t.decideMany(["home", "nowhere"]), [:])
        XCTAssertEqual(t.decideMany(["home"], context: ["bad": NSObject()]), [:])
        XCTAssertEqual(errors.kinds, ["decide.unknownPlacement", "decide.invalidContext"])
    }

    func testABadArtifactFromTheServerIsRefusedAndTheBundledOneStays() throws {
        let errors = Errors()
        let t = try client(dir("bad"), rules: FakeRulesServer(body: #"{"version":1,"placements":5}"#), errors: errors) {
            $0.rulesUrl = "https://cdn.example.com/shop.json"
            $0.rulesArtifact = shop.replacingOccurrences(of: revision, with: "bundled-1")
        }
        waitUntil("the refusal reported") { errors.kinds.contains("rules.artifact") }
        XCTAssertTrue(t.rulesReady)
        XCTAssertEqual(t.rulesRevision, "bundled-1")
    }
}
