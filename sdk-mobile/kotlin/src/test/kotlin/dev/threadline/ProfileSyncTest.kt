package dev.threadline

import com.sun.net.httpserver.HttpServer
import dev.threadline.sdk.uniffiEnsureInitialized
import java.io.File
import java.net.InetSocketAddress
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * The shared scenario of the cross-device story: its artifact, and the collector's answer about u-ann
 * (the app's views and order of the slacks, audience `loyal`), as `Profile::to_remote_json` writes it.
 */
@Suppress("UNCHECKED_CAST")
private val STORY: List<Map<String, Any?>> =
    JsonReader.parseObject(File("tests/scenarios/sync-slacks-story.json").readText())["steps"] as List<Map<String, Any?>>
private val ARTIFACT: String = JsonWriter.write(STORY.first { it["op"] == "loadRules" }["artifact"])

@Suppress("UNCHECKED_CAST")
private val ANN_PROFILE: String = JsonWriter.write(
    (STORY.first { it["op"] == "profileFetch" && it["reply"] is Map<*, *> }["reply"] as Map<String, Any?>)["profile"],
)

/**
 * A collector's `GET /v1/profile`: 200 with [body] for `Authorization: Bearer <token>` when the token is
 * [validToken], else 401 with `WWW-Authenticate: Bearer`, as the collector answers. Records each request.
 */
private class ProfileServer(@Volatile var validToken: String, private val body: String) : AutoCloseable {
    class Seen(val query: String?, val authorization: String?, val method: String)

    val requests: MutableList<Seen> = CopyOnWriteArrayList()
    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
        createContext("/v1/profile") { ex ->
            val auth = ex.requestHeaders.getFirst("Authorization")
            requests.add(Seen(ex.requestURI.rawQuery, auth, ex.requestMethod))
            val (status, text) = if (auth == "Bearer $validToken") {
                ex.responseHeaders.add("Content-Type", "application/json")
                ex.responseHeaders.add("Cache-Control", "no-store")
                200 to body
            } else {
                ex.responseHeaders.add("WWW-Authenticate", "Bearer")
                401 to """{"error":"invalid token"}"""
            }
            val bytes = text.toByteArray()
            ex.sendResponseHeaders(status, bytes.size.toLong())
            ex.responseBody.use { it.write(bytes) }
            ex.close()
        }
        start()
    }
    val endpoint = "http://127.0.0.1:${server.address.port}"

    override fun close() = server.stop(0)
}

class ProfileSyncTest {
    private val dirs = ArrayList<File>()
    private val closeables = ArrayList<AutoCloseable>()

    @BeforeTest
    fun bindingsMatchLibrary() = uniffiEnsureInitialized()

    @AfterTest
    fun cleanup() {
        closeables.reversed().forEach { it.close() }
        dirs.forEach { deleteTree(it) }
    }

    private fun <T : AutoCloseable> keep(c: T): T = c.also { closeables.add(it) }

    private fun client(endpoint: String, events: FakeServer, errors: Errors, notices: Notices): Threadline {
        val config = ThreadlineConfig(endpoint, "wk") {
            consentDefault = Choice.GRANTED
            batchMaxAgeMs = 0
            rulesArtifact = ARTIFACT
        }
        val dir = tempDir("sync").also { dirs.add(it) }
        return keep(Threadline(config, dir, ThreadlineOptions(transport = events, errorHandler = errors, noticeListener = notices)))
    }

    private fun home(t: Threadline): String = t.decide("home").single().offerId

    @Test
    fun theAppFetchesThePersonsProfileWithTheirTokenAndDropsItWhenRefused() {
        val collector = keep(ProfileServer("t1", ANN_PROFILE))
        val events = FakeServer()
        val errors = Errors()
        val notices = Notices()
        val t = client(collector.endpoint, events, errors, notices)
        repeat(2) { t.track("Product Viewed", mapOf("productId" to "slacks-01")) }
        assertEquals("slacks-discount", home(t))

        // Without a token nothing is asked.
        t.identify("u-ann", mapOf("plan" to "basic"))
        waitUntil("the identify delivered") { events.snapshot().any { it["type"] == "identify" } }
        Thread.sleep(100)
        assertEquals(0, collector.requests.size)

        t.identify("u-ann", userToken = "t1")
        waitUntil("ProfileSynced") { notices.all.any { it is Notice.ProfileSynced } }
        assertEquals(Notice.ProfileSynced(listOf("loyal")), notices.all.first { it is Notice.ProfileSynced })
        val first = collector.requests.single()
        assertEquals("GET", first.method)
        assertEquals("Bearer t1", first.authorization)
        assertEquals("userId=u-ann&exclude=${t.identity().deviceId}", first.query, "this device is excluded")
        assertEquals("loyal-perk", home(t), "the phone's order of the slacks suppresses the discount here")
        assertTrue(events.snapshot().none { JsonWriter.write(it).contains("t1") }, "the token never leaves in events")

        // The back end rotated its secret: the old token is refused, the collector's part goes.
        collector.validToken = "t2"
        t.refreshProfile()
        waitUntil("ProfileSyncRefused") { notices.all.any { it is Notice.ProfileSyncRefused } }
        assertEquals(Notice.ProfileSyncRefused(401), notices.all.last())
        waitUntil("the refusal reported") { errors.all.any { it is ThreadlineError.Sync } }
        assertEquals("sync.unauthorized", errors.all.single { it is ThreadlineError.Sync }.kind)
        assertEquals("slacks-discount", home(t), "this device's history only")
        t.refreshProfile()
        Thread.sleep(200)
        assertEquals(2, collector.requests.size, "nothing is asked without a new token")

        t.identify("u-ann", userToken = "t2")
        waitUntil("synced again") { notices.all.count { it is Notice.ProfileSynced } == 2 }
        assertEquals("Bearer t2", collector.requests.last().authorization)
        assertEquals("loyal-perk", home(t))
    }

    @Test
    fun eventsNameTheAndroidLibraryUnlessTheConfigurationNamesOne() {
        val events = FakeServer()
        val t = client("https://collector.example.com", events, Errors(), Notices())
        t.track("A")
        waitUntil("delivered") { events.named("A").isNotEmpty() }
        @Suppress("UNCHECKED_CAST")
        val library = (events.named("A").single()["context"] as Map<String, Any?>)["library"] as Map<String, Any?>
        assertEquals("threadline-android", library["name"])
        assertEquals(dev.threadline.sdk.coreVersion(), library["version"])

        val own = """{"endpoint":"https://c.test","writeKey":"wk","library":{"name":"my-app","version":"9"}}"""
        assertEquals(own, Threadline.withDefaultLibrary(own, "threadline-android"), "kept byte for byte")
        assertEquals("not json", Threadline.withDefaultLibrary("not json", "threadline-android"))
        val added = JsonReader.parseObject(Threadline.withDefaultLibrary(""" {"writeKey":"wk"}""", "x"))
        assertEquals(mapOf("name" to "x", "version" to dev.threadline.sdk.coreVersion()), added["library"])
        assertEquals("wk", added["writeKey"])
        val empty = JsonReader.parseObject(Threadline.withDefaultLibrary("{}", "x"))
        assertEquals(setOf("library"), empty.keys)
    }
}
