//! Placeholder for the UniFFI bindings (Kotlin, Swift) of `sdk-core`.
//!
//! The mobile issue fills this crate: a UniFFI `Client` object, a file-backed
//! store and the platform upload loop. Today it only proves that the core
//! builds for a native host with no platform crates in between.

/// The core version the mobile bindings are built against.
pub fn core_version() -> String {
    sdk_core::Library::default().version
}
