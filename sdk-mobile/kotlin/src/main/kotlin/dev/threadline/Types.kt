package dev.threadline

import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL

/** One consent purpose's state, as the core spells it on the wire (`"granted"`, ...). */
enum class Choice(val wire: String) {
    PENDING("pending"), GRANTED("granted"), DENIED("denied");

    companion object {
        fun of(wire: Any?): Choice = entries.firstOrNull { it.wire == wire } ?: PENDING
    }
}

/** The consent in force (`getConsent()` of the core). */
data class Consent(
    val analytics: Choice,
    val personalization: Choice,
    val advertising: Choice,
    val sale: Choice,
    /** A Global Privacy Control style opt-out is on (it denies `sale` and `advertising`). */
    val gpc: Boolean,
) {
    internal companion object {
        fun parse(json: String): Consent {
            val m = JsonReader.parseObject(json)
            return Consent(
                Choice.of(m["analytics"]), Choice.of(m["personalization"]), Choice.of(m["advertising"]),
                Choice.of(m["sale"]), m["gpc"] == true,
            )
        }
    }
}

/** Who the SDK thinks the user is (`getIdentity()` of the core). */
data class Identity(
    /** Sent as `anonymousId`; `null` until `analytics` consent is granted. */
    val deviceId: String?,
    val userId: String?,
    val traits: Map<String, Any?>,
    /** Namespaced ids as sent (hashed where the configuration says so). */
    val ids: Map<String, Any?>,
    val sessionId: Long?,
    val sessionStartMs: Long?,
) {
    internal companion object {
        @Suppress("UNCHECKED_CAST")
        fun parse(json: String): Identity {
            val m = JsonReader.parseObject(json)
            val session = m["session"] as? Map<String, Any?>
            return Identity(
                m["deviceId"] as? String, m["userId"] as? String,
                (m["traits"] as? Map<String, Any?>).orEmpty(), (m["ids"] as? Map<String, Any?>).orEmpty(),
                (session?.get("id") as? Number)?.toLong(), (session?.get("start") as? Number)?.toLong(),
            )
        }
    }
}

/**
 * The core's and the file store's counters. The common ones are typed; [raw] has every field the core
 * reports (names as in the web binding's `stats()`), so a new counter needs no SDK release.
 */
data class Stats(val raw: Map<String, Any?>) {
    private fun n(k: String): Long = (raw[k] as? Number)?.toLong() ?: 0
    val accepted: Long get() = n("accepted")
    val rejected: Long get() = n("rejected")
    val restored: Long get() = n("restored")
    val queued: Long get() = n("queued")
    val inFlight: Long get() = n("inFlight")
    val delivered: Long get() = n("delivered")
    val uploads: Long get() = n("uploads")
    val retries: Long get() = n("retries")
    val held: Long get() = n("held")
    val droppedConsent: Long get() = n("droppedConsent")
    val storageWrites: Long get() = n("writes")
    val storageFailures: Long get() = n("storageFailures")
    val storageAvailable: Boolean get() = raw["storageAvailable"] == true

    internal companion object {
        fun parse(json: String) = Stats(JsonReader.parseObject(json))
    }
}

/** Something the app may want to hear about; delivered on the SDK's upload thread. */
sealed class Notice {
    data class SessionStarted(val sessionId: Long) : Notice()
    data class ConsentChanged(val consent: Consent) : Notice()

    /** A rules artifact is in use now (bundled, cached, loaded or fetched): [Threadline.decide] answers. */
    data class RulesLoaded(val revision: String?) : Notice()

    /** An artifact or its signature was refused; the previous artifact, if any, stays in use. */
    data class RulesRejected(val kind: String, val message: String) : Notice()

    /**
     * The collector's profile of the person (what they did on their other devices) arrived and
     * [Threadline.decide] uses it; [audiences] are the ones the collector evaluated.
     */
    data class ProfileSynced(val audiences: List<String>) : Notice()

    /**
     * The collector refused the user token ([status] 401 or 403): decisions use this device's history
     * only, and nothing is fetched until [Threadline.identify] brings a new token.
     */
    data class ProfileSyncRefused(val status: Int) : Notice()
}

/**
 * One offer to show in a placement, as [Threadline.decide] chose it. Hand it back unchanged to
 * [Threadline.displayed] / [Threadline.clicked] (it may be kept across a restart).
 */
data class Decision(
    val decisionId: String,
    val placement: String,
    val offerId: String,
    /** The offer's `content` from the artifact as JSON text: the SDK never interprets it. */
    val content: String,
    val experimentId: String?,
    val variantId: String?,
    /** The placement's default offer (no consent, held out, or nothing qualified). */
    val isDefault: Boolean,
) {
    /** [content] read into maps, lists, strings, numbers, booleans and null. */
    fun contentValue(): Any? = try {
        JsonReader.parse(content)
    } catch (_: IllegalArgumentException) {
        null
    }

    /** [content] as a map; empty when it is not a JSON object. */
    @Suppress("UNCHECKED_CAST")
    fun contentMap(): Map<String, Any?> = (contentValue() as? Map<String, Any?>).orEmpty()

    internal fun toNative() = dev.threadline.sdk.Decision(
        decisionId, placement, offerId, content, experimentId, variantId, isDefault,
    )

    internal companion object {
        fun of(d: dev.threadline.sdk.Decision) =
            Decision(d.decisionId, d.placement, d.offerId, d.contentJson, d.experimentId, d.variantId, d.isDefault)
    }
}

