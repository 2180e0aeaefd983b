//! The UniFFI `Client`: the core behind a mutex, with the clock, the random
//! source and the file store that the core leaves to its bindings.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sdk_core::client::DecideRequest;
use sdk_core::{
    DecideError, Environment, Feedback, Millis, NextUpload, Notice as CoreNotice, Outcome, Persist,
    ProfileResponse, RulesResponse, Store,
};
use serde::Serialize;

use crate::error::ThreadlineError;
use crate::store::{FileStore, Slot, StoreStats};
use crate::sys::{DeterministicSource, Source};

/// One HTTP request the host must perform (`POST url` with `headers` and
/// `body`), then report with [`Client::upload_finished`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Upload {
    pub id: u64,
    pub url: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Something the host may want to hear about, drained by
/// [`Client::take_notices`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Notice {
    SessionStarted {
        session_id: u64,
    },
    /// `consent_json` is what `get_consent()` returns.
    ConsentChanged {
        consent_json: String,
    },
    /// A rules artifact is in use now (bundled, cached, loaded or fetched):
    /// `decide` answers from it, and `rules_ready()` is true.
    RulesLoaded {
        revision: Option<String>,
    },
    /// An artifact (or its signature) was refused; the previous one, if
    /// any, stays in use. `kind` as in [`ThreadlineError::Rules`].
    RulesRejected {
        kind: String,
        message: String,
    },
    /// The collector's profile of the person (their other devices) arrived
    /// and `decide` uses it; `audiences` are the collector's.
    ProfileSynced {
        audiences: Vec<String>,
    },
    /// The collector refused the user token: decisions use this device's
    /// history only until `identify` brings a new token.
    ProfileSyncRefused {
        status: u16,
    },
}

/// One offer to show in a placement, as `decide` chose it. Hand it back
/// unchanged to `displayed` / `clicked` (it may be kept across a restart).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Decision {
    pub decision_id: String,
    pub placement: String,
    pub offer_id: String,
    /// The offer's `content` from the artifact, as JSON text: the SDK never
    /// interprets it, the app renders it.
    pub content_json: String,
    pub experiment_id: Option<String>,
    pub variant_id: Option<String>,
    /// The placement's default offer (no consent, held out, or nothing
    /// qualified).
    pub is_default: bool,
}

impl Decision {
    /// The core's decision JSON, as `displayed` / `clicked` read it back.
    fn feedback_json(self) -> String {
        to_json(&Feedback {
            decision_id: self.decision_id,
            placement: self.placement,
            offer_id: self.offer_id,
            experiment_id: self.experiment_id,
            variant_id: self.variant_id,
            is_default: self.is_default,
        })
    }
}

fn decision_of(d: sdk_core::Decision) -> Decision {
    Decision {
        decision_id: d.decision_id,
        placement: d.placement,
        offer_id: d.offer_id,
        content_json: d.content.get().to_owned(),
        experiment_id: d.experiment_id,
        variant_id: d.variant_id,
        is_default: d.is_default,
    }
}

/// One placement's answer from [`Client::decide_many`]: a list rather than
/// a map, so the order asked for is kept and a placement may repeat.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PlacementDecisions {
    pub placement: String,
    pub decisions: Vec<Decision>,
}

/// A rules artifact request the host must perform: `GET url`, with
/// `If-None-Match: etag` when set and no HTTP cache in between, then report
/// with [`Client::rules_fetched`]. `signature`: this is the detached `.sig`
/// of an artifact just received.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RulesFetch {
    pub id: u64,
    pub url: String,
    pub etag: Option<String>,
    pub signature: bool,
}

fn fetch_of(f: sdk_core::RulesFetch) -> RulesFetch {
    RulesFetch { id: f.id, url: f.url, etag: f.etag, signature: f.signature }
}

/// A profile request the host must perform: `GET url` with
/// `Authorization: Bearer <token>` and no HTTP cache in between, then report
/// with [`Client::profile_fetched`]. The token is the person's credential:
/// it goes in that header only, never in a log.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProfileFetch {
    pub id: u64,
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for ProfileFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileFetch").field("id", &self.id).field("url", &self.url).finish_non_exhaustive()
    }
}

