//! Threadline in the browser: the exported `Threadline` class wraps one
//! sdk-core `Client` and the driver that performs its I/O.
//!
//! Errors the host caused (a bad argument) come back as `TypeError` or
//! `RangeError` with a message naming the limit; nothing else throws. The
//! npm package wraps this class and is what pages import.

mod browser;
mod cmp;
mod cookie;
mod driver;
#[cfg(feature = "scenario")]
mod scenario;
mod tabs;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;
// Without decisions nothing GETs (rules, profile): that half goes unused.
#[cfg_attr(not(feature = "decide"), allow(dead_code))]
mod transport;

use js_sys::{Function, Promise, RangeError, Reflect, TypeError};
#[cfg(feature = "decide")]
use sdk_core::client::DecideRequest;
#[cfg(feature = "decide")]
use sdk_core::DecideError;
use sdk_core::{Client, Config, ConsentError, EventError};
use wasm_bindgen::prelude::*;

use crate::driver::{Shared, WebOptions};

/// A host's mistake, as the JavaScript error class that fits it.
fn event_error(e: EventError) -> JsValue {
    let msg = format!("threadline: {e}");
    match e {
        EventError::Empty { .. } | EventError::NotAnObject { .. } | EventError::Identity(_) => {
            TypeError::new(&msg).into()
        }
        EventError::NameTooLong { .. } | EventError::TooDeep { .. } | EventError::TooLarge { .. } => {
            RangeError::new(&msg).into()
        }
    }
}

fn consent_error(e: ConsentError) -> JsValue {
    TypeError::new(&format!("threadline: {e}")).into()
}

/// A `TypeError` with the core's stable `kind` code, for hosts that branch
/// on it rather than on the message.
fn kind_error(kind: &str, message: &str) -> JsValue {
    let e: JsValue = TypeError::new(&format!("threadline: {message}")).into();
    let _ = Reflect::set(&e, &JsValue::from_str("kind"), &JsValue::from_str(kind));
    e
}

/// A method of on-device decisions called on the analytics-only build
/// (sdk-wasm without its `decide` feature). `_args` takes the call's
/// arguments, which that build has no use for.
#[cfg(not(feature = "decide"))]
fn unavailable<T>(kind: &str, _args: T) -> JsValue {
    kind_error(kind, "on-device decisions are not in this build of Threadline (analytics only)")
}

fn busy() -> JsValue {
    // Only reachable if a host calls us re-entrantly from inside one of our
    // own callbacks; a plain Error keeps it distinct from argument errors.
    js_sys::Error::new("threadline: client busy, call ignored").into()
}

#[wasm_bindgen]
pub struct Threadline {
    shared: Shared,
}

#[wasm_bindgen]
impl Threadline {
    /// `config` is the core configuration and `web` the browser options,
    /// each as JSON. Restores stored events and identity, claims this tab's
    /// queue, adopts the queues of closed tabs.
    pub async fn create(config: String, web: String) -> Result<Threadline, JsValue> {
        let config = Config::from_json(&config).map_err(|e| TypeError::new(&format!("threadline: {e}")))?;
        let web: WebOptions = if web.trim().is_empty() {
            WebOptions::default()
        } else {
            serde_json::from_str(&web)
                .map_err(|e| TypeError::new(&format!("threadline: browser options: {e}")))?
        };
        web.validate().map_err(|e| TypeError::new(&format!("threadline: browser options: {e}")))?;
        let mut rand = browser::RandomPool::new();
        let core = Client::new(config, browser::now_ms(), rand.bytes16())
            .map_err(|e| TypeError::new(&format!("threadline: {e}")))?;
        let shared = driver::start(core, web, rand).await;
        Ok(Threadline { shared })
    }

    /// Records a `track` event; returns its messageId.
    pub fn track(&self, name: &str, properties: Option<String>) -> Result<String, JsValue> {
        let mut d = self.shared.try_borrow_mut().map_err(|_| busy())?;
        let now = browser::now_ms();
        let random = d.rand.bytes16();
        let id = d.core.track(name, properties.as_deref(), now, random).map_err(event_error)?;
        d.after_call(&self.shared, now);
        Ok(id)
    }

