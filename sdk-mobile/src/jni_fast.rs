//! The JNI fast path for `track` and `screen` on Android and the JVM.
//!
//! UniFFI 0.32's Kotlin glue goes through JNA and allocates a structure per
//! argument: 30 to 70 µs for a `track` on our 2-core machine, measured in
//! `sdk-mobile/kotlin` (toolchain-mobile.md has the breakdown). Events are
//! the one call an app makes in a hot loop, so they get a plain JNI entry
//! point (`dev.threadline.sdk.NativeTrack`): two strings in, one `long`
//! out, no allocation on the Kotlin side. Everything else keeps the UniFFI
//! glue, which is fast enough for calls made once per screen or session.
//!
//! Kotlin cannot hold a Rust reference, so it gets a handle: a number in a
//! registry of weak references, removed when the client is dropped. A
//! stale handle is an `IllegalStateException`, never a dangling pointer.
//! Nothing may unwind into the JVM: every entry point catches panics and
//! turns them into exceptions.
//!
//! JNI needs `#[no_mangle]` exports, the only `unsafe_code` the crate
//! allows (`sdk-mobile/Cargo.toml`); no raw pointer is touched here, the
//! `jni` crate's safe API does the conversions.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use jni::objects::{JClass, JString};
use jni::sys::jlong;
use jni::JNIEnv;

use crate::client::Client;

type Registry = RwLock<HashMap<u64, Weak<Client>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

pub(crate) fn register(client: &Arc<Client>) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let handle = NEXT.fetch_add(1, Ordering::Relaxed);
    registry().write().unwrap_or_else(PoisonError::into_inner).insert(handle, Arc::downgrade(client));
    handle
}

pub(crate) fn unregister(handle: u64) {
    registry().write().unwrap_or_else(PoisonError::into_inner).remove(&handle);
}

fn lookup(handle: jlong) -> Option<Arc<Client>> {
    let key = u64::try_from(handle).ok()?;
    registry().read().unwrap_or_else(PoisonError::into_inner).get(&key)?.upgrade()
}

/// Why a fast call failed, thrown as a Java exception.
enum Failure {
    /// `java.lang.IllegalArgumentException("<kind>: <message>")`.
    Invalid(String),
    /// `java.lang.IllegalStateException`.
    State(String),
}

fn record(
    env: &mut JNIEnv,
    handle: jlong,
    name: &JString,
    properties: &JString,
    screen: bool,
) -> Result<jlong, Failure> {
    let client = lookup(handle)
        .ok_or_else(|| Failure::State(format!("Threadline client handle {handle} is closed")))?;
    let name: String = env
        .get_string(name)
        .map_err(|e| Failure::Invalid(format!("event.empty: the event name could not be read: {e}")))?
        .into();
    let properties: Option<String> = if properties.is_null() {
        None
    } else {
        Some(
            env.get_string(properties)
                .map_err(|e| {
                    Failure::Invalid(format!("event.notAnObject: properties could not be read: {e}"))
                })?
                .into(),
        )
    };
    match client.track_fast(&name, properties.as_deref(), screen) {
        Ok(wait) => Ok(wait.map_or(-1, |ms| jlong::try_from(ms).unwrap_or(jlong::MAX))),
        Err(e) => Err(Failure::Invalid(format!("{}: {e}", e.kind()))),
    }
}

/// Runs `record` with every failure, panics included, turned into a
/// pending Java exception (the return value is then ignored by the JVM).
fn entry(mut env: JNIEnv, handle: jlong, name: JString, properties: JString, screen: bool) -> jlong {
    let result = catch_unwind(AssertUnwindSafe(|| record(&mut env, handle, &name, &properties, screen)))
        .unwrap_or_else(|_| Err(Failure::State("Threadline: internal error (panic) in track".into())));
    match result {
        Ok(v) => v,
        Err(f) => {
            let (class, message) = match f {
                Failure::Invalid(m) => ("java/lang/IllegalArgumentException", m),
                Failure::State(m) => ("java/lang/IllegalStateException", m),
            };
            // If even throwing fails, an exception is already pending.
            let _ = env.throw_new(class, message);
            -1
        }
    }
}

/// `NativeTrack.track(handle, name, propertiesJson)`: records a `track`
/// event; returns the milliseconds until the upload loop must run
/// (`pollTimeoutMs`), or -1 when nothing is scheduled.
#[no_mangle]
pub extern "system" fn Java_dev_threadline_sdk_NativeTrack_track(
    env: JNIEnv,
    _class: JClass,
    handle: jlong,
    name: JString,
    properties: JString,
) -> jlong {
    entry(env, handle, name, properties, false)
}

/// `NativeTrack.screen(handle, name, propertiesJson)`, as `track`.
#[no_mangle]
pub extern "system" fn Java_dev_threadline_sdk_NativeTrack_screen(
    env: JNIEnv,
    _class: JClass,
    handle: jlong,
    name: JString,
    properties: JString,
) -> jlong {
    entry(env, handle, name, properties, true)
}
