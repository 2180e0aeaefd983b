//! The core exposed call for call to the wasm scenario runner
//! (`tests/scenarios/run-wasm.mjs`), so the cross-platform scenario files
//! exercise the same compiled core a page loads. Only built with the
//! `scenario` feature: the shipped package never contains it.
//!
//! This is glue and nothing else. Time and random bytes come from the
//! caller, as the native runner passes them; every rule of the scenario
//! contract (draws, the simulated store, logs, expectations) lives in the JS
//! runner, so this file cannot make a scenario pass by itself.
//!
//! Every failure reaches JS as an `Error` whose `kind` property is the kind
//! of `tests/scenarios/README.md` ("Error kinds"), or a `harness.*` /
//! `config.*` / `snapshot.*` / `delivery.*` kind no scenario expects, so a
//! runner compares kinds and never message texts.

use std::fmt;

use js_sys::{Array, Object, Reflect, Uint8Array};
use sdk_core::{
    Client, Config, ConfigError, ConsentError, DecideError, DecideRequest, DeliveryError, EventError, Millis,
    NextUpload, Notice, Outcome, ProfileError, ProfileFetch, ProfileResponse, RulesError, RulesFetch,
    RulesResponse, SnapshotError, Store, SyncError, Transport, Upload,
};
use wasm_bindgen::prelude::*;

/// The largest integer a JS number holds exactly: times, counts and upload
/// ids above it would silently lose precision on the way out.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Why a harness call failed. The core's own errors keep their variant so
/// that [`HarnessError::kind`] can name it.
#[derive(Debug)]
enum HarnessError {
    Config(ConfigError),
    Event(EventError),
    Consent(ConsentError),
    Snapshot(SnapshotError),
    Delivery(DeliveryError),
    Decide(DecideError),
    Rules(RulesError),
    Profile(ProfileError),
    Sync(SyncError),
    /// A time from JS that is not a whole, non-negative, exactly held number.
    BadTime(f64),
    /// An upload id from JS that cannot be one the core handed out.
    BadUploadId(f64),
    /// A number the core returned that a JS number cannot hold exactly.
    Unrepresentable(u64),
    /// Not the 16 random bytes a drawing call takes.
    BadRandom(usize),
    /// An outcome name or status the harness does not know.
    BadOutcome(String),
    Json(String),
    /// Building the JS value failed (only if the JS environment is broken).
    Js(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Config(e) => write!(f, "{e}"),
            HarnessError::Event(e) => write!(f, "{e}"),
            HarnessError::Consent(e) => write!(f, "{e}"),
            HarnessError::Snapshot(e) => write!(f, "{e}"),
            HarnessError::Delivery(e) => write!(f, "{e}"),
            HarnessError::Decide(e) => write!(f, "{e}"),
            HarnessError::Rules(e) => write!(f, "{e}"),
            HarnessError::Profile(e) => write!(f, "{e}"),
            HarnessError::Sync(e) => write!(f, "{e}"),
            HarnessError::BadTime(t) => write!(f, "time {t} is not a whole number of ms in 0..=2^53-1"),
            HarnessError::BadUploadId(id) => write!(f, "{id} is not an upload id"),
            HarnessError::Unrepresentable(v) => write!(f, "{v} does not fit in a JS number exactly"),
            HarnessError::BadRandom(n) => write!(f, "expected 16 random bytes, got {n}"),
            HarnessError::BadOutcome(o) => write!(f, "unknown outcome {o}"),
            HarnessError::Json(e) => write!(f, "cannot serialise: {e}"),
            HarnessError::Js(e) => write!(f, "JS error: {e}"),
        }
    }
}

impl HarnessError {
    /// The README's error kind for the core's event and consent errors.
    fn kind(&self) -> &'static str {
        match self {
            // The cross-platform kinds are defined once, in the core.
            HarnessError::Event(e) => e.kind(),
            HarnessError::Consent(e) => e.kind(),
            HarnessError::Decide(e) => e.kind(),
            HarnessError::Rules(e) => e.kind(),
            HarnessError::Profile(_) => "profile.refused",
            HarnessError::Sync(e) => e.kind(),
            HarnessError::Config(_) => "config.invalid",
            HarnessError::Snapshot(_) => "snapshot.refused",
            HarnessError::Delivery(_) => "delivery.unknownUpload",
            HarnessError::BadTime(_) => "harness.badTime",
            HarnessError::BadUploadId(_) => "harness.badUploadId",
            HarnessError::Unrepresentable(_) => "harness.unrepresentable",
            HarnessError::BadRandom(_) => "harness.badRandom",
            HarnessError::BadOutcome(_) => "harness.badOutcome",
            HarnessError::Json(_) => "harness.json",
            HarnessError::Js(_) => "harness.js",
        }
    }
}

