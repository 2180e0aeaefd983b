import Foundation
import XCTest
@testable import Threadline

/// The Swift-side JSON step: what it writes reads back as the same value, and what has no JSON form is
/// refused with a kind instead of crashing in JSONSerialization (mirrors the Kotlin JsonWriterTest).
final class JSONTests: XCTestCase {
    private func roundTrip(_ v: [String: Any]) throws -> [String: Any] {
        let s = try JSON.write(v)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
    }

    private func kind(_ v: Any) -> String? {
        do {
            _ = try JSON.write(v)
            return nil
        } catch let e as JSONFailure {
            return e.kind
        } catch {
            return "unexpected: \(error)"
        }
    }

    func testWritesScalarsAndNestedStructures() throws {
        let optionalNil: String? = nil
        let optionalSome: String? = "x"
        let back = try roundTrip([
            "s": "q\"\\\n\u{1}é😀", "i": 42, "neg": -7, "d": 2.5, "t": true, "f": false,
            "big": Int64.max, "null": NSNull(), "none": optionalNil as Any, "some": optionalSome as Any,
            "list": [1, [] as [Any], [:] as [String: Any]] as [Any], "nested": ["a": ["b": ["c"]]],
            "char": Character("q"), "url": URL(string: "https://example.com/a?b=1")!, "set": Set(["only"]),
            "enum": Choice.granted,
        ])
        XCTAssertEqual(back["enum"] as? String, "granted", "an enum is its raw value")
        XCTAssertEqual(back["set"] as? [String], ["only"], "a Set is an array")
        XCTAssertEqual(back["s"] as? String, "q\"\\\n\u{1}é😀")
        XCTAssertEqual(back["i"] as? Int, 42)
        XCTAssertEqual(back["neg"] as? Int, -7)
        XCTAssertEqual(back["d"] as? Double, 2.5)
        XCTAssertEqual(back["t"] as? Bool, true)
        XCTAssertEqual(back["f"] as? Bool, false)
        XCTAssertEqual((back["big"] as? NSNumber)?.int64Value, Int64.max)
        XCTAssertTrue(back["null"] is NSNull)
        XCTAssertTrue(back["none"] is NSNull, "an Optional.none inside Any is null")
        XCTAssertEqual(back["some"] as? String, "x", "an Optional.some inside Any is its value")
        XCTAssertEqual((back["list"] as? [Any])?.count, 3)
        XCTAssertEqual(((back["nested"] as? [String: Any])?["a"] as? [String: Any])?["b"] as? [String], ["c"])
        XCTAssertEqual(back["char"] as? String, "q")
        XCTAssertEqual(back["url"] as? String, "https://example.com/a?b=1")
        XCTAssertFalse(try JSON.write(["u": "/</script>"]).contains("\\/"), "slashes need no escape")
    }

    func testBooleansStayBooleansAndNumbersStayNumbers() throws {
        let s = try JSON.write(["t": true, "one": 1, "zero": 0.0])
        XCTAssertTrue(s.contains("\"t\":true"), s)
        XCTAssertTrue(s.contains("\"one\":1"), s)
        XCTAssertFalse(s.contains("\"one\":true"), s)
    }

    func testWritesDatesAsIsoUtcWithMilliseconds() throws {
        XCTAssertEqual(try JSON.write(Date(timeIntervalSince1970: 0)), "\"1970-01-01T00:00:00.000Z\"")
        // .5 is exact in binary floating point, so no rounding question arises.
        XCTAssertEqual(try JSON.write(Date(timeIntervalSince1970: 1_709_251_199.5)), "\"2024-02-29T23:59:59.500Z\"")
        XCTAssertEqual(try JSON.write(Date(timeIntervalSince1970: -0.5)), "\"1969-12-31T23:59:59.500Z\"")
    }

    func testRefusesNumbersWithoutJsonForm() {
        for bad in [Double.nan, .infinity, -.infinity] {
            XCTAssertEqual(kind(["x": bad]), "event.notSerializable", "\(bad)")
        }
        XCTAssertEqual(kind(["x": Float.nan]), "event.notSerializable")
        XCTAssertEqual(kind(["x": NSDecimalNumber.notANumber]), "event.notSerializable")
    }

    func testRefusesWhatHasNoJsonForm() {
        final class Opaque {}
        XCTAssertEqual(kind(["x": Opaque()]), "event.notSerializable")
        XCTAssertEqual(kind(["x": NSDictionary(dictionary: [1: "x"])]), "event.notSerializable")
        XCTAssertEqual(kind(["x": Data([1, 2])]), "event.notSerializable")
        // A cycle through Foundation containers: refused by depth, not a stack overflow.
        let cycle = NSMutableDictionary()
        cycle["self"] = cycle
        XCTAssertEqual(kind(["c": cycle]), "event.tooDeep")
        cycle.removeAllObjects() // break the cycle for ARC
        var deep: Any = "leaf"
        for _ in 0..<(JSON.maxDepth + 1) { deep = [deep] }
        XCTAssertEqual(kind(["d": deep]), "event.tooDeep")
    }

    func testNilPropertiesStayNil() throws {
        XCTAssertNil(try JSON.writeObject(nil))
        XCTAssertEqual(try JSON.writeObject([:]), "{}")
    }

    func testConfigBuilderWritesNestedKeys() throws {
        var c = ThreadlineConfig(endpoint: "https://c.example", writeKey: "wk") {
            $0.consentDefault = .pending
            $0.batchMaxEvents = 20
        }
        c.set("retry.maxAttempts", 5)
        let m = JSON.parseObject(try c.toJson())
        XCTAssertEqual(m["endpoint"] as? String, "https://c.example")
        XCTAssertEqual((m["consent"] as? [String: Any])?["default"] as? String, "pending")
        XCTAssertEqual((m["batch"] as? [String: Any])?["maxEvents"] as? Int, 20)
        XCTAssertEqual((m["retry"] as? [String: Any])?["maxAttempts"] as? Int, 5)
        c.set("endpoint.x", 1)
        XCTAssertThrowsError(try c.toJson(), "a path through a string is refused")
    }
}
