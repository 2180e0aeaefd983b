// The Kotlin (JVM) runner of the cross-platform scenario files
// (tests/scenarios/*.json; the contract is tests/scenarios/README.md, the
// reference runner sdk-core/tests/scenarios.rs). It drives the real mobile
// `Client` (UniFFI + JNA, the same library an app loads) in scripted mode: a
// `DeterministicSource` is the clock and the random source, so messageIds,
// device ids and times are the same as on every other platform.
//
// Beyond the contract's checks it verifies what only the mobile binding can get
// wrong: no call but persist()/onBackground() touches the disk, the store log
// agrees with the files actually written (valid header and CRC), destroying an
// abandoned client writes nothing, the draw counter follows the contract's
// list of drawing calls, and no stored record is refused or fails to write.
//
// Usage: Scenarios <scenario dir> <transcript dir> [name ...]
// Before the files it runs selfTest() (SelfTest.kt): damaged scenarios must fail.
// Exit: 0 all passed, 1 a failure, 2 usage, 3 stale bindings.
@file:JvmName("Scenarios")

package dev.threadline.sdk.scenarios

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonNull
import com.google.gson.JsonObject
import com.google.gson.JsonPrimitive
import dev.threadline.sdk.Client
import dev.threadline.sdk.Decision
import dev.threadline.sdk.DeterministicSource
import dev.threadline.sdk.Notice
import dev.threadline.sdk.RulesFetch
import dev.threadline.sdk.ThreadlineException
import dev.threadline.sdk.Upload
import dev.threadline.sdk.UploadPoll
import java.io.File
import java.lang.reflect.InvocationTargetException
import java.nio.file.Files
import java.security.MessageDigest
import java.util.zip.CRC32
import kotlin.system.exitProcess

/** The contract's default start: 2026-11-24T09:30:00Z. */
const val DEFAULT_START: Long = 1_795_512_600_000L

val SLOTS = listOf("queue", "identity", "device", "profile", "rules")

fun sha256Hex(bytes: ByteArray): String =
    MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }

/** A JSON object whose keys are consumed one by one; whatever is left at the end is an unknown key. */
class Obj(v: JsonElement, var what: String) {
    private val map: LinkedHashMap<String, JsonElement>

    init {
        if (v !is JsonObject) fail("$what: expected an object, got $v")
        map = LinkedHashMap(v.asMap())
    }

    fun take(k: String): JsonElement? = map.remove(k)

    fun optStr(k: String): String? {
        val v = take(k) ?: return null
        if (v is JsonPrimitive && v.isString) return v.asString
        fail("$what: \"$k\" must be a string, got $v")
    }

    fun reqStr(k: String): String = optStr(k) ?: fail("$what: \"$k\" is required")

    fun optU64(k: String): ULong? {
        val v = take(k) ?: return null
        return Json.asU64(v) ?: fail("$what: \"$k\" must be a number")
    }

    fun optBool(k: String): Boolean? {
        val v = take(k) ?: return null
        if (v is JsonPrimitive && v.isBoolean) return v.asBoolean
        fail("$what: \"$k\" must be true or false, got $v")
    }

    fun done() {
        if (map.isNotEmpty()) fail("$what: unknown key(s) ${map.keys}")
    }
}

sealed class Reply {
    /** status == null: a network error. */
    class Outcome(val status: UShort?, val retryAfter: String?, val jitter: UInt) : Reply()
    class Hold(val name: String) : Reply()
}

fun parseReply(v: JsonElement): Reply {
    if (v is JsonPrimitive && v.isNumber) {
        val code = Json.asU64(v)?.takeIf { it <= 65535u } ?: fail("bad status")
        return Reply.Outcome(code.toUShort(), null, 0u)
    }
    if (v is JsonPrimitive && v.isString && v.asString == "network") return Reply.Outcome(null, null, 0u)
    if (v is JsonObject) {
        val o = Obj(v, "reply")
        o.optStr("hold")?.let { h ->
            o.done()
            return Reply.Hold(h)
        }
        val jitter = o.optU64("jitter") ?: 0uL
        if (jitter > UInt.MAX_VALUE.toULong()) fail("jitter must fit in 32 bits")
        val network = o.optBool("network") ?: false
        val status = o.optU64("status")
        val retryAfter = o.optStr("retryAfter")
        o.done()
        return when {
            network && status == null && retryAfter == null -> Reply.Outcome(null, null, jitter.toUInt())
            !network && status != null -> {
                if (status > 65535u) fail("bad status")
                Reply.Outcome(status.toUShort(), retryAfter, jitter.toUInt())
            }
            else -> fail("a reply is a status or a network error")
        }
    }
    fail("unknown reply $v")
}

/** Follows a dotted path (`context.consent.analytics`, `batch.0.event`). */
fun atPath(v: JsonElement, path: String): JsonElement? {
    var cur: JsonElement = v
    for (part in path.split('.')) {
        cur = when (cur) {
            is JsonObject -> cur.get(part) ?: return null
            is JsonArray -> {
                val idx = part.toIntOrNull()?.takeIf { it >= 0 } ?: return null
                if (idx >= cur.size()) return null
                cur.get(idx)
            }
            else -> return null
        }
    }
    return cur
}

