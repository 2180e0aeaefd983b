package dev.threadline

import dev.threadline.sdk.uniffiEnsureInitialized
import java.util.concurrent.Executors
import java.util.concurrent.Future
import java.util.concurrent.TimeUnit
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * The whole path against the reference collector over real HTTP (`HttpTransport`): 1,000 events from
 * four executor threads while 30% of the batch requests get an injected 5xx, the client killed mid-way
 * (its loop stopped abruptly, nothing flushed, closed or written), a new client on the same directory,
 * and at the end every one of the 1,000 messageIds at the collector, none missing, none invented.
 */
class CollectorFlowTest {
    @BeforeTest
    fun bindingsMatchLibrary() = uniffiEnsureInitialized()

    /** Batches of 25, retries within 5-100 ms that never give up, every queue change written at once. */
    private fun config(url: String) =
        """{"endpoint":"$url","writeKey":"demo-write-key","batch":{"maxEvents":25,"maxAgeMs":20},
            "queue":{"persistDebounceMs":0},"retry":{"baseBackoffMs":5,"maxBackoffMs":100,"maxAttempts":100000}}"""

    private fun trackFrom4Threads(t: Threadline, range: IntRange) {
        val pool = Executors.newFixedThreadPool(4)
        try {
            val futures: List<Future<*>> = range.map { n ->
                pool.submit { t.track("Flow Event", mapOf("seq" to n, "thread" to Thread.currentThread().name)) }
            }
            futures.forEach { it.get(30, TimeUnit.SECONDS) }
        } finally {
            pool.shutdown()
        }
    }

    @Test
    fun thousandEventsSurviveFaultsAndAKill() {
        Collector.start("--fail-rate", "0.3", "--seed", "7", "--latency-ms", "5").use { collector ->
            val dir = tempDir("flow")
            val errors = Errors()
            val cfg = config(collector.url)
            val first = Threadline(cfg, dir, ThreadlineOptions(errorHandler = errors))
            assertTrue(first.usesFastPath, "the JNI fast path must load here (-Djava.library.path)")

            trackFrom4Threads(first, 0 until 600)
            assertEquals(600, first.stats().accepted)
            // Kill once the loop has written the queue after the last track (the core's guarantee:
            // stored within persistDebounceMs) and some, not all, events reached the collector.
            val writes = first.stats().storageWrites
            waitUntil("a write after the last track and 100 events delivered") {
                first.stats().storageWrites > writes && collector.distinct() >= 100
            }
            first.simulateKill()
            val atKill = collector.distinct()
            assertTrue(atKill < 600, "the kill must leave events undelivered ($atKill delivered)")

            // The next process: same directory, new client.
            val second = Threadline(cfg, dir, ThreadlineOptions(errorHandler = errors))
            val restored = second.stats().restored
            assertTrue(restored >= 600 - atKill, "restored $restored, undelivered ${600 - atKill}")
            trackFrom4Threads(second, 600 until 1000)
            second.flush()
            waitUntil("all 1,000 events at the collector", timeoutMs = 60_000) { collector.distinct() >= 1000 }

            val events = collector.events("event=Flow%20Event")
            val seqs = events.map { ((it["properties"] as Map<*, *>)["seq"] as Number).toInt() }
            assertEquals((0 until 1000).toSet(), seqs.toSet(), "every event arrived")
            assertEquals(1000, events.size, "stored once each: the collector de-duplicates by messageId")
            assertEquals(1000, events.map { it["messageId"] }.toSet().size, "1,000 distinct messageIds")
            assertEquals(1000L, collector.distinct(), "nothing invented")
            val stats = collector.stats()
            @Suppress("UNCHECKED_CAST")
            val faults = (stats["faults"] as Map<String, Any?>).values.sumOf { (it as? Number)?.toLong() ?: 0 }
            assertTrue(faults > 0, "5xx were injected: $stats")
            waitUntil("the second client's queue drained") { second.stats().queued == 0L }
            System.err.println(
                "flow: delivered before the kill $atKill/600, restored $restored; collector requests " +
                    "${stats["requests"]}, duplicates ${stats["duplicates"]}, faults ${stats["faults"]}",
            )
            second.close()
            assertEquals(emptyList(), errors.all, "no error reported")
            assertTrue("queue.tl" !in files(dir), "everything acknowledged: no stored queue (${files(dir)})")
            deleteTree(dir)
        }
    }
}
