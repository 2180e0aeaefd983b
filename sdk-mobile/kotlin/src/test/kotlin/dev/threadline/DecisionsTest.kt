package dev.threadline

import com.sun.net.httpserver.HttpServer
import dev.threadline.sdk.uniffiEnsureInitialized
import java.io.File
import java.net.InetSocketAddress
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The shop artifact of the repository (the tests run from its root, see scripts/test-kotlin.sh). */
private val SHOP: String = File("tests/artifacts/shop.json").readText()
private const val REVISION = "demo-shop-2026-11-24"

/**
 * A rules CDN: serves [body] with an ETag, answers 304 to a matching If-None-Match, and records what
 * each request carried.
 */
private class RulesServer(@Volatile var body: String, @Volatile var etag: String = "\"r1\"") : AutoCloseable {
    val requests = AtomicInteger()
    val ifNoneMatch: MutableList<String?> = CopyOnWriteArrayList()
    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
        createContext("/rules/shop.json") { ex ->
            requests.incrementAndGet()
            val inm = ex.requestHeaders.getFirst("If-None-Match")
            ifNoneMatch.add(inm)
            ex.responseHeaders.add("ETag", etag)
            if (inm == etag) {
                ex.sendResponseHeaders(304, -1)
            } else {
                val bytes = body.toByteArray()
                ex.sendResponseHeaders(200, bytes.size.toLong())
                ex.responseBody.use { it.write(bytes) }
            }
            ex.close()
        }
        start()
    }
    val url = "http://127.0.0.1:${server.address.port}/rules/shop.json"

    override fun close() = server.stop(0)
}

class DecisionsTest {
    private val dirs = ArrayList<File>()
    private val closeables = ArrayList<AutoCloseable>()

    @BeforeTest
    fun bindingsMatchLibrary() = uniffiEnsureInitialized()

    @AfterTest
    fun cleanup() {
        closeables.reversed().forEach { it.close() }
        dirs.forEach { deleteTree(it) }
    }

    private fun dir(name: String) = tempDir(name).also { dirs.add(it) }

    private fun <T : AutoCloseable> keep(c: T): T = c.also { closeables.add(it) }

    private fun client(
        dir: File,
        server: FakeServer = FakeServer(),
        errors: Errors = Errors(),
        notices: Notices? = null,
        block: ThreadlineConfig.() -> Unit = {},
    ): Threadline {
        val config = ThreadlineConfig("https://collector.example.com", "wk") {
            consentDefault = Choice.GRANTED
            batchMaxAgeMs = 0
            block()
        }
        return keep(Threadline(config, dir, ThreadlineOptions(transport = server, errorHandler = errors, noticeListener = notices)))
    }

    private fun viewSlacks(t: Threadline) = repeat(2) { t.track("Product Viewed", mapOf("productId" to "slacks-01")) }

    private fun home(t: Threadline): Decision = t.decide("home").single()

    @Test
    fun fetchesWithEtagRevalidatesWith304AndIsReady() {
        val cdn = keep(RulesServer(SHOP))
        val notices = Notices()
        val t = client(dir("fetch"), notices = notices) { rulesUrl = cdn.url }
        assertTrue(t.ready(10_000), "the artifact was fetched")
        assertEquals(REVISION, t.rulesRevision)
        assertEquals(1, cdn.requests.get())
        assertNull(cdn.ifNoneMatch[0])
        waitUntil("RulesLoaded notice") { notices.all.contains(Notice.RulesLoaded(REVISION)) }

        t.refreshRules()
        waitUntil("the revalidation") { cdn.requests.get() == 2 }
        assertEquals("\"r1\"", cdn.ifNoneMatch[1], "the second request carries the ETag")
        Thread.sleep(100)
        assertTrue(t.rulesReady)
        assertEquals(REVISION, t.rulesRevision, "a 304 keeps the artifact")
        assertEquals(1, notices.all.count { it is Notice.RulesLoaded }, "nothing new was loaded")
    }