/** How an expected `names` list refers to an event: `event` (track), else `name`, else `type`. */
fun label(e: JsonElement): String {
    if (e !is JsonObject) return "?"
    val v = e.get("event") ?: e.get("name") ?: e.get("type") ?: return "?"
    return if (v is JsonPrimitive && v.isString) v.asString else "?"
}

class UploadRec(val transport: String, val events: List<JsonElement>)

/** The bytes of every file in the storage directory, by name. */
fun dirState(dir: File): Map<String, String> =
    (dir.listFiles() ?: emptyArray()).sortedBy { it.name }.associate { f ->
        f.name to (if (f.isFile) sha256Hex(f.readBytes()) else "<not a file>")
    }

/** The payload of a stored record (`TLs1` | u32 LE length | u32 LE CRC32 | payload), checked. */
fun readRecord(f: File): ByteArray {
    val raw = f.readBytes()
    if (raw.size < 12) fail("${f.name}: shorter than the 12-byte header")
    if (raw[0] != 'T'.code.toByte() || raw[1] != 'L'.code.toByte() || raw[2] != 's'.code.toByte() ||
        raw[3] != '1'.code.toByte()
    ) {
        fail("${f.name}: bad magic")
    }
    fun u32(at: Int): Long =
        (0 until 4).fold(0L) { acc, k -> acc or ((raw[at + k].toLong() and 0xff) shl (8 * k)) }
    val len = u32(4)
    val payload = raw.copyOfRange(12, raw.size)
    if (len != payload.size.toLong()) fail("${f.name}: header says $len bytes, ${payload.size} stored")
    val crc = CRC32().also { it.update(payload) }.value
    if (crc != u32(8)) fail("${f.name}: CRC32 mismatch")
    return payload
}

