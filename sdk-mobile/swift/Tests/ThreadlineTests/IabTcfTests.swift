import Foundation
import XCTest
@testable import Threadline

/// Reading the CMP's IAB TCF keys with the types CMPs really store, and re-applying on a change.
final class IabTcfTests: XCTestCase {
    private func read(_ m: [String: Any]) throws -> IabTcf.Values { try IabTcf.read { m[$0] } }

    func testAcceptsTheTypesCmpsStore() throws {
        XCTAssertEqual(try read([:]), IabTcf.Values(tcString: nil, gdprApplies: nil))
        XCTAssertEqual(try read([IabTcf.gdprApplies: NSNumber(value: 1)]).gdprApplies, 1)
        XCTAssertEqual(try read([IabTcf.gdprApplies: 0]).gdprApplies, 0)
        XCTAssertEqual(try read([IabTcf.gdprApplies: true]).gdprApplies, 1)
        XCTAssertEqual(try read([IabTcf.gdprApplies: false]).gdprApplies, 0)
        XCTAssertEqual(try read([IabTcf.gdprApplies: " 1 "]).gdprApplies, 1)
        XCTAssertNil(try read([IabTcf.gdprApplies: ""]).gdprApplies, "empty means not set")
        XCTAssertEqual(try read([IabTcf.tcString: "CPx"]).tcString, "CPx")
        XCTAssertNil(try read([IabTcf.tcString: "  "]).tcString, "blank means not set")
    }

    func testRefusesWhatNoCmpShouldStore() {
        XCTAssertEqual(try read([IabTcf.gdprApplies: 2]).gdprApplies, 2, "out-of-range values are the core's to refuse")
        XCTAssertThrowsError(try read([IabTcf.gdprApplies: "yes"]))
        XCTAssertThrowsError(try read([IabTcf.gdprApplies: 1.5]))
        XCTAssertThrowsError(try read([IabTcf.gdprApplies: Float(1.5)]))
        XCTAssertThrowsError(try read([IabTcf.gdprApplies: Int64.max]))
        XCTAssertThrowsError(try read([IabTcf.gdprApplies: Date()]))
        XCTAssertThrowsError(try read([IabTcf.gdprApplies: 1, IabTcf.tcString: 42]))
    }

    func testFacadeReportsBadValuesAsConsentTcfAndChangesNothing() throws {
        let dir = tempDir("iab-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let errors = Errors()
        let t = try Threadline(
            configJson: testConfig(extra: #","consent":{"default":"pending"}"#), storageDirectory: dir,
            options: ThreadlineOptions(transport: FakeServer(), errorHandler: errors.handler)
        )
        defer { t.close() }
        XCTAssertNil(t.applyIabTcf { $0 == IabTcf.gdprApplies ? "maybe" : nil })
        XCTAssertEqual(errors.kinds, ["consent.tcf"])
        XCTAssertEqual(t.consent().analytics, .pending)
        // gdprApplies 2 is a number, so the reader passes it on; the core refuses it.
        XCTAssertNil(t.applyIabTcf(tcString: nil, gdprApplies: 2))
        XCTAssertEqual(errors.kinds.last, "consent.invalid")
        if case .invalidConsent? = errors.all.last {} else { XCTFail("not invalidConsent: \(errors.all)") }
        XCTAssertEqual(t.consent().analytics, .pending)
    }

    func testUserDefaultsObserverAppliesNowAndOnChange() throws {
        let suite = "dev.threadline.tests.\(UUID().uuidString)"
        let defaults = try XCTUnwrap(UserDefaults(suiteName: suite))
        defer { defaults.removePersistentDomain(forName: suite) }
        let dir = tempDir("iab-observer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let errors = Errors()
        let t = try Threadline(
            configJson: testConfig(extra: #","consent":{"default":"pending"}"#), storageDirectory: dir,
            options: ThreadlineOptions(transport: FakeServer(), errorHandler: errors.handler)
        )
        defer { t.close() }
        let observer = IabTcfConsent(t, defaults: defaults)
        observer.start()
        XCTAssertEqual(t.consent().analytics, .pending, "no CMP values stored: the default stays")

        // A CMP says GDPR does not apply: the TCF-mapped purposes need no consent.
        defaults.set(0, forKey: IabTcf.gdprApplies)
        waitUntil("gdprApplies=0 applied") { t.consent().analytics == .granted }

        // A malformed value later is reported, and consent stays as it was.
        defaults.set("garbage", forKey: IabTcf.gdprApplies)
        waitUntil("the bad value reported") { errors.kinds.contains("consent.tcf") }
        XCTAssertEqual(t.consent().analytics, .granted)

        // After stop(), changes are no longer applied.
        observer.stop()
        let before = errors.all.count
        defaults.set("still garbage", forKey: IabTcf.gdprApplies)
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(errors.all.count, before)
    }
}
