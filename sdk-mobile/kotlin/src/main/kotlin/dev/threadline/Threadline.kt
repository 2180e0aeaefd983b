package dev.threadline

import dev.threadline.sdk.Client
import dev.threadline.sdk.NativeTrack
import dev.threadline.sdk.ThreadlineException
import dev.threadline.sdk.coreVersion
import dev.threadline.sdk.uniffiEnsureInitialized
import java.io.Closeable
import java.io.File
import java.io.IOException
import java.util.Locale
import java.util.TimeZone
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.locks.LockSupport
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import dev.threadline.sdk.Notice as NativeNotice

/**
 * Threadline for Android and the JVM: one instance per app process, shared by every thread.
 *
 * ```kotlin
 * val analytics = Threadline(configJson, File(context.noBackupFilesDir, "threadline"))
 * analytics.track("Product Viewed", mapOf("sku" to "A1", "price" to 12.5))
 * ```
 *
 * - **Thread-safe.** Every method may be called from any thread at any time; the Rust core takes a short
 *   lock per call.
 * - **Never throws** after construction: bad input is reported to [ThreadlineOptions.errorHandler] as a
 *   typed [ThreadlineError] and changes nothing; calls after [close] are ignored and reported.
 * - **No I/O on the caller's thread.** App calls only change memory (a `track` is one JNI call of a few
 *   microseconds); one daemon thread per client does the HTTP and every file write, woken by app calls
 *   that bring a deadline forward, otherwise asleep until the core's next deadline.
 * - **Nothing lost when the process is killed**: the queue is written within `queue.persistDebounceMs`
 *   of a change (before a batch leaves, and at [onBackground]); what was on the wire is sent again by the
 *   next process and the collector de-duplicates by messageId.
 *
 * Construction reads the SDK's stored files (small; like the first read of SharedPreferences): create
 * the client in `Application.onCreate` or off the main thread. It throws [IllegalArgumentException] for
 * an invalid configuration, a programming error that should fail the first debug run.
 *
 * One upload at a time: the loop is sequential, so `batch.maxInFlight` above 1 has no effect here.
 */
