// Proves that the runner can fail: a small valid scenario must pass, and every
// damaged variant of it (invalid JSON, unknown key or op, malformed value,
// unbound symbol, and one wrong expectation of each kind) must be reported as
// a failure with the expected reason. Run before the scenario files, so a
// runner that silently skips checks cannot report "all passed".
package dev.threadline.sdk.scenarios

import java.io.File
import java.nio.file.Files

private const val BASE_STEPS = """
    {"op": "track", "event": "A", "as": "a"},
    {"op": "track", "event": "B", "as": "b", "properties": "{\"n\":1}"},
    {"op": "expect", "stored": {"queue": false}, "nextUpload": {"waitUntil": 5000}, "pollTimeout": 1000},
    {"op": "advance", "ms": 1000},
    {"op": "expect", "stored": {"queue": true, "queueIds": ["a", "b"]}, "storeOps": ["write:queue", "write:identity"], "wiped": false},
    {"op": "track", "event": "C", "as": "c"},
    {"op": "pump", "all": 200},
    {"op": "expect", "uploads": [{"transport": "fetch", "count": 3, "ids": ["a", "b", "_"], "names": ["A", "B", "C"],
      "events": [{"messageId": {"${'$'}eq": "a"}, "anonymousId": {"${'$'}as": "dev"}}, {"properties.n": 1}, {"timestamp": {"${'$'}present": true}}],
      "every": {"context.library.name": "scenario", "anonymousId": {"${'$'}eq": "dev"}}}],
     "stats": {"delivered": 3, "queued": 0, "accepted": 3}, "identity": {"deviceId": {"${'$'}eq": "dev"}},
     "consent": {"analytics": "granted"}, "notices": []},
    {"op": "identify", "ids": "{\"email\":\"nope\"}", "error": "identity.badEmail"},
    {"op": "loadRules", "artifact": {"version": 1, "bucketing": "murmur3_x86_32/v1",
      "placements": [{"id": "p", "default": {"id": "p-default", "content": {}}}],
      "offers": [{"id": "o", "placement": "p", "priority": 1, "content": {}}]}},
    {"op": "decide", "placement": "p", "as": "d", "expect": [{"offerId": "o", "isDefault": false}]},
    {"op": "displayed", "decision": "d.0", "expect": "recorded", "as": "shown"},
    {"op": "displayed", "decision": "d.0", "expect": "duplicate"},
    {"op": "expect", "notices": ["rulesLoaded"], "stored": {"rules": true}}
"""

private fun scenario(steps: String = BASE_STEPS, extraTop: String = ""): String = """
{"name": "self-test", "seed": "self-test"$extraTop,
 "config": {"endpoint": "https://collector.test", "writeKey": "wk", "library": {"name": "scenario", "version": "1"},
            "batch": {"maxEvents": 3, "maxAgeMs": 5000}},
 "steps": [$steps]}
"""

private fun appended(step: String) = scenario("$BASE_STEPS, $step")

