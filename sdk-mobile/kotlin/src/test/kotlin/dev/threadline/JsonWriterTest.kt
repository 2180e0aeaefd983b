package dev.threadline

import java.math.BigDecimal
import java.math.BigInteger
import java.util.Date
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith

/** The Kotlin-side JSON writer: exact output, and refusals with a kind. */
class JsonWriterTest {
    private fun w(v: Any?) = JsonWriter.write(v)

    @Test
    fun escapesStrings() {
        assertEquals("\"a\\\"b\\\\c\"", w("a\"b\\c"))
        assertEquals("\"\\n\\r\\t\\b\\f\"", w("\n\r\t\b\u000C"))
        assertEquals("\"\\u0000\\u001f\\u007f\"", w("\u0000\u001F\u007F"))
        assertEquals("\"/</script>\"", w("/</script>"), "slashes need no escape")
    }

    @Test
    fun keepsUnicodeAndRepairsLoneSurrogates() {
        assertEquals("\"héllo 日本 \uD83D\uDE00\"", w("héllo 日本 \uD83D\uDE00"), "a surrogate pair is kept whole")
        assertEquals("\"a\uFFFDb\"", w("a\uD83Db"), "a lone high surrogate is not text")
        assertEquals("\"\uFFFD\"", w("\uDE00"), "nor a lone low one")
        assertEquals("\"\u2028\"", w("\u2028"))
    }

    @Test
    fun writesNumbers() {
        assertEquals("[1,-2,3,4,9223372036854775807,12345678901234567890]",
            w(listOf(1, -2L, 3.toShort(), 4.toByte(), Long.MAX_VALUE, BigInteger("12345678901234567890"))))
        assertEquals("[12.5,3,-0.0,1.0E-7,1.0E20,0.1]", w(listOf(12.5, 3.0, -0.0, 1e-7, 1e20, 0.1f)))
        assertEquals("[1.50,4294967295,7]", w(listOf(BigDecimal("1.50"), UInt.MAX_VALUE, java.util.concurrent.atomic.AtomicInteger(7))))
    }

    @Test
    fun refusesNumbersWithoutJsonForm() {
        for (bad in listOf(Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Float.NaN, Float.NEGATIVE_INFINITY)) {
            val e = assertFailsWith<JsonException> { w(mapOf("x" to bad)) }
            assertEquals("event.notSerializable", e.kind, "$bad")
        }
    }

    @Test
    fun writesNestedStructures() {
        val v = linkedMapOf(
            "null" to null, "t" to true, "f" to false,
            "list" to listOf(1, listOf<Any>(), mapOf<String, Any>()),
            "arr" to arrayOf("x", null), "ints" to intArrayOf(1, 2), "bools" to booleanArrayOf(true),
            "nested" to mapOf("a" to mapOf("b" to setOf("c"))),
            "enum" to Choice.GRANTED, "char" to 'q', "sb" to StringBuilder("sb"),
        )
        assertEquals(
            """{"null":null,"t":true,"f":false,"list":[1,[],{}],"arr":["x",null],"ints":[1,2],"bools":[true],""" +
                """"nested":{"a":{"b":["c"]}},"enum":"GRANTED","char":"q","sb":"sb"}""",
            w(v),
        )
        assertEquals(null, JsonWriter.writeObject(null))
        assertEquals("{}", JsonWriter.writeObject(emptyMap<String, Any>()))
    }

    @Test
    fun writesDatesAsIsoUtc() {
        assertEquals("\"1970-01-01T00:00:00.000Z\"", w(Date(0)))
        assertEquals("\"2024-02-29T23:59:59.999Z\"", w(Date(1_709_251_199_999)))
        assertEquals("\"1969-12-31T23:59:59.999Z\"", w(Date(-1)))
    }

    @Test
    fun refusesWhatHasNoJsonForm() {
        assertEquals("event.notSerializable", assertFailsWith<JsonException> { w(mapOf("x" to Any())) }.kind)
        assertEquals("event.notSerializable", assertFailsWith<JsonException> { w(mapOf(1 to "x")) }.kind)
        val cycle = HashMap<String, Any?>()
        cycle["self"] = cycle
        assertEquals("event.tooDeep", assertFailsWith<JsonException> { w(cycle) }.kind)
        val list = ArrayList<Any?>()
        list.add(list)
        assertEquals("event.tooDeep", assertFailsWith<JsonException> { w(list) }.kind)
    }

    @Test
    fun readerRoundTripsWhatTheWriterWrites() {
        val v = linkedMapOf<String, Any?>(
            "s" to "q\"\\\n\u0001é\uD83D\uDE00", "n" to 42L, "d" to 2.5, "l" to listOf(true, null, "x"),
            "m" to linkedMapOf("k" to -7L),
        )
        assertEquals(v, JsonReader.parse(w(v)))
    }
}