class Run(
    private val config: String,
    private val start: Long,
    private val dir: File,
    private val transcript: MutableList<String>,
    seed: String,
) {
    private var now: Long = start
    private val source = DeterministicSource(seed, start.toULong())
    private var client: Client
    private var expectedDraws: Long = 0
    private var stepIndex: Int = -1

    private val uploads = mutableListOf<UploadRec>()
    private val notices = mutableListOf<String>()
    private var wiped = false
    private val storeOps = mutableListOf<String>()

    /** Which slots the store log says hold a record; checked against the directory. */
    private val slotsStored = mutableSetOf<String>()
    private val held = mutableMapOf<String, ULong>()
    private val symbols = mutableMapOf<String, String>()
    /** Decisions bound by `decide`'s `as` (`hero.0`), handed back unchanged to displayed/clicked. */
    private val decisions = mutableMapOf<String, Decision>()
    /** A follow-up rules request (the `.sig`) that rulesFetched returned, for the next `rulesFetch` step. */
    private var rulesFollowUp: RulesFetch? = null

    init {
        client = newClient()
        expectedDraws += 1
        settle(false)
        checkInvariants()
    }

    private fun newClient(): Client = try {
        Client.withSource(config, dir.path, source)
    } catch (e: ThreadlineException) {
        fail("config refused: $e ${e.message}")
    }

    fun close() {
        client.destroy()
        source.destroy()
    }

    private fun log(line: String) {
        transcript.add("$stepIndex $line")
    }

    private fun statsDoc(): JsonElement = Json.parse(client.stats())

    /**
     * The host loop's storage and notice work after every step: `persist()`
     * (or, for `hide`, `onBackground()`, the forced write), then the store log
     * and the notices. The directory must then be exactly what the store log
     * says: untouched slots unchanged, written slots valid, removed ones gone.
     */
    private fun settle(force: Boolean) {
        val before = dirState(dir)
        if (force) client.onBackground() else client.persist()
        val ops = client.takeStoreLog()
        val touched = mutableSetOf<String>()
        for (op in ops) {
            if (op == "wipe") {
                wiped = true
                slotsStored.clear()
                touched.addAll(SLOTS)
            } else {
                val parts = op.split(':')
                if (parts.size != 2 || parts[1] !in SLOTS || parts[0] !in listOf("write", "remove")) {
                    fail("unknown store log entry \"$op\"")
                }
                touched.add(parts[1])
                if (parts[0] == "write") slotsStored.add(parts[1]) else slotsStored.remove(parts[1])
            }
            storeOps.add(op)
            log("store $op")
        }
        for (n in client.takeNotices()) {
            val s = when (n) {
                is Notice.SessionStarted -> "sessionStarted"
                is Notice.ConsentChanged -> "consentChanged"
                is Notice.RulesLoaded -> "rulesLoaded"
                is Notice.RulesRejected -> "rulesRejected"
                is Notice.ProfileSynced -> "profileSynced"
                is Notice.ProfileSyncRefused -> "profileSyncRefused"
            }
            notices.add(s)
            log("notice $s")
        }
        val after = dirState(dir)
        val expectedFiles = slotsStored.map { "$it.tl" }.toSortedSet()
        if (after.keys.toSortedSet() != expectedFiles) {
            fail("after ${if (force) "onBackground()" else "persist()"} (store log $ops) the directory holds " +
                "${after.keys} but the store log says $expectedFiles")
        }
        for (slot in SLOTS) {
            val name = "$slot.tl"
            if (slot !in touched && before[name] != after[name]) {
                fail("$name changed although the store log $ops does not name it")
            }
            if (slot in slotsStored) readRecord(File(dir, name))
        }
    }

    /** After every step: the clock, the draws and the store's health. */
    private fun checkInvariants() {
        val clock = source.nowMs().toLong()
        if (clock != now) fail("the source's clock is ${clock - start}, the runner's ${now - start} (relative to start)")
        val draws = source.draws().toLong()
        if (draws != expectedDraws) {
            fail("the client made $draws draw(s); the contract's drawing calls so far make $expectedDraws")
        }
        val stats = statsDoc()
        for (k in listOf("corruptFiles", "storageFailures")) {
            val v = Json.asU64(atPath(stats, k)) ?: fail("stats has no numeric \"$k\": $stats")
            if (v != 0uL) fail("stats.$k = $v (a stored record was refused or a write failed): $stats")
        }
    }

    private fun bind(name: String?, value: String) {
        if (name == null) return
        if (symbols.containsKey(name)) fail("symbol \"$name\" is bound twice")
        symbols[name] = value
    }

    private fun record(transport: String, body: ByteArray) {
        val v = Json.parseBytes(body, "upload body")
        val batch = (v as? JsonObject)?.get("batch") as? JsonArray ?: fail("upload body has no batch")
        uploads.add(UploadRec(transport, batch.toList()))
        log("upload $transport ${batch.size()} ${sha256Hex(body)}")
    }

    private fun answer(id: ULong, r: Reply.Outcome) {
        source.setJitter(r.jitter)
        try {
            client.uploadFinished(id, r.status, r.retryAfter, r.status == null)
        } catch (e: ThreadlineException) {
            fail("uploadFinished: $e ${e.message}")
        }
    }

    /** The kind of a refused call, or a failure for any other exception. */
    private fun kindOf(e: Throwable): String = when (e) {
        is ThreadlineException.InvalidEvent -> e.kind
        is ThreadlineException.InvalidConsent -> e.kind
        is ThreadlineException.Decide -> e.kind
        is ThreadlineException.Rules -> e.kind
        is ThreadlineException.Sync -> e.kind
        else -> fail("unexpected exception $e ${e.message}")
    }

    /** `page` is not part of the mobile API as specified; call it if the bindings have it. */
    private fun page(name: String?, props: String?): String {
        val m = try {
            Client::class.java.getMethod("page", String::class.java, String::class.java)
        } catch (e: NoSuchMethodException) {
            fail("op \"page\": the mobile Client has no page(name, propertiesJson) method")
        }
        try {
            return m.invoke(client, name, props) as String
        } catch (e: InvocationTargetException) {
            throw e.targetException
        }
    }

    fun step(index: Int, v: JsonElement) {
        stepIndex = index
        val o = Obj(v, "step")
        val op = o.reqStr("op")
        o.what = "step \"$op\""
        val expectError = o.optStr("error")
        var gotError: String? = null
        var outcome: Throwable? = null
        val diskBefore = dirState(dir)
        when (op) {
            "track", "page", "screen", "identify", "alias" -> {
                val name = o.optStr("as")
                expectedDraws += 1
                try {
                    val id = when (op) {
                        "track" -> {
                            val event = o.reqStr("event")
                            val props = o.optStr("properties")
                            client.track(event, props)
                        }
                        "page" -> {
                            val n = o.optStr("name")
                            val props = o.optStr("properties")
                            page(n, props)
                        }
                        "screen" -> {
                            val n = o.reqStr("name")
                            val props = o.optStr("properties")
                            client.screen(n, props)
                        }
                        "identify" -> {
                            val user = o.optStr("userId")
                            val traits = o.optStr("traits")
                            val ids = o.optStr("ids")
                            val token = o.optStr("userToken")
                            client.identify(user, traits, ids, token)
                        }
                        else -> {
                            val user = o.reqStr("userId")
                            val prev = o.optStr("previousId")
                            client.alias(user, prev)
                        }
                    }
                    bind(name, id)
                } catch (e: ScenarioFailure) {
                    throw e
                } catch (e: Exception) {
                    gotError = kindOf(e)
                }
            }
            "reset" -> {
                expectedDraws += 1
                client.reset()
            }
            "setConsent", "setConsentTcf" -> {
                val arg = if (op == "setConsent") o.reqStr("consent") else o.reqStr("tcString")
                expectedDraws += 1
                try {
                    val view = if (op == "setConsent") client.setConsent(arg) else client.setConsentTcf(arg)
                    if (!Json.eq(Json.parse(view), Json.parse(client.getConsent()))) {
                        fail("$op returned $view but getConsent() says ${client.getConsent()}")
                    }
                } catch (e: ScenarioFailure) {
                    throw e
                } catch (e: Exception) {
                    gotError = kindOf(e)
                }
            }
            "setGpc" -> {
                val on = o.optBool("on") ?: fail("setGpc: \"on\" is required")
                expectedDraws += 1
                client.setGpc(on)
            }
            "loadRules" -> {
                val text = when (val a = o.take("artifact")) {
                    is JsonPrimitive -> if (a.isString) a.asString else fail("loadRules: \"artifact\" must be an object or a string")
                    is JsonObject -> a.toString()
                    else -> fail("loadRules: \"artifact\" must be an object or a string")
                }
                val signature = o.optStr("signature")
                val replace = o.optBool("replace") ?: true
                val inUse = o.optBool("inUse")
                try {
                    val used = client.loadRules(text, signature, replace)
                    if (inUse != null && inUse != used) fail("loadRules: expected inUse $inUse, got $used")
                } catch (e: ScenarioFailure) {
                    throw e
                } catch (e: Exception) {
                    gotError = kindOf(e)
                }
            }
            "decide" -> {
                val placement = o.reqStr("placement")
                val max = o.optU64("max") ?: 1uL
                if (max > UInt.MAX_VALUE.toULong()) fail("decide: \"max\" must fit in 32 bits")
                val context = o.optStr("context")
                val utc = o.take("utcOffsetMinutes")?.let {
                    if (it is JsonPrimitive && it.isNumber) it.asBigDecimal.intValueExact()
                    else fail("decide: \"utcOffsetMinutes\" must be a whole number")
                } ?: 0
                val name = o.optStr("as")
                val want = o.take("expect")
                expectedDraws += 1
                val ds: List<Decision>? = try {
                    val got = client.decide(placement, max.toUInt(), context, utc)
                    // The mobile API answers "no artifact yet" with an empty list (ThreadlineError docs):
                    // the contract's decide.notReady. A loaded artifact always yields a default.
                    if (got.isEmpty() && !client.rulesReady()) {
                        gotError = "decide.notReady"
                        null
                    } else {
                        got
                    }
                } catch (e: ScenarioFailure) {
                    throw e
                } catch (e: Exception) {
                    gotError = kindOf(e)
                    null
                }
                if (ds == null) {
                    if (want != null) fail("decide: refused ($gotError) but \"expect\" given")
                } else {
                    val docs = ds.map { decisionDoc(it) }
                    for (d in ds) {
                        log("decision ${d.offerId} ${d.experimentId ?: "-"} ${d.variantId ?: "-"} " +
                            "${if (d.isDefault) "default" else "offer"} ${d.decisionId}")
                    }
                    if (name != null) {
                        for ((i, d) in ds.withIndex()) {
                            bind("$name.$i", d.decisionId)
                            decisions["$name.$i"] = d
                        }
                    }
                    if (want !is JsonArray) fail("decide: \"expect\" must be a list")
                    if (want.size() != docs.size) {
                        fail("decide: expected ${want.size()} decision(s), got ${ds.map { it.offerId }}")
                    }
                    for ((i, w0) in want.withIndex()) {
                        val what = "decision $i"
                        val w = Obj(w0, what)
                        val fields = JsonObject()
                        fields.addProperty("offerId", w.reqStr("offerId"))
                        fields.addProperty("isDefault", w.optBool("isDefault") ?: fail("$what: \"isDefault\" is required"))
                        fields.add("experimentId", w.take("experimentId") ?: JsonNull.INSTANCE)
                        fields.add("variantId", w.take("variantId") ?: JsonNull.INSTANCE)
                        w.take("decisionId")?.let { fields.add("decisionId", it) }
                        w.done()
                        matchFields(what, docs[i], fields)
                    }
                }
            }
            "displayed", "clicked" -> {
                val sym = o.reqStr("decision")
                val want = o.reqStr("expect")
                val name = o.optStr("as")
                if (want != "recorded" && want != "duplicate") fail("$op: \"expect\" is \"recorded\" or \"duplicate\"")
                val d = decisions[sym] ?: fail("$op: unknown decision \"$sym\"")
                expectedDraws += 1
                try {
                    val id = if (op == "displayed") client.displayed(d) else client.clicked(d)
                    log("$op ${id ?: "duplicate"}")
                    val got = if (id != null) "recorded" else "duplicate"
                    if (got != want) fail("$op: expected $want, got $got")
                    if (id != null) bind(name, id)
                } catch (e: ScenarioFailure) {
                    throw e
                } catch (e: Exception) {
                    gotError = kindOf(e)
                }
            }
            "rulesFetch" -> {
                val want = o.take("expect") ?: fail("rulesFetch: \"expect\" is required")
                val reply = o.take("reply")
                val fetch = rulesFollowUp ?: client.nextRulesFetch()
                rulesFollowUp = null
                if (fetch == null) {
                    log("rulesFetch none")
                    if (!want.isJsonNull) fail("rulesFetch: expected $want, no request was due")
                    if (reply != null) fail("rulesFetch: \"reply\" given but no request was due")
                } else {
                    log("rulesFetch ${fetch.url} ${fetch.etag ?: "-"} ${if (fetch.signature) "signature" else "artifact"}")
                    if (want.isJsonNull) fail("rulesFetch: expected none, got a request for ${fetch.url}")
                    val w = Obj(want, "rulesFetch expect")
                    val fields = JsonObject()
                    fields.add("etag", w.take("etag") ?: JsonNull.INSTANCE)
                    fields.addProperty("signature", w.optBool("signature") ?: false)
                    w.take("url")?.let { fields.add("url", it) }
                    w.done()
                    val doc = JsonObject().also {
                        it.addProperty("url", fetch.url)
                        fetch.etag?.let { e -> it.addProperty("etag", e) }
                        it.addProperty("signature", fetch.signature)
                    }
                    matchFields("rulesFetch", doc, fields)
                    val r = Obj(reply ?: fail("rulesFetch: \"reply\" is required"), "rulesFetch reply")
                    val network = r.optBool("network") ?: false
                    val status = r.optU64("status")
                    val etag = r.optStr("etag")
                    val body = when (val a = r.take("artifact")) {
                        null -> null
                        is JsonPrimitive -> if (a.isString) a.asString else fail("rulesFetch: \"artifact\" must be an object or a string")
                        is JsonObject -> a.toString()
                        else -> fail("rulesFetch: \"artifact\" must be an object or a string")
                    }
                    val jitter = r.optU64("jitter") ?: 0uL
                    if (jitter > UInt.MAX_VALUE.toULong()) fail("rulesFetch: jitter must fit in 32 bits")
                    r.done()
                    if (network == (status != null)) fail("rulesFetch: a reply is a status or a network error")
                    if (status != null && status > 65535u) fail("rulesFetch: bad status")
                    source.setJitter(jitter.toUInt())
                    try {
                        rulesFollowUp = client.rulesFetched(fetch.id, status?.toUShort(), etag, body?.toByteArray(Charsets.UTF_8))
                    } catch (e: ScenarioFailure) {
                        throw e
                    } catch (e: Exception) {
                        gotError = kindOf(e)
                    }
                }
            }
            "profileFetch" -> {
                val want = o.take("expect") ?: fail("profileFetch: \"expect\" is required")
                val reply = o.take("reply")
                val fetch = client.nextProfileFetch()
                if (fetch == null) {
                    log("profileFetch none")
                    if (!want.isJsonNull) fail("profileFetch: expected $want, no request was due")
                    if (reply != null) fail("profileFetch: \"reply\" given but no request was due")
                } else {
                    log("profileFetch ${fetch.url} ${fetch.token}")
                    if (want.isJsonNull) fail("profileFetch: expected none, got a request for ${fetch.url}")
                    val w = Obj(want, "profileFetch expect")
                    val device = (Json.parse(client.getIdentity()) as? JsonObject)?.get("deviceId")
                        ?.takeIf { it.isJsonPrimitive }?.asString.orEmpty()
                    val fields = JsonObject()
                    w.take("url")?.let {
                        if (!(it is JsonPrimitive && it.isString)) fail("profileFetch: \"url\" must be a string")
                        fields.addProperty("url", it.asString.replace("{deviceId}", device))
                    }
                    w.take("token")?.let { fields.add("token", it) }
                    w.done()
                    val doc = JsonObject().also {
                        it.addProperty("url", fetch.url)
                        it.addProperty("token", fetch.token)
                    }
                    matchFields("profileFetch", doc, fields)
                    val r = Obj(reply ?: fail("profileFetch: \"reply\" is required"), "profileFetch reply")
                    val network = r.optBool("network") ?: false
                    val status = r.optU64("status")
                    val body = when (val a = r.take("profile")) {
                        null -> null
                        is JsonPrimitive -> if (a.isString) a.asString else fail("profileFetch: \"profile\" must be an object or a string")
                        is JsonObject -> a.toString()
                        else -> fail("profileFetch: \"profile\" must be an object or a string")
                    }
                    val jitter = r.optU64("jitter") ?: 0uL
                    if (jitter > UInt.MAX_VALUE.toULong()) fail("profileFetch: jitter must fit in 32 bits")
                    r.done()
                    if (network == (status != null)) fail("profileFetch: a reply is a status or a network error")
                    if (status != null && status > 65535u) fail("profileFetch: bad status")
                    source.setJitter(jitter.toUInt())
                    try {
                        client.profileFetched(fetch.id, status?.toUShort(), body?.toByteArray(Charsets.UTF_8))
                    } catch (e: ScenarioFailure) {
                        throw e
                    } catch (e: Exception) {
                        gotError = kindOf(e)
                    }
                }
            }
            "refreshProfile" -> client.refreshProfile()
            "flush" -> client.flush()
            "networkAvailable" -> client.networkAvailable()
            "advance" -> {
                val ms = o.optU64("ms") ?: fail("advance: \"ms\" is required")
                if (ms > Long.MAX_VALUE.toULong()) fail("advance: \"ms\" is too large")
                now += ms.toLong()
                source.advance(ms)
            }
            "pump" -> pump(o)
            "finish" -> {
                val h = o.reqStr("upload")
                val reply = parseReply(o.take("reply") ?: fail("finish: \"reply\" is required"))
                val id = held.remove(h) ?: fail("finish: no held upload \"$h\"")
                when (reply) {
                    is Reply.Outcome -> answer(id, reply)
                    is Reply.Hold -> fail("finish: cannot hold again")
                }
            }
            "hide" -> {
                val mode = o.optStr("beacon") ?: "accept"
                val max = o.optU64("maxBodyBytes") ?: 65_536uL
                if (max > UInt.MAX_VALUE.toULong()) fail("hide: \"maxBodyBytes\" must fit in 32 bits")
                if (mode !in listOf("accept", "refuse", "off")) fail("hide: unknown beacon mode \"$mode\"")
                if (mode != "off") {
                    while (true) {
                        val b: Upload = client.nextHandoff(max.toUInt()) ?: break
                        record("beacon", b.body)
                        try {
                            client.handoffFinished(b.id, mode == "accept")
                        } catch (e: ThreadlineException) {
                            fail("handoffFinished: $e ${e.message}")
                        }
                        if (mode != "accept") break
                    }
                }
            }
            "restart" -> {
                held.clear()
                rulesFollowUp = null
                val deviceStored = File(dir, "device.tl").exists()
                val beforeDestroy = dirState(dir)
                // The process ends without warning: no call on the old client.
                // Freeing its native memory must not write anything.
                client.destroy()
                if (dirState(dir) != beforeDestroy) fail("restart: destroying the abandoned client changed the disk")
                expectedDraws += if (deviceStored) 2 else 1
                client = newClient()
            }
            "expect" -> outcome = try {
                expect(o)
                // Where the native (reference) runner logs it: right after the checks.
                log("expect ok")
                null
            } catch (e: ScenarioFailure) {
                e
            }
            else -> fail("unknown step op \"$op\"")
        }
        outcome?.let { throw it }
        val diskAfter = dirState(dir)
        if (diskAfter != diskBefore) {
            fail("the disk changed during \"$op\" before persist()/onBackground(): $diskBefore -> $diskAfter")
        }
        o.done()
        settle(force = op == "hide")
        checkInvariants()
        when {
            expectError == null && gotError == null -> {}
            expectError != null && expectError == gotError -> {}
            expectError != null -> fail("expected error \"$expectError\", got ${gotError ?: "none"}")
            else -> fail("unexpected error \"$gotError\"")
        }
    }

    private fun pump(o: Obj) {
        val replies = ArrayDeque<Reply>()
        when (val r = o.take("replies")) {
            null -> {}
            is JsonArray -> r.forEach { replies.addLast(parseReply(it)) }
            else -> fail("pump: \"replies\" must be a list, got $r")
        }
        val all = o.take("all")?.let { parseReply(it) }
        if (all is Reply.Hold) fail("pump: \"all\" cannot hold")
        for (n in 0 until 1_000) {
            if (replies.isEmpty() && all == null) break
            val u = client.nextUpload() ?: break
            record("fetch", u.body)
            val reply = replies.removeFirstOrNull() ?: all!!
            when (reply) {
                is Reply.Outcome -> answer(u.id, reply)
                is Reply.Hold -> {
                    if (held.containsKey(reply.name)) fail("pump: held upload \"${reply.name}\" named twice")
                    held[reply.name] = u.id
                }
            }
        }
    }

    /** A decision as the core serialises it (without `content`), for matchers. */
    private fun decisionDoc(d: Decision): JsonObject = JsonObject().also {
        it.addProperty("decisionId", d.decisionId)
        it.addProperty("placement", d.placement)
        it.addProperty("offerId", d.offerId)
        d.experimentId?.let { e -> it.addProperty("experimentId", e) }
        d.variantId?.let { v -> it.addProperty("variantId", v) }
        it.addProperty("isDefault", d.isDefault)
    }

    private fun sym(what: String, s: String): String = symbols[s] ?: fail("$what: unknown symbol \"$s\"")

    private fun matches(what: String, actual: JsonElement?, want: JsonElement) {
        fun bad(why: String): Nothing = fail("$what: $why; actual ${actual ?: "absent"}")
        val present = actual != null && !actual.isJsonNull
        if (want is JsonObject && want.size() == 1 && want.keySet().all { it.startsWith("$") }) {
            val (k, arg) = want.entrySet().first()
            fun argStr(): String =
                if (arg is JsonPrimitive && arg.isString) arg.asString else fail("$what: $k takes a string")
            val actualStr = if (actual is JsonPrimitive && actual.isString) actual.asString else null
            when (k) {
                "\$present" -> if (!present) bad("expected present")
                "\$absent" -> if (present) bad("expected absent or null")
                "\$as" -> {
                    val name = argStr()
                    bind(name, actualStr ?: fail("$what: expected a string to bind to \"$name\""))
                }
                "\$eq", "\$ne" -> {
                    val s = sym(what, argStr())
                    val eq = actualStr == s
                    val ok = if (k == "\$eq") eq else (!eq && present)
                    if (!ok) bad("expected $k $arg ($s)")
                }
                "\$at" -> {
                    val off = Json.asU64(arg) ?: fail("$what: \$at takes a number")
                    val a = Json.asU64(actual)
                    if (a == null || a != start.toULong() + off) bad("expected start + $off")
                }
                "\$sha256" -> {
                    val h = sha256Hex(argStr().toByteArray(Charsets.UTF_8))
                    if (actualStr != h) bad("expected sha256($arg) = $h")
                }
                else -> fail("$what: unknown matcher $k")
            }
            return
        }
        val ok = if (actual == null) want.isJsonNull else Json.eq(actual, want)
        if (!ok) bad("expected $want")
    }

    private fun matchFields(what: String, doc: JsonElement, fields: JsonElement) {
        if (fields !is JsonObject) fail("$what: expected an object of paths")
        // serde_json's maps iterate in key order; `$as` before `$eq` depends on it.
        for (path in fields.keySet().sorted()) {
            matches("$what $path", atPath(doc, path), fields.get(path))
        }
    }

    private fun stringList(what: String, v: JsonElement): List<String> {
        if (v !is JsonArray) fail("$what must be a list")
        return v.map { if (it is JsonPrimitive && it.isString) it.asString else fail("$what: ids are strings") }
    }

    private fun expect(o: Obj) {
        val uploads = this.uploads.toList().also { this.uploads.clear() }
        val notices = this.notices.toList().also { this.notices.clear() }
        val wiped = this.wiped.also { this.wiped = false }
        val storeOps = this.storeOps.toList().also { this.storeOps.clear() }
        o.take("uploads")?.let { want ->
            if (want !is JsonArray) fail("expect: \"uploads\" must be a list")
            val summary = uploads.map { u -> u.events.map { label(it) } }
            if (want.size() != uploads.size) {
                fail("expected ${want.size()} upload(s), got ${uploads.size}: $summary")
            }
            for ((i, w0) in want.withIndex()) {
                val u = uploads[i]
                val what = "upload $i"
                val w = Obj(w0, what)
                w.optStr("transport")?.let { t ->
                    if (t != u.transport) fail("$what: expected transport $t, got ${u.transport}")
                }
                val n = u.events.size
                w.optU64("count")?.let { c ->
                    if (c != n.toULong()) fail("$what: expected $c event(s), got $n: ${summary[i]}")
                }
                w.take("names")?.let { names ->
                    if (!Json.eq(names, Json.strings(summary[i]))) {
                        fail("$what: expected names $names, got ${summary[i]}")
                    }
                }
                w.take("ids")?.let { idsEl ->
                    if (idsEl !is JsonArray) fail("$what: \"ids\" must be a list")
                    if (idsEl.size() != n) fail("$what: ${idsEl.size()} id(s) expected, $n event(s) sent: ${summary[i]}")
                    for ((j, idEl) in idsEl.withIndex()) {
                        val id = if (idEl is JsonPrimitive && idEl.isString) idEl.asString else fail("$what: ids are strings")
                        if (id == "_") continue
                        val e = u.events[j]
                        val actual = (e as? JsonObject)?.get("messageId")
                        matches("$what event $j messageId", actual, JsonObject().also { it.addProperty("\$eq", id) })
                    }
                }
                w.take("events")?.let { events ->
                    if (events !is JsonArray) fail("$what: \"events\" must be a list")
                    if (events.size() != n) fail("$what: \"events\" lists ${events.size()} event(s), $n sent")
                    for ((j, fields) in events.withIndex()) matchFields("$what event $j", u.events[j], fields)
                }
                w.take("every")?.let { fields ->
                    for ((j, e) in u.events.withIndex()) matchFields("$what event $j", e, fields)
                }
                w.done()
            }
        }
        o.take("notices")?.let { want ->
            val got = Json.strings(notices)
            if (!Json.eq(want, got)) fail("expected notices $want, got $got")
        }
        o.optBool("wiped")?.let { want -> if (want != wiped) fail("expected wiped $want, got $wiped") }
        o.take("storeOps")?.let { want ->
            val got = Json.strings(storeOps)
            if (!Json.eq(want, got)) fail("expected storeOps $want, got $got")
        }
        o.take("stats")?.let { matchFields("stats", statsDoc(), it) }
        o.take("consent")?.let { matchFields("consent", Json.parse(client.getConsent()), it) }
        o.take("identity")?.let { matchFields("identity", Json.parse(client.getIdentity()), it) }
        o.take("pollTimeout")?.let { want ->
            val got = client.pollTimeoutMs()
            val ok = when {
                want.isJsonNull -> got == null
                want is JsonPrimitive && want.isString && want.asString == "now" -> got == 0uL
                want is JsonPrimitive && want.isNumber && got != null ->
                    Json.asU64(want)?.let { n -> start.toULong() + n == now.toULong() + got } ?: false
                else -> false
            }
            if (!ok) {
                val rel = got?.let { now + it.toLong() - start }
                fail("expected pollTimeout $want, got ${rel ?: "null"} (relative to start)")
            }
        }
        o.take("nextUpload")?.let { want ->
            val got: JsonElement = when (val p = client.pollUpload()) {
                is UploadPoll.Idle -> JsonPrimitive("idle")
                is UploadPoll.Wait -> JsonObject().also { it.add("waitUntil", Json.num(now + p.ms.toLong() - start)) }
                is UploadPoll.Due -> fail("expected nextUpload $want, but an upload was due (and is now taken)")
            }
            if (!Json.eq(want, got)) fail("expected nextUpload $want, got $got")
        }
        o.take("stored")?.let { want ->
            val w = Obj(want, "stored")
            for (slot in SLOTS) {
                w.optBool(slot)?.let { b ->
                    val has = File(dir, "$slot.tl").exists()
                    if (b != has) fail("stored.$slot: expected $b, got $has")
                }
            }
            w.take("queueIds")?.let { idsEl ->
                if (idsEl !is JsonArray) fail("stored: \"queueIds\" must be a list")
                val qf = File(dir, "queue.tl")
                val snap = if (qf.exists()) Json.parseBytes(readRecord(qf), "stored queue") else Json.parse("""{"v":1,"events":[]}""")
                val events = ((snap as? JsonObject)?.get("events") as? JsonArray)?.toList() ?: emptyList()
                val got = events.map { (it as? JsonObject)?.get("id") ?: JsonNull.INSTANCE }
                if (got.size != idsEl.size()) fail("stored.queueIds: expected ${idsEl.size()} id(s), got ${got.size}")
                for ((j, id) in idsEl.withIndex()) {
                    if (id is JsonPrimitive && id.isString && id.asString == "_") continue
                    matches("stored.queueIds $j", got[j], JsonObject().also { it.add("\$eq", id) })
                }
            }
            w.done()
        }
    }
}

