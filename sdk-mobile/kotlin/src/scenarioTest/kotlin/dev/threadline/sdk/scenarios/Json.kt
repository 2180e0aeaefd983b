// Strict JSON for the scenario runner: the contract (tests/scenarios/README.md)
// requires a file that is not valid JSON to fail, and Gson's own readers accept
// comments, single quotes, `\'` escapes and raw control characters even when
// "strict". So this is a small RFC 8259 parser that builds Gson trees (the DOM
// the rest of the runner uses), keeps every number as its literal text (Gson's
// LazilyParsedNumber: no integer ever turns into a double) and refuses
// duplicate keys (a duplicated key would silently drop one of two checks).
package dev.threadline.sdk.scenarios

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonNull
import com.google.gson.JsonObject
import com.google.gson.JsonPrimitive
import com.google.gson.internal.LazilyParsedNumber
import java.math.BigInteger
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.nio.charset.StandardCharsets

/** A scenario failed (or is malformed): the message says what differed. */
class ScenarioFailure(message: String) : Exception(message)

fun fail(message: String): Nothing = throw ScenarioFailure(message)

object Json {
    fun parse(text: String): JsonElement {
        val p = Parser(text)
        val v = p.value(0)
        p.ws()
        if (p.i != text.length) p.err("trailing characters")
        return v
    }

    /** Upload bodies and stored payloads: bytes that must be UTF-8 JSON. */
    fun parseBytes(bytes: ByteArray, what: String): JsonElement {
        val text = try {
            StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes)).toString()
        } catch (e: CharacterCodingException) {
            fail("$what is not UTF-8: $e")
        }
        return try {
            parse(text)
        } catch (e: ScenarioFailure) {
            fail("$what: ${e.message}")
        }
    }

    private val NUMBER = Regex("-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

    private class Parser(val s: String) {
        var i = 0

        fun err(msg: String): Nothing = fail("not JSON: $msg at offset $i")

        fun ws() {
            while (i < s.length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
        }

        fun value(depth: Int): JsonElement {
            if (depth > 256) err("nested too deeply")
            ws()
            if (i >= s.length) err("unexpected end")
            return when (s[i]) {
                '{' -> obj(depth)
                '[' -> arr(depth)
                '"' -> JsonPrimitive(str())
                't' -> lit("true", JsonPrimitive(true))
                'f' -> lit("false", JsonPrimitive(false))
                'n' -> lit("null", JsonNull.INSTANCE)
                else -> num()
            }
        }

        fun lit(word: String, v: JsonElement): JsonElement {
            if (!s.startsWith(word, i)) err("unexpected character")
            i += word.length
            return v
        }

        fun num(): JsonElement {
            val m = NUMBER.matchAt(s, i) ?: err("unexpected character")
            i = m.range.last + 1
            return JsonPrimitive(LazilyParsedNumber(m.value))
        }

        fun expectChar(c: Char) {
            ws()
            if (i >= s.length || s[i] != c) err("expected '$c'")
            i++
        }

        fun obj(depth: Int): JsonObject {
            i++
            val o = JsonObject()
            ws()
            if (i < s.length && s[i] == '}') {
                i++
                return o
            }
            while (true) {
                ws()
                if (i >= s.length || s[i] != '"') err("expected a key")
                val k = str()
                expectChar(':')
                val v = value(depth + 1)
                if (o.has(k)) err("duplicate key \"$k\"")
                o.add(k, v)
                ws()
                if (i < s.length && s[i] == ',') {
                    i++
                    continue
                }
                expectChar('}')
                return o
            }
        }

        fun arr(depth: Int): JsonArray {
            i++
            val a = JsonArray()
            ws()
            if (i < s.length && s[i] == ']') {
                i++
                return a
            }
            while (true) {
                a.add(value(depth + 1))
                ws()
                if (i < s.length && s[i] == ',') {
                    i++
                    continue
                }
                expectChar(']')
                return a
            }
        }

        fun str(): String {
            i++
            val sb = StringBuilder()
            while (true) {
                if (i >= s.length) err("unterminated string")
                val c = s[i++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (i >= s.length) err("unterminated string")
                        when (val e = s[i++]) {
                            '"', '\\', '/' -> sb.append(e)
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000c')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) err("bad \\u escape")
                                val h = s.substring(i, i + 4)
                                if (!h.all { it in '0'..'9' || it in 'a'..'f' || it in 'A'..'F' }) err("bad \\u escape")
                                sb.append(h.toInt(16).toChar())
                                i += 4
                            }
                            else -> err("bad escape \\$e")
                        }
                    }
                    c < ' ' -> err("control character in a string")
                    else -> sb.append(c)
                }
            }
        }
    }

    private val U64_MAX = BigInteger.ONE.shiftLeft(64) - BigInteger.ONE
    private val I64_MIN = BigInteger.valueOf(Long.MIN_VALUE)

    /** The value as a u64, as serde_json's `as_u64` (an integer literal in range). */
    fun asU64(v: JsonElement?): ULong? {
        if (v !is JsonPrimitive || !v.isNumber) return null
        val t = v.asNumber.toString()
        if (t.any { it == '.' || it == 'e' || it == 'E' || it == '-' }) return null
        val b = t.toBigIntegerOrNull() ?: return null
        return if (b <= U64_MAX) b.toString().toULong() else null
    }

    fun num(v: Long): JsonPrimitive = JsonPrimitive(LazilyParsedNumber(v.toString()))

    /** serde_json's number model: integers in i64/u64 range compare exactly, others as f64. */
    private fun numKey(n: Number): Any {
        val t = n.toString()
        if (t.none { it == '.' || it == 'e' || it == 'E' }) {
            val b = t.toBigIntegerOrNull()
            if (b != null && b >= I64_MIN && b <= U64_MAX) return b
        }
        return t.toDouble()
    }

    /** Equality as serde_json's `Value == Value` (object key order does not matter). */
    fun eq(a: JsonElement, b: JsonElement): Boolean = when {
        a.isJsonNull -> b.isJsonNull
        a is JsonObject -> b is JsonObject && a.size() == b.size() &&
            a.entrySet().all { (k, v) -> b.has(k) && eq(v, b.get(k)) }
        a is JsonArray -> b is JsonArray && a.size() == b.size() && (0 until a.size()).all { eq(a[it], b[it]) }
        a is JsonPrimitive && a.isString -> b is JsonPrimitive && b.isString && a.asString == b.asString
        a is JsonPrimitive && a.isBoolean -> b is JsonPrimitive && b.isBoolean && a.asBoolean == b.asBoolean
        a is JsonPrimitive && a.isNumber -> b is JsonPrimitive && b.isNumber && numKey(a.asNumber) == numKey(b.asNumber)
        else -> false
    }

    fun strings(list: List<String>): JsonArray = JsonArray().also { a -> list.forEach { a.add(it) } }
}