fun interface NoticeListener {
    fun onNotice(notice: Notice)
}

/**
 * What went wrong in a call that the SDK refused or could not do. Analytics calls never throw into app
 * code; they report one of these to the [ErrorHandler] and change nothing.
 *
 * [kind] is the cross-platform name (`event.tooLarge`, `identity.badEmail`, `consent.tcf`, ... as in
 * `tests/scenarios/README.md`; plus `event.notSerializable` and `event.tooDeep` from the Kotlin JSON
 * writer, `client.closed`, `upload.transport` and `internal`).
 */
sealed class ThreadlineError(val kind: String, val message: String, val cause: Throwable? = null) {
    /** An event, its properties, traits or ids were refused; nothing was recorded. */
    class InvalidEvent(kind: String, message: String) : ThreadlineError(kind, message)

    /** Consent input (JSON, TC string, IAB values) was refused; consent did not change. */
    class InvalidConsent(kind: String, message: String) : ThreadlineError(kind, message)

    /**
     * [Threadline.decide] could not answer (`decide.unknownPlacement`, `decide.invalidContext`); it
     * returned an empty list.
     */
    class Decide(kind: String, message: String) : ThreadlineError(kind, message)

    /**
     * A rules artifact or its signature was refused (`rules.artifact`, `rules.signature`, ...); the
     * artifact in use, if any, stays.
     */
    class Rules(kind: String, message: String) : ThreadlineError(kind, message)

    /**
     * A profile answer from the collector was refused (`sync.unauthorized`, `profile.wrongUser`,
     * `profile.corrupt`, ...); decisions keep what they had.
     */
    class Sync(kind: String, message: String) : ThreadlineError(kind, message)

    /** A call after [Threadline.close]: ignored. */
    class Closed(val call: String) : ThreadlineError("client.closed", "$call after close() is ignored")

    /** The transport or a listener threw something unexpected, or the native layer failed. */
    class Internal(kind: String, message: String, cause: Throwable?) : ThreadlineError(kind, message, cause)

    override fun toString() = "${javaClass.simpleName}($kind: $message)"
}

fun interface ErrorHandler {
    fun onError(error: ThreadlineError)

    companion object {
        /** Logs through java.util.logging (logcat on Android), at WARNING. */
        val LOG = ErrorHandler { e ->
            java.util.logging.Logger.getLogger("dev.threadline").log(java.util.logging.Level.WARNING, e.toString(), e.cause)
        }
    }
}

/** The answer to one upload. */
sealed class TransportResult {
    /** The server answered: `status` and the raw `Retry-After` header, if any. */
    data class Response(val status: Int, val retryAfter: String? = null) : TransportResult()

    /** No answer: offline, DNS, TLS, timeout, connection reset. The core backs off. */
    data class NetworkError(val cause: Throwable? = null) : TransportResult()
}

/**
 * Performs one `POST`. Called on the SDK's upload thread only, one request at a time, so it may block.
 * Throwing an [IOException] counts as a [TransportResult.NetworkError]. Swap in OkHttp or a fake here.
 */
fun interface Transport {
    fun post(url: String, headers: Map<String, String>, body: ByteArray): TransportResult
}

/** The default [Transport]: `HttpURLConnection` (no dependency), with timeouts. */
class HttpTransport(
    private val connectTimeoutMs: Int = 15_000,
    private val readTimeoutMs: Int = 20_000,
) : Transport {
    override fun post(url: String, headers: Map<String, String>, body: ByteArray): TransportResult {
        val c = URL(url).openConnection() as HttpURLConnection
        try {
            c.requestMethod = "POST"
            c.doOutput = true
            c.useCaches = false
            c.instanceFollowRedirects = false
            c.connectTimeout = connectTimeoutMs
            c.readTimeout = readTimeoutMs
            c.setFixedLengthStreamingMode(body.size)
            for ((k, v) in headers) c.setRequestProperty(k, v)
            c.outputStream.use { it.write(body) }
            val status = c.responseCode
            if (status !in 100..599) return TransportResult.NetworkError(IOException("bad HTTP status $status"))
            // Drain the body so the connection goes back to the keep-alive pool.
            try {
                (if (status >= 400) c.errorStream else c.inputStream)?.use { s ->
                    val b = ByteArray(4096)
                    while (s.read(b) >= 0) continue
                }
            } catch (_: IOException) {
            }
            return TransportResult.Response(status, c.getHeaderField("Retry-After"))
        } catch (e: IOException) {
            c.disconnect()
            return TransportResult.NetworkError(e)
        }
    }
}

/** The answer to one rules request: [status] null means no answer (network error). */
class RulesResult(val status: Int?, val etag: String? = null, val body: ByteArray? = null)