/// What [`Client::poll_upload`] found.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum UploadPoll {
    /// Perform this upload now (it is in flight from here on).
    Due { upload: Upload },
    /// Nothing may leave before `ms` from now (a batch still filling, or a
    /// retry wait).
    Wait { ms: u64 },
    /// Nothing queued, or sending is not allowed (consent).
    Idle,
}

fn upload_of(u: sdk_core::Upload) -> Upload {
    Upload {
        id: u.id,
        url: u.url,
        headers: u.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
        body: u.body,
    }
}

/// How soon a failed write is tried again (a full disk, a directory that
/// was cleared while running).
const UNSAVED_RETRY_MS: u64 = 5_000;

/// Notices kept for a host that never drains them: the oldest go first.
const MAX_NOTICES: usize = 64;

struct Inner {
    core: sdk_core::Client,
    store: FileStore,
    notices: VecDeque<Notice>,
    /// With a [`DeterministicSource`] only: the storage operations since
    /// the last `take_store_log`, in the scenario suite's words.
    store_log: Option<Vec<String>>,
    /// Records whose write failed, by slot (see [`slot_index`]): the
    /// core hands each change out once, so they are kept and written again
    /// at the next `persist` until a write succeeds or the core replaces
    /// them. Without this a device record lost to a full disk would give
    /// the person a new id (and a pending consent) at the next start.
    unsaved: [Option<Vec<u8>>; 5],
}

fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::Queue => 0,
        Slot::Identity => 1,
        Slot::Device => 2,
        Slot::Profile => 3,
        Slot::Rules => 4,
    }
}

impl Inner {
    /// Performs the storage work the core says is due (all of it with
    /// `force`). The only place that writes: app-facing calls stay off the
    /// disk, so they are safe on a UI thread.
    fn persist(&mut self, now: Millis, force: bool) {
        let Persist { queue, identity, device, profile, rules, wipe } = self.core.take_persist(now, force);
        if wipe {
            self.store.wipe();
            self.log("wipe");
        }
        if wipe {
            self.unsaved = Default::default();
        }
        let work = [
            (Slot::Queue, queue),
            (Slot::Identity, identity),
            (Slot::Profile, profile),
            (Slot::Rules, rules),
            (Slot::Device, device),
        ];
        for (slot, work) in work {
            let unsaved = self.unsaved.get_mut(slot_index(slot)).and_then(Option::take);
            match work {
                Some(Store::Write(bytes)) => {
                    self.write(slot, bytes);
                    self.log(&format!("write:{}", slot.stem()));
                }
                Some(Store::Remove) => {
                    // The core removes the decision slots with every wipe or reset, also when
                    // decisions were never used: only a removal that deletes something is logged,
                    // so the scenario suite's store log stays in its three slots' words.
                    let logged =
                        !matches!(slot, Slot::Profile | Slot::Rules) || self.store.path(slot).exists();
                    self.store.remove(slot);
                    if logged {
                        self.log(&format!("remove:{}", slot.stem()));
                    }
                }
                None => {
                    if let Some(bytes) = unsaved {
                        self.write(slot, bytes);
                    }
                }
            }
        }
        self.collect_notices();
    }

    fn write(&mut self, slot: Slot, bytes: Vec<u8>) {
        if !self.store.write(slot, &bytes) {
            if let Some(u) = self.unsaved.get_mut(slot_index(slot)) {
                *u = Some(bytes);
            }
        }
    }

    /// Milliseconds until the host loop must run: the core's next timer,
    /// or a retry of a failed write.
    fn wait_ms(&self, now: Millis) -> Option<u64> {
        let core = self.core.poll_timeout(now).map(|at| at.saturating_sub(now));
        let retry = self.unsaved.iter().any(Option::is_some).then_some(UNSAVED_RETRY_MS);
        core.into_iter().chain(retry).min()
    }

