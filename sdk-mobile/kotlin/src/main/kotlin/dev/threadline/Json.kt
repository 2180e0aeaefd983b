package dev.threadline

import java.math.BigDecimal
import java.math.BigInteger
import java.util.Date

/**
 * Why a value could not be written as JSON. Thrown only inside the SDK: the facade turns it into a
 * [ThreadlineError.InvalidEvent] for the error handler.
 */
internal class JsonException(val kind: String, message: String) : Exception(message)

/**
 * The Kotlin-side JSON writer for properties and traits.
 *
 * Events cross into Rust as one JSON string so that a `track` is a single native call (the JNI fast path
 * takes two strings and returns a long); the Rust core parses and validates it again, so this writer only
 * has to be correct, not policy-aware. No reflection and no dependency (Android apps bring their own
 * Gson/Moshi/kotlinx.serialization versions; an SDK must not pin one).
 *
 * Accepted values: `null`, `String`/`CharSequence`/`Char`, `Boolean`, every `Number` (finite only:
 * NaN and ±Infinity have no JSON form and are refused rather than silently turned into `null`), unsigned
 * Kotlin integers, `Map` with `CharSequence` keys, `Iterable`, arrays and primitive arrays, `Enum`
 * (its name) and `java.util.Date` (ISO-8601 UTC, the Segment spec's timestamp form). Anything else is
 * refused with kind `event.notSerializable`; nesting deeper than [MAX_DEPTH] (a cycle, usually) with
 * `event.tooDeep`.
 */
internal object JsonWriter {
    /** Deeper than any core limit (`limits.maxPropertyDepth`), shallow enough to stop a cycle early. */
    const val MAX_DEPTH = 64

    fun write(value: Any?): String {
        val sb = StringBuilder(64)
        value(sb, value, 0)
        return sb.toString()
    }

    /** `null` stays `null` (no properties), a map becomes an object. */
    fun writeObject(map: Map<*, *>?): String? = if (map == null) null else write(map)

    private fun value(sb: StringBuilder, v: Any?, depth: Int) {
        when (v) {
            null -> sb.append("null")
            is String -> string(sb, v)
            is Boolean -> sb.append(if (v) "true" else "false")
            is Int, is Long, is Short, is Byte, is BigInteger -> sb.append(v.toString())
            is Double -> double(sb, v)
            is Float -> {
                // Float.toString gives the shortest decimal that reads back as this float ("0.1"), which
                // is what the app meant; widening to double first would write 0.10000000149011612.
                if (v.isNaN() || v.isInfinite()) throw JsonException("event.notSerializable", "$v is not a JSON number")
                sb.append(v.toString())
            }
            is BigDecimal -> sb.append(v.toString())
            is Number -> double(sb, v.toDouble())
            is UInt, is ULong, is UShort, is UByte -> sb.append(v.toString())
            is CharSequence -> string(sb, v)
            is Char -> string(sb, v.toString())
            is Map<*, *> -> obj(sb, v, depth + 1)
            is Iterable<*> -> array(sb, v.iterator(), depth + 1)
            is Array<*> -> array(sb, v.iterator(), depth + 1)
            is IntArray -> array(sb, v.iterator(), depth + 1)
            is LongArray -> array(sb, v.iterator(), depth + 1)
            is DoubleArray -> array(sb, v.iterator(), depth + 1)
            is FloatArray -> array(sb, v.iterator(), depth + 1)
            is BooleanArray -> array(sb, v.iterator(), depth + 1)
            is ShortArray -> array(sb, v.iterator(), depth + 1)
            is Enum<*> -> string(sb, v.name)
            is Date -> string(sb, isoUtc(v.time))
            else -> throw JsonException(
                "event.notSerializable",
                "a ${v.javaClass.name} cannot be sent as a property (use strings, numbers, booleans, maps, lists)",
            )
        }
    }

    private fun double(sb: StringBuilder, d: Double) {
        if (d.isNaN() || d.isInfinite()) throw JsonException("event.notSerializable", "$d is not a JSON number")
        // Whole numbers keep the integer form the app most likely passed through a Double ("3", not "3.0").
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            if (d == 0.0 && 1.0 / d < 0) sb.append("-0.0") else sb.append(d.toLong())
        } else {
            sb.append(d.toString()) // "1.0E-7" is valid JSON
        }
    }

    private fun obj(sb: StringBuilder, m: Map<*, *>, depth: Int) {
        if (depth > MAX_DEPTH) throw JsonException("event.tooDeep", "properties nest deeper than $MAX_DEPTH levels")
        sb.append('{')
        var first = true
        for ((k, v) in m) {
            if (k !is CharSequence) {
                throw JsonException("event.notSerializable", "property names must be strings, not ${k?.javaClass?.name}")
            }
            if (!first) sb.append(',')
            first = false
            string(sb, k)
            sb.append(':')
            value(sb, v, depth)
        }
        sb.append('}')
    }

    private fun array(sb: StringBuilder, it: Iterator<*>, depth: Int) {
        if (depth > MAX_DEPTH) throw JsonException("event.tooDeep", "properties nest deeper than $MAX_DEPTH levels")
        sb.append('[')
        var first = true
        while (it.hasNext()) {
            if (!first) sb.append(',')
            first = false
            value(sb, it.next(), depth)
        }
        sb.append(']')
    }

    private const val HEX = "0123456789abcdef"

    fun string(sb: StringBuilder, s: CharSequence) {
        sb.append('"')
        val n = s.length
        var i = 0
        while (i < n) {
            val c = s[i]
            when {
                c == '"' -> sb.append("\\\"")
                c == '\\' -> sb.append("\\\\")
                c == '\n' -> sb.append("\\n")
                c == '\r' -> sb.append("\\r")
                c == '\t' -> sb.append("\\t")
                c == '\b' -> sb.append("\\b")
                c == '\u000C' -> sb.append("\\f")
                c < ' ' || c == '\u007F' -> sb.append("\\u00").append(HEX[c.code shr 4]).append(HEX[c.code and 15])
                Character.isHighSurrogate(c) -> {
                    if (i + 1 < n && Character.isLowSurrogate(s[i + 1])) {
                        sb.append(c).append(s[i + 1])
                        i++
                    } else {
                        sb.append('\uFFFD') // a lone surrogate is not Unicode text: JSON parsers refuse it
                    }
                }
                Character.isLowSurrogate(c) -> sb.append('\uFFFD')
                else -> sb.append(c)
            }
            i++
        }
        sb.append('"')
    }

    /** `2024-05-01T12:00:00.000Z` without java.time (API 26) or a SimpleDateFormat (not thread-safe). */
    internal fun isoUtc(ms: Long): String {
        val days = ms.floorDiv(86_400_000L)
        val inDay = ms.mod(86_400_000L)
        // Howard Hinnant's civil_from_days.
        val z = days + 719_468
        val era = z.floorDiv(146_097L)
        val doe = z - era * 146_097
        val yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        val doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        val mp = (5 * doy + 2) / 153
        val d = doy - (153 * mp + 2) / 5 + 1
        val m = if (mp < 10) mp + 3 else mp - 9
        val y = yoe + era * 400 + if (m <= 2) 1 else 0
        return String.format(
            "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            y, m, d, inDay / 3_600_000, inDay / 60_000 % 60, inDay / 1000 % 60, inDay % 1000,
        )
    }
}