/**
 * Performs one rules `GET` ([etag]: send it as `If-None-Match`), bypassing every HTTP cache: the core
 * decides freshness from the ETag. Called on the SDK's thread only; may block. Throwing an
 * [IOException] counts as no answer.
 */
fun interface RulesTransport {
    fun get(url: String, etag: String?): RulesResult
}

/** The default [RulesTransport]: `HttpURLConnection`, no caches, a size limit. */
class HttpRulesTransport(
    private val connectTimeoutMs: Int = 15_000,
    private val readTimeoutMs: Int = 20_000,
    private val maxBytes: Int = 4 * 1024 * 1024,
) : RulesTransport {
    override fun get(url: String, etag: String?): RulesResult {
        val c = URL(url).openConnection() as HttpURLConnection
        try {
            c.requestMethod = "GET"
            c.useCaches = false
            c.connectTimeout = connectTimeoutMs
            c.readTimeout = readTimeoutMs
            c.setRequestProperty("Cache-Control", "no-cache")
            if (etag != null) c.setRequestProperty("If-None-Match", etag)
            val status = c.responseCode
            if (status !in 100..599) return RulesResult(null)
            val tag = c.getHeaderField("ETag")
            if (status != 200) {
                try {
                    c.errorStream?.use { s -> while (s.read(ByteArray(4096)) >= 0) continue }
                } catch (_: IOException) {
                }
                return RulesResult(status, tag)
            }
            val body = c.inputStream.use { s ->
                val out = java.io.ByteArrayOutputStream()
                val b = ByteArray(8192)
                while (true) {
                    val n = s.read(b)
                    if (n < 0) break
                    out.write(b, 0, n)
                    // Too large to be ours: a failed request, retried later by the core's rules.
                    if (out.size() > maxBytes) return RulesResult(status, tag, null)
                }
                out.toByteArray()
            }
            return RulesResult(status, tag, body)
        } catch (e: IOException) {
            c.disconnect()
            return RulesResult(null)
        }
    }
}

/** The answer to one profile request: [status] null means no answer (network error). */
class ProfileResult(val status: Int?, val body: ByteArray? = null)

/**
 * Performs one `GET` of the person's profile with `Authorization: Bearer <token>` ([token] is the
 * person's credential: never log it), bypassing every HTTP cache. Called on the SDK's thread only; may
 * block. Throwing an [IOException] counts as no answer.
 */
fun interface ProfileTransport {
    fun get(url: String, token: String): ProfileResult
}

/** The default [ProfileTransport]: `HttpURLConnection`, no caches, a size limit. */
class HttpProfileTransport(
    private val connectTimeoutMs: Int = 15_000,
    private val readTimeoutMs: Int = 20_000,
    private val maxBytes: Int = 4 * 1024 * 1024,
) : ProfileTransport {
    override fun get(url: String, token: String): ProfileResult {
        val c = URL(url).openConnection() as HttpURLConnection
        try {
            c.requestMethod = "GET"
            c.useCaches = false
            c.instanceFollowRedirects = false
            c.connectTimeout = connectTimeoutMs
            c.readTimeout = readTimeoutMs
            c.setRequestProperty("Cache-Control", "no-store")
            c.setRequestProperty("Accept", "application/json")
            c.setRequestProperty("Authorization", "Bearer $token")
            val status = c.responseCode
            if (status !in 100..599) return ProfileResult(null)
            if (status != 200) {
                try {
                    c.errorStream?.use { s -> while (s.read(ByteArray(4096)) >= 0) continue }
                } catch (_: IOException) {
                }
                return ProfileResult(status)
            }
            val body = c.inputStream.use { s ->
                val out = java.io.ByteArrayOutputStream()
                val b = ByteArray(8192)
                while (true) {
                    val n = s.read(b)
                    if (n < 0) break
                    out.write(b, 0, n)
                    // Too large to be a profile: a failed request, retried later by the core.
                    if (out.size() > maxBytes) return ProfileResult(status, null)
                }
                out.toByteArray()
            }
            return ProfileResult(status, body)
        } catch (e: IOException) {
            c.disconnect()
            return ProfileResult(null)
        }
    }
}

/** Everything but the configuration and the directory; all optional. */
class ThreadlineOptions(
    val transport: Transport = HttpTransport(),
    val errorHandler: ErrorHandler = ErrorHandler.LOG,
    val noticeListener: NoticeListener? = null,
    /** Send what is queued when the app goes to the background (the upload window before suspension). */
    val flushOnBackground: Boolean = true,
    /** Sent in the events' context; Android: `System.getProperty("http.agent")`. */
    val userAgent: String? = null,
    /** Locale and time zone of the JVM default (Android: the device's), sent in the events' context. */
    val reportEnvironment: Boolean = true,
    /** Use the JNI fast path for track/screen when the library loads through JNI (falls back to UniFFI). */
    val fastPath: Boolean = true,
    /** Performs the rules artifact requests (when the configuration has `rules.url`). */
    val rulesTransport: RulesTransport = HttpRulesTransport(),
    /** Performs the profile requests (after [Threadline.identify] with a user token). */
    val profileTransport: ProfileTransport = HttpProfileTransport(),
)
