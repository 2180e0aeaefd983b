// The only iOS-specific part: UIApplication lifecycle notifications and a background task, plus
// connectivity from NWPathMonitor. Everything else in this module is plain Foundation (it also builds
// for macOS, where `swift test` runs).
#if canImport(UIKit) && !os(watchOS)
import Foundation
import UIKit
#if canImport(Network)
import Network
#endif

/// iOS defaults in one call (Kotlin: `ThreadlineAndroid.create`): call once, e.g. from
/// `application(_:didFinishLaunchingWithOptions:)`, on the main thread.
public enum ThreadlineIOS {
    /// The hooks live as long as the process (Kotlin keeps its listeners the same way).
    private static var installed: [AnyObject] = []

    /// Creates the client in `Application Support/threadline`, excluded from iCloud/iTunes backup (a
    /// device id, and the consent tied to it, must not move to another phone with a restored backup),
    /// and installs the lifecycle and connectivity hooks and, with `watchIabTcf`, the IAB TCF observer
    /// on `UserDefaults.standard`.
    public static func create(
        configJson: String, options: ThreadlineOptions = ThreadlineOptions(), watchIabTcf: Bool = true
    ) throws -> Threadline {
        let fm = FileManager.default
        var dir = try fm.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("threadline", isDirectory: true)
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try? dir.setResourceValues(values)
        let client = try Threadline(configJson: configJson, storageDirectory: dir, options: options)
        let lifecycle = ThreadlineLifecycle(client)
        lifecycle.start()
        installed.append(lifecycle)
        if watchIabTcf {
            let tcf = IabTcfConsent(client)
            tcf.start()
            installed.append(tcf)
        }
        return client
    }
}

/// Wires a `Threadline` client to the app's lifecycle (Kotlin: the Android lifecycle hooks):
/// - `didEnterBackgroundNotification`: `onBackground()` under `beginBackgroundTask`, so that the upload
///   thread can write everything and send what is queued in the ~30 s iOS grants; the task ends as soon as
///   the loop has nothing more due, or when iOS says time is up (whatever is still queued is on disk and
///   leaves at the next foreground).
/// - `willEnterForegroundNotification`: `onForeground()`.
/// - `NWPathMonitor` reporting a usable path after none: `networkAvailable()`.
///
/// Batches are not handed to a background `URLSession` (`nextHandoff`/`handoffFinished`): that needs the
/// app delegate's `handleEventsForBackgroundURLSession` and upload-from-file plumbing, and the window
/// above already sends a normal queue. See sdk-mobile/swift/README.md.
///
/// Not for app extensions (`UIApplication.shared` is unavailable there): call `onBackground()` /
/// `onForeground()` yourself.
public final class ThreadlineLifecycle {
    private let threadline: Threadline
    private var tokens: [NSObjectProtocol] = []
    /// Background tasks still open; main thread only.
    private var tasks: Set<UIBackgroundTaskIdentifier> = []
    #if canImport(Network)
    private var monitor: NWPathMonitor?
    private var wasSatisfied = true
    #endif

    public init(_ threadline: Threadline) {
        self.threadline = threadline
    }

    deinit {
        for t in tokens { NotificationCenter.default.removeObserver(t) }
    }

    /// Starts observing. Call once, on the main thread, e.g. in `application(_:didFinishLaunchingWithOptions:)`.
    public func start() {
        guard tokens.isEmpty else { return }
        let nc = NotificationCenter.default
        tokens.append(nc.addObserver(
            forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main
        ) { [weak self] _ in self?.enteredBackground() })
        tokens.append(nc.addObserver(
            forName: UIApplication.willEnterForegroundNotification, object: nil, queue: .main
        ) { [weak self] _ in self?.threadline.onForeground() })
        #if canImport(Network)
        if #available(iOS 12.0, tvOS 12.0, *) {
            let m = NWPathMonitor()
            m.pathUpdateHandler = { [weak self] path in
                guard let self = self else { return }
                let ok = path.status == .satisfied
                if ok && !self.wasSatisfied { self.threadline.networkAvailable() }
                self.wasSatisfied = ok
            }
            m.start(queue: DispatchQueue(label: "dev.threadline.path"))
            monitor = m
        }
        #endif
    }

    public func stop() {
        for t in tokens { NotificationCenter.default.removeObserver(t) }
        tokens = []
        #if canImport(Network)
        monitor?.cancel()
        monitor = nil
        #endif
    }

    private func enteredBackground() {
        let app = UIApplication.shared
        var id = UIBackgroundTaskIdentifier.invalid
        // Strong captures: a task that is never ended gets the app killed, so these closures must be
        // able to end it even if the app dropped this object; both are released once they ran.
        id = app.beginBackgroundTask(withName: "threadline-upload") {
            self.end(id)
        }
        if id != .invalid { tasks.insert(id) }
        threadline.onBackground(whenIdle: {
            DispatchQueue.main.async { self.end(id) }
        })
    }

    /// Ends a task once, whichever comes first: the loop going idle or the expiration handler.
    private func end(_ id: UIBackgroundTaskIdentifier) {
        guard tasks.remove(id) != nil else { return }
        UIApplication.shared.endBackgroundTask(id)
    }
}
#endif
