package dev.threadline

import dev.threadline.sdk.uniffiEnsureInitialized
import java.io.File
import java.io.IOException
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The facade against the real native library, with an in-memory server behind the Transport. */
class FacadeTest {
    private val dirs = ArrayList<File>()
    private val clients = ArrayList<Threadline>()

    @BeforeTest
    fun bindingsMatchLibrary() = uniffiEnsureInitialized()

    @AfterTest
    fun cleanup() {
        clients.forEach { it.close() }
        dirs.forEach { deleteTree(it) }
    }

    private fun dir(name: String) = tempDir(name).also { dirs.add(it) }

    private fun client(
        dir: File,
        extra: String = "",
        server: Transport = FakeServer(),
        errors: Errors = Errors(),
        notices: NoticeListener? = null,
        fastPath: Boolean = true,
        flushOnBackground: Boolean = true,
    ) = client(dir, extra to """{"maxAgeMs":0}""", server, errors, notices, fastPath, flushOnBackground)

    private fun client(
        dir: File,
        extraAndBatch: Pair<String, String>,
        server: Transport = FakeServer(),
        errors: Errors = Errors(),
        notices: NoticeListener? = null,
        fastPath: Boolean = true,
        flushOnBackground: Boolean = true,
    ) = Threadline(
        testConfig(extra = extraAndBatch.first, batch = extraAndBatch.second), dir,
        ThreadlineOptions(
            transport = server, errorHandler = errors, noticeListener = notices, fastPath = fastPath,
            flushOnBackground = flushOnBackground,
        ),
    ).also { clients.add(it) }

    /** Never sends on its own and writes only when made to: what is on disk is what onBackground wrote. */
    private val quiet = ""","queue":{"persistDebounceMs":600000}""" to """{"maxAgeMs":600000}"""

    @Test
    fun badInputIsReportedTypedAndQueuesNothing() {
        val errors = Errors()
        val server = FakeServer()
        val c = client(dir("bad"), server = server, errors = errors)
        c.track("Too Large", mapOf("blob" to "x".repeat(40_000)))
        c.track("", null)
        c.track("NaN", mapOf("v" to Double.NaN))
        c.track("Object", mapOf("v" to Any()))
        c.screen("Deep", mapOf("a" to mapOf("b" to mapOf("c" to mapOf("d" to mapOf("e" to mapOf("f" to
            mapOf("g" to mapOf("h" to mapOf("i" to mapOf("j" to mapOf("k" to 1))))))))))))
        c.identify("u-1", ids = mapOf("email" to "not-an-email"))
        c.setConsentJson("""{"analytics":"maybe"}""")
        assertEquals(
            listOf("event.tooLarge", "event.empty", "event.notSerializable", "event.notSerializable", "event.tooDeep",
                "identity.badEmail", "consent.invalid"),
            errors.kinds(),
        )
        assertTrue(errors.all.take(6).all { it is ThreadlineError.InvalidEvent })
        assertTrue(errors.all.last() is ThreadlineError.InvalidConsent)
        assertTrue(errors.all.first().message.isNotBlank())
        c.flush()
        val s = c.stats()
        assertEquals(0, s.accepted, "nothing recorded: ${s.raw}")
        assertEquals(0, s.queued)
        assertEquals(Choice.GRANTED, c.consent().analytics, "the refused consent changed nothing")
        Thread.sleep(50)
        assertEquals(0, server.requests.get(), "nothing sent")
    }

    @Test
    fun pendingConsentSendsAndStoresNothingUntilGranted() {
        val d = dir("pending")
        val server = FakeServer()
        val notices = Notices()
        val c = client(d, ""","consent":{"default":"pending"},"queue":{"persistDebounceMs":0}""", server, notices = notices)
        repeat(3) { c.track("held $it") }
        c.identify("u-7", mapOf("plan" to "pro"))
        c.onBackground()
        assertTrue(c.awaitBackground(5_000))
        Thread.sleep(50)
        assertEquals(emptySet(), files(d), "nothing stored while pending")
        assertEquals(0, server.requests.get(), "nothing sent while pending")
        assertEquals(4, c.stats().held)
        assertNull(c.identity().deviceId, "no device id before consent")

        val consent = c.setConsent(analytics = Choice.GRANTED)
        assertEquals(Choice.GRANTED, consent?.analytics)
        waitUntil("the held events sent") { server.named("held 2").isNotEmpty() && server.snapshot().any { it["type"] == "identify" } }
        assertEquals((0..2).map { "held $it" }.toSet(), server.snapshot().mapNotNull { it["event"] as? String }.filter { it.startsWith("held") }.toSet())
        waitUntil("the device record written") { "device.tl" in files(d) }
        assertNotNull(c.identity().deviceId)
        assertEquals("u-7", c.identity().userId)
        waitUntil("consent notice") { notices.all.any { it is Notice.ConsentChanged && it.consent.analytics == Choice.GRANTED } }
    }

