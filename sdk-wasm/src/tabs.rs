//! Which tab owns which stored queue. Each tab persists its queue under its
//! own key and holds a Web Lock named after it while alive. A tab that finds
//! another tab's key whose lock it can take knows that tab is gone, and
//! adopts the queue: so two tabs never send the same stored events, and the
//! events of a closed tab are sent by the next one.
//!
//! Browsers without Web Locks (before Safari 15.4) fall back to a heartbeat:
//! a queue untouched for `STALE_MS` is taken to be orphaned.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::window;

/// Without Web Locks, a queue not written for this long is adopted.
pub const STALE_MS: u64 = 10 * 60_000;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (behind `web_sys_unstable_apis` in web-sys).
    type LockManager;

    #[wasm_bindgen(method, catch)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &Object,
        callback: &Function,
    ) -> Result<Promise, JsValue>;
}

fn lock_manager() -> Option<LockManager> {
    let nav = window()?.navigator();
    let locks = Reflect::get(&nav, &JsValue::from_str("locks")).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

pub fn supported() -> bool {
    lock_manager().is_some()
}

/// A lock we hold until `release` (or until the page goes away).
pub struct Held {
    release: Function,
}

impl Held {
    pub fn release(self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

fn take<T>(slot: &Rc<RefCell<Option<T>>>) -> Option<T> {
    slot.try_borrow_mut().ok().and_then(|mut s| s.take())
}

/// How long a page waits for its own tab's lock at start. On a reload the
/// old document may still hold it for a moment; a duplicated tab holds it
/// for good, and then the page takes a new tab id.
pub const OWN_LOCK_WAIT_MS: u32 = 1_000;

/// Takes the exclusive lock `name`: with `Wait::IfAvailable` answers `None`
/// at once when another tab holds it, with `Wait::Up(ms)` waits that long,
/// with `Wait::Forever` until it is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    IfAvailable,
    Up(u32),
    Forever,
}

pub async fn acquire(name: &str, wait: Wait) -> Option<Held> {
    let locks = lock_manager()?;
    let granted: Rc<RefCell<Option<Function>>> = Rc::default();
    let slot = granted.clone();
    let outcome = Promise::new(&mut |resolve, _reject| {
        if let Ok(mut s) = slot.try_borrow_mut() {
            *s = Some(resolve);
        }
    });
    let on_grant = granted.clone();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let Some(answer) = take(&on_grant) else { return JsValue::UNDEFINED };
        if lock.is_null() || lock.is_undefined() {
            let _ = answer.call1(&JsValue::NULL, &JsValue::NULL);
            return JsValue::UNDEFINED;
        }
        // The lock is held until this promise settles: hand its resolver
        // out as the release function.
        let mut release = JsValue::NULL;
        let hold = Promise::new(&mut |resolve, _| release = resolve.into());
        let _ = answer.call1(&JsValue::NULL, &release);
        hold.into()
    });
    let options = Object::new();
    let mut _timer = None;
    match wait {
        Wait::IfAvailable => {
            Reflect::set(&options, &JsValue::from_str("ifAvailable"), &JsValue::TRUE).ok()?;
        }
        Wait::Up(ms) => {
            // An aborted request rejects, which answers `None` below.
            let abort = web_sys::AbortController::new().ok()?;
            Reflect::set(&options, &JsValue::from_str("signal"), &abort.signal()).ok()?;
            _timer = Some(gloo_timers::callback::Timeout::new(ms, move || abort.abort()));
        }
        Wait::Forever => {}
    }
    let on_fail = granted.clone();
    let fail = Closure::once_into_js(move |_e: JsValue| {
        if let Some(answer) = take(&on_fail) {
            let _ = answer.call1(&JsValue::NULL, &JsValue::NULL);
        }
    });
    match locks.request(name, &options, callback.unchecked_ref()) {
        // A rejected request (an opaque origin, say) must not leave us waiting.
        Ok(p) => {
            // `Promise::catch` in js-sys wants a Rust Closure kept alive by
            // us; calling `catch` with the one-shot function is simpler.
            if let Ok(catch) = Reflect::get(&p, &JsValue::from_str("catch")) {
                if let Some(catch) = catch.dyn_ref::<Function>() {
                    let _ = catch.call1(&p, &fail);
                }
            }
        }
        Err(_) => return None,
    }
    let release = JsFuture::from(outcome).await.ok()?;
    release.dyn_into::<Function>().ok().map(|release| Held { release })
}