impl From<HarnessError> for JsValue {
    fn from(e: HarnessError) -> JsValue {
        let err = js_sys::Error::new(&e.to_string());
        // If even this fails the message still says what went wrong.
        let _ = Reflect::set(&err, &JsValue::from_str("kind"), &JsValue::from_str(e.kind()));
        err.into()
    }
}

type R<T> = Result<T, HarnessError>;

/// A JS number that is a whole, non-negative integer held exactly.
fn whole(v: f64) -> Option<u64> {
    // `as` saturates; the round trip rejects fractions, negatives, NaN and
    // anything past 2^53.
    let n = v as u64;
    (v.is_finite() && v >= 0.0 && n as f64 == v && n <= MAX_SAFE).then_some(n)
}

fn millis(t: f64) -> R<Millis> {
    whole(t).ok_or(HarnessError::BadTime(t))
}

fn number(v: u64) -> R<f64> {
    if v <= MAX_SAFE {
        Ok(v as f64)
    } else {
        Err(HarnessError::Unrepresentable(v))
    }
}

fn random16(random: &[u8]) -> R<[u8; 16]> {
    <[u8; 16]>::try_from(random).map_err(|_| HarnessError::BadRandom(random.len()))
}

fn set(obj: &Object, key: &str, value: &JsValue) -> R<()> {
    Reflect::set(obj, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|e| HarnessError::Js(format!("{e:?}")))
}

/// `{id, transport, events, body}`: `body` the exact bytes the core
/// produced, so the runner hashes what a collector would receive.
fn upload_object(u: &Upload) -> R<JsValue> {
    let obj = Object::new();
    set(&obj, "id", &JsValue::from_f64(number(u.id)?))?;
    let transport = match u.transport {
        Transport::Fetch => "fetch",
        Transport::Beacon => "beacon",
    };
    set(&obj, "transport", &JsValue::from_str(transport))?;
    set(&obj, "events", &JsValue::from_f64(number(u.events as u64)?))?;
    set(&obj, "body", &Uint8Array::from(u.body.as_slice()).into())?;
    Ok(obj.into())
}

/// `null` (leave the slot), `{op: "remove"}` or `{op: "write", bytes}`.
fn store_object(s: Option<Store>) -> R<JsValue> {
    let Some(s) = s else { return Ok(JsValue::NULL) };
    let obj = Object::new();
    match s {
        Store::Write(bytes) => {
            set(&obj, "op", &JsValue::from_str("write"))?;
            set(&obj, "bytes", &Uint8Array::from(bytes.as_slice()).into())?;
        }
        Store::Remove => set(&obj, "op", &JsValue::from_str("remove"))?,
    }
    Ok(obj.into())
}

fn fetch_object(f: Option<RulesFetch>) -> R<JsValue> {
    let Some(f) = f else { return Ok(JsValue::NULL) };
    let obj = Object::new();
    set(&obj, "id", &JsValue::from_f64(number(f.id)?))?;
    set(&obj, "url", &JsValue::from_str(&f.url))?;
    set(&obj, "etag", &f.etag.as_deref().map_or(JsValue::NULL, JsValue::from_str))?;
    set(&obj, "signature", &JsValue::from_bool(f.signature))?;
    Ok(obj.into())
}

fn profile_fetch_object(f: Option<ProfileFetch>) -> R<JsValue> {
    let Some(f) = f else { return Ok(JsValue::NULL) };
    let obj = Object::new();
    set(&obj, "id", &JsValue::from_f64(number(f.id)?))?;
    set(&obj, "url", &JsValue::from_str(&f.url))?;
    set(&obj, "token", &JsValue::from_str(&f.token))?;
    Ok(obj.into())
}

fn json<T: serde::Serialize>(v: &T) -> R<String> {
    serde_json::to_string(v).map_err(|e| HarnessError::Json(e.to_string()))
}

/// One core `Client`, driven by the scenario runner.
#[wasm_bindgen]
pub struct ScenarioCore {
    client: Client,
}

