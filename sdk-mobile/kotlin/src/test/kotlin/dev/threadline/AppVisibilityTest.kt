package dev.threadline

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** The JVM-tested logic behind the Android hooks: foreground/background rule and IAB value types. */
class AppVisibilityTest {
    @Test
    fun backgroundOnlyWhenTheLastActivityStops() {
        val calls = ArrayList<String>()
        val v = AppVisibility(onForeground = { calls += "fg" }, onBackground = { calls += "bg" })
        v.activityStarted() // launcher activity
        v.activityStarted() // a second one on top
        v.activityStopped(false) // the first, now hidden
        assertTrue(v.inForeground)
        v.activityStopped(true) // rotation: destroyed and recreated at once
        v.activityStarted()
        assertEquals(listOf("fg"), calls, "neither opening a screen nor rotating is a trip to the background")
        v.activityStopped(false) // home button
        assertFalse(v.inForeground)
        v.activityStopped(false) // a stray stop is ignored
        v.activityStarted()
        assertEquals(listOf("fg", "bg", "fg"), calls)
    }

    @Test
    fun iabValuesOfEveryTypeCmpsStore() {
        fun read(applies: Any?, tc: Any?) = IabTcf.read(mapOf(IabTcf.GDPR_APPLIES to applies, IabTcf.TC_STRING to tc)::get)
        assertEquals(IabTcf.Values(null, null), read(null, null))
        assertEquals(IabTcf.Values("CO", 1), read(1, "CO"))
        assertEquals(IabTcf.Values("CO", 1), read(1L, " CO".trim()))
        assertEquals(IabTcf.Values(null, 0), read("0", ""), "an empty string is 'not set'")
        assertEquals(IabTcf.Values(null, 1), read(true, null))
        assertEquals(IabTcf.Values(null, 0), read(false, null))
        assertEquals(IabTcf.Values(null, 2), read(2, null), "out-of-range values are the core's to refuse")
        assertFailsWith<IllegalArgumentException> { read("yes", null) }
        assertFailsWith<IllegalArgumentException> { read(1.5f, null) }
        assertFailsWith<IllegalArgumentException> { read(1, 42) }
        assertFailsWith<IllegalArgumentException> { read(Long.MAX_VALUE, null) }
    }
}