    /// Records a `page` event for the current location.
    pub fn page(&self, name: Option<String>, properties: Option<String>) -> Result<String, JsValue> {
        let mut d = self.shared.try_borrow_mut().map_err(|_| busy())?;
        if let Some(p) = browser::page() {
            d.core.set_page(p);
        }
        let now = browser::now_ms();
        let random = d.rand.bytes16();
        let id = d.core.page(name.as_deref(), properties.as_deref(), now, random).map_err(event_error)?;
        d.after_call(&self.shared, now);
        Ok(id)
    }

    /// Attaches a known user id, traits and namespaced ids (`ids`: JSON
    /// `{"email":..,"phone":..,"crmId":..}`); later events carry the user
    /// id. Any of the three may be left out, not all. `user_token` (from
    /// the site's back end, for this user id; never sent with events) lets
    /// the client fetch the person's profile from the collector.
    pub fn identify(
        &self,
        user_id: Option<String>,
        traits: Option<String>,
        ids: Option<String>,
        user_token: Option<String>,
    ) -> Result<String, JsValue> {
        self.change(|d, now, random| {
            d.core
                .identify(
                    user_id.as_deref(),
                    traits.as_deref(),
                    ids.as_deref(),
                    user_token.as_deref(),
                    now,
                    random,
                )
                .map_err(event_error)
        })
    }

    /// Links `userId` with a previous id (by default the current user id,
    /// else the device id); returns the alias event's messageId.
    pub fn alias(&self, user_id: &str, previous_id: Option<String>) -> Result<String, JsValue> {
        let mut d = self.shared.try_borrow_mut().map_err(|_| busy())?;
        let now = browser::now_ms();
        let random = d.rand.bytes16();
        let id = d.core.alias(user_id, previous_id.as_deref(), now, random).map_err(event_error)?;
        d.after_call(&self.shared, now);
        Ok(id)
    }

    /// Logout: forgets the user id, traits, ids and session, rotates the
    /// device id.
    pub fn reset(&self) -> Result<(), JsValue> {
        self.change(|d, now, random| {
            d.core.reset(now, random);
            Ok(())
        })
    }

    /// Applies the host's consent choices, JSON `{"analytics":"granted",
    /// ...}` (any subset of purposes); returns the consent now in force as
    /// JSON. A bad input is a `TypeError` and changes nothing.
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(&self, json: &str) -> Result<String, JsValue> {
        self.change(|d, now, random| {
            d.core.set_consent(json, now, random).map_err(consent_error)?;
            Ok(d.consent_json())
        })
    }

    /// Applies an IAB TCF TC string; returns the consent now in force as
    /// JSON. A string that cannot be decoded is a `TypeError` and changes
    /// nothing.
    #[wasm_bindgen(js_name = setConsentTcf)]
    pub fn set_consent_tcf(&self, tc_string: &str) -> Result<String, JsValue> {
        self.change(|d, now, random| {
            d.core.set_consent_tcf(tc_string, now, random).map_err(consent_error)?;
            Ok(d.consent_json())
        })
    }

    /// `{analytics, personalization, advertising, sale, gpc}` as JSON.
    #[wasm_bindgen(js_name = getConsent)]
    pub fn get_consent(&self) -> String {
        match self.shared.try_borrow() {
            Ok(d) => d.consent_json(),
            Err(_) => "{}".into(),
        }
    }

    /// `{deviceId, deviceIdCreated, deviceIdExpires, userId, traits, ids,
    /// session}` as JSON.
    #[wasm_bindgen(js_name = getIdentity)]
    pub fn get_identity(&self) -> String {
        match self.shared.try_borrow() {
            Ok(d) => serde_json::to_string(&d.core.identity_view()).unwrap_or_default(),
            Err(_) => "{}".into(),
        }
    }

    /// `f(kind, json)` hears of `"sessionStart"` (`{"sessionId"}`),
    /// `"consentChange"` (the consent now in force), `"rulesLoaded"`
    /// (`{"revision"}`), `"rulesError"` (`{"kind","message"}`),
    /// `"profileSync"` (`{"audiences"}`) and `"profileSyncRefused"`
    /// (`{"status"}`), in a microtask after the change; `undefined` stops it.
    #[wasm_bindgen(js_name = onNotice)]
    pub fn on_notice(&self, f: Option<Function>) {
        if let Ok(mut d) = self.shared.try_borrow_mut() {
            d.set_on_notice(f);
            d.schedule_notices(&self.shared);
        }
    }

