package dev.threadline

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.net.HttpURLConnection
import java.net.URL
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.fail

/** A fresh, empty directory per test (deleted by [deleteTree] in the tests' cleanup). */
fun tempDir(name: String): File = Files.createTempDirectory("tl-kotlin-$name-").toFile()

fun deleteTree(f: File) {
    f.walkBottomUp().forEach { it.delete() }
}

fun files(dir: File): Set<String> = dir.list()?.toSortedSet() ?: emptySet()

/** Polls [check] every 10 ms until it holds or [timeoutMs] pass (then fails with [what]). */
fun waitUntil(what: String, timeoutMs: Long = 20_000, check: () -> Boolean) {
    val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
    while (!check()) {
        if (System.nanoTime() > end) fail("timed out after $timeoutMs ms waiting for: $what")
        Thread.sleep(10)
    }
}

/** Collects what the SDK reports to its error handler. */
class Errors : ErrorHandler {
    val all: MutableList<ThreadlineError> = CopyOnWriteArrayList()
    override fun onError(error: ThreadlineError) {
        all.add(error)
    }
    fun kinds(): List<String> = all.map { it.kind }
}

/** Collects notices. */
class Notices : NoticeListener {
    val all: MutableList<Notice> = CopyOnWriteArrayList()
    override fun onNotice(notice: Notice) {
        all.add(notice)
    }
}

/**
 * An in-memory collector behind the [Transport] interface: remembers every accepted event (parsed),
 * answers per [fail] (request number -> status, null = 200). Thread-safe.
 */
class FakeServer(private val fail: (Int) -> Int? = { null }) : Transport {
    val requests = AtomicInteger()
    val events: MutableList<Map<String, Any?>> = Collections.synchronizedList(ArrayList())
    val headersSeen: MutableList<Map<String, String>> = CopyOnWriteArrayList()

    override fun post(url: String, headers: Map<String, String>, body: ByteArray): TransportResult {
        val n = requests.getAndIncrement()
        headersSeen.add(headers)
        val status = fail(n)
        if (status != null) return TransportResult.Response(status)
        @Suppress("UNCHECKED_CAST")
        val batch = JsonReader.parseObject(String(body, Charsets.UTF_8))["batch"] as List<Map<String, Any?>>
        events.addAll(batch)
        return TransportResult.Response(200)
    }

    fun snapshot(): List<Map<String, Any?>> = synchronized(events) { events.toList() }
    fun messageIds(): Set<String> = snapshot().map { it["messageId"] as String }.toSet()
    fun named(name: String): List<Map<String, Any?>> = snapshot().filter { it["event"] == name || it["name"] == name }
}

/** Sends at once, retries within milliseconds, never gives up. */
fun testConfig(endpoint: String = "https://collector.example.com", extra: String = "", batch: String = """{"maxAgeMs":0}"""): String =
    """{"endpoint":"$endpoint","writeKey":"demo-write-key","batch":$batch,
        "retry":{"baseBackoffMs":1,"maxBackoffMs":20,"maxAttempts":100000}$extra}"""

/** The reference collector (`target/debug/threadline-collector`), started on a free port. */
class Collector private constructor(private val process: Process, val url: String, private val dir: File) :
    AutoCloseable {

    companion object {
        fun start(vararg args: String): Collector {
            val bin = System.getProperty("threadline.collector") ?: "target/debug/threadline-collector"
            check(File(bin).canExecute()) { "no collector binary at $bin (cargo build -p threadline-collector)" }
            val dir = tempDir("collector")
            val pb = ProcessBuilder(listOf(bin, "--port", "0", "--fresh", "--db", File(dir, "events.sqlite").path) + args)
                .redirectError(File(dir, "stderr.log"))
            val p = pb.start()
            val out = BufferedReader(InputStreamReader(p.inputStream))
            val url = run {
                val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
                while (System.nanoTime() < deadline) {
                    val line = out.readLine() ?: break
                    Regex("listening on (http://\\S+)").find(line)?.let { return@run it.groupValues[1] }
                }
                p.destroy()
                fail("collector did not start: " + File(dir, "stderr.log").readText())
            }
            Thread({ try { while (out.readLine() != null) Unit } catch (_: Exception) {} }, "collector-stdout")
                .apply { isDaemon = true; start() }
            return Collector(p, url, dir)
        }
    }

    private fun get(path: String): String {
        val c = URL(url + path).openConnection() as HttpURLConnection
        c.connectTimeout = 5000
        c.readTimeout = 10000
        try {
            check(c.responseCode == 200) { "$path: HTTP ${c.responseCode}" }
            return c.inputStream.readBytes().toString(Charsets.UTF_8)
        } finally {
            c.disconnect()
        }
    }

    fun stats(): Map<String, Any?> = JsonReader.parseObject(get("/stats"))
    fun distinct(): Long = (stats()["distinct"] as Number).toLong()

    @Suppress("UNCHECKED_CAST")
    fun events(query: String = ""): List<Map<String, Any?>> =
        JsonReader.parse(get("/events?limit=100000" + if (query.isEmpty()) "" else "&$query")) as List<Map<String, Any?>>

    override fun close() {
        process.destroy()
        process.waitFor(5, TimeUnit.SECONDS)
        deleteTree(dir)
    }
}