#[wasm_bindgen]
impl ScenarioCore {
    /// `Config::from_json` then `Client::new(config, now, random)`.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, now: f64, random: &[u8]) -> Result<ScenarioCore, JsValue> {
        let config = Config::from_json(config_json).map_err(HarnessError::Config)?;
        let client = Client::new(config, millis(now)?, random16(random)?).map_err(HarnessError::Config)?;
        Ok(ScenarioCore { client })
    }

    /// Returns the messageId.
    pub fn track(
        &mut self,
        event: &str,
        properties: Option<String>,
        now: f64,
        random: &[u8],
    ) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self.client.track(event, properties.as_deref(), now, random).map_err(HarnessError::Event)?)
    }

    pub fn page(
        &mut self,
        name: Option<String>,
        properties: Option<String>,
        now: f64,
        random: &[u8],
    ) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self
            .client
            .page(name.as_deref(), properties.as_deref(), now, random)
            .map_err(HarnessError::Event)?)
    }

    pub fn screen(
        &mut self,
        name: &str,
        properties: Option<String>,
        now: f64,
        random: &[u8],
    ) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self.client.screen(name, properties.as_deref(), now, random).map_err(HarnessError::Event)?)
    }

    pub fn identify(
        &mut self,
        user_id: Option<String>,
        traits: Option<String>,
        ids: Option<String>,
        user_token: Option<String>,
        now: f64,
        random: &[u8],
    ) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self
            .client
            .identify(
                user_id.as_deref(),
                traits.as_deref(),
                ids.as_deref(),
                user_token.as_deref(),
                now,
                random,
            )
            .map_err(HarnessError::Event)?)
    }

    pub fn alias(
        &mut self,
        user_id: &str,
        previous_id: Option<String>,
        now: f64,
        random: &[u8],
    ) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self.client.alias(user_id, previous_id.as_deref(), now, random).map_err(HarnessError::Event)?)
    }

    pub fn reset(&mut self, now: f64, random: &[u8]) -> Result<(), JsValue> {
        self.client.reset(millis(now)?, random16(random)?);
        Ok(())
    }

    /// Returns the consent now in force as JSON.
    pub fn set_consent(&mut self, json_text: &str, now: f64, random: &[u8]) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        let c = self.client.set_consent(json_text, now, random).map_err(HarnessError::Consent)?;
        Ok(json(&c)?)
    }

    /// Returns the consent now in force as JSON.
    pub fn set_consent_tcf(&mut self, tc_string: &str, now: f64, random: &[u8]) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        let c = self.client.set_consent_tcf(tc_string, now, random).map_err(HarnessError::Consent)?;
        Ok(json(&c)?)
    }

    pub fn set_gpc(&mut self, on: bool, now: f64, random: &[u8]) -> Result<(), JsValue> {
        self.client.set_gpc(on, millis(now)?, random16(random)?);
        Ok(())
    }

    pub fn flush(&mut self) {
        self.client.flush();
    }

    pub fn network_available(&mut self) {
        self.client.network_available();
    }

    /// `{kind: "upload", upload: {id, transport, events, body}}`,
    /// `{kind: "waitUntil", at}` or `{kind: "idle"}`.
    pub fn next_upload(&mut self, now: f64) -> Result<JsValue, JsValue> {
        let obj = Object::new();
        match self.client.next_upload(millis(now)?) {
            NextUpload::Upload(u) => {
                set(&obj, "kind", &JsValue::from_str("upload"))?;
                set(&obj, "upload", &upload_object(&u)?)?;
            }
            NextUpload::WaitUntil(t) => {
                set(&obj, "kind", &JsValue::from_str("waitUntil"))?;
                set(&obj, "at", &JsValue::from_f64(number(t)?))?;
            }
            NextUpload::Idle => set(&obj, "kind", &JsValue::from_str("idle"))?,
        }
        Ok(obj.into())
    }

    /// `null`, or `{id, transport, events, body}`.
    pub fn next_beacon(&mut self, now: f64, max_body_bytes: u32) -> Result<JsValue, JsValue> {
        let max = usize::try_from(max_body_bytes)
            .map_err(|_| HarnessError::Unrepresentable(max_body_bytes.into()))?;
        match self.client.next_beacon(millis(now)?, max) {
            Some(u) => Ok(upload_object(&u)?),
            None => Ok(JsValue::NULL),
        }
    }

    /// `outcome` is `"status"` (with `status` and optionally the raw
    /// `retry_after` header), `"network"`, `"handoff"` or `"notSent"`;
    /// `jitter` is the 32-bit random of the backoff.
    pub fn upload_finished(
        &mut self,
        id: f64,
        outcome: &str,
        status: Option<u16>,
        retry_after: Option<String>,
        now: f64,
        jitter: u32,
    ) -> Result<(), JsValue> {
        let id = whole(id).ok_or(HarnessError::BadUploadId(id))?;
        let outcome = match (outcome, status) {
            ("status", Some(code)) => Outcome::Status { code, retry_after },
            ("network", None) if retry_after.is_none() => Outcome::NetworkError,
            ("handoff", None) if retry_after.is_none() => Outcome::Handoff,
            ("notSent", None) if retry_after.is_none() => Outcome::NotSent,
            (other, status) => {
                return Err(HarnessError::BadOutcome(format!("{other} (status {status:?})")).into())
            }
        };
        self.client.upload_finished(id, outcome, millis(now)?, jitter).map_err(HarnessError::Delivery)?;
        Ok(())
    }

    /// The decisions as JSON (`Decision` serialised: camelCase, with
    /// `content`). `utc_offset_minutes` comes from the scenario, never from
    /// the JS clock, so every platform decides at the same local time.
    pub fn decide(
        &mut self,
        placement: &str,
        max: u32,
        context: Option<String>,
        utc_offset_minutes: i32,
        now: f64,
        random: &[u8],
    ) -> Result<String, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        let max = usize::try_from(max).map_err(|_| HarnessError::Unrepresentable(max.into()))?;
        let request = DecideRequest { max, context: context.as_deref(), utc_offset_minutes };
        let d = self.client.decide(placement, &request, now, random).map_err(HarnessError::Decide)?;
        Ok(json(&d)?)
    }

    /// The messageId of `Offer Displayed`, or `undefined` for a repeat.
    pub fn displayed(&mut self, decision: &str, now: f64, random: &[u8]) -> Result<Option<String>, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self.client.displayed(decision, now, random).map_err(HarnessError::Event)?)
    }

    /// The messageId of `Offer Clicked`, or `undefined` for a repeat.
    pub fn clicked(&mut self, decision: &str, now: f64, random: &[u8]) -> Result<Option<String>, JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        Ok(self.client.clicked(decision, now, random).map_err(HarnessError::Event)?)
    }

    /// Returns whether the artifact is in use now.
    pub fn load_rules(
        &mut self,
        artifact: &str,
        signature: Option<String>,
        replace: bool,
        now: f64,
    ) -> Result<bool, JsValue> {
        let now = millis(now)?;
        Ok(self
            .client
            .load_rules(artifact, signature.as_deref(), replace, now)
            .map_err(HarnessError::Rules)?)
    }

    /// `null`, or `{id, url, etag, signature}` (`etag` `null` when none).
    pub fn next_rules_fetch(&mut self, now: f64) -> Result<JsValue, JsValue> {
        let f = self.client.next_rules_fetch(millis(now)?);
        Ok(fetch_object(f)?)
    }

    /// `response` is `"notModified"`, `"body"` (with `body` and `etag`) or
    /// `"failed"` (with `status`, none for a network error); `random` the
    /// 32-bit random of the retry. Returns a follow-up request as
    /// [`ScenarioCore::next_rules_fetch`] does.
    // The core call's arguments with `RulesResponse` spelled out flat: wasm-bindgen
    // takes no Rust enums with data.
    #[allow(clippy::too_many_arguments)]
    pub fn rules_fetched(
        &mut self,
        id: f64,
        response: &str,
        status: Option<u16>,
        etag: Option<String>,
        body: Option<Vec<u8>>,
        now: f64,
        random: u32,
    ) -> Result<JsValue, JsValue> {
        let id = whole(id).ok_or(HarnessError::BadUploadId(id))?;
        let response = match (response, body.as_deref()) {
            ("notModified", None) => RulesResponse::NotModified,
            ("body", Some(bytes)) => RulesResponse::Body { bytes, etag: etag.as_deref() },
            ("failed", None) => RulesResponse::Failed { status },
            (other, _) => return Err(HarnessError::BadOutcome(other.to_owned()).into()),
        };
        let f = self.client.rules_fetched(id, response, millis(now)?, random).map_err(HarnessError::Rules)?;
        Ok(fetch_object(f)?)
    }

    /// `null`, or `{id, url, token}`.
    pub fn next_profile_fetch(&mut self, now: f64) -> Result<JsValue, JsValue> {
        let f = self.client.next_profile_fetch(millis(now)?);
        Ok(profile_fetch_object(f)?)
    }

    /// `body` for a 200 with its bytes (`Body`), else `status` (none for a
    /// network error: `Failed`); `random` the 32-bit random of the retry.
    pub fn profile_fetched(
        &mut self,
        id: f64,
        status: Option<u16>,
        body: Option<Vec<u8>>,
        now: f64,
        random: u32,
    ) -> Result<(), JsValue> {
        let id = whole(id).ok_or(HarnessError::BadUploadId(id))?;
        let response = match (status, body.as_deref()) {
            (Some(200), Some(bytes)) => ProfileResponse::Body { bytes },
            (status, None) => ProfileResponse::Failed { status },
            (status, Some(_)) => {
                return Err(HarnessError::BadOutcome(format!("a body with status {status:?}")).into())
            }
        };
        self.client.profile_fetched(id, response, millis(now)?, random).map_err(HarnessError::Sync)?;
        Ok(())
    }

    pub fn refresh_profile(&mut self) {
        self.client.refresh_profile();
    }

    pub fn restore_profile(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        self.client.restore_profile(bytes).map_err(HarnessError::Profile)?;
        Ok(())
    }

    pub fn restore_rules(&mut self, bytes: &[u8], now: f64) -> Result<(), JsValue> {
        self.client.restore_rules(bytes, millis(now)?).map_err(HarnessError::Rules)?;
        Ok(())
    }

    /// `{wipe, queue, identity, device, profile, rules}`, each slot as [`store_object`].
    pub fn take_persist(&mut self, now: f64, force: bool) -> Result<JsValue, JsValue> {
        let p = self.client.take_persist(millis(now)?, force);
        let obj = Object::new();
        set(&obj, "wipe", &JsValue::from_bool(p.wipe))?;
        set(&obj, "queue", &store_object(p.queue)?)?;
        set(&obj, "identity", &store_object(p.identity)?)?;
        set(&obj, "device", &store_object(p.device)?)?;
        set(&obj, "profile", &store_object(p.profile)?)?;
        set(&obj, "rules", &store_object(p.rules)?)?;
        Ok(obj.into())
    }

    /// The notices since the last call, oldest first, by name:
    /// `"sessionStarted"`, `"consentChanged"`, `"rulesLoaded"`, `"rulesRejected"`,
    /// `"profileSynced"` or `"profileSyncRefused"`.
    pub fn take_notices(&mut self) -> Array {
        self.client
            .take_notices()
            .into_iter()
            .map(|n| {
                JsValue::from_str(match n {
                    Notice::SessionStarted { .. } => "sessionStarted",
                    Notice::ConsentChanged { .. } => "consentChanged",
                    Notice::RulesLoaded { .. } => "rulesLoaded",
                    Notice::RulesRejected { .. } => "rulesRejected",
                    Notice::ProfileSynced { .. } => "profileSynced",
                    Notice::ProfileSyncRefused { .. } => "profileSyncRefused",
                })
            })
            .collect()
    }

    /// `stats()` as JSON (camelCase).
    pub fn stats(&self) -> Result<String, JsValue> {
        Ok(json(&self.client.stats())?)
    }

    /// `getConsent()` as JSON.
    pub fn consent_view(&self) -> Result<String, JsValue> {
        Ok(json(&self.client.consent_view())?)
    }

    /// `getIdentity()` as JSON.
    pub fn identity_view(&self) -> Result<String, JsValue> {
        Ok(json(&self.client.identity_view())?)
    }

    /// `null` when no timer is needed.
    pub fn poll_timeout(&self, now: f64) -> Result<Option<f64>, JsValue> {
        Ok(self.client.poll_timeout(millis(now)?).map(number).transpose()?)
    }

    pub fn restore_device(
        &mut self,
        bytes: &[u8],
        now: f64,
        random: &[u8],
        rewrite: bool,
    ) -> Result<(), JsValue> {
        let (now, random) = (millis(now)?, random16(random)?);
        self.client.restore_device(bytes, now, random, rewrite).map_err(HarnessError::Snapshot)?;
        Ok(())
    }

    pub fn restore_identity(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        self.client.restore_identity(bytes).map_err(HarnessError::Snapshot)?;
        Ok(())
    }

    /// Returns how many events were added.
    pub fn restore(&mut self, bytes: &[u8], now: f64) -> Result<f64, JsValue> {
        let added = self.client.restore(bytes, millis(now)?).map_err(HarnessError::Snapshot)?;
        Ok(number(added as u64)?)
    }
}
