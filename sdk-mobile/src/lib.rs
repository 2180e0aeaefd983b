//! Threadline for iOS and Android: the UniFFI binding of `sdk-core`.
//!
//! As in Mozilla's Glean and Nimbus, policy lives in the shared core and
//! this crate is glue plus the native I/O that belongs in Rust: the clock
//! (`SystemTime`), the random source (`getrandom`) and the file store
//! ([`store`]: one checksummed file per storage slot, written atomically).
//! Kotlin and Swift see one object, [`Client`], built from the same
//! configuration JSON as the web client and a private storage directory.
//! Every method is safe to call from any thread at any time.
//!
//! # The host's loop
//!
//! ```text
//! client.track(...)                      // any thread, any time, no disk I/O
//! loop {                                 // one background thread / queue
//!     while let Some(u) = client.next_upload() {
//!         client.persist();              // the queue is stored as events leave
//!         let r = http.post(u.url, u.headers, u.body);   // OkHttp, URLSession
//!         client.upload_finished(u.id, r.status, r.retry_after, r.network_error);
//!         client.persist();
//!     }
//!     let mut f = client.next_rules_fetch();   // the rules artifact, when due
//!     while let Some(r) = f {
//!         let resp = http.get(r.url, if_none_match = r.etag, no cache);
//!         f = client.rules_fetched(r.id, resp.status, resp.etag, resp.body)
//!             .unwrap_or(None);          // a follow-up (.sig): at once
//!     }
//!     client.persist();                  // debounced writes, the rules cache
//!     sleep(client.poll_timeout_ms() or until the next app call)
//! }
//! on app background: client.flush(), client.on_background() (writes all),
//! then run the loop while the OS allows, or hand batches to a background
//! transport (next_handoff); on connectivity: client.network_available().
//! ```
//!
//! `poll_upload` speaks of uploads only (its `Idle` is the core's, which
//! the shared scenario suite checks), so the loop asks `next_rules_fetch`
//! on every pass and sleeps `poll_timeout_ms()`, which also counts when the
//! next rules fetch is due. At start the host hands over a bundled artifact
//! with `load_rules(.., replace = false)`: it is used only when no cached
//! copy was restored. `decide`, `displayed` and `clicked` are app calls like
//! `track`: no disk I/O; the profile and the rules cache are written by
//! `persist` like the other records, and deleted with them.
//!
//! Only `persist` and `on_background` write files, so every call an app
//! makes stays off the disk and is safe on its main thread (Android's
//! StrictMode flags a write there); the host's loop does the writing. The
//! JNI fast path ([`jni_fast`]) makes `track` a one-crossing call from
//! Kotlin.
//!
//! # Why uploads are pulled, not pushed through a foreign uploader trait
//!
//! The core already works this way (`next_upload` / `upload_finished`), and
//! the binding keeps it rather than calling a Kotlin/Swift `Uploader`
//! interface from Rust:
//! - no Rust thread ever blocks on foreign I/O, and Rust owns no thread and no
//!   async runtime: requests run on the host's HTTP stack (OkHttp, URLSession)
//!   with its TLS, proxies, certificate pinning, background sessions and
//!   WorkManager/BGTaskScheduler constraints, on threads the host chooses;
//! - no callback re-enters the client while its lock is held, so there is no
//!   deadlock or re-entrancy to reason about, and a host exception cannot
//!   unwind through Rust (a foreign callback that throws an unexpected
//!   exception makes UniFFI panic unless every error is mapped);
//! - a foreign→Rust call is cheap, a Rust→foreign callback costs several
//!   times more under JNA (see `toolchain-mobile.md`);
//! - it is testable without any foreign code: the Rust tests below drive the
//!   exact same API with a fake server, and the shared scenario files can
//!   drive it with a simulated network;
//! - it is the same contract on every platform (the web binding pulls too),
//!   so the retry, backoff and batching rules stay in the core only.
//!
//! # Errors and panics
//!
//! Every fallible call returns [`ThreadlineError`] (a checked exception in
//! Kotlin, a thrown error in Swift) with the core's message. Storage problems
//! are not errors: the client keeps working from memory and counts them in
//! `stats()`. The crate denies `unwrap`, `expect`, indexing and `panic!`; a
//! poisoned lock is recovered. Keep `panic = "unwind"` for this library so
//! that UniFFI could still turn an unexpected panic into an exception.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

uniffi::setup_scaffolding!();

mod client;
mod error;
#[cfg(not(target_vendor = "apple"))]
mod jni_fast;
pub mod store;
mod sys;

pub use client::{Client, Decision, Header, Notice, PlacementDecisions, RulesFetch, Upload, UploadPoll};
pub use error::ThreadlineError;
pub use sys::DeterministicSource;

/// The core version the mobile bindings are built against.
#[uniffi::export]
pub fn core_version() -> String {
    sdk_core::Library::default().version
}