    @Test
    fun iabTcfKeysFromTheCmp() {
        val errors = Errors()
        val c = client(
            dir("iab"), ""","consent":{"default":"pending","tcf":{"purposes":{"analytics":[1,9,10]}}}""", errors = errors,
        )
        // From sdk-core/src/tcf.rs: the IAB's example string (purposes 1, 9, 10 consented, 4 not).
        val tc = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA"
        val prefs = HashMap<String, Any?>()

        // The CMP has not run yet: nothing changes, nothing is reported.
        assertEquals(Choice.PENDING, c.applyIabTcf(prefs::get)?.analytics)
        // Garbage in either key: reported, consent unchanged.
        prefs[IabTcf.GDPR_APPLIES] = "yes"
        assertNull(c.applyIabTcf(prefs::get))
        prefs[IabTcf.GDPR_APPLIES] = 1
        prefs[IabTcf.TC_STRING] = "not a TC string"
        assertNull(c.applyIabTcf(prefs::get))
        prefs[IabTcf.GDPR_APPLIES] = 2
        prefs[IabTcf.TC_STRING] = tc
        assertNull(c.applyIabTcf(prefs::get))
        assertEquals(listOf("consent.tcf", "consent.tcf", "consent.invalid"), errors.kinds())
        assertTrue(errors.all.all { it is ThreadlineError.InvalidConsent })
        assertEquals(Choice.PENDING, c.consent().analytics, "refused input changed nothing")

        // A TC string (gdprApplies stored as the string "1" by some CMPs): its purposes.
        prefs[IabTcf.GDPR_APPLIES] = "1"
        val granted = c.applyIabTcf(prefs::get)
        assertEquals(Choice.GRANTED, granted?.analytics)
        assertEquals(Choice.DENIED, granted?.advertising, "purpose 4 was not consented")
        assertEquals(granted, c.consent())
        // gdprApplies = 0: GDPR does not apply, whatever string is left over.
        prefs[IabTcf.GDPR_APPLIES] = 0
        assertEquals(Choice.GRANTED, c.applyIabTcf(prefs::get)?.advertising)
        // The two-value form and Boolean storage agree.
        assertEquals(Choice.DENIED, c.applyIabTcf(tc, 1)?.advertising)
        prefs[IabTcf.GDPR_APPLIES] = false
        assertEquals(Choice.GRANTED, c.applyIabTcf(prefs::get)?.advertising)
        assertEquals(3, errors.all.size, "no further errors")
    }

    @Test
    fun noticesReachTheListener() {
        val notices = Notices()
        val c = client(dir("notices"), ""","consent":{"default":"pending"}""", notices = notices)
        c.track("First")
        c.setConsent(analytics = Choice.GRANTED, advertising = Choice.DENIED)
        waitUntil("a session and a consent notice") {
            notices.all.any { it is Notice.SessionStarted } && notices.all.any { it is Notice.ConsentChanged }
        }
        val consent = notices.all.filterIsInstance<Notice.ConsentChanged>().last().consent
        assertEquals(Choice.GRANTED, consent.analytics)
        assertEquals(Choice.DENIED, consent.advertising)
        val session = notices.all.filterIsInstance<Notice.SessionStarted>().first()
        waitUntil("identity has the session") { c.identity().sessionId != null }
        assertEquals(session.sessionId, c.identity().sessionId)
        assertEquals(0L, c.stats().raw["noticesPending"], "drained by the upload thread")
    }

    @Test
    fun listenerAndHandlerExceptionsStayInside() {
        val calls = AtomicInteger()
        val c = client(
            dir("throwing"), server = FakeServer(),
            errors = Errors(),
            notices = { calls.incrementAndGet(); throw IllegalStateException("app bug") },
        )
        c.track("E")
        waitUntil("the listener was called") { calls.get() > 0 }
        val bad = Threadline(
            testConfig(), dir("throwing2"),
            ThreadlineOptions(transport = FakeServer(), errorHandler = { throw RuntimeException("handler bug") }),
        ).also { clients.add(it) }
        bad.track("") // reported to a handler that throws: still nothing reaches the caller
        c.track("still works")
        assertEquals(2, c.stats().accepted)
    }