    @Test
    fun onReadyRunsOnceTheArtifactArrivesAndAtOnceAfterwards() {
        val cdn = keep(RulesServer(SHOP))
        val t = client(dir("onready")) { rulesUrl = cdn.url }
        val first = CountDownLatch(1)
        t.onReady { first.countDown() }
        assertTrue(first.await(10, TimeUnit.SECONDS))
        var ranHere = false
        t.onReady { ranHere = true }
        assertTrue(ranHere, "already ready: runs on the calling thread")
        // Without any artifact source, ready() times out.
        val none = client(dir("never"))
        val t0 = System.nanoTime()
        assertFalse(none.ready(150))
        assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(140))
        assertEquals(emptyList(), none.decide("home"), "no artifact: empty, not an error")
    }

    @Test
    fun slacksStoryEndToEndWithFeedbackAtTheCollector() {
        val server = FakeServer()
        val errors = Errors()
        val t = client(dir("story"), server, errors) { rulesArtifact = SHOP }
        assertTrue(t.ready(0), "a bundled artifact is ready at once")
        assertNotEquals("slacks-discount", home(t).offerId)
        viewSlacks(t)
        val d = home(t)
        assertEquals("slacks-discount", d.offerId)
        assertFalse(d.isDefault)
        assertEquals("SLACKS10", d.contentMap()["code"])
        val shown = assertNotNull(t.displayed(d))
        assertNull(t.displayed(d), "reported once")
        val clicked = assertNotNull(t.clicked(d))

        t.track("Order Completed", mapOf("products" to listOf(mapOf("productId" to "slacks-01"))))
        assertEquals("vip-shipping", home(t).offerId, "bought: suppressed, and now a VIP")

        t.flush()
        waitUntil("feedback events uploaded") { server.messageIds().containsAll(listOf(shown, clicked)) }
        for ((id, name) in listOf(shown to "Offer Displayed", clicked to "Offer Clicked")) {
            val e = server.snapshot().single { it["messageId"] == id }
            assertEquals(name, e["event"])
            @Suppress("UNCHECKED_CAST")
            val p = e["properties"] as Map<String, Any?>
            assertEquals(d.decisionId, p["decisionId"])
            assertEquals("slacks-discount", p["offerId"])
            assertEquals("home", p["placement"])
        }

        // Refused calls are reported, never thrown.
        assertEquals(emptyList(), t.decide("nowhere"))
        assertEquals(emptyList(), t.decide("home", context = mapOf("bad" to Any())))
        assertEquals(1, t.decide("home", context = mapOf("cart" to mapOf("total" to 12.5))).size)
        assertEquals(listOf("decide.unknownPlacement", "decide.invalidContext"), errors.kinds())
        assertTrue(errors.all.all { it is ThreadlineError.Decide })
        assertFalse(t.loadRules("{\"version\":1}"))
        assertTrue(errors.all.last() is ThreadlineError.Rules)
        assertEquals("rules.artifact", errors.all.last().kind)
        assertEquals(REVISION, t.rulesRevision)
    }

    @Test
    fun decideManyAnswersPerPlacementInOrderAndReportsRefusals() {
        val errors = Errors()
        val none = client(dir("many-none"), errors = errors)
        assertEquals(emptyMap(), none.decideMany(listOf("home", "hero")), "no artifact: empty, not an error")
        assertEquals(emptyList(), errors.kinds())

        val t = client(dir("many"), errors = errors) { rulesArtifact = SHOP }
        viewSlacks(t)
        val many = t.decideMany(listOf("hero", "home"))
        assertEquals(listOf("hero", "home"), many.keys.toList(), "in the order given")
        val home = many.getValue("home").single()
        assertEquals("slacks-discount", home.offerId)
        assertEquals("home", home.placement)
        // The same answer decide gives placement by placement (decision ids differ per call).
        for ((placement, ds) in many) {
            val one = t.decide(placement)
            assertEquals(one.map { it.offerId to it.variantId }, ds.map { it.offerId to it.variantId }, placement)
        }
        assertEquals(listOf("home"), t.decideMany(listOf("home", "home")).keys.toList())
        val two = t.decideMany(listOf("home"), max = 2).getValue("home").map { it.offerId }
        assertEquals(t.decide("home", max = 2).map { it.offerId }, two, "max reaches the core")

        // Refused calls are reported, never thrown: an unknown placement fails the whole call.
        assertEquals(emptyMap(), t.decideMany(listOf("home", "nowhere")))
        assertEquals(emptyMap(), t.decideMany(listOf("home"), context = mapOf("bad" to Any())))
        assertEquals(listOf("decide.unknownPlacement", "decide.invalidContext"), errors.kinds())
        assertTrue(errors.all.all { it is ThreadlineError.Decide })
    }

    @Test
    fun aBadArtifactFromTheServerIsRefusedAndTheBundledOneStays() {
        val cdn = keep(RulesServer("{\"version\": 1, \"placements\": 5}"))
        val errors = Errors()
        val notices = Notices()
        val t = client(dir("bad"), errors = errors, notices = notices) {
            rulesUrl = cdn.url
            rulesArtifact = SHOP.replace(REVISION, "bundled-1")
        }
        waitUntil("the fetch") { cdn.requests.get() >= 1 }
        waitUntil("the refusal reported") { errors.all.any { it is ThreadlineError.Rules } }
        assertEquals("rules.artifact", errors.all.first { it is ThreadlineError.Rules }.kind)
        waitUntil("RulesRejected notice") { notices.all.any { it is Notice.RulesRejected } }
        assertTrue(t.rulesReady)
        assertEquals("bundled-1", t.rulesRevision)
        viewSlacks(t)
        assertEquals("slacks-discount", home(t).offerId)
    }

    @Test
    fun cacheAndProfileSurviveARestartWithoutAFetch() {
        val cdn = keep(RulesServer(SHOP))
        val d = dir("restart")
        val first = client(d) { rulesUrl = cdn.url }
        assertTrue(first.ready(10_000))
        viewSlacks(first)
        first.close()
        assertTrue(files(d).containsAll(listOf("rules.tl", "profile.tl")), "${files(d)}")
        // The cached copy and the stored views are enough: no request at start.
        val second = client(d) { rulesUrl = cdn.url }
        assertTrue(second.ready(0))
        assertEquals("slacks-discount", home(second).offerId)
        Thread.sleep(200)
        assertEquals(1, cdn.requests.get(), "the cache is fresh: no fetch")
        // Denying personalization deletes the profile file (written by the SDK's thread).
        second.setConsent(personalization = Choice.DENIED)
        waitUntil("profile file removed") { "profile.tl" !in files(d) }
        assertTrue(home(second).isDefault)
    }
}