/** name, file text, the fragment the failure message must contain. */
private val MUTANTS: List<Triple<String, String, String>> = listOf(
    Triple("comment", scenario() + "// trailing", "not JSON"),
    Triple("trailing comma", scenario("$BASE_STEPS,"), "not JSON"),
    Triple("single quotes", scenario().replace("\"A\"", "'A'"), "not JSON"),
    Triple("duplicate key", scenario(extraTop = ", \"seed\": \"x\""), "duplicate key"),
    Triple("unknown top-level key", scenario(extraTop = ", \"sede\": \"x\""), "unknown key"),
    Triple("missing steps", scenario().replace("\"steps\"", "\"stepz\""), "\"steps\" must be a list"),
    Triple("unknown op", appended("""{"op": "tarck", "event": "X"}"""), "unknown step op"),
    Triple("unknown step key", appended("""{"op": "track", "event": "X", "propertys": "{}"}"""), "unknown key"),
    Triple("malformed ms", appended("""{"op": "advance", "ms": -1}"""), "must be a number"),
    Triple("float ms", appended("""{"op": "advance", "ms": 1.5}"""), "must be a number"),
    Triple("string properties expected", appended("""{"op": "track", "event": "X", "properties": {}}"""), "must be a string"),
    Triple("unknown matcher", appended("""{"op": "expect", "stats": {"queued": {"${'$'}gt": 1}}}"""), "unknown matcher"),
    Triple("unbound symbol", appended("""{"op": "expect", "identity": {"deviceId": {"${'$'}eq": "nobody"}}}"""), "unknown symbol"),
    Triple("symbol bound twice", appended("""{"op": "track", "event": "X", "as": "a"}"""), "bound twice"),
    Triple("unknown expect key", appended("""{"op": "expect", "upload": []}"""), "unknown key"),
    Triple("unknown upload key", scenario(BASE_STEPS.replace("\"transport\": \"fetch\"", "\"transprt\": \"fetch\"")), "unknown key"),
    Triple("upload count", scenario(BASE_STEPS.replace("\"count\": 3", "\"count\": 2")), "expected 2 event(s)"),
    Triple("upload transport", scenario(BASE_STEPS.replace("\"transport\": \"fetch\"", "\"transport\": \"beacon\"")), "expected transport"),
    Triple("upload ids", scenario(BASE_STEPS.replace("[\"a\", \"b\", \"_\"]", "[\"b\", \"a\", \"_\"]")), "messageId"),
    Triple("upload names", scenario(BASE_STEPS.replace("[\"A\", \"B\", \"C\"]", "[\"A\", \"C\", \"B\"]")), "expected names"),
    Triple("event field", scenario(BASE_STEPS.replace("{\"properties.n\": 1}", "{\"properties.n\": 2}")), "properties.n"),
    Triple("integer is not a float", scenario(BASE_STEPS.replace("{\"properties.n\": 1}", "{\"properties.n\": 1.0}")), "properties.n"),
    Triple("every field", scenario(BASE_STEPS.replace("\"context.library.name\": \"scenario\"", "\"context.library.name\": \"x\"")), "context.library.name"),
    Triple("upload count total", appended("""{"op": "expect", "uploads": [{}]}"""), "expected 1 upload(s), got 0"),
    Triple("stats", appended("""{"op": "expect", "stats": {"delivered": 4}}"""), "stats delivered"),
    Triple("consent", appended("""{"op": "expect", "consent": {"analytics": "denied"}}"""), "consent analytics"),
    Triple("identity", appended("""{"op": "expect", "identity": {"userId": "u"}}"""), "identity userId"),
    Triple("notices", appended("""{"op": "expect", "notices": ["sessionStarted"]}"""), "expected notices"),
    Triple("wiped", appended("""{"op": "expect", "wiped": true}"""), "expected wiped"),
    Triple("storeOps", scenario(BASE_STEPS.replace("\"write:queue\", \"write:identity\"", "\"write:identity\", \"write:queue\"")), "expected storeOps"),
    Triple("pollTimeout", scenario(BASE_STEPS.replace("\"pollTimeout\": 1000", "\"pollTimeout\": 999")), "expected pollTimeout"),
    Triple("pollTimeout null", scenario(BASE_STEPS.replace("\"pollTimeout\": 1000", "\"pollTimeout\": null")), "expected pollTimeout"),
    Triple("nextUpload", scenario(BASE_STEPS.replace("{\"waitUntil\": 5000}", "{\"waitUntil\": 5001}")), "expected nextUpload"),
    Triple("nextUpload due", appended("""{"op": "track", "event": "X"}, {"op": "flush"}, {"op": "expect", "nextUpload": "idle"}"""), "was due"),
    Triple("stored", scenario(BASE_STEPS.replace("\"stored\": {\"queue\": false}", "\"stored\": {\"queue\": true}")), "stored.queue"),
    Triple("stored queueIds", scenario(BASE_STEPS.replace("\"queueIds\": [\"a\", \"b\"]", "\"queueIds\": [\"a\"]")), "stored.queueIds"),
    Triple("error expected", appended("""{"op": "track", "event": "X", "error": "event.empty"}"""), "expected error"),
    Triple("wrong error kind", scenario(BASE_STEPS.replace("identity.badEmail", "identity.badPhone")), "expected error"),
    Triple("unexpected error", scenario(BASE_STEPS.replace(", \"error\": \"identity.badEmail\"", "")), "unexpected error"),
    Triple("at matcher", appended("""{"op": "expect", "identity": {"session.start": {"${'$'}at": 1}}}"""), "expected start + 1"),
    Triple("unknown held upload", appended("""{"op": "finish", "upload": "h", "reply": 200}"""), "no held upload"),
    Triple("decision offerId", scenario(BASE_STEPS.replace("\"offerId\": \"o\"", "\"offerId\": \"p-default\"")), "decision 0 offerId"),
    Triple("decision isDefault", scenario(BASE_STEPS.replace("\"isDefault\": false", "\"isDefault\": true")), "decision 0 isDefault"),
    Triple("decision variantId", scenario(BASE_STEPS.replace("\"isDefault\": false", "\"isDefault\": false, \"variantId\": \"v\"")), "decision 0 variantId"),
    Triple("decision count", scenario(BASE_STEPS.replace("[{\"offerId\": \"o\", \"isDefault\": false}]", "[]")), "expected 0 decision(s)"),
    Triple("decision key", scenario(BASE_STEPS.replace("\"isDefault\": false", "\"isDefault\": false, \"offer\": 1")), "unknown key"),
    Triple("feedback duplicate", scenario(BASE_STEPS.replace("\"expect\": \"duplicate\"", "\"expect\": \"recorded\"")), "expected recorded"),
    Triple("unknown decision", appended("""{"op": "clicked", "decision": "x.0", "expect": "recorded"}"""), "unknown decision"),
    Triple("rules error kind", appended("""{"op": "loadRules", "artifact": "{", "error": "rules.signature"}"""), "expected error"),
    Triple("rules fetch", appended("""{"op": "rulesFetch", "expect": {"etag": null}, "reply": {"status": 304}}"""), "no request was due"),
    Triple("stored rules", scenario(BASE_STEPS.replace("\"stored\": {\"rules\": true}", "\"stored\": {\"rules\": false}")), "stored.rules"),
)

/** Returns the number of mutants detected; throws ScenarioFailure if the base fails or a mutant passes. */
fun selfTest(): Int {
    val dir = Files.createTempDirectory("tl-scenario-selftest-").toFile()
    try {
        fun runText(text: String): String? {
            val f = File(dir, "self-test.json")
            f.writeText(text)
            return try {
                runFile(f, mutableListOf())
                null
            } catch (e: ScenarioFailure) {
                e.message ?: "?"
            }
        }
        runText(scenario())?.let { fail("self-test: the base scenario fails: $it") }
        val problems = MUTANTS.mapNotNull { (name, text, fragment) ->
            val msg = runText(text)
            when {
                msg == null -> "the mutant \"$name\" passed; the runner misses it"
                !msg.contains(fragment) -> "the mutant \"$name\" failed for another reason than \"$fragment\": $msg"
                else -> null
            }
        }
        if (problems.isNotEmpty()) fail("self-test:\n  " + problems.joinToString("\n  "))
        return MUTANTS.size
    } finally {
        dir.deleteRecursively()
    }
}