    /// Re-reads `location` and `document.title` (after a client-side route
    /// change) so later events carry the new page context.
    #[wasm_bindgen(js_name = refreshPage)]
    pub fn refresh_page(&self) {
        if let (Ok(mut d), Some(p)) = (self.shared.try_borrow_mut(), browser::page()) {
            d.core.set_page(p);
        }
    }

    /// Sends what is queued now; resolves once nothing more can be sent
    /// right away (all delivered, or waiting to retry).
    pub fn flush(&self) -> Promise {
        driver::flush(&self.shared)
    }

    /// Resolves `true` as soon as a rules artifact is in use, `false` when
    /// `timeout_ms` passes first (no timeout: waits); never rejects.
    pub fn ready(&self, timeout_ms: Option<f64>) -> Promise {
        #[cfg(feature = "decide")]
        {
            driver::ready(&self.shared, timeout_ms)
        }
        #[cfg(not(feature = "decide"))]
        {
            let _ = timeout_ms;
            Promise::resolve(&JsValue::FALSE)
        }
    }

    /// The offers for `placement` now, as a JSON array of decisions; `[]`
    /// before any artifact is loaded (and when called re-entrantly). An
    /// unknown placement or a context that is not a JSON object is a
    /// `TypeError` with `kind`.
    pub fn decide(
        &self,
        placement: &str,
        max: Option<u32>,
        context: Option<String>,
    ) -> Result<String, JsValue> {
        self.decide_json(&[placement], max, context, false)
    }

    /// `decide` for several placements at once (one context, one pass over
    /// the audiences): a JSON object from placement to its decisions; `{}`
    /// before any artifact is loaded.
    #[wasm_bindgen(js_name = decideMany)]
    pub fn decide_many(
        &self,
        placements: Vec<String>,
        max: Option<u32>,
        context: Option<String>,
    ) -> Result<String, JsValue> {
        let placements: Vec<&str> = placements.iter().map(String::as_str).collect();
        self.decide_json(&placements, max, context, true)
    }

