//! The browser side of the core's pull loop: it performs what the core asks
//! for (uploads, storage writes, one timer) and reports back, and it turns
//! page lifecycle events into the calls the core expects. No policy lives
//! here: when to send, retry, drop or persist is sdk-core's decision.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::Function;
use sdk_core::{Client, Millis, NextUpload, Notice, Outcome, Persist, Store as Slot, Transport, Upload};
#[cfg(feature = "decide")]
use sdk_core::{ProfileFetch, RulesFetch};
use serde::{Deserialize, Serialize};
#[cfg(feature = "decide")]
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget, PageTransitionEvent, StorageEvent};

use crate::browser::{self, now_ms, RandomPool, Store};
use crate::cmp::{self, TcData};
use crate::cookie::{self, Cookie};
use crate::tabs::{self, Held, Wait};
use crate::transport::{self, KEEPALIVE_BUDGET};

/// Options that only make sense in a browser; the rest of the
/// configuration goes to the core unchanged.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct WebOptions {
    /// Prefix of every storage key (`<prefix>.id`, `<prefix>.q.<tab>`).
    pub storage_prefix: String,
    /// Keep the queue and identity in localStorage (otherwise memory only).
    pub persist: bool,
    /// Gzip request bodies with `CompressionStream`.
    pub compress: bool,
    pub request_timeout_ms: u32,
    /// Send what is queued by `sendBeacon` when the page is hidden or left.
    pub beacon_on_hide: bool,
    /// Keep the device record in a first-party cookie (shared by the
    /// subdomains of the site); `<prefix>.did` in localStorage is the fallback.
    pub cookie: bool,
    pub cookie_name: String,
    /// `"auto"` (the registrable domain, probed) or an explicit domain.
    pub cookie_domain: String,
    /// Take consent from an IAB TCF CMP on the page (`window.__tcfapi`).
    pub tcf_api: bool,
    /// An artifact shipped with the page, used until a cached or fetched one
    /// is in use (never over one).
    #[cfg(feature = "decide")]
    pub rules: Option<InlineRules>,
}

/// `rules` of the browser options.
#[cfg(feature = "decide")]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InlineRules {
    /// A JSON string is the artifact's text byte for byte (what a signature
    /// covers); an object is taken as the JSON text it arrived as.
    pub artifact: Option<Box<RawValue>>,
    /// Base64 of the detached Ed25519 signature.
    pub signature: Option<String>,
}

#[cfg(feature = "decide")]
impl InlineRules {
    fn text(&self) -> Option<String> {
        let raw = self.artifact.as_ref()?.get();
        if raw.starts_with('"') {
            serde_json::from_str(raw).ok()
        } else {
            Some(raw.to_owned())
        }
    }
}

impl WebOptions {
    pub fn validate(&self) -> Result<(), String> {
        let token = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        };
        if !token(&self.cookie_name) {
            return Err(format!("cookieName \"{}\" is not a valid cookie name", self.cookie_name));
        }
        let domain_ok = self.cookie_domain.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
        if self.cookie_domain.is_empty() || !domain_ok {
            return Err(format!("cookieDomain \"{}\" must be \"auto\" or a domain name", self.cookie_domain));
        }
        Ok(())
    }
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            storage_prefix: "threadline".into(),
            persist: true,
            compress: true,
            request_timeout_ms: 30_000,
            beacon_on_hide: true,
            cookie: true,
            cookie_name: "tl_did".into(),
            cookie_domain: "auto".into(),
            tcf_api: true,
            #[cfg(feature = "decide")]
            rules: None,
        }
    }
}

/// Counters of the browser glue, reported next to the core's.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebStats {
    pub storage_failures: u32,
    pub storage_available: bool,
    pub web_locks: bool,
    pub tab: String,
    pub adopted_queues: u32,
    pub discarded_snapshots: u32,
    pub gzip_uploads: u32,
    pub beacons_refused: u32,
    /// TC strings from the CMP that the core refused (malformed).
    pub tcf_refused: u32,
}

/// Bodies smaller than this are not worth a compression round trip.
const GZIP_MIN_BYTES: usize = 1024;

pub type Shared = Rc<RefCell<Driver>>;

