package dev.threadline.sdk

/**
 * The plain JNI entry points of `libsdk_mobile` (`sdk-mobile/src/jni_fast.rs`): a `track` is one JNI call
 * with two strings, a few microseconds, where the UniFFI/JNA glue costs tens.
 *
 * `handle` is `Client.fastHandle()`; the return value is the milliseconds until the upload loop must run
 * (what `pollTimeoutMs()` says after the call), -1 when nothing is scheduled. Bad input throws
 * `IllegalArgumentException("<kind>: <message>")`, a closed client `IllegalStateException`.
 */
internal object NativeTrack {
    @JvmStatic external fun track(handle: Long, name: String, propertiesJson: String?): Long
    @JvmStatic external fun screen(handle: Long, name: String, propertiesJson: String?): Long

    /**
     * Whether the library loaded through JNI (`System.loadLibrary`: the APK's `lib/<abi>/` on Android,
     * `-Djava.library.path` on the JVM). JNA finds the same `.so` by its own search; both load one copy.
     */
    val available: Boolean by lazy {
        try {
            System.loadLibrary("sdk_mobile")
            true
        } catch (_: UnsatisfiedLinkError) {
            false
        } catch (_: SecurityException) {
            false
        }
    }
}
