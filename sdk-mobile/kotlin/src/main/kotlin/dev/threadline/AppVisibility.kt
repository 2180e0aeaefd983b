package dev.threadline

/**
 * Foreground/background from activity start/stop counts, for the Android hook
 * (`androidMain/.../ThreadlineAndroid.kt`), kept here so the rule is tested on the JVM.
 *
 * The app is in the foreground while at least one activity is started. A stop that is part of a
 * configuration change (rotation, dark mode: the activity is destroyed and recreated at once) is not
 * a trip to the background, so it neither counts down nor calls [onBackground]; the recreated
 * activity's start is then not counted again. Callbacks run on the caller's thread (Android: main);
 * the facade's lifecycle calls only hand work to its upload thread.
 */
class AppVisibility(private val onForeground: () -> Unit, private val onBackground: () -> Unit) {
    private var started = 0
    private var recreating = 0

    /** `Activity.onStart` (`onActivityStarted`). */
    @Synchronized
    fun activityStarted() {
        if (recreating > 0) {
            recreating--
            return
        }
        if (started++ == 0) onForeground()
    }

    /** `Activity.onStop`; [changingConfigurations] is `activity.isChangingConfigurations`. */
    @Synchronized
    fun activityStopped(changingConfigurations: Boolean) {
        if (changingConfigurations) {
            recreating++
            return
        }
        if (started == 0) return // a stop without a start we saw (hook installed late)
        if (--started == 0) onBackground()
    }

    val inForeground: Boolean
        @Synchronized get() = started > 0
}
