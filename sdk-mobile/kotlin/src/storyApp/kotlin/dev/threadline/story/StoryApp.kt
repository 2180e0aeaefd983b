package dev.threadline.story

import dev.threadline.Choice
import dev.threadline.Notice
import dev.threadline.Threadline
import dev.threadline.ThreadlineConfig
import dev.threadline.ThreadlineOptions
import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

/**
 * "The app" of the cross-device story for end-to-end tests: the shopper's Android session, through the
 * real Kotlin facade (UniFFI + the JNI fast path, HttpURLConnection transports) against a real collector.
 *
 *     StoryApp <collectorUrl> <userId> <userToken> [email]
 *
 * Two product screens with two `Product Viewed` of slacks-01, `identify` (traits and the hashed email,
 * the user token), `Order Completed` of slacks-01; then it flushes, waits until the collector has
 * acknowledged every event, and prints one JSON line on stdout:
 * `{"deviceId": "...", "userId": "...", "delivered": 6, "profile": "synced"|"refused"|"none",
 * "home": {"viewed": "<offerId>", "bought": "<offerId>"}}`.
 * `profile` says what became of the profile request the token allows (`none`: no answer in time, e.g. a
 * collector without a profile secret answers 404); `home` what `decide("home")` offered after the two
 * views and after the order. The app decides with a bundled rules artifact (the profile, and so its
 * sync, exists only where decisions are used). Exit 0 when everything was delivered, 1 if not in time,
 * 2 on bad arguments or an unreadable artifact. Consent is granted for every purpose (the story is
 * about a consenting shopper). Env: `THREADLINE_WRITE_KEY` (default `demo-write-key`),
 * `THREADLINE_STORY_RULES` (the artifact; default `tests/artifacts/shop.json` under the working
 * directory), `THREADLINE_STORY_DIR` (the SDK's storage directory; default a fresh temporary one,
 * deleted at the end: a new device per run), `THREADLINE_STORY_TIMEOUT_MS` (default 30000).
 */
fun main(args: Array<String>) {
    if (args.size !in 3..4 || args.any { it.isBlank() }) {
        System.err.println("usage: StoryApp <collectorUrl> <userId> <userToken> [email]")
        exitProcess(2)
    }
    val (url, userId, token) = args
    val email = args.getOrNull(3) ?: if ('@' in userId) userId else "$userId@example.com"
    val timeoutMs = System.getenv("THREADLINE_STORY_TIMEOUT_MS")?.toLongOrNull() ?: 30_000L
    val ownDir = System.getenv("THREADLINE_STORY_DIR")
    val rules = File(System.getenv("THREADLINE_STORY_RULES") ?: "tests/artifacts/shop.json")
    val artifact = try {
        rules.readText()
    } catch (e: java.io.IOException) {
        System.err.println("story-app: cannot read the rules artifact $rules: $e")
        exitProcess(2)
    }
    val dir = ownDir?.let(::File) ?: Files.createTempDirectory("threadline-story-").toFile()

    val profile = arrayOf("none")
    val profileLock = Object()
    val options = ThreadlineOptions(
        errorHandler = { e -> System.err.println("story-app: ${e.kind}: ${e.message}") },
        noticeListener = { n ->
            val outcome = when (n) {
                is Notice.ProfileSynced -> "synced"
                is Notice.ProfileSyncRefused -> "refused"
                else -> null
            }
            if (outcome != null) synchronized(profileLock) {
                profile[0] = outcome
                profileLock.notifyAll()
            }
        },
    )
    val config = ThreadlineConfig(url.trimEnd('/'), System.getenv("THREADLINE_WRITE_KEY") ?: "demo-write-key") {
        consentDefault = Choice.GRANTED
        batchMaxAgeMs = 200
        rulesArtifact = artifact
    }
    val code = Threadline(config, dir, options).use { t ->
        val slacks = mapOf("productId" to "slacks-01")
        repeat(2) {
            t.screen("Product Detail", slacks)
            t.track("Product Viewed", slacks + ("name" to "Linen slacks"))
        }
        val viewed = t.decide("home").firstOrNull()?.offerId
        t.identify(
            userId,
            traits = mapOf("email" to email, "name" to "Story Shopper"),
            ids = mapOf("email" to email),
            userToken = token,
        )
        t.track(
            "Order Completed",
            mapOf("orderId" to "story-${System.currentTimeMillis()}", "currency" to "EUR", "revenue" to 59.0,
                "products" to listOf(slacks + mapOf("price" to 59.0, "quantity" to 1))),
        )
        val bought = t.decide("home").firstOrNull()?.offerId
        t.flush()
        val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        fun delivered() = t.stats().let { s -> s.queued == 0L && s.inFlight == 0L && s.delivered >= s.accepted }
        while (!delivered() && System.nanoTime() < end) Thread.sleep(20)
        // The profile request goes after the uploads: up to 2 s for its answer (it does not decide success).
        val profileEnd = minOf(end, System.nanoTime() + TimeUnit.SECONDS.toNanos(2))
        synchronized(profileLock) {
            while (profile[0] == "none") {
                val left = TimeUnit.NANOSECONDS.toMillis(profileEnd - System.nanoTime())
                if (left <= 0) break
                profileLock.wait(left)
            }
        }
        val s = t.stats()
        val ok = delivered()
        val id = t.identity()
        println(
            """{"deviceId":${q(id.deviceId)},"userId":${q(id.userId)},"delivered":${s.delivered},""" +
                """"profile":${q(synchronized(profileLock) { profile[0] })},""" +
                """"home":{"viewed":${q(viewed)},"bought":${q(bought)}}}""",
        )
        if (!ok) System.err.println("story-app: not delivered within $timeoutMs ms: ${s.raw}")
        if (ok) 0 else 1
    }
    if (ownDir == null) dir.walkBottomUp().forEach { it.delete() }
    exitProcess(code)
}

/** A JSON string (or null): ids and outcomes here are plain ASCII, but quote what must be. */
private fun q(s: String?): String =
    if (s == null) "null" else "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
