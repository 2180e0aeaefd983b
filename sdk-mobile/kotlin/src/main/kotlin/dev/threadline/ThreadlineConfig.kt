package dev.threadline

/**
 * A Kotlin way to write the configuration JSON (the same JSON the web client takes). The common
 * settings are properties; any other key by its dotted path: `set("retry.maxAttempts", 5)`.
 *
 * ```kotlin
 * val config = ThreadlineConfig("https://collect.example.com", "wk_live_...") {
 *     consentDefault = Choice.PENDING
 *     batchMaxEvents = 20
 * }
 * ```
 */
class ThreadlineConfig(val endpoint: String, val writeKey: String, block: ThreadlineConfig.() -> Unit = {}) {
    /** `consent.default`: the state of every purpose before the app or CMP says anything. */
    var consentDefault: Choice? = null
    /** `batch.maxEvents`: a batch leaves when it has this many events. */
    var batchMaxEvents: Int? = null
    /** `batch.maxAgeMs`: ... or when its oldest event is this old. */
    var batchMaxAgeMs: Long? = null
    /** `queue.persistDebounceMs`: how long queue changes may stay in memory only. */
    var persistDebounceMs: Long? = null
    /** `rules.url`: where the rules artifact is fetched (and revalidated with its ETag). */
    var rulesUrl: String? = null
    /** `rules.publicKey`: base64 Ed25519 key; when set, only artifacts with a valid `.sig` are used. */
    var rulesPublicKey: String? = null
    /** `rules.refreshIntervalMs`: how often the artifact is revalidated. */
    var rulesRefreshIntervalMs: Long? = null
    /**
     * An artifact bundled with the app (e.g. read from assets), used at start only when no cached copy
     * exists, so decisions work on the first launch offline. Not part of the configuration JSON.
     */
    var rulesArtifact: String? = null
    /** The bundled artifact's detached signature (base64), needed when [rulesPublicKey] is set. */
    var rulesSignature: String? = null

    private val extra = LinkedHashMap<String, Any?>()

    init {
        block()
    }

    /** Sets any configuration key by its dotted path (`"identity.sessionTimeoutMs"`). */
    fun set(path: String, value: Any?): ThreadlineConfig = apply { extra[path] = value }

    fun toJson(): String {
        val root = LinkedHashMap<String, Any?>()
        fun put(path: String, v: Any?) {
            if (v == null) return
            val parts = path.split('.')
            var m = root
            for (p in parts.dropLast(1)) {
                @Suppress("UNCHECKED_CAST")
                m = m.getOrPut(p) { LinkedHashMap<String, Any?>() } as? LinkedHashMap<String, Any?>
                    ?: throw IllegalArgumentException("$path: '$p' is not an object")
            }
            m[parts.last()] = v
        }
        put("endpoint", endpoint)
        put("writeKey", writeKey)
        put("consent.default", consentDefault?.wire)
        put("batch.maxEvents", batchMaxEvents)
        put("batch.maxAgeMs", batchMaxAgeMs)
        put("queue.persistDebounceMs", persistDebounceMs)
        put("rules.url", rulesUrl)
        put("rules.publicKey", rulesPublicKey)
        put("rules.refreshIntervalMs", rulesRefreshIntervalMs)
        for ((k, v) in extra) put(k, v)
        return JsonWriter.write(root)
    }
}