    @Test
    fun onBackgroundWritesEverythingAndSends() {
        val d = dir("background")
        val quietServer = FakeServer()
        val first = client(d, quiet, quietServer, flushOnBackground = false)
        repeat(5) { first.track("bg $it", mapOf("n" to it)) }
        Thread.sleep(100)
        assertFalse("queue.tl" in files(d), "debounced: not yet written (${files(d)})")
        first.onBackground()
        assertTrue(first.awaitBackground(5_000))
        assertTrue("queue.tl" in files(d), "written at background: ${files(d)}")
        assertEquals(0, quietServer.requests.get(), "flushOnBackground=false sends nothing")
        first.simulateKill()

        val server = FakeServer()
        val second = client(d, server = server)
        assertEquals(5, second.stats().restored)
        waitUntil("the restored events sent") { server.snapshot().size == 5 }
        assertEquals((0..4).map { "bg $it" }.toSet(), server.snapshot().map { it["event"] }.toSet())

        // With flushOnBackground (the default), background also sends what the batch timer still holds.
        val d2 = dir("background2")
        val s2 = FakeServer()
        val third = client(d2, quiet, s2)
        third.track("now")
        Thread.sleep(50)
        assertEquals(0, s2.requests.get())
        third.onBackground()
        waitUntil("sent at background") { s2.named("now").isNotEmpty() }
    }

    @Test
    fun closeIsIdempotentAndLaterCallsAreReported() {
        val d = dir("close")
        val errors = Errors()
        val c = client(d, quiet, errors = errors)
        repeat(3) { c.track("kept $it") }
        c.close()
        assertTrue("queue.tl" in files(d), "close wrote the queue: ${files(d)}")
        c.close() // idempotent, not an error
        assertEquals(emptyList(), errors.all)
        c.track("after")
        c.identify("u")
        c.flush()
        c.onBackground()
        assertNull(c.setConsent(analytics = Choice.DENIED))
        assertEquals(listOf("client.closed"), errors.kinds().distinct())
        assertEquals(5, errors.all.size)
        assertEquals(listOf("track", "identify", "flush", "onBackground", "setConsent"),
            errors.all.map { (it as ThreadlineError.Closed).call })
        // Getters answer from the state at close, without throwing.
        assertEquals(3, c.stats().accepted)
        assertEquals(Choice.GRANTED, c.consent().analytics)
        assertNotNull(c.identity().deviceId)

        val server = FakeServer()
        val next = client(d, server = server)
        assertEquals(3, next.stats().restored)
        waitUntil("sent by the next client") { server.snapshot().size == 3 }
    }

    /** Drops what differs between any two runs (ids, clocks) and keeps what the app sent. */
    private fun normalised(events: List<Map<String, Any?>>) =
        events.map { listOf(it["type"], it["event"] ?: it["name"], it["properties"], it["traits"], it["userId"]) }

    @Test
    fun jniPathAndUniffiFallbackGiveTheSameResult() {
        fun run(fast: Boolean): Triple<List<Any?>, List<String>, Pair<Long, Long>> {
            val server = FakeServer()
            val errors = Errors()
            val c = client(dir("path-$fast"), server = server, errors = errors, fastPath = fast)
            assertEquals(fast, c.usesFastPath)
            c.track("Product Viewed", mapOf("sku" to "A1", "price" to 12.5, "tags" to listOf("x", "ÿ \uD83D\uDE00")))
            c.screen("Home", mapOf("from" to "deep link"))
            c.track("No Props")
            c.track("", mapOf("a" to 1))
            c.track("Big", mapOf("blob" to "y".repeat(40_000)))
            c.screen("x".repeat(500))
            c.track("Lone", mapOf("s" to "a\uD83Db\u0000"))
            waitUntil("sent ($fast)") { server.snapshot().size == 4 }
            val s = c.stats()
            return Triple(normalised(server.snapshot()), errors.kinds(), s.accepted to s.rejected)
        }
        val jni = run(true)
        val uniffi = run(false)
        assertEquals(uniffi, jni)
        assertEquals(listOf("event.empty", "event.tooLarge", "event.nameTooLong"), jni.second)
        assertEquals(4L to 3L, jni.third)
        @Suppress("UNCHECKED_CAST")
        val props = jni.first.map { (it as List<Any?>)[2] as Map<String, Any?>? }
        assertEquals(listOf("x", "ÿ \uD83D\uDE00"), props[0]!!["tags"], "unicode survives the JNI crossing and the core")
        assertEquals("a\uFFFDb\u0000", props[3]!!["s"])
    }

