//! The UniFFI `Client`: the core behind a mutex, with the clock, the random
//! source and the file store that the core leaves to its bindings.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sdk_core::{Environment, Millis, NextUpload, Notice as CoreNotice, Outcome, Persist, Store};
use serde::Serialize;

use crate::error::ThreadlineError;
use crate::store::{FileStore, Slot, StoreStats};
use crate::sys::{now_ms, random16, random_u32};

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
}

/// Notices kept for a host that never drains them: the oldest go first.
const MAX_NOTICES: usize = 64;

struct Inner {
    core: sdk_core::Client,
    store: FileStore,
    notices: VecDeque<Notice>,
}

impl Inner {
    /// Performs the storage work the core says is due (all of it with
    /// `force`) and collects the core's notices.
    fn settle(&mut self, now: Millis, force: bool) {
        let Persist { queue, identity, device, wipe } = self.core.take_persist(now, force);
        if wipe {
            self.store.wipe();
        }
        for (slot, work) in [(Slot::Queue, queue), (Slot::Identity, identity), (Slot::Device, device)] {
            match work {
                Some(Store::Write(bytes)) => self.store.write(slot, &bytes),
                Some(Store::Remove) => self.store.remove(slot),
                None => {}
            }
        }
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
            });
        }
    }

    /// Restores what the previous process stored, in the web binding's
    /// order: device (it carries the consent), identity, queue. A record the
    /// core refuses is quarantined like a corrupt file.
    fn load_stored(&mut self, now: Millis) {
        if let Some(bytes) = self.store.read(Slot::Device) {
            if self.core.restore_device(&bytes, now, random16(), false).is_err() {
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
}

impl Client {
    /// A panic while the lock was held (there should be none: the crate
    /// denies unwraps and indexing) must not turn every later call into a
    /// panic too; the state is still the core's last consistent one.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core with the current time, then persists what is
    /// due.
    fn with<R>(&self, f: impl FnOnce(&mut Inner, Millis) -> R) -> R {
        let now = now_ms();
        let mut inner = self.lock();
        let r = f(&mut inner, now);
        inner.settle(now, false);
        r
    }
}

#[uniffi::export]
impl Client {
    /// `config_json` is the configuration the web client takes
    /// (`{"endpoint": ..., "writeKey": ..., "consent": {...}, ...}`);
    /// `storage_dir` a private directory for this SDK's files (created if
    /// missing). An unusable directory is not an error: the client runs from
    /// memory and says so in `stats()`.
    #[uniffi::constructor]
    pub fn new(config_json: String, storage_dir: String) -> Result<Arc<Self>, ThreadlineError> {
        let config = sdk_core::Config::from_json(&config_json)?;
        if storage_dir.trim().is_empty() {
            return Err(ThreadlineError::Storage { detail: "storage_dir must not be empty".into() });
        }
        let now = now_ms();
        let core = sdk_core::Client::new(config, now, random16())?;
        let store = FileStore::open(Path::new(&storage_dir));
        let mut inner = Inner { core, store, notices: VecDeque::new() };
        inner.load_stored(now);
        inner.settle(now, false);
        Ok(Arc::new(Client { inner: Mutex::new(inner) }))
    }

    /// Records a `track` event; returns its messageId. `properties_json` is a
    /// JSON object, serialised by the caller (one FFI crossing per event).
    pub fn track(&self, name: String, properties_json: Option<String>) -> Result<String, ThreadlineError> {
        self.with(|i, now| i.core.track(&name, properties_json.as_deref(), now, random16()))
            .map_err(Into::into)
    }

    /// Records a `screen` event; returns its messageId.
    pub fn screen(&self, name: String, properties_json: Option<String>) -> Result<String, ThreadlineError> {
        self.with(|i, now| i.core.screen(&name, properties_json.as_deref(), now, random16()))
            .map_err(Into::into)
    }

    /// Attaches a user id, traits (JSON object) and namespaced ids (JSON
    /// object, e.g. `{"email": ...}`, hashed as configured) and records an
    /// `identify` event; returns its messageId.
    pub fn identify(
        &self,
        user_id: Option<String>,
        traits_json: Option<String>,
        ids_json: Option<String>,
    ) -> Result<String, ThreadlineError> {
        self.with(|i, now| {
            i.core.identify(user_id.as_deref(), traits_json.as_deref(), ids_json.as_deref(), now, random16())
        })
        .map_err(Into::into)
    }

    /// Links `user_id` with `previous_id` (by default the current user id,
    /// else the device id); returns the messageId.
    pub fn alias(&self, user_id: String, previous_id: Option<String>) -> Result<String, ThreadlineError> {
        self.with(|i, now| i.core.alias(&user_id, previous_id.as_deref(), now, random16()))
            .map_err(Into::into)
    }

    /// Logout: forgets the user and rotates the device id.
    pub fn reset(&self) {
        self.with(|i, now| i.core.reset(now, random16()));
    }

    /// Sends what is queued without waiting for a full batch.
    pub fn flush(&self) {
        self.with(|i, _| i.core.flush());
    }

    /// Applies the host's consent choices (`{"analytics":"granted", ...}`);
    /// returns the consent now in force as JSON (as `get_consent`). A denial
    /// has deleted every stored file when this returns.
    pub fn set_consent(&self, consent_json: String) -> Result<String, ThreadlineError> {
        self.with(|i, now| i.core.set_consent(&consent_json, now, random16()).map(|_| i.core.consent_view()))
            .map(|v| to_json(&v))
            .map_err(Into::into)
    }

    /// Applies an IAB TCF TC string from the app's CMP; a string that cannot
    /// be decoded is refused and changes nothing.
    pub fn set_consent_tcf(&self, tc_string: String) -> Result<String, ThreadlineError> {
        self.with(|i, now| i.core.set_consent_tcf(&tc_string, now, random16()).map(|_| i.core.consent_view()))
            .map(|v| to_json(&v))
            .map_err(Into::into)
    }

    /// The CMP says GDPR does not apply to this person.
    pub fn set_tcf_not_applicable(&self) -> String {
        let v = self.with(|i, now| {
            i.core.set_tcf_not_applicable(now, random16());
            i.core.consent_view()
        });
        to_json(&v)
    }

    /// A Global Privacy Control style opt-out signal from the app's settings.
    pub fn set_gpc(&self, on: bool) {
        self.with(|i, now| i.core.set_gpc(on, now, random16()));
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
        self.with(|i, now| match i.core.next_upload(now) {
            NextUpload::Upload(u) => Some(Upload {
                id: u.id,
                url: u.url,
                headers: u.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
                body: u.body,
            }),
            NextUpload::WaitUntil(_) | NextUpload::Idle => None,
        })
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
        self.with(|i, now| i.core.upload_finished(id, outcome, now, random_u32())).map_err(Into::into)
    }

    /// Milliseconds from now until the client needs `next_upload()` to be
    /// called again (0: now); `None`: no timer needed until the next call.
    pub fn poll_timeout_ms(&self) -> Option<u64> {
        let now = now_ms();
        self.lock().core.poll_timeout(now).map(|at| at.saturating_sub(now))
    }

    /// The app went to the background: everything is written now (the
    /// process may be killed without another callback), and what is queued
    /// is due at once, for the host's background upload window.
    pub fn on_background(&self) {
        let now = now_ms();
        let mut inner = self.lock();
        inner.core.flush();
        inner.settle(now, true);
    }

    /// The app came back to the foreground: catch up on what came due while
    /// suspended (then ask `poll_timeout_ms()` again).
    pub fn on_foreground(&self) {
        self.with(|_, _| ());
    }

    /// Connectivity came back: ends a wait caused by network errors.
    pub fn network_available(&self) {
        self.with(|i, _| i.core.network_available());
    }

    /// Notices since the last call (session started, consent changed),
    /// oldest first; at most the last 64 are kept.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.lock().notices.drain(..).collect()
    }
}
