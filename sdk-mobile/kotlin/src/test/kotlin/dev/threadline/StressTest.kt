package dev.threadline

import dev.threadline.sdk.uniffiEnsureInitialized
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * Many threads on one client at once — track, screen, identify, setConsent, flush, stats, lifecycle —
 * while the upload loop runs against a server that fails 30% of requests: no exception reaches a
 * caller, nothing is reported, and the counters balance (every recorded event delivered exactly once
 * as far as the SDK knows, every messageId distinct).
 */
class StressTest {
    private companion object {
        const val IDENTIFY = 0
        const val SCREEN = 1
        const val CONSENT = 2
        const val FLUSH = 3
        const val STATS = 4
        const val TRACK = 5

        fun action(i: Int) = when {
            i % 50 == 7 -> IDENTIFY
            i % 40 == 3 -> SCREEN
            i % 100 == 11 -> CONSENT
            i % 30 == 5 -> FLUSH
            i % 20 == 9 -> STATS
            else -> TRACK
        }
    }

    @BeforeTest
    fun bindingsMatchLibrary() = uniffiEnsureInitialized()

    @Test
    fun executorStressKeepsCountersBalanced() {
        val threads = 8
        val iterations = 400
        val dir = tempDir("stress")
        val rnd = java.util.SplittableRandom(11)
        val server = FakeServer { synchronized(rnd) { if (rnd.nextInt(10) < 3) 503 else null } }
        val errors = Errors()
        val client = Threadline(
            testConfig(extra = ""","queue":{"persistDebounceMs":5}"""), dir,
            ThreadlineOptions(transport = server, errorHandler = errors, noticeListener = Notices()),
        )
        val recorded = AtomicLong()
        val thrown = AtomicLong()
        val start = CountDownLatch(1)
        val pool = Executors.newFixedThreadPool(threads + 1)
        val lifecycleDone = AtomicBoolean(false)
        val futures = (0 until threads).map { t ->
            pool.submit {
                start.await()
                for (i in 0 until iterations) {
                    try {
                        when (action(i)) {
                            IDENTIFY -> { client.identify("user-$t", mapOf("plan" to "pro", "i" to i)); recorded.incrementAndGet() }
                            SCREEN -> { client.screen("Screen $t", mapOf("i" to i)); recorded.incrementAndGet() }
                            CONSENT -> client.setConsent(analytics = Choice.GRANTED)
                            FLUSH -> client.flush()
                            STATS -> check(client.stats().accepted >= 0)
                            else -> { client.track("Stress", mapOf("t" to t, "i" to i, "tags" to listOf("a", "b"))); recorded.incrementAndGet() }
                        }
                    } catch (e: Throwable) {
                        thrown.incrementAndGet()
                    }
                }
            }
        }
        // Meanwhile the app goes to the background and back, and connectivity flaps.
        val lifecycle = pool.submit {
            start.await()
            var n = 0
            while (!lifecycleDone.get()) {
                when (n++ % 3) {
                    0 -> client.onBackground()
                    1 -> client.onForeground()
                    else -> client.networkAvailable()
                }
                Thread.sleep(2)
            }
        }
        start.countDown()
        futures.forEach { it.get(60, TimeUnit.SECONDS) }
        lifecycleDone.set(true)
        lifecycle.get(10, TimeUnit.SECONDS)
        pool.shutdown()
        client.flush()
        waitUntil("the queue drained", 60_000) { client.stats().let { it.queued == 0L && it.inFlight == 0L } }

        val s = client.stats()
        assertEquals(0, thrown.get(), "no exception reached a caller")
        assertEquals(emptyList(), errors.all, "nothing reported")
        assertEquals(recorded.get(), s.accepted, "every call recorded once: ${s.raw}")
        assertEquals(s.accepted, s.delivered, "everything delivered: ${s.raw}")
        assertEquals(0, s.rejected)
        assertTrue(s.retries > 0, "the 503s caused retries: ${s.raw}")
        // The fake server saw every event at least once and nothing it was not given.
        val ids = server.messageIds()
        assertEquals(recorded.get(), ids.size.toLong(), "distinct messageIds at the server")
        assertEquals(ids.size, server.snapshot().size, "a 503 here stores nothing, so nothing arrives twice")
        val expected = threads * (0 until iterations).count { action(it) in setOf(IDENTIFY, SCREEN, TRACK) }
        assertEquals(expected.toLong(), recorded.get(), "the calls that record an event")
        client.close()
        deleteTree(dir)
    }
}