    fn log(&mut self, op: &str) {
        if let Some(log) = &mut self.store_log {
            log.push(op.to_owned());
        }
    }

    /// Moves the core's notices into the bounded list the host drains.
    fn collect_notices(&mut self) {
        let notices = self.core.take_notices();
        if notices.is_empty() {
            return;
        }
        for n in notices {
            if self.notices.len() >= MAX_NOTICES {
                self.notices.pop_front();
            }
            self.notices.push_back(match n {
                CoreNotice::SessionStarted { id } => Notice::SessionStarted { session_id: id },
                CoreNotice::ConsentChanged { consent } => {
                    Notice::ConsentChanged { consent_json: to_json(&consent) }
                }
                CoreNotice::RulesLoaded { revision } => Notice::RulesLoaded { revision },
                CoreNotice::RulesRejected { kind, message } => {
                    Notice::RulesRejected { kind: kind.to_owned(), message }
                }
                CoreNotice::ProfileSynced { audiences } => Notice::ProfileSynced { audiences },
                CoreNotice::ProfileSyncRefused { status } => Notice::ProfileSyncRefused { status },
            });
        }
    }

    /// Restores what the previous process stored, in the web binding's
    /// order: device (it carries the consent), identity, queue, then the
    /// profile (the core keeps it only if the restored consent grants
    /// personalization) and the cached rules artifact, so `decide` works
    /// offline from the first call. A record the core refuses is quarantined
    /// like a corrupt file: a lost profile or rules cache costs history or a
    /// fetch, never the start.
    fn load_stored(&mut self, now: Millis, source: &Source) {
        if let Some(bytes) = self.store.read(Slot::Device) {
            if self.core.restore_device(&bytes, now, source.random16(), false).is_err() {
                self.store.quarantine(Slot::Device);
            }
        }
        if let Some(bytes) = self.store.read(Slot::Identity) {
            if self.core.restore_identity(&bytes).is_err() {
                self.store.quarantine(Slot::Identity);
            }
        }
        if let Some(bytes) = self.store.read(Slot::Queue) {
            if self.core.restore(&bytes, now).is_err() {
                self.store.quarantine(Slot::Queue);
            }
        }
        if let Some(bytes) = self.store.read(Slot::Profile) {
            if self.core.restore_profile(&bytes).is_err() {
                self.store.quarantine(Slot::Profile);
            }
        }
        if let Some(bytes) = self.store.read(Slot::Rules) {
            if self.core.restore_rules(&bytes, now).is_err() {
                self.store.quarantine(Slot::Rules);
            }
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned())
}

/// What `stats()` reports: the core's counters and the file store's, in one
/// flat object like the web binding's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AllStats {
    #[serde(flatten)]
    core: sdk_core::Stats,
    #[serde(flatten)]
    store: StoreStats,
    notices_pending: usize,
}

/// A Threadline client for one app. All methods may be called from any
/// thread, concurrently; each takes a short lock. Calls that change state
/// also perform the storage work the core asks for before they return.
#[derive(uniffi::Object)]
pub struct Client {
    inner: Mutex<Inner>,
    source: Source,
    /// The JNI fast path's handle, once one was asked for.
    #[cfg_attr(target_vendor = "apple", allow(dead_code))]
    handle: std::sync::OnceLock<u64>,
}

#[cfg(not(target_vendor = "apple"))]
impl Drop for Client {
    fn drop(&mut self) {
        if let Some(h) = self.handle.get() {
            crate::jni_fast::unregister(*h);
        }
    }
}

impl Client {
    /// A panic while the lock was held (there should be none: the crate
    /// denies unwraps and indexing) must not turn every later call into a
    /// panic too; the state is still the core's last consistent one.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core with the current time and a random draw, then
    /// collects notices. No disk I/O: that waits for [`Client::persist`].
    fn with<R>(&self, f: impl FnOnce(&mut Inner, Millis, [u8; 16]) -> R) -> R {
        let now = self.source.now();
        let mut inner = self.lock();
        let r = f(&mut inner, now, self.source.random16());
        inner.collect_notices();
        r
    }