/** Runs one file; returns the number of steps, or throws ScenarioFailure ("step i ...: what differed"). */
fun runFile(file: File, transcript: MutableList<String>): Int {
    val text = try {
        file.readText(Charsets.UTF_8)
    } catch (e: Exception) {
        fail("cannot read: $e")
    }
    val o = Obj(Json.parse(text), "scenario")
    o.reqStr("name")
    o.optStr("description")
    val seed = o.reqStr("seed")
    val start = o.optU64("start")?.also { if (it > Long.MAX_VALUE.toULong()) fail("scenario: \"start\" is too large") }
        ?.toLong() ?: DEFAULT_START
    val config = when (val c = o.take("config") ?: fail("scenario: \"config\" is required")) {
        is JsonPrimitive -> if (c.isString) c.asString else fail("scenario: \"config\" must be an object or a string")
        is JsonObject -> c.toString()
        else -> fail("scenario: \"config\" must be an object or a string")
    }
    val steps = o.take("steps") as? JsonArray ?: fail("scenario: \"steps\" must be a list")
    o.done()
    val dir = Files.createTempDirectory("tl-scenario-${file.nameWithoutExtension}-").toFile()
    try {
        val run = try {
            Run(config, start, dir, transcript, seed)
        } catch (e: ScenarioFailure) {
            throw ScenarioFailure("start (step -1): ${e.message}")
        }
        try {
            for ((i, step) in steps.withIndex()) {
                try {
                    run.step(i, step)
                } catch (e: ScenarioFailure) {
                    throw ScenarioFailure("step $i $step:\n    ${e.message}")
                }
            }
        } finally {
            run.close()
        }
        return steps.size()
    } finally {
        dir.deleteRecursively()
    }
}

