// Micro-benchmark of a `track` on the JVM (not a test): `scripts/test-kotlin.sh --bench`.
//
// Each call is timed on its own (System.nanoTime, ~25 ns) after a JIT warm-up, on one thread, while
// the client's upload loop runs (a discarding in-memory transport, default batching: 100 events or
// 5 s), so the numbers include the lock contention a real app sees. Printed: median and p95 in µs.
import dev.threadline.JsonWriter
import dev.threadline.Threadline
import dev.threadline.ThreadlineOptions
import dev.threadline.Transport
import dev.threadline.TransportResult
import dev.threadline.sdk.NativeTrack
import java.nio.file.Files
import java.util.concurrent.CountDownLatch

private fun stats(name: String, samples: LongArray): String {
    samples.sort()
    val med = samples[samples.size / 2] / 1000.0
    val p95 = samples[(samples.size * 95) / 100] / 1000.0
    val p99 = samples[(samples.size * 99) / 100] / 1000.0
    return String.format("%-46s median %7.2f µs   p95 %7.2f µs   p99 %7.2f µs   (n=%d)", name, med, p95, p99, samples.size)
}

private inline fun measure(warmup: Int, n: Int, f: (Int) -> Unit): LongArray {
    for (i in 0 until warmup) f(i)
    val out = LongArray(n)
    for (i in 0 until n) {
        val t0 = System.nanoTime()
        f(i)
        out[i] = System.nanoTime() - t0
    }
    return out
}

private fun suite(label: String, transport: Transport, rounds: Int) {
    val dir = Files.createTempDirectory("tl-bench").toFile()
    val config = """{"endpoint":"https://collector.example.com","writeKey":"wk","queue":{"maxEvents":200000,"maxBytes":200000000}}"""
    val t = Threadline(config, dir, ThreadlineOptions(transport = transport, reportEnvironment = true))
    check(t.usesFastPath) { "the JNI fast path did not load (-Djava.library.path)" }
    val handle = t.nativeClient.fastHandle().toLong()
    val props = mapOf("sku" to "A1-2048", "price" to 12.5, "quantity" to 3)
    val json = JsonWriter.writeObject(props)!!
    println()
    println("== $label")
    val results = ArrayList<String>()
    results += stats("JSON serialisation alone (3 properties)", measure(50_000, rounds) { JsonWriter.writeObject(props) })
    results += stats("raw JNI NativeTrack.track, no properties", measure(20_000, rounds) { NativeTrack.track(handle, "Raw", null) })
    results += stats("raw JNI NativeTrack.track, 3 properties (JSON)", measure(20_000, rounds) { NativeTrack.track(handle, "RawJson", json) })
    results += stats("facade track(), 3 properties (JNI path)", measure(20_000, rounds) { t.track("Product Viewed", props) })
    results += stats("UniFFI Client.track (JNA), 3 properties (JSON)", measure(5_000, rounds / 5) { t.nativeClient.track("Uniffi", json) })
    results += stats("UniFFI Client.pollTimeoutMs (JNA, no strings)", measure(5_000, rounds / 5) { t.nativeClient.pollTimeoutMs() })
    results.forEach(::println)
    val s = t.stats()
    println("client: accepted=${s.accepted} queued=${s.queued} uploads=${s.uploads} rejected=${s.rejected}")
    t.close()
    dir.walkBottomUp().forEach { it.delete() }
}

fun main() {
    dev.threadline.sdk.uniffiEnsureInitialized()
    val rounds = (System.getenv("BENCH_N") ?: "30000").toInt()
    println("Threadline track() on the JVM: ${System.getProperty("java.vm.name")} ${System.getProperty("java.version")}, " +
        "${Runtime.getRuntime().availableProcessors()} cores, $rounds timed calls after warm-up; properties " +
        JsonWriter.writeObject(mapOf("sku" to "A1-2048", "price" to 12.5, "quantity" to 3)))
    // 1. The call alone: the upload thread is parked inside a request that never answers, so nothing
    //    else takes the client's lock or a core.
    val hang = CountDownLatch(1)
    suite("upload thread stalled (the call alone)", Transport { _, _, _ -> hang.await(); TransportResult.Response(200) }, rounds)
    hang.countDown()
    // 2. As in an app that tracks a lot: batches of 100 leave and are answered at once, so the upload
    //    thread competes for the client's lock and for the 2 cores.
    suite("upload thread busy (batches of 100 answered 200 at once)", Transport { _, _, _ -> TransportResult.Response(200) }, rounds)
}