/**
 * A small JSON reader for the core's own answers (consent, identity, stats): objects become
 * `Map<String, Any?>` in document order, arrays `List<Any?>`, integers `Long`, other numbers `Double`.
 */
internal class JsonReader private constructor(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? {
            val r = JsonReader(text)
            val v = r.value()
            r.ws()
            if (r.i != text.length) throw IllegalArgumentException("trailing characters at ${r.i}")
            return v
        }

        @Suppress("UNCHECKED_CAST")
        fun parseObject(text: String): Map<String, Any?> =
            parse(text) as? Map<String, Any?> ?: throw IllegalArgumentException("not a JSON object")
    }

    private fun ws() {
        while (i < s.length && s[i].let { it == ' ' || it == '\n' || it == '\r' || it == '\t' }) i++
    }

    private fun fail(what: String): Nothing = throw IllegalArgumentException("bad JSON at $i: $what")

    private fun value(): Any? {
        ws()
        if (i >= s.length) fail("unexpected end")
        return when (val c = s[i]) {
            '{' -> {
                i++
                val m = LinkedHashMap<String, Any?>()
                ws()
                if (i < s.length && s[i] == '}') { i++; return m }
                while (true) {
                    ws()
                    if (i >= s.length || s[i] != '"') fail("expected a key")
                    val k = str()
                    ws()
                    if (i >= s.length || s[i] != ':') fail("expected ':'")
                    i++
                    m[k] = value()
                    ws()
                    if (i < s.length && s[i] == ',') { i++; continue }
                    if (i < s.length && s[i] == '}') { i++; return m }
                    fail("expected ',' or '}'")
                }
                @Suppress("UNREACHABLE_CODE") m
            }
            '[' -> {
                i++
                val l = ArrayList<Any?>()
                ws()
                if (i < s.length && s[i] == ']') { i++; return l }
                while (true) {
                    l.add(value())
                    ws()
                    if (i < s.length && s[i] == ',') { i++; continue }
                    if (i < s.length && s[i] == ']') { i++; return l }
                    fail("expected ',' or ']'")
                }
                @Suppress("UNREACHABLE_CODE") l
            }
            '"' -> str()
            't' -> lit("true", true)
            'f' -> lit("false", false)
            'n' -> lit("null", null)
            else -> if (c == '-' || c in '0'..'9') num() else fail("unexpected '$c'")
        }
    }

    private fun lit(word: String, v: Any?): Any? {
        if (!s.startsWith(word, i)) fail("expected $word")
        i += word.length
        return v
    }

    private fun num(): Any {
        val start = i
        if (s[i] == '-') i++
        var integer = true
        while (i < s.length) {
            val c = s[i]
            if (c in '0'..'9') i++
            else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integer = false; i++ }
            else break
        }
        val t = s.substring(start, i)
        return if (integer) t.toLongOrNull() ?: t.toDouble() else t.toDoubleOrNull() ?: fail("bad number $t")
    }

    private fun str(): String {
        i++ // opening quote
        val sb = StringBuilder()
        while (true) {
            if (i >= s.length) fail("unterminated string")
            val c = s[i++]
            when (c) {
                '"' -> return sb.toString()
                '\\' -> {
                    if (i >= s.length) fail("bad escape")
                    when (val e = s[i++]) {
                        '"' -> sb.append('"'); '\\' -> sb.append('\\'); '/' -> sb.append('/')
                        'b' -> sb.append('\b'); 'f' -> sb.append('\u000C'); 'n' -> sb.append('\n')
                        'r' -> sb.append('\r'); 't' -> sb.append('\t')
                        'u' -> {
                            if (i + 4 > s.length) fail("bad \\u escape")
                            sb.append(s.substring(i, i + 4).toInt(16).toChar())
                            i += 4
                        }
                        else -> fail("bad escape \\$e")
                    }
                }
                else -> sb.append(c)
            }
        }
    }
}
