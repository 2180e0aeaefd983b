import Foundation
import XCTest
@testable import Threadline
import ThreadlineBindings

/// The shared scenario of the cross-device story (this file is sdk-mobile/swift/Tests/ThreadlineTests/...):
/// its artifact, and the collector's answer about u-ann (the app's views and order of the slacks,
/// audience `loyal`), as `Profile::to_remote_json` writes it.
private let storySteps: [[String: Any]] = {
    let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    guard let data = try? Data(contentsOf: root.appendingPathComponent("tests/scenarios/sync-slacks-story.json")),
          let doc = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    else { return [] }
    return doc["steps"] as? [[String: Any]] ?? []
}()

private func jsonText(_ v: Any?) -> String {
    guard let v = v, let d = try? JSONSerialization.data(withJSONObject: v) else { return "" }
    return String(data: d, encoding: .utf8) ?? ""
}

private let storyArtifact = jsonText(storySteps.first { $0["op"] as? String == "loadRules" }?["artifact"])
private let annProfile = jsonText(
    (storySteps.first { $0["op"] as? String == "profileFetch" && $0["reply"] is [String: Any] }?["reply"]
        as? [String: Any])?["profile"]
)

/// A collector's `GET /v1/profile` behind `ProfileTransport`: 200 with `body` for the valid token, else
/// 401, as the collector answers; records each request (Kotlin: a local HttpServer).
final class FakeProfileServer: ProfileTransport {
    private let lock = NSLock()
    private let body: String
    private var valid: String
    private var seen: [(url: String, token: String)] = []

    init(validToken: String, body: String) {
        valid = validToken
        self.body = body
    }

    var validToken: String {
        get { lock.lock(); defer { lock.unlock() }; return valid }
        set { lock.lock(); valid = newValue; lock.unlock() }
    }

    func get(url: String, token: String) throws -> ProfileResult {
        lock.lock()
        seen.append((url, token))
        let ok = token == valid
        lock.unlock()
        return ok ? ProfileResult(status: 200, body: Data(body.utf8)) : ProfileResult(status: 401)
    }

    var requests: [(url: String, token: String)] { lock.lock(); defer { lock.unlock() }; return seen }
}

/// One to one with the Kotlin ProfileSyncTest.
final class ProfileSyncTests: XCTestCase {
    private var dirs: [URL] = []
    private var clients: [Threadline] = []

    override func setUp() {
        super.setUp()
        uniffiEnsureSdkMobileInitialized()
        XCTAssertFalse(storyArtifact.isEmpty || annProfile.isEmpty, "tests/scenarios/sync-slacks-story.json")
    }

    override func tearDown() {
        clients.forEach { $0.close() }
        clients = []
        for d in dirs { try? FileManager.default.removeItem(at: d) }
        dirs = []
        super.tearDown()
    }

    private func client(
        _ endpoint: String, events: FakeServer, profiles: ProfileTransport, errors: Errors, notices: Notices
    ) throws -> Threadline {
        let config = ThreadlineConfig(endpoint: endpoint, writeKey: "wk") {
            $0.consentDefault = .granted
            $0.batchMaxAgeMs = 0
            $0.rulesArtifact = storyArtifact
        }
        let d = tempDir("sync")
        dirs.append(d)
        let c = try Threadline(
            config: config, storageDirectory: d,
            options: ThreadlineOptions(
                transport: events, errorHandler: errors.handler, noticeListener: notices.listener,
                profileTransport: profiles
            )
        )
        clients.append(c)
        return c
    }

    private func home(_ t: Threadline) -> String? { t.decide("home").first?.offerId }

    func testTheAppFetchesThePersonsProfileWithTheirTokenAndDropsItWhenRefused() throws {
        let collector = FakeProfileServer(validToken: "t1", body: annProfile)
        let events = FakeServer()
        let errors = Errors()
        let notices = Notices()
        let t = try client("https://collector.example.com", events: events, profiles: collector, errors: errors,
                           notices: notices)
        for _ in 0..<2 { t.track("Product Viewed", properties: ["productId": "slacks-01"]) }
        XCTAssertEqual(home(t), "slacks-discount")

        t.identify(userId: "u-ann", traits: ["plan": "basic"])
        waitUntil("the identify delivered") { events.events.contains { $0["type"] as? String == "identify" } }
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(collector.requests.count, 0, "without a token nothing is asked")

        t.identify(userId: "u-ann", userToken: "t1")
        waitUntil("profileSynced") { notices.all.contains(.profileSynced(audiences: ["loyal"])) }
        let first = try XCTUnwrap(collector.requests.first)
        XCTAssertEqual(first.token, "t1")
        let device = try XCTUnwrap(t.identity().deviceId)
        XCTAssertEqual(first.url, "https://collector.example.com/v1/profile?userId=u-ann&exclude=\(device)")
        XCTAssertEqual(home(t), "loyal-perk", "the phone's order of the slacks suppresses the discount here")

        collector.validToken = "t2"
        t.refreshProfile()
        waitUntil("profileSyncRefused") { notices.all.contains(.profileSyncRefused(status: 401)) }
        waitUntil("the refusal reported") { errors.kinds.contains("sync.unauthorized") }
        XCTAssertEqual(home(t), "slacks-discount", "this device's history only")
        t.refreshProfile()
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(collector.requests.count, 2, "nothing is asked without a new token")

        t.identify(userId: "u-ann", userToken: "t2")
        waitUntil("synced again") { notices.all.filter { $0 == .profileSynced(audiences: ["loyal"]) }.count == 2 }
        XCTAssertEqual(collector.requests.last?.token, "t2")
        XCTAssertEqual(home(t), "loyal-perk")
    }

    func testEventsNameTheIosLibraryUnlessTheConfigurationNamesOne() throws {
        let events = FakeServer()
        let t = try client("https://collector.example.com", events: events,
                           profiles: FakeProfileServer(validToken: "-", body: "{}"), errors: Errors(), notices: Notices())
        t.track("A")
        waitUntil("delivered") { !events.named("A").isEmpty }
        let library = (events.named("A").first?["context"] as? [String: Any])?["library"] as? [String: Any]
        XCTAssertEqual(library?["name"] as? String, "threadline-ios")
        XCTAssertEqual(library?["version"] as? String, coreVersion())

        let own = #"{"endpoint":"https://c.test","writeKey":"wk","library":{"name":"my-app","version":"9"}}"#
        XCTAssertEqual(Threadline.withDefaultLibrary(own, name: "threadline-ios"), own, "kept byte for byte")
        XCTAssertEqual(Threadline.withDefaultLibrary("not json", name: "threadline-ios"), "not json")
        let added = JSON.parseObject(Threadline.withDefaultLibrary(#" {"writeKey":"wk"}"#, name: "x"))
        XCTAssertEqual((added["library"] as? [String: Any])?["name"] as? String, "x")
        XCTAssertEqual(added["writeKey"] as? String, "wk")
        XCTAssertEqual(Set(JSON.parseObject(Threadline.withDefaultLibrary("{}", name: "x")).keys), ["library"])
    }
}
