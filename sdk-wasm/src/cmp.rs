//! A consent management platform speaking the IAB TCF v2 API
//! (`window.__tcfapi`). We register one listener; on `tcloaded` (a stored
//! choice) and `useractioncomplete` (a fresh one) its TC string goes to the
//! core, which decodes and maps it. Other statuses (`cmpuishown`: the
//! dialogue is open) are not choices and are ignored; a CMP that never
//! answers leaves consent as it is.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::browser::window;

fn api() -> Option<Function> {
    let w: JsValue = window()?.into();
    let f = Reflect::get(&w, &JsValue::from_str("__tcfapi")).ok()?;
    f.dyn_into::<Function>().ok()
}

/// What one `addEventListener` callback told us.
pub enum TcData {
    /// GDPR does not apply to this person.
    NotApplicable,
    TcString(String),
}

/// Reads a listener callback's `(tcData, success)`. `listener_id` gets the
/// id the CMP assigned, when present. `None`: nothing to act on.
pub fn read(tc_data: &JsValue, success: &JsValue, listener_id: &mut Option<f64>) -> Option<TcData> {
    if !success.is_truthy() || !tc_data.is_object() {
        return None;
    }
    let get = |k: &str| Reflect::get(tc_data, &JsValue::from_str(k)).ok();
    if let Some(id) = get("listenerId").and_then(|v| v.as_f64()) {
        *listener_id = Some(id);
    }
    let status = get("eventStatus").and_then(|v| v.as_string())?;
    if status != "tcloaded" && status != "useractioncomplete" {
        return None;
    }
    if get("gdprApplies").and_then(|v| v.as_bool()) == Some(false) {
        return Some(TcData::NotApplicable);
    }
    get("tcString").and_then(|v| v.as_string()).map(TcData::TcString)
}

/// Calls `__tcfapi('addEventListener', 2, callback)`; false when there is
/// no CMP on the page. The CMP may call back at once, so the caller must
/// not hold the driver borrowed.
pub fn add_listener(callback: &JsValue) -> bool {
    let Some(f) = api() else { return false };
    f.call3(&JsValue::NULL, &JsValue::from_str("addEventListener"), &JsValue::from(2), callback).is_ok()
}

/// `__tcfapi('removeEventListener', 2, callback, listenerId)`, with a
/// one-shot callback of its own (ours may be gone by the time it answers).
pub fn remove_listener(listener_id: f64) {
    let Some(f) = api() else { return };
    let done = Closure::once_into_js(|_success: JsValue| {});
    let args = js_sys::Array::of4(
        &JsValue::from_str("removeEventListener"),
        &JsValue::from(2),
        &done,
        &JsValue::from(listener_id),
    );
    let _ = f.apply(&JsValue::NULL, &args);
}
