// swift-tools-version:5.9
// Threadline for iOS (and macOS, for `swift test` on a Mac).
//
// Three modules, mirroring the Kotlin layout:
//   ThreadlineFFI       the Rust library (static, per platform) with its C header: a binary target,
//                       built by scripts/build-xcframework.sh (macOS + Xcode only);
//   ThreadlineBindings  UniFFI's generated Swift (Kotlin: package dev.threadline.sdk), checked in;
//   Threadline          the facade apps use (Kotlin: package dev.threadline).
// The generated types (`Client`, `Notice`, `ThreadlineError`, ...) stay in their own module so the
// facade can use the same names as the Kotlin facade for its own types.
import PackageDescription

let package = Package(
    name: "Threadline",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    products: [
        .library(name: "Threadline", targets: ["Threadline"]),
    ],
    targets: [
        .binaryTarget(name: "ThreadlineFFI", path: "build/ThreadlineFFI.xcframework"),
        .target(name: "ThreadlineBindings", dependencies: ["ThreadlineFFI"], path: "Sources/ThreadlineBindings"),
        .target(name: "Threadline", dependencies: ["ThreadlineBindings"], path: "Sources/Threadline"),
        .testTarget(
            name: "ThreadlineTests",
            dependencies: ["Threadline", "ThreadlineBindings"],
            path: "Tests/ThreadlineTests"
        ),
    ]
)