    /// As [`Client::with`] for calls that draw no random bytes.
    fn with_now<R>(&self, f: impl FnOnce(&mut Inner, Millis) -> R) -> R {
        let now = self.source.now();
        let mut inner = self.lock();
        let r = f(&mut inner, now);
        inner.collect_notices();
        r
    }

    fn build(config_json: &str, storage_dir: &str, source: Source) -> Result<Arc<Self>, ThreadlineError> {
        let config = sdk_core::Config::from_json(config_json)?;
        if storage_dir.trim().is_empty() {
            return Err(ThreadlineError::Storage { detail: "storage_dir must not be empty".into() });
        }
        let now = source.now();
        let core = sdk_core::Client::new(config, now, source.random16())?;
        let store = FileStore::open(Path::new(storage_dir));
        let store_log = matches!(source, Source::Scripted(_)).then(Vec::new);
        let mut inner =
            Inner { core, store, notices: VecDeque::new(), store_log, unsaved: Default::default() };
        inner.load_stored(now, &source);
        inner.collect_notices();
        Ok(Arc::new(Client { inner: Mutex::new(inner), source, handle: std::sync::OnceLock::new() }))
    }

    /// `track` for the JNI fast path: returns what `poll_timeout_ms` would.
    pub(crate) fn track_fast(
        &self,
        name: &str,
        properties_json: Option<&str>,
        screen: bool,
    ) -> Result<Option<u64>, sdk_core::EventError> {
        let now = self.source.now();
        let random = self.source.random16();
        let mut inner = self.lock();
        if screen {
            inner.core.screen(name, properties_json, now, random)?;
        } else {
            inner.core.track(name, properties_json, now, random)?;
        }
        inner.collect_notices();
        Ok(inner.wait_ms(now))
    }
}

#[uniffi::export]
impl Client {
    /// `config_json` is the configuration the web client takes
    /// (`{"endpoint": ..., "writeKey": ..., "consent": {...}, ...}`);
    /// `storage_dir` a private directory for this SDK's files (created if
    /// missing). An unusable directory is not an error: the client runs from
    /// memory and says so in `stats()`.
    ///
    /// The constructor reads the stored files (small; like the first read of
    /// SharedPreferences) but writes nothing.
    #[uniffi::constructor]
    pub fn new(config_json: String, storage_dir: String) -> Result<Arc<Self>, ThreadlineError> {
        Client::build(&config_json, &storage_dir, Source::System)
    }

    /// A client on a scripted clock and random source, for tests and the
    /// shared scenario suite; also records its storage operations for
    /// [`Client::take_store_log`]. Never for an app.
    #[uniffi::constructor]
    pub fn with_source(
        config_json: String,
        storage_dir: String,
        source: Arc<DeterministicSource>,
    ) -> Result<Arc<Self>, ThreadlineError> {
        Client::build(&config_json, &storage_dir, Source::Scripted(source))
    }

    /// Performs the storage work that is due now: the only call besides
    /// `on_background` that writes files. The host loop calls it after every
    /// `next_upload` that returned an upload (before sending it: the queue is
    /// stored as events leave), after every `upload_finished`, and when
    /// `poll_timeout_ms` comes due.
    pub fn persist(&self) {
        let now = self.source.now();
        self.lock().persist(now, false);
    }