    #[cfg(feature = "decide")]
    fn decide_json(
        &self,
        placements: &[&str],
        max: Option<u32>,
        context: Option<String>,
        many: bool,
    ) -> Result<String, JsValue> {
        let empty = if many { "{}" } else { "[]" };
        let Ok(mut d) = self.shared.try_borrow_mut() else { return Ok(empty.into()) };
        let now = browser::now_ms();
        let random = d.rand.bytes16();
        // Per call: the offset changes with daylight saving time and travel.
        let offset = -js_sys::Date::new_0().get_timezone_offset();
        let request = DecideRequest {
            max: max.unwrap_or(1) as usize,
            context: context.as_deref(),
            utc_offset_minutes: offset as i32,
        };
        let out = match d.core.decide_many(placements, &request, now, random) {
            Ok(all) if many => {
                // Written straight out: no intermediate `Value` tree (and no
                // second serializer in the wasm). A repeated placement keeps
                // its last entry, as `JSON.parse` does with a repeated key.
                let mut out = String::from("{");
                for (i, (p, ds)) in placements.iter().zip(all).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(p).unwrap_or_default());
                    out.push(':');
                    out.push_str(&serde_json::to_string(&ds).unwrap_or_else(|_| "[]".into()));
                }
                out.push('}');
                out
            }
            Ok(mut all) => {
                serde_json::to_string(&all.pop().unwrap_or_default()).unwrap_or_else(|_| empty.into())
            }
            Err(DecideError::NoArtifact) => empty.into(),
            Err(e) => return Err(kind_error(e.kind(), &e.to_string())),
        };
        // Experiment assignments may have changed the profile: store it later.
        d.after_call(&self.shared, now);
        Ok(out)
    }

    /// The host showed a decision (its JSON as `decide` returned it):
    /// records `Offer Displayed` and counts it for frequency caps; `None`
    /// when this decision was reported already.
    pub fn displayed(&self, decision: &str) -> Result<Option<String>, JsValue> {
        self.feedback(decision, false)
    }

    /// The person clicked a decision: records `Offer Clicked`, once.
    pub fn clicked(&self, decision: &str) -> Result<Option<String>, JsValue> {
        self.feedback(decision, true)
    }

    /// Uses `artifact` (its exact text) now, replacing the one in use;
    /// `signature` is base64 of its detached Ed25519 signature. A refused
    /// artifact is a `TypeError` with `kind` and the previous one stays.
    #[wasm_bindgen(js_name = loadRules)]
    pub fn load_rules(&self, artifact: &str, signature: Option<String>) -> Result<bool, JsValue> {
        #[cfg(not(feature = "decide"))]
        {
            Err(unavailable("rules.unavailable", (artifact, signature)))
        }
        #[cfg(feature = "decide")]
        {
            let out = {
                let mut d = self.shared.try_borrow_mut().map_err(|_| busy())?;
                let now = browser::now_ms();
                let r = d.core.load_rules(artifact, signature.as_deref(), true, now);
                d.after_call(&self.shared, now);
                r.map_err(|e| kind_error(e.kind(), &e.to_string()))?
            };
            driver::drive(&self.shared);
            Ok(out)
        }
    }

    /// Revalidates the artifact with its server now (when `rules.url` is set).
    #[wasm_bindgen(js_name = refreshRules)]
    pub fn refresh_rules(&self) {
        #[cfg(feature = "decide")]
        if let Ok(mut d) = self.shared.try_borrow_mut() {
            d.core.refresh_rules(browser::now_ms());
        }
        driver::drive(&self.shared);
    }

    /// Fetches the person's profile from the collector now (after the
    /// person did something elsewhere, say), if it may be fetched at all.
    #[wasm_bindgen(js_name = refreshProfile)]
    pub fn refresh_profile(&self) {
        #[cfg(feature = "decide")]
        if let Ok(mut d) = self.shared.try_borrow_mut() {
            d.core.refresh_profile();
        }
        driver::drive(&self.shared);
    }

    /// The `revision` of the artifact in use.
    #[wasm_bindgen(js_name = rulesRevision)]
    pub fn rules_revision(&self) -> Option<String> {
        #[cfg(not(feature = "decide"))]
        {
            None
        }
        #[cfg(feature = "decide")]
        {
            self.shared.try_borrow().ok().and_then(|d| d.core.rules_revision().map(str::to_owned))
        }
    }

    /// Stores what is still queued for the next page and stops listening.
    pub fn close(&self) {
        driver::close(&self.shared);
    }

    /// Core and browser counters, as a JSON string.
    pub fn stats(&self) -> String {
        match self.shared.try_borrow() {
            Ok(d) => d.stats_json(),
            Err(_) => "{}".into(),
        }
    }
}

impl Threadline {
    #[cfg(feature = "decide")]
    fn feedback(&self, decision: &str, click: bool) -> Result<Option<String>, JsValue> {
        let mut d = self.shared.try_borrow_mut().map_err(|_| busy())?;
        let now = browser::now_ms();
        let random = d.rand.bytes16();
        let id = if click {
            d.core.clicked(decision, now, random)
        } else {
            d.core.displayed(decision, now, random)
        }
        .map_err(event_error)?;
        d.after_call(&self.shared, now);
        Ok(id)
    }

    /// The analytics-only build has no decisions: `decide`, `decideMany`,
    /// `displayed` and `clicked` are a `TypeError` with `kind`
    /// `decide.unavailable` (the host loaded the wrong build).
    #[cfg(not(feature = "decide"))]
    fn decide_json<T>(
        &self,
        placements: &[&str],
        max: Option<u32>,
        context: T,
        many: bool,
    ) -> Result<String, JsValue> {
        Err(unavailable("decide.unavailable", (placements, max, context, many)))
    }

    #[cfg(not(feature = "decide"))]
    fn feedback(&self, decision: &str, click: bool) -> Result<Option<String>, JsValue> {
        Err(unavailable("decide.unavailable", (decision, click)))
    }

    /// A consent or identity change: storage work happens before the call
    /// returns (a denial deletes everything at once), then the loop runs.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut driver::Driver, u64, [u8; 16]) -> Result<T, JsValue>,
    ) -> Result<T, JsValue> {
        let out = {
            let mut d = self.shared.try_borrow_mut().map_err(|_| busy())?;
            let now = browser::now_ms();
            let random = d.rand.bytes16();
            let out = f(&mut d, now, random)?;
            d.settle(now);
            out
        };
        driver::drive(&self.shared);
        Ok(out)
    }
}
