package dev.threadline.android

// Android-only, NOT compiled on the dev machine (see ThreadlineAndroid.kt).

import android.content.Context
import android.content.SharedPreferences
import dev.threadline.IabTcf
import dev.threadline.Threadline

/**
 * IAB TCF v2 consent from the app's CMP: CMPs write `IABTCF_*` keys to the default SharedPreferences
 * (`<package>_preferences`). Applies them now and whenever the CMP changes them. Reading the types the
 * CMPs use and deciding what they mean is done by [IabTcf] and the core (tested on the JVM).
 */
object IabTcfConsent {
    // SharedPreferences holds its listeners weakly: keep them alive for the process.
    private val listeners = ArrayList<SharedPreferences.OnSharedPreferenceChangeListener>()

    fun watch(context: Context, client: Threadline) {
        val prefs = context.getSharedPreferences(context.packageName + "_preferences", Context.MODE_PRIVATE)
        apply(prefs, client)
        val listener = SharedPreferences.OnSharedPreferenceChangeListener { p, key ->
            // key == null: the CMP cleared the file (Android 11+).
            if (key == null || key in IabTcf.WATCHED_KEYS) apply(p, client)
        }
        synchronized(listeners) { listeners.add(listener) }
        prefs.registerOnSharedPreferenceChangeListener(listener)
    }

    private fun apply(prefs: SharedPreferences, client: Threadline) {
        val all = prefs.all // one copy of the map; both keys read from it
        client.applyIabTcf { key -> all[key] }
    }
}
