package dev.threadline.android

// Android-only glue, NOT compiled on the dev machine (no Android SDK there): compiled by the Android
// Gradle build (../../../../../../build.gradle.kts). The logic it needs lives in the JVM-tested part:
// AppVisibility (foreground/background rule), IabTcf (reading the CMP's keys), Threadline.

import android.app.Activity
import android.app.Application
import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.os.Build
import android.os.Bundle
import dev.threadline.AppVisibility
import dev.threadline.Threadline
import dev.threadline.ThreadlineOptions
import java.io.File

object ThreadlineAndroid {
    /**
     * Creates the client with Android defaults and installs the hooks: call once from
     * `Application.onCreate`. Storage goes to `noBackupFilesDir`: Auto Backup must not copy a device id
     * (and the consent tied to it) to another phone.
     */
    fun create(
        app: Application,
        configJson: String,
        options: ThreadlineOptions = ThreadlineOptions(userAgent = System.getProperty("http.agent")),
        watchIabTcf: Boolean = true,
    ): Threadline {
        val client = Threadline(configJson, File(app.noBackupFilesDir, "threadline"), options)
        installLifecycle(app, client)
        installConnectivity(app, client)
        if (watchIabTcf) IabTcfConsent.watch(app, client)
        return client
    }

    /**
     * Background/foreground from activity callbacks (no androidx dependency; `ProcessLifecycleOwner`
     * gives the same signal when the app already uses lifecycle-process: call onBackground/onForeground
     * from its ON_STOP/ON_START instead).
     */
    fun installLifecycle(app: Application, client: Threadline) {
        val visibility = AppVisibility(onForeground = client::onForeground, onBackground = client::onBackground)
        app.registerActivityLifecycleCallbacks(object : Application.ActivityLifecycleCallbacks {
            override fun onActivityStarted(activity: Activity) = visibility.activityStarted()
            override fun onActivityStopped(activity: Activity) = visibility.activityStopped(activity.isChangingConfigurations)
            override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
            override fun onActivityResumed(activity: Activity) = Unit
            override fun onActivityPaused(activity: Activity) = Unit
            override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit
            override fun onActivityDestroyed(activity: Activity) = Unit
        })
    }

    /** Connectivity back: ends a wait caused by network errors (needs ACCESS_NETWORK_STATE). */
    fun installConnectivity(context: Context, client: Threadline) {
        if (Build.VERSION.SDK_INT < 24) return
        val cm = context.getSystemService(ConnectivityManager::class.java) ?: return
        try {
            cm.registerDefaultNetworkCallback(object : ConnectivityManager.NetworkCallback() {
                override fun onAvailable(network: Network) = client.networkAvailable()
            })
        } catch (_: SecurityException) {
            // No ACCESS_NETWORK_STATE: the core's backoff still retries.
        }
    }
}