class Threadline private constructor(
    configJson: String,
    storageDir: File,
    private val options: ThreadlineOptions,
    bundledRules: String?,
    bundledSignature: String?,
) : Closeable {

    constructor(configJson: String, storageDir: File, options: ThreadlineOptions = ThreadlineOptions()) :
        this(configJson, storageDir, options, null, null)

    /** Builds the configuration JSON from a [ThreadlineConfig]; loads its bundled rules artifact, if any. */
    constructor(config: ThreadlineConfig, storageDir: File, options: ThreadlineOptions = ThreadlineOptions()) :
        this(config.toJson(), storageDir, options, config.rulesArtifact, config.rulesSignature)

    private val client: Client

    /** The JNI fast-path handle; 0 when the fast path is off or unavailable (then UniFFI/JNA is used). */
    @Volatile
    private var fastHandle: Long = 0

    private val closed = AtomicBoolean(false)

    /** The loop must make no more native calls: set by [close] and by the kill simulation. */
    @Volatile
    private var stopping = false

    /** Final answers kept by [close] for the getters. */
    @Volatile
    private var finalViews: Triple<String, String, String>? = null

    // --- the upload loop's sleep/wake protocol (see wakeFor) ---
    @Volatile
    private var sleepUntilNanos = WORKING
    private val wakeRequested = AtomicBoolean(false)
    private val backgroundRequested = AtomicLong(0)
    private val backgroundDone = AtomicLong(0)
    private val foregroundRequested = AtomicBoolean(false)
    private val backgroundLock = ReentrantLock()
    private val backgroundChanged = backgroundLock.newCondition()
    private val thread: Thread

    // --- rules readiness: ready() waits on it, onReady callbacks wait in it ---
    private val readyLock = ReentrantLock()
    private val readyChanged = readyLock.newCondition()
    private val readyCallbacks = ArrayList<() -> Unit>()

    init {
        // Fails loudly (checksum mismatch) when the committed bindings do not match the loaded library.
        uniffiEnsureInitialized()
        client = try {
            Client(withDefaultLibrary(configJson, LIBRARY_NAME), storageDir.path)
        } catch (e: ThreadlineException) {
            throw IllegalArgumentException("Threadline: ${e.message}", e)
        }
        if (options.reportEnvironment || options.userAgent != null) {
            client.setEnvironment(
                if (options.reportEnvironment) Locale.getDefault().toLanguageTag() else null,
                if (options.reportEnvironment) TimeZone.getDefault().id else null,
                options.userAgent,
            )
        }
        if (options.fastPath && NativeTrack.available) {
            fastHandle = client.fastHandle().toLong()
        }
        // After the cached copy (restored by the client): a bundled artifact never overrides a newer one.
        if (bundledRules != null) native("loadRules") { client.loadRules(bundledRules, bundledSignature, false) }
        thread = Thread(::runLoop, "threadline-upload").apply {
            isDaemon = true
            start()
        }
    }

    // ------------------------------------------------------------------ events

    /**
     * Records a `track` event: one JNI call of a few microseconds, no I/O. [properties]: strings,
     * numbers (finite), booleans, null, maps with string keys, lists/arrays, enums (name), dates.
     */
    fun track(event: String, properties: Map<String, Any?>? = null) = record(event, properties, screen = false)

    /** Records a `screen` event. */
    fun screen(name: String, properties: Map<String, Any?>? = null) = record(name, properties, screen = true)

    private fun record(name: String, properties: Map<String, Any?>?, screen: Boolean) {
        val call = if (screen) "screen" else "track"
        if (closed.get()) return report(ThreadlineError.Closed(call))
        val json = try {
            JsonWriter.writeObject(properties)
        } catch (e: JsonException) {
            return report(ThreadlineError.InvalidEvent(e.kind, e.message ?: e.kind))
        }
        val h = fastHandle
        if (h != 0L) {
            try {
                val ms = if (screen) NativeTrack.screen(h, name, json) else NativeTrack.track(h, name, json)
                wakeFor(ms)
                return
            } catch (e: IllegalArgumentException) {
                val msg = e.message ?: "event.invalid: refused"
                return report(ThreadlineError.InvalidEvent(msg.substringBefore(": "), msg.substringAfter(": ")))
            } catch (e: IllegalStateException) {
                return report(if (closed.get()) ThreadlineError.Closed(call) else internal(call, e))
            } catch (e: UnsatisfiedLinkError) {
                fastHandle = 0 // a library without the JNI exports: UniFFI from now on
            }
        }
        native(call) {
            if (screen) client.screen(name, json) else client.track(name, json)
            wake()
        }
    }

    /**
     * Attaches a user id, traits and namespaced ids (e.g. `"email"`), and records an `identify`.
     * [userToken], issued by the app's back end for [userId] (never sent with events), lets the SDK fetch
     * the person's profile from the collector, so decisions here see what they did on their other
     * devices (with `personalization` granted). A new token replaces a refused or expired one.
     */
    fun identify(
        userId: String? = null,
        traits: Map<String, Any?>? = null,
        ids: Map<String, String>? = null,
        userToken: String? = null,
    ) {
        if (closed.get()) return report(ThreadlineError.Closed("identify"))
        val t: String?
        val i: String?
        try {
            t = JsonWriter.writeObject(traits)
            i = JsonWriter.writeObject(ids)
        } catch (e: JsonException) {
            return report(ThreadlineError.InvalidEvent(e.kind, e.message ?: e.kind))
        }
        native("identify") { client.identify(userId, t, i, userToken); wake() }
    }

    /** Links [userId] with [previousId] (by default the current user id, else the device id). */
    fun alias(userId: String, previousId: String? = null) =
        native("alias") { client.alias(userId, previousId); wake() } ?: Unit

    /** Logout: forgets the user and rotates the device id. */
    fun reset() = native("reset") { client.reset(); wake() } ?: Unit

    /** Sends what is queued now instead of waiting for a full batch (asynchronously, on the upload thread). */
    fun flush() = native("flush") { client.flush(); wake() } ?: Unit

    // --------------------------------------------------------------- decisions

    /**
     * Which offers to show in [placement] now (at most [max]): synchronous, offline, no I/O, from the
     * rules artifact in use and the on-device profile; safe on the main thread. [context] is merged into
     * what conditions see (`app`, `cart`, ...), written like event properties. Before any artifact is
     * loaded, and on a refused call (reported as [ThreadlineError.Decide]): an empty list, so the screen
     * renders its fallback.
     */
    fun decide(placement: String, max: Int = 1, context: Map<String, Any?>? = null): List<Decision> {
        if (closed.get()) return reportNull<List<Decision>>(ThreadlineError.Closed("decide")).orEmpty()
        val ctx = try {
            JsonWriter.writeObject(context)
        } catch (e: JsonException) {
            return reportNull<List<Decision>>(ThreadlineError.Decide("decide.invalidContext", e.message ?: e.kind))
                .orEmpty()
        }
        val offsetMinutes = TimeZone.getDefault().getOffset(System.currentTimeMillis()) / 60_000
        return native("decide") {
            // A new experiment assignment is stored by the loop (debounced): wake it to set its timer.
            client.decide(placement, max.coerceAtLeast(1).toUInt(), ctx, offsetMinutes).also { wake() }
        }?.map(Decision::of).orEmpty()
    }

    /**
     * [decide] for several placements of one screen in one call, keyed by placement in the order given:
     * one context and one pass over the audiences instead of one call per placement. An unknown
     * placement refuses the whole call (one screen, one artifact revision). Before any artifact is
     * loaded, and on a refused call (reported as [ThreadlineError.Decide]): an empty map, so the screen
     * renders its fallbacks (`result[placement].orEmpty()`).
     */
    fun decideMany(
        placements: List<String>,
        max: Int = 1,
        context: Map<String, Any?>? = null,
    ): Map<String, List<Decision>> {
        if (closed.get()) return reportNull<Map<String, List<Decision>>>(ThreadlineError.Closed("decideMany")).orEmpty()
        val ctx = try {
            JsonWriter.writeObject(context)
        } catch (e: JsonException) {
            return reportNull<Map<String, List<Decision>>>(
                ThreadlineError.Decide("decide.invalidContext", e.message ?: e.kind),
            ).orEmpty()
        }
        val offsetMinutes = TimeZone.getDefault().getOffset(System.currentTimeMillis()) / 60_000
        val got = native("decideMany") {
            // A new experiment assignment is stored by the loop (debounced): wake it to set its timer.
            client.decideMany(placements, max.coerceAtLeast(1).toUInt(), ctx, offsetMinutes).also { wake() }
        } ?: return emptyMap()
        // A repeated placement answers the same both times: the map keeps its first position.
        val out = LinkedHashMap<String, List<Decision>>(got.size)
        for (p in got) out.getOrPut(p.placement) { p.decisions.map(Decision::of) }
        return out
    }

    /**
     * The app showed [decision]: records `Offer Displayed` and counts an impression for frequency caps.
     * Returns the event's messageId; null when this decision was already reported (or on an error,
     * reported).
     */
    fun displayed(decision: Decision): String? =
        native("displayed") { client.displayed(decision.toNative()).also { wake() } }

    /** The person tapped [decision]: records `Offer Clicked`, once per decision (messageId, or null). */
    fun clicked(decision: Decision): String? =
        native("clicked") { client.clicked(decision.toNative()).also { wake() } }

    /**
     * Uses [artifactJson] (from the app's own backend, say) in place of the current artifact; with a
     * configured public key, [signature] (base64) must verify. Returns whether it is in use; a refused
     * artifact is reported as [ThreadlineError.Rules] and the previous one stays.
     */
    fun loadRules(artifactJson: String, signature: String? = null): Boolean =
        native("loadRules") { client.loadRules(artifactJson, signature, true).also { wake() } } ?: false

    /** Revalidates the artifact now (the upload thread fetches it, with its ETag). */
    fun refreshRules() = native("refreshRules") { client.refreshRules(); wake() } ?: Unit

    /**
     * Fetches the person's profile from the collector now (the upload thread does it), say after a
     * purchase on another device; nothing without a user token from [identify].
     */
    fun refreshProfile() = native("refreshProfile") { client.refreshProfile(); wake() } ?: Unit

    /** Whether an artifact is in use now. */
    val rulesReady: Boolean get() = !closed.get() && nativeRulesReady()

    /** The `revision` label of the artifact in use. */
    val rulesRevision: String? get() = if (closed.get()) null else try { client.rulesRevision() } catch (e: IllegalStateException) { null }

    /**
     * Blocks the calling thread up to [timeoutMs] until a rules artifact is in use (cached, bundled,
     * loaded or fetched); true if one is. **Not on the main thread**: use [onReady] there.
     */
    fun ready(timeoutMs: Long): Boolean {
        val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        readyLock.withLock {
            while (true) {
                if (closed.get()) return false
                if (nativeRulesReady()) return true
                val left = end - System.nanoTime()
                if (left <= 0) return false
                readyChanged.awaitNanos(left)
            }
        }
    }

    /**
     * Runs [callback] once a rules artifact is in use: at once on the calling thread when one is already,
     * otherwise on the SDK's thread when it is loaded. Never runs after [close].
     */
    fun onReady(callback: () -> Unit) {
        if (closed.get()) return report(ThreadlineError.Closed("onReady"))
        val now = readyLock.withLock {
            nativeRulesReady().also { if (!it) readyCallbacks.add(callback) }
        }
        if (now) runReadyCallback(callback)
    }

    private fun nativeRulesReady(): Boolean = try {
        client.rulesReady()
    } catch (e: IllegalStateException) {
        false // destroyed by close()
    }

    private fun runReadyCallback(callback: () -> Unit) {
        try {
            callback()
        } catch (e: Exception) {
            report(internal("onReady", e))
        }
    }

    // ----------------------------------------------------------------- consent

    /**
     * Applies the app's consent choices; purposes left `null` keep their state. Returns the consent now
     * in force, or null when refused (reported) or closed.
     */
    fun setConsent(
        analytics: Choice? = null,
        personalization: Choice? = null,
        advertising: Choice? = null,
        sale: Choice? = null,
    ): Consent? {
        val m = LinkedHashMap<String, String>()
        analytics?.let { m["analytics"] = it.wire }
        personalization?.let { m["personalization"] = it.wire }
        advertising?.let { m["advertising"] = it.wire }
        sale?.let { m["sale"] = it.wire }
        return setConsentJson(JsonWriter.write(m))
    }

    /** As [setConsent], with the web client's JSON (`{"analytics":"granted"}`). */
    fun setConsentJson(consentJson: String): Consent? =
        native("setConsent") { client.setConsent(consentJson).also { wake() } }?.let(Consent::parse)

    /** Applies an IAB TCF TC string; one that cannot be decoded is refused (reported) and changes nothing. */
    fun setConsentTcf(tcString: String): Consent? =
        native("setConsentTcf") { client.setConsentTcf(tcString).also { wake() } }?.let(Consent::parse)

    /** The CMP says GDPR does not apply to this person. */
    fun setTcfNotApplicable(): Consent? =
        native("setTcfNotApplicable") { client.setTcfNotApplicable().also { wake() } }?.let(Consent::parse)

    /**
     * Applies the values a CMP stored under the IAB keys (`IABTCF_TCString`, `IABTCF_gdprApplies`);
     * the core decides what they mean (gdprApplies 0: not applicable; a TC string: its purposes).
     */
    fun applyIabTcf(tcString: String?, gdprApplies: Int?): Consent? =
        native("applyIabTcf") { client.setConsentIab(tcString, gdprApplies).also { wake() } }?.let(Consent::parse)

    /**
     * As [applyIabTcf], reading the keys through [read] (SharedPreferences' `all[key]`, UserDefaults,
     * a test map). CMPs differ in the types they store (`1`, `"1"`, `true`); all are accepted, anything
     * else is reported as `consent.tcf` and changes nothing.
     */
    fun applyIabTcf(read: (String) -> Any?): Consent? {
        if (closed.get()) return reportNull(ThreadlineError.Closed("applyIabTcf"))
        val values = try {
            IabTcf.read(read)
        } catch (e: IllegalArgumentException) {
            return reportNull(ThreadlineError.InvalidConsent("consent.tcf", e.message ?: "bad IAB TCF value"))
        }
        return applyIabTcf(values.tcString, values.gdprApplies)
    }

    /** A Global Privacy Control style opt-out signal from the app's settings. */
    fun setGpc(on: Boolean) = native("setGpc") { client.setGpc(on); wake() } ?: Unit

    // ----------------------------------------------------------------- getters

    /** The consent in force. After [close]: as it was at close. */
    fun consent(): Consent = Consent.parse(view { client.getConsent() } ?: finalViews?.first ?: "{}")

    /** Device id, user id, traits, ids and session. After [close]: as they were at close. */
    fun identity(): Identity = Identity.parse(view { client.getIdentity() } ?: finalViews?.second ?: "{}")

    /** The counters. After [close]: as they were at close. */
    fun stats(): Stats = Stats.parse(view { client.stats() } ?: finalViews?.third ?: "{}")

    private inline fun view(get: () -> String): String? =
        if (closed.get()) null else try { get() } catch (e: IllegalStateException) { null }

    // --------------------------------------------------------------- lifecycle

    /**
     * The app went to the background (ProcessLifecycleOwner `ON_STOP`): the upload thread writes
     * everything now and, with [ThreadlineOptions.flushOnBackground], sends what is queued while the OS
     * still allows. Returns at once: no disk or network work on the caller's (main) thread.
     */
    fun onBackground() {
        if (closed.get()) return report(ThreadlineError.Closed("onBackground"))
        backgroundRequested.incrementAndGet()
        wake()
    }

    /** The app came back: the upload thread catches up with what came due while suspended. */
    fun onForeground() {
        if (closed.get()) return report(ThreadlineError.Closed("onForeground"))
        foregroundRequested.set(true)
        wake()
    }

    /** Connectivity came back (ConnectivityManager callback): ends a wait caused by network errors. */
    fun networkAvailable() = native("networkAvailable") { client.networkAvailable(); wake() } ?: Unit

    /**
     * Stops the upload thread, writes everything and releases the native client. Idempotent; every later
     * call is ignored and reported as [ThreadlineError.Closed]. Waits up to [CLOSE_WAIT_MS] for a request
     * in progress; an unanswered upload stays stored and is sent again by the next client. The final
     * write happens on the calling thread: close from a background thread (apps rarely close at all:
     * the client lives as long as the process; closing is for tests and account switches).
     */
    override fun close() {
        if (!closed.compareAndSet(false, true)) return
        stopping = true
        LockSupport.unpark(thread)
        if (Thread.currentThread() !== thread) thread.join(CLOSE_WAIT_MS)
        try {
            client.onBackground() // force-writes the queue, identity and device records
            finalViews = Triple(client.getConsent(), client.getIdentity(), client.stats())
        } catch (e: Exception) {
            report(internal("close", e))
            finalViews = Triple("{}", "{}", "{}")
        } finally {
            fastHandle = 0
            client.destroy()
        }
        backgroundLock.withLock { backgroundChanged.signalAll() }
        readyLock.withLock {
            readyCallbacks.clear()
            readyChanged.signalAll()
        }
    }

    // ------------------------------------------------------- the upload loop

    /**
     * Wakes the loop when an app call brought the core's deadline ([ms] from now, -1: none) before the
     * one the loop sleeps to. Most tracks do not (the batch deadline was set by the batch's first event),
     * so they cost a volatile read and a clock read, no unpark.
     *
     * The loop publishes its deadline only after asking the core, and [WORKING] before; a caller that
     * reads [WORKING] wakes it unconditionally, so a change made between the loop's question and its
     * park is never slept through.
     */
    private fun wakeFor(ms: Long) {
        if (ms < 0) return
        val until = sleepUntilNanos
        // The slack absorbs the millisecond rounding of the two clocks' readings: without it, half the
        // tracks would see "1 ms earlier" and wake the loop for nothing.
        if (until == WORKING || until == IDLE || System.nanoTime() + ms * 1_000_000 + WAKE_SLACK_NANOS - until < 0) {
            wake()
        }
    }

    private fun wake() {
        if (wakeRequested.compareAndSet(false, true)) {
            wakeups.incrementAndGet()
            LockSupport.unpark(thread)
        }
    }

    /** Wake-ups requested by app calls (tests check that most tracks cause none). */
    internal val wakeups = AtomicLong()

    private class Stopped : RuntimeException(null, null, false, false)

    /** A native call from the loop; none once [stopping] is set (close or simulated kill). */
    private inline fun <T> loopCall(f: () -> T): T {
        if (stopping) throw Stopped()
        return f()
    }

    private fun runLoop() {
        while (!stopping) {
            try {
                sleepUntilNanos = WORKING
                wakeRequested.set(false)
                cycle()
                val t = loopCall { client.pollTimeoutMs() }
                val now = System.nanoTime()
                sleepUntilNanos = if (t == null) IDLE else now + TimeUnit.MILLISECONDS.toNanos(t.toLong())
                if (wakeRequested.get() || stopping) continue
                if (t == null) LockSupport.park(this) else LockSupport.parkNanos(this, sleepUntilNanos - now)
            } catch (_: Stopped) {
                return
            } catch (e: InterruptedException) {
                if (stopping) return
            } catch (e: Exception) {
                if (stopping) return
                report(internal("uploadLoop", e))
                LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(LOOP_ERROR_PAUSE_MS))
            }
        }
    }

    /**
     * One pass: lifecycle requests, due storage work, notices, every due upload in turn, then the rules
     * and profile requests that are due (`pollTimeoutMs` counts their due time too).
     */
    private fun cycle() {
        val bg = backgroundRequested.get()
        if (bg != backgroundDone.get()) {
            if (options.flushOnBackground) loopCall { client.flush() }
            loopCall { client.onBackground() }
            backgroundDone.set(bg)
            backgroundLock.withLock { backgroundChanged.signalAll() }
        }
        if (foregroundRequested.getAndSet(false)) loopCall { client.onForeground() }
        loopCall { client.persist() }
        deliverNotices()
        while (true) {
            if (backgroundRequested.get() != backgroundDone.get()) return // handle it first, next pass
            val u = loopCall { client.nextUpload() } ?: break
            // The core stores the queue as events leave: a kill during the request loses nothing.
            loopCall { client.persist() }
            val headers = LinkedHashMap<String, String>(u.headers.size * 2)
            for (h in u.headers) headers[h.name] = h.value
            val result = try {
                options.transport.post(u.url, headers, u.body)
            } catch (e: IOException) {
                TransportResult.NetworkError(e)
            } catch (e: Exception) {
                report(internal("transport", e))
                TransportResult.NetworkError(e)
            }
            // A killed process never reports: the upload stays stored and the next process sends it.
            loopCall {
                when (result) {
                    // A status no server sends is no answer at all.
                    is TransportResult.Response -> if (result.status in 100..599) {
                        client.uploadFinished(u.id, result.status.toUShort(), result.retryAfter, false)
                    } else {
                        client.uploadFinished(u.id, null, null, true)
                    }
                    is TransportResult.NetworkError -> client.uploadFinished(u.id, null, null, true)
                }
            }
            loopCall { client.persist() }
            deliverNotices()
        }
        fetchRules()
        fetchProfile()
    }

    /** Performs the due rules requests; a follow-up (the signature of a changed artifact) at once. */
    private fun fetchRules() {
        var fetch = loopCall { client.nextRulesFetch() } ?: return
        while (true) {
            val r = try {
                options.rulesTransport.get(fetch.url, fetch.etag)
            } catch (e: IOException) {
                RulesResult(null)
            } catch (e: Exception) {
                report(internal("rulesTransport", e))
                RulesResult(null)
            }
            val status = r.status?.takeIf { it in 100..599 }?.toUShort()
            val next = try {
                loopCall { client.rulesFetched(fetch.id, status, r.etag, r.body) }
            } catch (e: ThreadlineException) {
                report(mapError(e))
                null
            }
            fetch = next ?: break
        }
        loopCall { client.persist() } // the new artifact's cache record
        deliverNotices()
    }

    /** Performs the due profile request (one at a time; the core says when the next is due). */
    private fun fetchProfile() {
        val fetch = loopCall { client.nextProfileFetch() } ?: return
        val r = try {
            options.profileTransport.get(fetch.url, fetch.token)
        } catch (e: IOException) {
            ProfileResult(null)
        } catch (e: Exception) {
            report(internal("profileTransport", e))
            ProfileResult(null)
        }
        val status = r.status?.takeIf { it in 100..599 }?.toUShort()
        try {
            loopCall { client.profileFetched(fetch.id, status, r.body) }
        } catch (e: ThreadlineException) {
            report(mapError(e))
        }
        loopCall { client.persist() } // the profile record with the collector's part
        deliverNotices()
    }

    private fun deliverNotices() {
        val notices = loopCall { client.takeNotices() }
        if (notices.any { it is NativeNotice.RulesLoaded }) {
            val callbacks = readyLock.withLock {
                readyChanged.signalAll()
                ArrayList(readyCallbacks).also { readyCallbacks.clear() }
            }
            for (c in callbacks) runReadyCallback(c)
        }
        val listener = options.noticeListener ?: return
        for (n in notices) {
            val notice = when (n) {
                is NativeNotice.SessionStarted -> Notice.SessionStarted(n.sessionId.toLong())
                is NativeNotice.ConsentChanged -> Notice.ConsentChanged(Consent.parse(n.consentJson))
                is NativeNotice.RulesLoaded -> Notice.RulesLoaded(n.revision)
                is NativeNotice.RulesRejected -> Notice.RulesRejected(n.kind, n.message)
                is NativeNotice.ProfileSynced -> Notice.ProfileSynced(n.audiences)
                is NativeNotice.ProfileSyncRefused -> Notice.ProfileSyncRefused(n.status.toInt())
            }
            try {
                listener.onNotice(notice)
            } catch (e: Exception) {
                report(internal("noticeListener", e))
            }
        }
    }

    // ------------------------------------------------------------------ errors

    /** Runs an app-facing native call; errors go to the handler, never to the caller. */
    private inline fun <T> native(call: String, f: () -> T): T? {
        if (closed.get()) return reportNull(ThreadlineError.Closed(call))
        return try {
            f()
        } catch (e: ThreadlineException) {
            reportNull(mapError(e))
        } catch (e: IllegalStateException) {
            // UniFFI's "already destroyed": close() raced with this call.
            reportNull(if (closed.get()) ThreadlineError.Closed(call) else internal(call, e))
        } catch (e: Exception) {
            // UniFFI's InternalException (a Rust panic) is a plain Exception.
            reportNull(internal(call, e))
        }
    }

    private fun mapError(e: ThreadlineException): ThreadlineError = when (e) {
        is ThreadlineException.InvalidEvent -> ThreadlineError.InvalidEvent(e.kind, e.detail)
        is ThreadlineException.InvalidConsent -> ThreadlineError.InvalidConsent(e.kind, e.detail)
        is ThreadlineException.Decide -> ThreadlineError.Decide(e.kind, e.detail)
        is ThreadlineException.Rules -> ThreadlineError.Rules(e.kind, e.detail)
        is ThreadlineException.Sync -> ThreadlineError.Sync(e.kind, e.detail)
        else -> ThreadlineError.Internal("internal", e.message ?: e.toString(), e)
    }

    private fun internal(call: String, e: Throwable) =
        ThreadlineError.Internal(if (call == "transport") "upload.transport" else "internal", "$call: $e", e)

    private fun report(e: ThreadlineError) {
        try {
            options.errorHandler.onError(e)
        } catch (_: Throwable) {
            // An error handler that throws must not turn an analytics call into a crash.
        }
    }

    private fun <T> reportNull(e: ThreadlineError): T? {
        report(e)
        return null
    }

    // ------------------------------------------------------------- test hooks

    /** Whether `track` goes through JNI (false: UniFFI/JNA). */
    internal val usesFastPath: Boolean get() = fastHandle != 0L

    /** Waits until the upload thread has handled every [onBackground] so far (written everything). */
    internal fun awaitBackground(timeoutMs: Long): Boolean {
        val target = backgroundRequested.get()
        val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        backgroundLock.withLock {
            while (backgroundDone.get() < target && !stopping) {
                val left = end - System.nanoTime()
                if (left <= 0) return false
                backgroundChanged.awaitNanos(left)
            }
        }
        return backgroundDone.get() >= target
    }

    /**
     * A killed process, for tests: the loop stops making native calls at once (an upload in progress is
     * never reported), nothing is flushed or written, and the native object is abandoned, not closed.
     */
    internal fun simulateKill() {
        stopping = true
        closed.set(true)
        LockSupport.unpark(thread)
        thread.interrupt()
        thread.join(10_000)
        fastHandle = 0
    }

    /** The UniFFI object, for tests comparing the JNI path with UniFFI. */
    internal val nativeClient: Client get() = client

    internal companion object {
        /** `context.library.name` unless the configuration names one: collectors tell platforms apart by it. */
        const val LIBRARY_NAME = "threadline-android"

        /**
         * [configJson] with `"library": {"name": [name], "version": <core version>}` added when it has no
         * `library` key; anything else (including JSON the core will refuse) unchanged, byte for byte.
         */
        fun withDefaultLibrary(configJson: String, name: String): String {
            val m = try {
                JsonReader.parseObject(configJson)
            } catch (_: IllegalArgumentException) {
                return configJson
            }
            if (m.containsKey("library")) return configJson
            val open = configJson.indexOf('{')
            val library = JsonWriter.write(mapOf("name" to name, "version" to coreVersion()))
            return configJson.substring(0, open + 1) + "\"library\":" + library + (if (m.isEmpty()) "" else ",") +
                configJson.substring(open + 1)
        }

        const val WORKING = Long.MIN_VALUE
        const val IDLE = Long.MAX_VALUE
        const val WAKE_SLACK_NANOS = 2_000_000L
        const val CLOSE_WAIT_MS = 2_000L
        const val LOOP_ERROR_PAUSE_MS = 1_000L
    }
}