    @Test
    fun networkErrorsAndTransportFailuresAreRetried() {
        val n = AtomicInteger()
        val server = FakeServer()
        val errors = Errors()
        val transport = Transport { url, headers, body ->
            when (n.getAndIncrement()) {
                0 -> throw IOException("connection reset")
                1 -> TransportResult.NetworkError(null)
                2 -> throw IllegalStateException("a buggy interceptor")
                else -> server.post(url, headers, body)
            }
        }
        val c = client(dir("network"), server = transport, errors = errors)
        c.track("Offline")
        waitUntil("a few failures") { n.get() >= 3 }
        c.networkAvailable()
        waitUntil("delivered after the network came back", 30_000) { server.named("Offline").isNotEmpty() }
        assertEquals(listOf("upload.transport"), errors.kinds(), "only the unexpected exception is reported")
        assertTrue(server.headersSeen.first().keys.any { it.equals("authorization", ignoreCase = true) })
        assertEquals(1, c.stats().delivered)
    }

    @Test
    fun appCallsNeverWaitForTheNetworkOrTheDisk() {
        val release = java.util.concurrent.CountDownLatch(1)
        val inTransport = java.util.concurrent.CountDownLatch(1)
        val server = FakeServer()
        val blocking = Transport { url, headers, body ->
            inTransport.countDown()
            release.await() // a request hanging on a dead network
            server.post(url, headers, body)
        }
        val c = client(dir("blocking"), ""","queue":{"persistDebounceMs":0}""", server = blocking)
        c.track("first")
        assertTrue(inTransport.await(5, java.util.concurrent.TimeUnit.SECONDS))
        val t0 = System.nanoTime()
        repeat(100) { c.track("while blocked", mapOf("i" to it)) }
        c.identify("u-1")
        c.setConsent(personalization = Choice.DENIED)
        c.flush()
        c.onBackground()
        c.onForeground()
        c.networkAvailable()
        c.stats()
        val ms = (System.nanoTime() - t0) / 1_000_000
        assertTrue(ms < 1_000, "app calls took $ms ms while the upload thread was stuck")
        assertFalse(c.awaitBackground(100), "the background write waits for the upload thread, not the caller")
        release.countDown()
        assertTrue(c.awaitBackground(5_000))
        waitUntil("everything sent") { server.named("while blocked").size == 100 }
    }

    @Test
    fun mostTracksDoNotWakeTheUploadThread() {
        val server = FakeServer()
        // A batch leaves at 100 events or after 60 s: only the first event of a batch sets a deadline.
        val c = client(dir("wake"), "" to """{"maxAgeMs":60000,"maxEvents":100}""", server = server)
        assertTrue(c.usesFastPath)
        Thread.sleep(100) // the loop is asleep, with nothing scheduled
        val before = c.wakeups.get()
        repeat(99) { c.track("quiet", mapOf("i" to it)) }
        val wakes = c.wakeups.get() - before
        assertTrue(wakes <= 5, "99 tracks woke the upload thread $wakes times")
        Thread.sleep(50)
        assertEquals(0, server.requests.get())
        c.track("quiet", mapOf("i" to 99)) // the 100th makes the batch due: this one wakes it
        waitUntil("the full batch sent") { server.named("quiet").size == 100 }
        assertEquals(1, server.requests.get())
    }

    @Test
    fun configBuilderAndBadConfig() {
        val cfg = ThreadlineConfig("https://collect.example.com", "wk") {
            consentDefault = Choice.PENDING
            batchMaxEvents = 20
            set("retry.maxAttempts", 5)
            set("identity.sessionTimeoutMs", 60_000)
        }
        assertEquals(
            mapOf(
                "endpoint" to "https://collect.example.com", "writeKey" to "wk", "consent" to mapOf("default" to "pending"),
                "batch" to mapOf("maxEvents" to 20L), "retry" to mapOf("maxAttempts" to 5L),
                "identity" to mapOf("sessionTimeoutMs" to 60_000L),
            ),
            JsonReader.parse(cfg.toJson()),
        )
        val c = Threadline(cfg, dir("builder"), ThreadlineOptions(transport = FakeServer())).also { clients.add(it) }
        assertEquals(Choice.PENDING, c.consent().analytics)
        val e = assertFailsWith<IllegalArgumentException> { Threadline("{}", dir("badcfg")) }
        assertTrue(e.message!!.contains("Threadline"), e.message)
    }
}
