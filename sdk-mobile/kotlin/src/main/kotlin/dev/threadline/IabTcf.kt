package dev.threadline

/**
 * The IAB TCF v2 keys a CMP writes to the app's default SharedPreferences (Android) or UserDefaults
 * (iOS), and the platform-neutral part of reading them. The Android wrapper
 * (`androidMain/.../IabTcfConsent.kt`) only supplies the reader and re-applies on change.
 */
object IabTcf {
    const val TC_STRING = "IABTCF_TCString"
    const val GDPR_APPLIES = "IABTCF_gdprApplies"
    const val CMP_SDK_ID = "IABTCF_CmpSdkID"
    const val POLICY_VERSION = "IABTCF_PolicyVersion"

    /**
     * Keys whose change means "apply again". The per-purpose keys (`IABTCF_PurposeConsents`, ...) are
     * derived from the TC string by the CMP; the core decodes the string itself, so they are not read.
     */
    val WATCHED_KEYS: Set<String> = setOf(TC_STRING, GDPR_APPLIES)

    data class Values(val tcString: String?, val gdprApplies: Int?)

    /**
     * Reads the two values the core needs. CMPs disagree on types: gdprApplies is specified as a number
     * (0/1) but some store `"1"` or `true`; the TC string must be a string. An empty string means "not
     * set". Anything else throws [IllegalArgumentException] (reported as `consent.tcf` by the facade).
     */
    fun read(read: (String) -> Any?): Values {
        val applies = when (val v = read(GDPR_APPLIES)) {
            null -> null
            is Boolean -> if (v) 1 else 0
            is Int -> v
            is Long -> if (v in Int.MIN_VALUE..Int.MAX_VALUE) v.toInt() else throw IllegalArgumentException("$GDPR_APPLIES=$v")
            is String -> if (v.isBlank()) null else v.trim().toIntOrNull() ?: throw IllegalArgumentException("$GDPR_APPLIES=\"$v\" is not a number")
            else -> throw IllegalArgumentException("$GDPR_APPLIES has type ${v.javaClass.simpleName}")
        }
        val tc = when (val v = read(TC_STRING)) {
            null -> null
            is String -> v.ifBlank { null }
            else -> throw IllegalArgumentException("$TC_STRING has type ${v.javaClass.simpleName}")
        }
        return Values(tc, applies)
    }
}