/// A lifecycle listener we added, kept so `close` can remove it.
type Listener = (EventTarget, &'static str, Closure<dyn FnMut(Event)>);

/// A pending `ready()`: its id, its resolve function and its timeout.
type ReadyWaiter = (u32, Function, Option<Timeout>);

/// Marks the `<prefix>.did` copy of a record the cookie also holds.
const IN_COOKIE: &str = "|c";

pub struct Driver {
    pub core: Client,
    opts: WebOptions,
    store: Store,
    session: Store,
    pub rand: RandomPool,
    tab: String,
    /// The tab id is in sessionStorage (written with the first stored
    /// queue: nothing is stored before consent allows it).
    tab_saved: bool,
    cookie: Option<Cookie>,
    /// A device record was stored (cookie or `<prefix>.did`) by or for
    /// this page: if both are gone later, another page deleted them.
    device_stored: bool,
    tcf_listener: Option<f64>,
    on_notice: Option<Function>,
    notices: Vec<(&'static str, String)>,
    notices_scheduled: bool,
    tab_lock: Option<Held>,
    timer: Option<(Millis, Timeout)>,
    flush_waiters: Vec<Function>,
    ready_waiters: Vec<ReadyWaiter>,
    #[cfg(feature = "decide")]
    next_waiter: u32,
    keepalive_bytes: usize,
    /// Uploads handed to [`send`] whose request has not started (their gzip
    /// is still running): if the page is left meanwhile, their events go
    /// with the unload path instead, and `send` drops them.
    unstarted: Vec<u64>,
    /// Bytes handed to sendBeacon since the page was last visible: the
    /// browser's 64 KiB budget covers them until they are sent.
    beacon_bytes: usize,
    compress: bool,
    closed: bool,
    listeners: Vec<Listener>,
    web: WebStats,
}

impl Driver {
    fn key(&self, what: &str) -> String {
        format!("{}.{what}", self.opts.storage_prefix)
    }

    fn queue_key(&self, tab: &str) -> String {
        self.key(&format!("q.{tab}"))
    }

    fn heartbeat_key(&self, tab: &str) -> String {
        self.key(&format!("t.{tab}"))
    }

    fn tab_key(&self) -> String {
        self.key("tab")
    }

    /// Writes what the core says is due (everything with `force`).
    pub fn persist(&mut self, now: Millis, force: bool) {
        let Persist { queue, identity, device, profile, rules, wipe } = self.core.take_persist(now, force);
        if wipe {
            self.wipe();
        }
        let qkey = self.queue_key(&self.tab);
        match queue {
            Some(Slot::Write(bytes)) => {
                if !self.tab_saved {
                    let (k, tab) = (self.tab_key(), self.tab.clone());
                    self.tab_saved = self.session.set(&k, &tab);
                }
                self.store.set(&qkey, &String::from_utf8_lossy(&bytes));
                if !self.web.web_locks {
                    let hb = self.heartbeat_key(&self.tab);
                    self.store.set(&hb, &now.to_string());
                }
            }
            Some(Slot::Remove) => {
                self.store.remove(&qkey);
                let hb = self.heartbeat_key(&self.tab);
                self.store.remove(&hb);
            }
            None => {}
        }
        let ikey = self.key("id");
        match identity {
            Some(Slot::Write(bytes)) => {
                self.store.set(&ikey, &String::from_utf8_lossy(&bytes));
            }
            Some(Slot::Remove) => self.store.remove(&ikey),
            None => {}
        }
        // Shared by the origin's tabs, like the identity: the profile is the
        // person's, not the tab's.
        for (what, slot) in [("profile", profile), ("rules", rules)] {
            let key = self.key(what);
            match slot {
                Some(Slot::Write(bytes)) => {
                    self.store.set(&key, &String::from_utf8_lossy(&bytes));
                }
                Some(Slot::Remove) => self.store.remove(&key),
                None => {}
            }
        }
        match device {
            Some(Slot::Write(bytes)) => self.write_device(&String::from_utf8_lossy(&bytes), now),
            Some(Slot::Remove) => {
                if let Some(c) = &mut self.cookie {
                    c.remove();
                }
                let dkey = self.key("did");
                self.store.remove(&dkey);
                self.device_stored = false;
            }
            None => {}
        }
    }

    /// The device record goes to the cookie, for as long as it is valid,
    /// and to `<prefix>.did`.
    fn write_device(&mut self, record: &str, now: Millis) {
        let mut kept = false;
        if let Some(c) = &mut self.cookie {
            let expires = self.core.identity_view().device_id_expires.unwrap_or(now);
            kept = c.write(record, expires.saturating_sub(now) / 1000);
        }
        // The copy says whether the cookie held the record: if it did and
        // the cookie is gone later, something deleted it (see `load_device`).
        let dkey = self.key("did");
        let copy = if kept { format!("{record}{IN_COOKIE}") } else { record.to_owned() };
        kept |= self.store.set(&dkey, &copy);
        self.device_stored = kept;
    }

    /// `analytics` was denied: everything this SDK stored goes, the other
    /// tabs' queues and heartbeats included (they see `<prefix>.did` go and
    /// deny too).
    fn wipe(&mut self) {
        if let Some(c) = &mut self.cookie {
            c.remove();
        }
        let prefix = self.key("");
        for k in self.store.keys_with_prefix(&prefix) {
            self.store.remove(&k);
        }
        let tk = self.tab_key();
        self.session.remove(&tk);
        self.tab_saved = false;
        self.device_stored = false;
    }

    /// Finds the device record (the cookie first: it spans the site's
    /// subdomains; `<prefix>.did` if the cookie is gone) and gives it to the
    /// core, which asks for it to be written back where it was missing.
    /// `resumed`: back from the back/forward cache; if a record this page
    /// stored has vanished meanwhile, another page denied consent.
    fn load_device(&mut self, now: Millis, resumed: bool) {
        let random = self.rand.bytes16();
        let dkey = self.key("did");
        let stored = self.store.get(&dkey);
        let (local, was_in_cookie) = match stored.as_deref().map(|l| l.strip_suffix(IN_COOKIE)) {
            Some(Some(l)) => (Some(l.to_owned()), true),
            Some(None) => (stored.clone(), false),
            None => (None, false),
        };
        let had = self.device_stored && self.core.identity_view().device_id.is_some();
        let mut found = false;
        if let Some(c) = self.cookie.as_ref().and_then(|c| cookie::read(c.name())) {
            let rewrite = self.store.available() && (local.as_deref() != Some(c.as_str()) || !was_in_cookie);
            found = self.core.restore_device(c.as_bytes(), now, random, rewrite).is_ok();
            self.web.discarded_snapshots += u32::from(!found);
        } else if let (Some(l), true, true) = (&local, was_in_cookie, self.cookie.is_some()) {
            // The cookie held this record and is gone: the core decides
            // whether that is a denial made elsewhere (then it asks for a wipe).
            if self.core.device_record_lost(Some(l.as_bytes()), now, random) {
                return;
            }
        }
        if let (false, Some(l)) = (found, &local) {
            found = self.core.restore_device(l.as_bytes(), now, random, self.cookie.is_some()).is_ok();
            if !found {
                self.web.discarded_snapshots += 1;
                self.store.remove(&dkey);
            }
        }
        if found {
            self.device_stored = true;
        } else if resumed && had {
            self.core.device_record_lost(None, now, random);
        }
    }

    /// Queues the core's notices for the host's `onNotice` callback, which
    /// hears them in a microtask: never while we are borrowed, never inside
    /// the host's own call. Without a callback they are dropped.
    fn collect_notices(&mut self, shared: &Shared) {
        #[cfg(feature = "decide")]
        self.wake_ready();
        let notices = self.core.take_notices();
        if notices.is_empty() {
            return;
        }
        let listening = self.on_notice.is_some();
        for n in notices {
            let rules = matches!(n, Notice::RulesLoaded { .. } | Notice::RulesRejected { .. });
            if !listening && !rules {
                continue;
            }
            self.notices.push(match n {
                Notice::SessionStarted { id } => ("sessionStart", format!(r#"{{"sessionId":{id}}}"#)),
                Notice::ConsentChanged { consent } => {
                    ("consentChange", serde_json::to_string(&consent).unwrap_or_default())
                }
                Notice::RulesLoaded { revision } => {
                    let revision = serde_json::to_string(&revision).unwrap_or_default();
                    ("rulesLoaded", format!(r#"{{"revision":{revision}}}"#))
                }
                Notice::RulesRejected { kind, message } => {
                    let message = serde_json::to_string(&message).unwrap_or_default();
                    ("rulesError", format!(r#"{{"kind":"{kind}","message":{message}}}"#))
                }
                Notice::ProfileSynced { audiences } => {
                    let audiences = serde_json::to_string(&audiences).unwrap_or_default();
                    ("profileSync", format!(r#"{{"audiences":{audiences}}}"#))
                }
                Notice::ProfileSyncRefused { status } => {
                    ("profileSyncRefused", format!(r#"{{"status":{status}}}"#))
                }
            });
        }
        if !listening {
            // What became of the rules at start (a broken inline artifact,
            // say) happens before the page can listen: the last few are
            // kept for the first listener instead of going unheard.
            let excess = self.notices.len().saturating_sub(MAX_KEPT_NOTICES);
            self.notices.drain(..excess);
            return;
        }
        self.schedule_notices(shared);
    }

    pub fn schedule_notices(&mut self, shared: &Shared) {
        if !self.notices_scheduled && self.on_notice.is_some() && !self.notices.is_empty() {
            self.notices_scheduled = true;
            let s = shared.clone();
            wasm_bindgen_futures::spawn_local(async move { deliver_notices(&s) });
        }
    }

    /// Resolves the pending `ready()` promises once an artifact is in use.
    /// Resolving with a plain value runs no host code, so this is safe
    /// inside our borrow.
    #[cfg(feature = "decide")]
    fn wake_ready(&mut self) {
        if self.ready_waiters.is_empty() || !self.core.rules_ready() {
            return;
        }
        for (_, resolve, _) in self.ready_waiters.drain(..) {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::TRUE);
        }
    }

    /// The stored profile and the cached artifact, after the device record
    /// (whose consent decides whether the profile may be read).
    #[cfg(feature = "decide")]
    fn load_decisions(&mut self, now: Millis) {
        let pkey = self.key("profile");
        if let Some(stored) = self.store.get(&pkey) {
            if self.core.restore_profile(stored.as_bytes()).is_err() {
                self.web.discarded_snapshots += 1;
                self.store.remove(&pkey);
            }
        }
        let rkey = self.key("rules");
        if let Some(stored) = self.store.get(&rkey) {
            if self.core.restore_rules(stored.as_bytes(), now).is_err() {
                self.web.discarded_snapshots += 1;
                self.store.remove(&rkey);
            }
        }
    }

    pub fn consent_json(&self) -> String {
        serde_json::to_string(&self.core.consent_view()).unwrap_or_default()
    }

    pub fn set_on_notice(&mut self, f: Option<Function>) {
        self.on_notice = f;
    }

    /// After a call that changes consent or identity: storage work is done
    /// now (a denial deletes everything before the call returns); the
    /// caller then runs `drive`.
    pub fn settle(&mut self, now: Millis) {
        self.persist(now, false);
    }

    /// Takes this tab's stored identity and queue as the truth: at start (the
    /// queue is empty then, so this restores it) and when the page comes
    /// back from the back/forward cache. An unreadable stored value is
    /// counted and removed; it changes nothing in memory.
    fn load_stored(&mut self, now: Millis, resumed: bool) {
        self.load_device(now, resumed);
        if !self.store.available() {
            return; // memory only: nothing stored can be newer than memory
        }
        let ikey = self.key("id");
        if let Some(stored) = self.store.get(&ikey) {
            if self.core.restore_identity(stored.as_bytes()).is_err() {
                self.web.discarded_snapshots += 1;
                self.store.remove(&ikey);
            }
        }
        let qkey = self.queue_key(&self.tab);
        let stored = self.store.get(&qkey);
        if self.core.replace_queue(stored.as_deref().map(str::as_bytes), now).is_err() {
            self.web.discarded_snapshots += 1;
            self.store.remove(&qkey);
        }
        #[cfg(feature = "decide")]
        self.load_decisions(now);
    }

    /// (Re)arms the single timer for the core's next deadline; none at all
    /// when the core needs no callback.
    fn arm(&mut self, weak: &Weak<RefCell<Driver>>, now: Millis) {
        let Some(at) = self.core.poll_timeout(now) else {
            self.timer = None;
            return;
        };
        if self.timer.as_ref().is_some_and(|(t, _)| *t <= at) {
            return;
        }
        let delay = at.saturating_sub(now).min(i32::MAX as u64) as u32;
        let weak = weak.clone();
        let timeout = Timeout::new(delay, move || {
            if let Some(shared) = weak.upgrade() {
                if let Ok(mut d) = shared.try_borrow_mut() {
                    d.timer = None;
                }
                drive(&shared);
            }
        });
        self.timer = Some((at, timeout));
    }

    /// Called after every API call: only arms the timer (cheap), so a burst
    /// of calls in one task is processed once, in a later task.
    pub fn after_call(&mut self, shared: &Shared, now: Millis) {
        self.collect_notices(shared);
        self.arm(&Rc::downgrade(shared), now);
    }

    /// The page is hidden or being left: the last moment that is sure to
    /// run. Send what is pending as the core says (beacons while the rest
    /// fits as it is, gzip keepalive requests beyond), then store everything.
    /// Returns the requests started, whose answers a live page still reads.
    fn on_hide(&mut self, now: Millis) -> Vec<(u64, usize, transport::Started)> {
        let mut started = Vec::new();
        if self.closed {
            return started;
        }
        if self.opts.beacon_on_hide && browser::online() {
            // Uploads still being gzipped would start after the page is gone:
            // their events go now, with the rest.
            for id in std::mem::take(&mut self.unstarted) {
                let r = self.rand.u32();
                let _ = self.core.upload_finished(id, Outcome::NotSent, now, r);
            }
            let compress = self.opts.compress;
            let mut gzip = |b: &[u8]| if compress { transport::gzip_now(b) } else { None };
            loop {
                let budget = KEEPALIVE_BUDGET.saturating_sub(self.keepalive_bytes + self.beacon_bytes);
                let Some(u) = self.core.next_unload(now, budget, &mut gzip) else { break };
                let r = self.rand.u32();
                if u.transport == Transport::Fetch {
                    let timeout = self.opts.request_timeout_ms;
                    match transport::start(&u.url, &u.headers, false, &u.body, true, timeout) {
                        Ok(s) => {
                            self.keepalive_bytes += u.body.len();
                            self.web.gzip_uploads += 1;
                            started.push((u.id, u.body.len(), s));
                            continue;
                        }
                        Err(_) => {
                            let _ = self.core.upload_finished(u.id, Outcome::NotSent, now, r);
                            break;
                        }
                    }
                }
                let sent = transport::beacon(&u.url, &u.body);
                let outcome = if sent { Outcome::Handoff } else { Outcome::NotSent };
                let _ = self.core.upload_finished(u.id, outcome, now, r);
                if !sent {
                    self.web.beacons_refused += 1;
                    break;
                }
                self.beacon_bytes += u.body.len();
            }
        }
        self.persist(now, true);
        started
    }

    /// The core's and the glue's counters as one JSON object, spliced as
    /// text (no `serde_json::Value` tree, which would cost wasm size).
    pub fn stats_json(&self) -> String {
        let mut web = self.web.clone();
        web.storage_failures = self.store.failures;
        let core = serde_json::to_string(&self.core.stats()).unwrap_or_default();
        let web = serde_json::to_string(&web).unwrap_or_default();
        match (core.strip_suffix('}'), web.strip_prefix('{')) {
            (Some(c), Some(w)) => format!("{c},{w}"),
            _ => core,
        }
    }
}

/// Runs the loop once: persist what is due, start every due upload, resolve
/// `flush()` promises when nothing more can go now, re-arm the timer.
pub fn drive(shared: &Shared) {
    let now = now_ms();
    let mut uploads = Vec::new();
    let mut resolved = Vec::new();
    #[cfg(feature = "decide")]
    let (rules, profile);
    {
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        if d.closed {
            return;
        }
        while let NextUpload::Upload(u) = d.core.next_upload(now) {
            d.unstarted.push(u.id);
            uploads.push(u);
        }
        #[cfg(feature = "decide")]
        {
            rules = d.core.next_rules_fetch(now);
            profile = d.core.next_profile_fetch(now);
        }
        d.persist(now, false);
        if uploads.is_empty() && d.core.uploads_in_flight() == 0 {
            resolved = std::mem::take(&mut d.flush_waiters);
        }
        d.collect_notices(shared);
        d.arm(&Rc::downgrade(shared), now);
    }
    for u in uploads {
        wasm_bindgen_futures::spawn_local(send(shared.clone(), u));
    }
    #[cfg(feature = "decide")]
    if let Some(f) = rules {
        wasm_bindgen_futures::spawn_local(fetch_rules(shared.clone(), f));
    }
    #[cfg(feature = "decide")]
    if let Some(f) = profile {
        wasm_bindgen_futures::spawn_local(fetch_profile(shared.clone(), f));
    }
    for r in resolved {
        let _ = r.call0(&JsValue::NULL);
    }
}

/// Performs a rules request the core asked for, and at once the follow-up
/// it may return (the signature of a changed artifact).
#[cfg(feature = "decide")]
async fn fetch_rules(shared: Shared, first: RulesFetch) {
    let mut next = Some(first);
    while let Some(f) = next.take() {
        let Ok(timeout) = shared.try_borrow().map(|d| d.opts.request_timeout_ms) else { return };
        let etag = f.etag.as_deref().map(|t| ("If-None-Match", t));
        let got = transport::get(&f.url, etag, timeout).await;
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        if d.closed {
            return;
        }
        let r = d.rand.u32();
        // A refused artifact is reported as a notice; the previous one stays.
        next = d.core.rules_fetched(f.id, got.response(), now_ms(), r).ok().flatten();
    }
    drive(&shared);
}

/// Performs the profile request the core asked for. Whatever comes back
/// (the profile, a refused token, a network error) is the core's to judge;
/// the page hears of it only through the `profileSync` /
/// `profileSyncRefused` notices, never as a thrown error.
#[cfg(feature = "decide")]
async fn fetch_profile(shared: Shared, f: ProfileFetch) {
    let Ok(timeout) = shared.try_borrow().map(|d| d.opts.request_timeout_ms) else { return };
    let bearer = format!("Bearer {}", f.token);
    let got = transport::get(&f.url, Some(("Authorization", &bearer)), timeout).await;
    {
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        if d.closed {
            return;
        }
        let r = d.rand.u32();
        // A refusal or a bad body comes back as an error and, for a refused
        // token, a notice; the core has already scheduled what follows.
        let _ = d.core.profile_fetched(f.id, got.profile(), now_ms(), r);
    }
    drive(&shared);
}

/// `ready()`: resolves `true` once an artifact is in use, `false` when
/// `timeout_ms` passes first or the client is closed; never rejects.
#[cfg(feature = "decide")]
pub fn ready(shared: &Shared, timeout_ms: Option<f64>) -> js_sys::Promise {
    let weak = Rc::downgrade(shared);
    js_sys::Promise::new(&mut |resolve, _| {
        let answer = match shared.try_borrow_mut() {
            Ok(d) if d.core.rules_ready() => Some(true),
            Ok(d) if d.closed => Some(false),
            Ok(mut d) => {
                let id = d.next_waiter;
                d.next_waiter = d.next_waiter.wrapping_add(1);
                let timer = timeout_ms.filter(|t| !t.is_nan()).map(|t| {
                    let (r, weak) = (resolve.clone(), weak.clone());
                    Timeout::new(t.clamp(0.0, f64::from(i32::MAX)) as u32, move || {
                        if let Some(s) = weak.upgrade() {
                            if let Ok(mut d) = s.try_borrow_mut() {
                                d.ready_waiters.retain(|w| w.0 != id);
                            }
                        }
                        let _ = r.call1(&JsValue::NULL, &JsValue::FALSE);
                    })
                });
                d.ready_waiters.push((id, resolve.clone(), timer));
                None
            }
            Err(_) => Some(false),
        };
        if let Some(a) = answer {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::from_bool(a));
        }
    })
}

async fn send(shared: Shared, upload: Upload) {
    debug_assert_eq!(upload.transport, Transport::Fetch);
    let Ok((compress, timeout)) = shared
        .try_borrow()
        .map(|d| (d.compress && upload.body.len() >= GZIP_MIN_BYTES, d.opts.request_timeout_ms))
    else {
        return;
    };
    let mut body = upload.body;
    let mut gzipped = false;
    if compress {
        match transport::gzip(&body).await {
            Ok(gz) => {
                body = gz;
                gzipped = true;
            }
            Err(_) => {
                if let Ok(mut d) = shared.try_borrow_mut() {
                    d.compress = false;
                }
            }
        }
    }
    if let Ok(mut d) = shared.try_borrow_mut() {
        let Some(pos) = d.unstarted.iter().position(|&id| id == upload.id) else {
            // The page was hidden meanwhile: the unload path took the events.
            return;
        };
        d.unstarted.swap_remove(pos);
    }
    let keepalive = match shared.try_borrow_mut() {
        Ok(mut d) if d.keepalive_bytes + body.len() <= KEEPALIVE_BUDGET => {
            d.keepalive_bytes += body.len();
            d.web.gzip_uploads += u32::from(gzipped);
            true
        }
        _ => false,
    };
    let outcome = transport::fetch(&upload.url, &upload.headers, gzipped, &body, keepalive, timeout).await;
    finished(&shared, upload.id, if keepalive { body.len() } else { 0 }, outcome);
}

/// Reports an upload's outcome and gives its `keepalive_len` bytes back to
/// the keepalive budget.
fn finished(shared: &Shared, id: u64, keepalive_len: usize, outcome: Outcome) {
    if let Ok(mut d) = shared.try_borrow_mut() {
        d.keepalive_bytes = d.keepalive_bytes.saturating_sub(keepalive_len);
        let r = d.rand.u32();
        // An unknown id means the queue was handed over meanwhile: nothing to do.
        let _ = d.core.upload_finished(id, outcome, now_ms(), r);
    }
    drive(shared);
}

/// Builds the driver: claims a tab id, restores this tab's stored queue and
/// identity, adopts queues of closed tabs, and listens to the page lifecycle.
pub async fn start(mut core: Client, opts: WebOptions, mut rand: RandomPool) -> Shared {
    core.set_gpc(browser::gpc(), now_ms(), rand.bytes16());
    let mut session = Store::session();
    let tab_key = format!("{}.tab", opts.storage_prefix);
    let web_locks = tabs::supported();
    let mut tab = session.get(&tab_key).filter(|t| !t.is_empty() && t.len() <= 32);
    let mut tab_lock = None;
    if web_locks {
        if let Some(t) = &tab {
            let name = format!("{}.tab.{t}", opts.storage_prefix);
            tab_lock = tabs::acquire(&name, Wait::Up(tabs::OWN_LOCK_WAIT_MS)).await;
        }
        if tab_lock.is_none() {
            // No id yet, or a duplicated tab whose copied id is in use.
            let t = rand.hex_id();
            tab_lock = tabs::acquire(&format!("{}.tab.{t}", opts.storage_prefix), Wait::IfAvailable).await;
            tab = Some(t);
        }
    }
    let tab = tab.unwrap_or_else(|| rand.hex_id());
    // Written with the first stored queue, not now: before consent nothing
    // is stored, sessionStorage included.
    let tab_saved = session.get(&tab_key).as_deref() == Some(tab.as_str());

    let store = Store::local(opts.persist);
    let cookie = opts.cookie.then(|| Cookie::new(opts.cookie_name.clone(), opts.cookie_domain.clone()));
    let driver = Driver {
        core,
        store,
        session,
        rand,
        tab_saved,
        cookie,
        device_stored: false,
        tcf_listener: None,
        on_notice: None,
        notices: Vec::new(),
        notices_scheduled: false,
        tab_lock,
        timer: None,
        flush_waiters: Vec::new(),
        ready_waiters: Vec::new(),
        #[cfg(feature = "decide")]
        next_waiter: 0,
        keepalive_bytes: 0,
        unstarted: Vec::new(),
        beacon_bytes: 0,
        compress: opts.compress,
        closed: false,
        listeners: Vec::new(),
        web: WebStats { web_locks, tab: tab.clone(), ..WebStats::default() },
        tab,
        opts,
    };
    let shared = Rc::new(RefCell::new(driver));
    if let Ok(mut d) = shared.try_borrow_mut() {
        d.web.storage_available = d.store.available();
        d.core.set_environment(browser::environment());
        if let Some(p) = browser::page() {
            d.core.set_page(p);
        }
        let now = now_ms();
        d.load_stored(now, false);
        #[cfg(feature = "decide")]
        // Only while nothing is loaded: the cache restored above may be newer.
        if let Some(inline) = d.opts.rules.take() {
            if let Some(text) = inline.text() {
                let _ = d.core.load_rules(&text, inline.signature.as_deref(), false, now);
            }
        }
    }
    adopt_orphans(&shared).await;
    listen(&shared);
    listen_cmp(&shared);
    drive(&shared);
    shared
}

/// Delivers collected notices to the host's callback, outside any borrow.
/// Rules notices kept while no listener is set.
const MAX_KEPT_NOTICES: usize = 8;

fn deliver_notices(shared: &Shared) {
    let (f, notices) = match shared.try_borrow_mut() {
        Ok(mut d) => {
            d.notices_scheduled = false;
            (d.on_notice.clone(), std::mem::take(&mut d.notices))
        }
        Err(_) => return,
    };
    let Some(f) = f else { return };
    for (kind, json) in notices {
        let _ = f.call2(&JsValue::NULL, &JsValue::from_str(kind), &JsValue::from_str(&json));
    }
}

/// Listens to a TCF CMP, if the page has one and the options allow it.
fn listen_cmp(shared: &Shared) {
    let Ok(true) = shared.try_borrow().map(|d| d.opts.tcf_api) else { return };
    let weak = Rc::downgrade(shared);
    let closure = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |tc_data: JsValue, success: JsValue| {
        if let Some(s) = weak.upgrade() {
            on_tc_data(&s, &tc_data, &success);
        }
    });
    // Owned by JavaScript from here: a CMP may call it after this client is
    // gone (then the weak reference finds nothing). Registered outside any
    // borrow: a CMP may answer at once, from inside this call.
    cmp::add_listener(&closure.into_js_value());
}

fn on_tc_data(shared: &Shared, tc_data: &JsValue, success: &JsValue) {
    {
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        let mut id = d.tcf_listener;
        let data = cmp::read(tc_data, success, &mut id);
        d.tcf_listener = id;
        if d.closed {
            return;
        }
        let now = now_ms();
        let random = d.rand.bytes16();
        match data {
            Some(TcData::NotApplicable) => {
                d.core.set_tcf_not_applicable(now, random);
            }
            Some(TcData::TcString(tc)) => {
                if d.core.set_consent_tcf(&tc, now, random).is_err() {
                    d.web.tcf_refused += 1;
                }
            }
            None => return,
        }
        d.settle(now);
    }
    drive(shared);
}

/// Another tab of this origin changed the stored device or identity record.
/// The device record gone means that tab's person denied consent: deny here
/// too. A new record (granted, rotated, reset) is taken as this tab's own,
/// which releases events held while consent was pending.
fn on_storage(shared: &Shared, e: Event) {
    let Some(e) = e.dyn_ref::<StorageEvent>() else { return };
    let Some(key) = e.key() else { return };
    {
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        if d.closed {
            return;
        }
        let now = now_ms();
        let random = d.rand.bytes16();
        if key == d.key("did") {
            match e.new_value() {
                None => {
                    let old = e.old_value();
                    let last = old.as_deref().map(|r| r.strip_suffix(IN_COOKIE).unwrap_or(r));
                    d.core.device_record_lost(last.map(str::as_bytes), now, random);
                }
                Some(record) => {
                    // Store what this tab has not yet (restoring takes the
                    // stored record as current).
                    d.persist(now, true);
                    let record = record.strip_suffix(IN_COOKIE).unwrap_or(&record);
                    if d.core.restore_device(record.as_bytes(), now, random, false).is_ok() {
                        d.device_stored = true;
                    }
                }
            }
        } else if key == d.key("id") {
            let Some(record) = e.new_value() else { return };
            let _ = d.core.restore_identity(record.as_bytes());
        } else if key == d.key("profile") {
            // Another tab learned something (a story started there shows
            // here). The profile is not merged: the last tab to write wins,
            // and this tab's unsaved counts since its last write are lost.
            // Its removal comes with a consent change, heard through the
            // device record.
            let Some(stored) = e.new_value() else { return };
            #[cfg(feature = "decide")]
            let _ = d.core.restore_profile(stored.as_bytes());
            #[cfg(not(feature = "decide"))]
            let _ = stored;
        } else if key == d.key("rules") {
            // Taken only if newer than the artifact in use (the core decides).
            let Some(stored) = e.new_value() else { return };
            #[cfg(feature = "decide")]
            let _ = d.core.restore_rules(stored.as_bytes(), now);
            #[cfg(not(feature = "decide"))]
            let _ = stored;
        } else {
            return;
        }
        d.settle(now);
    }
    drive(shared);
}

/// Adopts the stored queues of tabs that are gone.
pub async fn adopt_orphans(shared: &Shared) {
    let Ok((prefix, mine, locks, device)) = shared
        .try_borrow()
        .map(|d| (d.key("q."), d.tab.clone(), d.web.web_locks, d.core.identity_view().device_id.is_some()))
    else {
        return;
    };
    if !device {
        // Nothing may be stored now (consent pending): adopted events could
        // not be kept under our key, so leave them where they are.
        return;
    }
    let keys = match shared.try_borrow() {
        Ok(d) => d.store.keys_with_prefix(&prefix),
        Err(_) => return,
    };
    for key in keys {
        let Some(other) = key.strip_prefix(&prefix).map(str::to_owned) else { continue };
        if other == mine {
            continue;
        }
        let held = if locks {
            let name = match shared.try_borrow() {
                Ok(d) => d.key(&format!("tab.{other}")),
                Err(_) => return,
            };
            match tabs::acquire(&name, Wait::IfAvailable).await {
                Some(h) => Some(h),
                None => continue, // that tab is alive
            }
        } else {
            None
        };
        if let Ok(mut d) = shared.try_borrow_mut() {
            let now = now_ms();
            let hb = d.heartbeat_key(&other);
            let stale = locks
                || d.store
                    .get(&hb)
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_none_or(|t| now.saturating_sub(t) > tabs::STALE_MS);
            if stale {
                if let Some(stored) = d.store.get(&key) {
                    match d.core.restore(stored.as_bytes(), now) {
                        Ok(_) => d.web.adopted_queues += 1,
                        Err(_) => d.web.discarded_snapshots += 1,
                    }
                    // Store the adopted events under our key before removing
                    // theirs, so a crash in between loses nothing.
                    d.persist(now, true);
                    d.store.remove(&key);
                    d.store.remove(&hb);
                }
            }
        }
        if let Some(h) = held {
            h.release();
        }
    }
}

fn listen(shared: &Shared) {
    let Some(w) = browser::window() else { return };
    let Some(doc) = w.document() else { return };
    let weak = Rc::downgrade(shared);
    let on = |f: fn(&Shared, Event)| {
        let weak = weak.clone();
        Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            if let Some(s) = weak.upgrade() {
                f(&s, e);
            }
        })
    };
    let handlers: [Listener; 5] = [
        (doc.into(), "visibilitychange", on(on_visibility)),
        (w.clone().into(), "pagehide", on(on_pagehide)),
        (w.clone().into(), "pageshow", on(on_pageshow)),
        (w.clone().into(), "storage", on(on_storage)),
        (w.into(), "online", on(on_online)),
    ];
    if let Ok(mut d) = shared.try_borrow_mut() {
        for (target, name, closure) in handlers {
            let _ = target.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
            d.listeners.push((target, name, closure));
        }
    }
}

fn on_visibility(shared: &Shared, _e: Event) {
    let hidden = browser::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
    if hidden {
        hide(shared);
    } else {
        if let Ok(mut d) = shared.try_borrow_mut() {
            d.beacon_bytes = 0;
        }
        let s = shared.clone();
        wasm_bindgen_futures::spawn_local(async move {
            adopt_orphans(&s).await;
            drive(&s);
        });
    }
}

/// Runs [`Driver::on_hide`] and follows the requests it started, so that a
/// page that lives on (hidden, not closed) learns their outcomes.
fn hide(shared: &Shared) {
    let started = match shared.try_borrow_mut() {
        Ok(mut d) => d.on_hide(now_ms()),
        Err(_) => return,
    };
    for (id, len, s) in started {
        let shared = shared.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = s.outcome().await;
            finished(&shared, id, len, outcome);
        });
    }
}

fn on_pagehide(shared: &Shared, e: Event) {
    hide(shared);
    if let Ok(mut d) = shared.try_borrow_mut() {
        // Entering the back/forward cache: let other tabs see the queue
        // while this page sleeps (and keep the page cacheable).
        let persisted = e.dyn_ref::<PageTransitionEvent>().is_some_and(|p| p.persisted());
        if persisted {
            if let Some(h) = d.tab_lock.take() {
                h.release();
            }
        }
    }
}

fn on_pageshow(shared: &Shared, e: Event) {
    let persisted = e.dyn_ref::<PageTransitionEvent>().is_some_and(|p| p.persisted());
    if !persisted {
        return;
    }
    // Back from the back/forward cache. This page stored everything when it
    // left; another page of this tab (or another tab) may have sent part of
    // it and added its own since, so the stored queue is the truth. Read it
    // now, before the host can track again.
    if let Ok(mut d) = shared.try_borrow_mut() {
        d.load_stored(now_ms(), true);
        d.beacon_bytes = 0;
    }
    let s = shared.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let Ok((name, locks)) = s.try_borrow().map(|d| (d.key(&format!("tab.{}", d.tab)), d.web.web_locks))
        else {
            return;
        };
        let held = if locks { tabs::acquire(&name, Wait::Forever).await } else { None };
        if let Ok(mut d) = s.try_borrow_mut() {
            d.tab_lock = held;
        }
        drive(&s);
    });
    drive(shared);
}

fn on_online(shared: &Shared, _e: Event) {
    if let Ok(mut d) = shared.try_borrow_mut() {
        d.core.network_available();
    }
    drive(shared);
}

/// `flush()`: resolves once nothing more can be sent right now (delivered,
/// or waiting for a retry).
pub fn flush(shared: &Shared) -> js_sys::Promise {
    let s = shared.clone();
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Ok(mut d) = s.try_borrow_mut() {
            if d.closed {
                let _ = resolve.call0(&JsValue::NULL);
                return;
            }
            d.core.flush();
            d.flush_waiters.push(resolve);
        } else {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    drive(shared);
    promise
}

/// Stops the client: what is queued is stored for the next page, listeners
/// and the timer go, the tab lock is released.
pub fn close(shared: &Shared) {
    let listener = {
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        if d.closed {
            return;
        }
        d.persist(now_ms(), true);
        d.closed = true;
        d.timer = None;
        d.on_notice = None;
        for (target, name, closure) in d.listeners.drain(..) {
            let _ = target.remove_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
        }
        if let Some(h) = d.tab_lock.take() {
            h.release();
        }
        for r in d.flush_waiters.drain(..) {
            let _ = r.call0(&JsValue::NULL);
        }
        for (_, r, _) in d.ready_waiters.drain(..) {
            let _ = r.call1(&JsValue::NULL, &JsValue::FALSE);
        }
        d.tcf_listener.take()
    };
    // Outside the borrow: the CMP may answer from inside the call.
    if let Some(id) = listener {
        cmp::remove_listener(id);
    }
}