    /// With a [`DeterministicSource`]: the storage operations since the last
    /// call (`wipe`, `write:queue`, `remove:device`, ...); empty otherwise.
    pub fn take_store_log(&self) -> Vec<String> {
        self.lock().store_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// A handle for the JNI fast path of `track` and `screen`
    /// (`dev.threadline.sdk.NativeTrack`), valid while this client lives.
    /// On Apple platforms there is no JNI: 0, and Swift calls `track`.
    pub fn fast_handle(self: Arc<Self>) -> u64 {
        #[cfg(not(target_vendor = "apple"))]
        return *self.handle.get_or_init(|| crate::jni_fast::register(&self));
        #[cfg(target_vendor = "apple")]
        return 0;
    }

    /// Records a `track` event; returns its messageId. `properties_json` is a
    /// JSON object, serialised by the caller (one FFI crossing per event).
    pub fn track(&self, name: String, properties_json: Option<String>) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| i.core.track(&name, properties_json.as_deref(), now, r)).map_err(Into::into)
    }

    /// Records a `page` event (a web view, or a web-like page in the app);
    /// returns its messageId.
    pub fn page(
        &self,
        name: Option<String>,
        properties_json: Option<String>,
    ) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| i.core.page(name.as_deref(), properties_json.as_deref(), now, r))
            .map_err(Into::into)
    }

    /// Records a `screen` event; returns its messageId.
    pub fn screen(&self, name: String, properties_json: Option<String>) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| i.core.screen(&name, properties_json.as_deref(), now, r)).map_err(Into::into)
    }

    /// Attaches a user id, traits (JSON object) and namespaced ids (JSON
    /// object, e.g. `{"email": ...}`, hashed as configured) and records an
    /// `identify` event; returns its messageId. `user_token` (issued by the
    /// app's back end for this user id, never sent with events) lets the
    /// client fetch the person's profile from their other devices
    /// (`next_profile_fetch`).
    pub fn identify(
        &self,
        user_id: Option<String>,
        traits_json: Option<String>,
        ids_json: Option<String>,
        user_token: Option<String>,
    ) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| {
            i.core.identify(
                user_id.as_deref(),
                traits_json.as_deref(),
                ids_json.as_deref(),
                user_token.as_deref(),
                now,
                r,
            )
        })
        .map_err(Into::into)
    }

    /// Links `user_id` with `previous_id` (by default the current user id,
    /// else the device id); returns the messageId.
    pub fn alias(&self, user_id: String, previous_id: Option<String>) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| i.core.alias(&user_id, previous_id.as_deref(), now, r)).map_err(Into::into)
    }

    /// Logout: forgets the user and rotates the device id.
    pub fn reset(&self) {
        self.with(|i, now, r| i.core.reset(now, r));
    }

    /// Sends what is queued without waiting for a full batch.
    pub fn flush(&self) {
        self.with_now(|i, _| i.core.flush());
    }

    /// Applies the host's consent choices (`{"analytics":"granted", ...}`);
    /// returns the consent now in force as JSON (as `get_consent`). A denial
    /// has deleted every stored file when this returns.
    pub fn set_consent(&self, consent_json: String) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| i.core.set_consent(&consent_json, now, r).map(|_| i.core.consent_view()))
            .map(|v| to_json(&v))
            .map_err(Into::into)
    }

    /// Applies an IAB TCF TC string from the app's CMP; a string that cannot
    /// be decoded is refused and changes nothing.
    pub fn set_consent_tcf(&self, tc_string: String) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| i.core.set_consent_tcf(&tc_string, now, r).map(|_| i.core.consent_view()))
            .map(|v| to_json(&v))
            .map_err(Into::into)
    }

    /// The CMP says GDPR does not apply to this person.
    pub fn set_tcf_not_applicable(&self) -> String {
        let v = self.with(|i, now, r| {
            i.core.set_tcf_not_applicable(now, r);
            i.core.consent_view()
        });
        to_json(&v)
    }

    /// Applies the IAB TCF values the app's CMP stored
    /// (`IABTCF_gdprApplies` as `gdpr_applies`, `IABTCF_TCString`), read
    /// from SharedPreferences or UserDefaults by the Kotlin/Swift layer; the
    /// core decides what they mean. Returns the consent now in force.
    pub fn set_consent_iab(
        &self,
        tc_string: Option<String>,
        gdpr_applies: Option<i32>,
    ) -> Result<String, ThreadlineError> {
        self.with(|i, now, r| {
            i.core
                .set_consent_iab(gdpr_applies.map(i64::from), tc_string.as_deref(), now, r)
                .map(|_| i.core.consent_view())
        })
        .map(|v| to_json(&v))
        .map_err(Into::into)
    }

    /// A Global Privacy Control style opt-out signal from the app's settings.
    pub fn set_gpc(&self, on: bool) {
        self.with(|i, now, r| i.core.set_gpc(on, now, r));
    }

    /// The consent in force, `{"analytics":"granted",...,"gpc":false}`.
    pub fn get_consent(&self) -> String {
        to_json(&self.lock().core.consent_view())
    }

    /// Device id, user id, traits, ids and session, as JSON.
    pub fn get_identity(&self) -> String {
        to_json(&self.lock().core.identity_view())
    }

    /// The core's counters plus the file store's, as one JSON object.
    pub fn stats(&self) -> String {
        let inner = self.lock();
        to_json(&AllStats {
            core: inner.core.stats(),
            store: inner.store.stats.clone(),
            notices_pending: inner.notices.len(),
        })
    }

    /// Device locale (BCP 47), IANA time zone and a user agent for the events'
    /// context.
    pub fn set_environment(
        &self,
        locale: Option<String>,
        timezone: Option<String>,
        user_agent: Option<String>,
    ) {
        self.lock().core.set_environment(Environment { locale, timezone, user_agent });
    }

    /// The next upload to perform now, or `None` when nothing is due (then
    /// sleep `poll_timeout_ms()`). Call until it returns `None`; uploads may
    /// run concurrently up to the configured `batch.maxInFlight`.
    pub fn next_upload(&self) -> Option<Upload> {
        match self.poll_upload() {
            UploadPoll::Due { upload } => Some(upload),
            UploadPoll::Wait { .. } | UploadPoll::Idle => None,
        }
    }

    /// As `next_upload`, and says how long to wait when nothing is due.
    pub fn poll_upload(&self) -> UploadPoll {
        self.with_now(|i, now| match i.core.next_upload(now) {
            NextUpload::Upload(u) => UploadPoll::Due { upload: upload_of(u) },
            NextUpload::WaitUntil(at) => UploadPoll::Wait { ms: at.saturating_sub(now) },
            NextUpload::Idle => UploadPoll::Idle,
        })
    }

    /// At background: the next batch to hand to a transport that outlives
    /// the process (an iOS background `URLSession`, Android WorkManager),
    /// whose outcome this process may never hear. Report with
    /// `handoff_finished`. The core treats these like the web's beacons:
    /// kept as unconfirmed and re-sent after `retry.beaconConfirmMs` unless
    /// confirmed; the collector drops the duplicates by messageId.
    pub fn next_handoff(&self, max_body_bytes: u32) -> Option<Upload> {
        let max = usize::try_from(max_body_bytes).unwrap_or(usize::MAX);
        self.with_now(|i, now| i.core.next_beacon(now, max).map(upload_of))
    }

    /// Whether the transport took the batch from `next_handoff`; when it
    /// refused, the events go back to the queue at no cost.
    pub fn handoff_finished(&self, id: u64, accepted: bool) -> Result<(), ThreadlineError> {
        let outcome = if accepted { Outcome::Handoff } else { Outcome::NotSent };
        self.with_now(|i, now| i.core.upload_finished(id, outcome, now, 0)).map_err(Into::into)
    }

    /// Reports an upload: `status` is the HTTP status when the server
    /// answered (with the raw `Retry-After` header, if any); no status or
    /// `network_error` means no answer (offline, DNS, TLS, timeout). The core
    /// decides retries, backoff and dropping.
    pub fn upload_finished(
        &self,
        id: u64,
        status: Option<u16>,
        retry_after: Option<String>,
        network_error: bool,
    ) -> Result<(), ThreadlineError> {
        let outcome = match status {
            Some(code) if !network_error => Outcome::Status { code, retry_after },
            _ => Outcome::NetworkError,
        };
        let jitter = self.source.random_u32();
        self.with_now(|i, now| i.core.upload_finished(id, outcome, now, jitter)).map_err(Into::into)
    }

    /// Milliseconds from now until the client needs `next_upload()` to be
    /// called again (0: now); `None`: no timer needed until the next call.
    pub fn poll_timeout_ms(&self) -> Option<u64> {
        let now = self.source.now();
        self.lock().wait_ms(now)
    }

    /// The app went to the background: everything is written now, debounce
    /// or not, since the process may be killed without another callback.
    /// (The Kotlin and Swift layers also `flush()` first, so the background
    /// window is used to send what is queued.)
    pub fn on_background(&self) {
        let now = self.source.now();
        self.lock().persist(now, true);
    }

    /// The app came back to the foreground: catch up on what came due while
    /// suspended (then ask `poll_timeout_ms()` again).
    pub fn on_foreground(&self) {
        self.persist();
    }

    /// Connectivity came back: ends a wait caused by network errors.
    pub fn network_available(&self) {
        self.with_now(|i, _| i.core.network_available());
    }

    /// Which offers to show in `placement` now (at most `max`, at least one):
    /// synchronous, offline, from the artifact in use and the on-device
    /// profile. `context_json` is a JSON object merged into what conditions
    /// see (`app`, `cart`, ...); `utc_offset_minutes` the device's offset from
    /// UTC now (schedules are in local time). Before any artifact is loaded:
    /// an empty list, not an error, so a screen can render its fallback.
    pub fn decide(
        &self,
        placement: String,
        max: u32,
        context_json: Option<String>,
        utc_offset_minutes: i32,
    ) -> Result<Vec<Decision>, ThreadlineError> {
        let request = DecideRequest {
            max: usize::try_from(max).unwrap_or(usize::MAX),
            context: context_json.as_deref(),
            utc_offset_minutes,
        };
        match self.with(|i, now, r| i.core.decide(&placement, &request, now, r)) {
            Ok(d) => Ok(d.into_iter().map(decision_of).collect()),
            Err(DecideError::NoArtifact) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// `decide` for several placements of one screen at once, in the order
    /// given: one context, one pass over the audiences and one crossing of
    /// the FFI instead of one per placement. An unknown placement fails the
    /// whole call (a screen is built from one artifact revision). Before any
    /// artifact is loaded: an empty list, not an error, like `decide`.
    pub fn decide_many(
        &self,
        placements: Vec<String>,
        max: u32,
        context_json: Option<String>,
        utc_offset_minutes: i32,
    ) -> Result<Vec<PlacementDecisions>, ThreadlineError> {
        let request = DecideRequest {
            max: usize::try_from(max).unwrap_or(usize::MAX),
            context: context_json.as_deref(),
            utc_offset_minutes,
        };
        let ids: Vec<&str> = placements.iter().map(String::as_str).collect();
        match self.with(|i, now, r| i.core.decide_many(&ids, &request, now, r)) {
            Ok(all) => Ok(placements
                .iter()
                .zip(all)
                .map(|(placement, d)| PlacementDecisions {
                    placement: placement.clone(),
                    decisions: d.into_iter().map(decision_of).collect(),
                })
                .collect()),
            Err(DecideError::NoArtifact) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The app showed `decision`: records `Offer Displayed` and counts an
    /// impression for frequency caps. Returns the event's messageId, or
    /// `None` when this decision was already reported.
    pub fn displayed(&self, decision: Decision) -> Result<Option<String>, ThreadlineError> {
        let json = decision.feedback_json();
        self.with(|i, now, r| i.core.displayed(&json, now, r)).map_err(Into::into)
    }

    /// The person tapped `decision`: records `Offer Clicked` (once per
    /// decision; `None` when already reported).
    pub fn clicked(&self, decision: Decision) -> Result<Option<String>, ThreadlineError> {
        let json = decision.feedback_json();
        self.with(|i, now, r| i.core.clicked(&json, now, r)).map_err(Into::into)
    }

    /// Hands over an artifact the app carries (bundled in the app, or from
    /// its own backend) with its detached base64 signature. Unless
    /// `replace`, it is used only while none is loaded, so a bundled copy
    /// never overrides a newer cached one. Returns whether it is in use now;
    /// a refused artifact leaves the previous one in use (and a
    /// `RulesRejected` notice).
    pub fn load_rules(
        &self,
        artifact: String,
        signature: Option<String>,
        replace: bool,
    ) -> Result<bool, ThreadlineError> {
        self.with_now(|i, now| i.core.load_rules(&artifact, signature.as_deref(), replace, now))
            .map_err(Into::into)
    }

    /// Whether an artifact is in use (`decide` answers from it).
    pub fn rules_ready(&self) -> bool {
        self.lock().core.rules_ready()
    }

    /// The `revision` label of the artifact in use.
    pub fn rules_revision(&self) -> Option<String> {
        self.lock().core.rules_revision().map(str::to_owned)
    }

    /// Revalidates the artifact at once: the next `next_rules_fetch` returns
    /// a request.
    pub fn refresh_rules(&self) {
        self.with_now(|i, now| i.core.refresh_rules(now));
    }

    /// The rules request to perform now, if one is due (the host loop asks
    /// after its uploads; `poll_timeout_ms` already counts the due time).
    pub fn next_rules_fetch(&self) -> Option<RulesFetch> {
        self.with_now(|i, now| i.core.next_rules_fetch(now)).map(fetch_of)
    }

    /// Reports a rules request: `status` is the HTTP status (`None`: no
    /// answer, a network error), `etag` the response's `ETag` header, `body`
    /// the response body of a 200. A 304 keeps the artifact in use; any other
    /// outcome is a failure the core retries later. A returned fetch (the
    /// signature of a changed artifact) must be performed at once and
    /// reported the same way. A refused artifact is an error here and a
    /// `RulesRejected` notice; the previous artifact stays in use.
    pub fn rules_fetched(
        &self,
        id: u64,
        status: Option<u16>,
        etag: Option<String>,
        body: Option<Vec<u8>>,
    ) -> Result<Option<RulesFetch>, ThreadlineError> {
        let response = match (status, body.as_deref()) {
            (Some(304), _) => RulesResponse::NotModified,
            (Some(200), Some(bytes)) => RulesResponse::Body { bytes, etag: etag.as_deref() },
            (status, _) => RulesResponse::Failed { status },
        };
        let random = self.source.random_u32();
        self.with_now(|i, now| i.core.rules_fetched(id, response, now, random))
            .map(|f| f.map(fetch_of))
            .map_err(Into::into)
    }

    /// The profile request to perform now, if one is due (the host loop asks
    /// after its rules requests; `poll_timeout_ms` already counts the due
    /// time). Only with `personalization` granted, a user id and its token.
    pub fn next_profile_fetch(&self) -> Option<ProfileFetch> {
        self.with_now(|i, now| i.core.next_profile_fetch(now)).map(|f| ProfileFetch {
            id: f.id,
            url: f.url,
            token: f.token,
        })
    }

    /// Reports a profile request: `status` is the HTTP status (`None`: no
    /// answer, a network error), `body` the response body of a 200. Any
    /// other outcome is a failure the core retries later, except 401/403:
    /// the token was refused, an error here and a `ProfileSyncRefused`
    /// notice, and nothing is fetched until `identify` brings a new token.
    /// A body the core refuses (another user, corrupt) is an error too;
    /// decisions keep what they had.
    pub fn profile_fetched(
        &self,
        id: u64,
        status: Option<u16>,
        body: Option<Vec<u8>>,
    ) -> Result<(), ThreadlineError> {
        let response = match (status, body.as_deref()) {
            (Some(200), Some(bytes)) => ProfileResponse::Body { bytes },
            (status, _) => ProfileResponse::Failed { status },
        };
        let random = self.source.random_u32();
        self.with_now(|i, now| i.core.profile_fetched(id, response, now, random)).map_err(Into::into)
    }

    /// Fetches the person's profile at once (say, after a purchase on
    /// another device), unless one is in flight or nothing may be fetched.
    pub fn refresh_profile(&self) {
        self.with_now(|i, _| i.core.refresh_profile());
    }

    /// Notices since the last call (session started, consent changed,
    /// rules loaded or rejected, profile synced or refused), oldest first;
    /// at most the last 64 are kept.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.lock().notices.drain(..).collect()
    }
}