fun main(args: Array<String>) {
    if (args.size < 2) {
        System.err.println("usage: Scenarios <scenario dir> <transcript dir> [name ...]")
        exitProcess(2)
    }
    try {
        dev.threadline.sdk.uniffiEnsureInitialized()
    } catch (e: Throwable) {
        var c: Throwable? = e
        while (c != null && c.message?.contains("checksum") != true && c.message?.contains("contract version") != true) {
            c = c.cause
        }
        System.err.println("the Kotlin bindings do not match libsdk_mobile: $e${c?.let { " (${it.message})" } ?: ""}")
        exitProcess(if (c != null) 3 else 1)
    }
    println("core ${dev.threadline.sdk.coreVersion()}")
    try {
        val n = selfTest()
        println("self-test: a valid scenario passes and all $n damaged variants fail as they should")
    } catch (e: ScenarioFailure) {
        System.err.println(e.message)
        exitProcess(1)
    }
    val dir = File(args[0])
    val outDir = File(args[1])
    outDir.mkdirs()
    val only = args.drop(2).toSet()
    val files = (dir.listFiles() ?: emptyArray()).filter { it.isFile && it.name.endsWith(".json") }.sortedBy { it.name }
    if (files.isEmpty()) {
        System.err.println("no scenario files in $dir")
        exitProcess(1)
    }
    val selected = if (only.isEmpty()) files else files.filter { it.nameWithoutExtension in only }
    if (only.isNotEmpty() && selected.size != only.size) {
        System.err.println("unknown scenario name(s): ${only - selected.map { it.nameWithoutExtension }.toSet()}")
        exitProcess(2)
    }
    // A stale transcript must not be compared with another runner's.
    for (f in selected) File(outDir, "${f.nameWithoutExtension}.txt").delete()
    if (only.isEmpty()) outDir.listFiles()?.filter { it.name.endsWith(".txt") }?.forEach { it.delete() }
    val failures = mutableListOf<String>()
    var passed = 0
    val t0 = System.nanoTime()
    for (f in selected) {
        val name = f.nameWithoutExtension
        val transcript = mutableListOf<String>()
        val t = System.nanoTime()
        try {
            val steps = runFile(f, transcript)
            passed++
            println("ok    $name ($steps steps, ${(System.nanoTime() - t) / 1_000_000} ms)")
        } catch (e: Throwable) {
            val msg = if (e is ScenarioFailure) e.message else "${e.javaClass.name}: ${e.message}\n" +
                e.stackTrace.take(8).joinToString("\n") { "      at $it" }
            failures.add("${f.path}: $msg")
            println("FAIL  $name\n  ${f.path}: $msg")
        }
        File(outDir, "$name.txt").writeText(transcript.joinToString("") { "$it\n" })
    }
    val ms = (System.nanoTime() - t0) / 1_000_000
    println("kotlin scenarios: $passed passed, ${failures.size} failed, of ${selected.size} run; " +
        "${files.size} file(s) in $dir ($ms ms)")
    if (failures.isNotEmpty() || passed != selected.size || (only.isEmpty() && selected.size != files.size)) {
        exitProcess(1)
    }
}
