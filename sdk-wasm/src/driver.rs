//! The browser side of the core's pull loop: it performs what the core asks
//! for (uploads, storage writes, one timer) and reports back, and it turns
//! page lifecycle events into the calls the core expects. No policy lives
//! here: when to send, retry, drop or persist is sdk-core's decision.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::Function;
use sdk_core::{Client, Millis, NextUpload, Outcome, Persist, Store as Slot, Transport, Upload};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget, PageTransitionEvent};

use crate::browser::{self, now_ms, RandomPool, Store};
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
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            storage_prefix: "threadline".into(),
            persist: true,
            compress: true,
            request_timeout_ms: 30_000,
            beacon_on_hide: true,
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
}

/// Bodies smaller than this are not worth a compression round trip.
const GZIP_MIN_BYTES: usize = 1024;

pub type Shared = Rc<RefCell<Driver>>;

/// A lifecycle listener we added, kept so `close` can remove it.
type Listener = (EventTarget, &'static str, Closure<dyn FnMut(Event)>);

pub struct Driver {
    pub core: Client,
    opts: WebOptions,
    store: Store,
    pub rand: RandomPool,
    tab: String,
    tab_lock: Option<Held>,
    timer: Option<(Millis, Timeout)>,
    flush_waiters: Vec<Function>,
    keepalive_bytes: usize,
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

    /// Writes what the core says is due (everything with `force`).
    pub fn persist(&mut self, now: Millis, force: bool) {
        let Persist { queue, identity } = self.core.take_persist(now, force);
        let qkey = self.queue_key(&self.tab);
        match queue {
            Some(Slot::Write(bytes)) => {
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
    }

    /// Takes this tab's stored identity and queue as the truth: at start (the
    /// queue is empty then, so this restores it) and when the page comes
    /// back from the back/forward cache. An unreadable stored value is
    /// counted and removed; it changes nothing in memory.
    fn load_stored(&mut self, now: Millis) {
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
        self.arm(&Rc::downgrade(shared), now);
    }

    /// The page is hidden or being left: the last moment that is sure to
    /// run. Beacon what is pending, then store everything.
    fn on_hide(&mut self, now: Millis) {
        if self.closed {
            return;
        }
        if self.opts.beacon_on_hide && browser::online() {
            loop {
                let budget = KEEPALIVE_BUDGET.saturating_sub(self.keepalive_bytes + self.beacon_bytes);
                let Some(b) = self.core.next_beacon(now, budget) else { break };
                let sent = transport::beacon(&b.url, &b.body);
                let outcome = if sent { Outcome::Handoff } else { Outcome::NotSent };
                let r = self.rand.u32();
                let _ = self.core.upload_finished(b.id, outcome, now, r);
                if !sent {
                    self.web.beacons_refused += 1;
                    break;
                }
                self.beacon_bytes += b.body.len();
            }
        }
        self.persist(now, true);
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
    {
        let Ok(mut d) = shared.try_borrow_mut() else { return };
        if d.closed {
            return;
        }
        while let NextUpload::Upload(u) = d.core.next_upload(now) {
            uploads.push(u);
        }
        d.persist(now, false);
        if uploads.is_empty() && d.core.uploads_in_flight() == 0 {
            resolved = std::mem::take(&mut d.flush_waiters);
        }
        d.arm(&Rc::downgrade(shared), now);
    }
    for u in uploads {
        wasm_bindgen_futures::spawn_local(send(shared.clone(), u));
    }
    for r in resolved {
        let _ = r.call0(&JsValue::NULL);
    }
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
    let keepalive = match shared.try_borrow_mut() {
        Ok(mut d) if d.keepalive_bytes + body.len() <= KEEPALIVE_BUDGET => {
            d.keepalive_bytes += body.len();
            d.web.gzip_uploads += u32::from(gzipped);
            true
        }
        _ => false,
    };
    let outcome = transport::fetch(&upload.url, &upload.headers, gzipped, &body, keepalive, timeout).await;
    if let Ok(mut d) = shared.try_borrow_mut() {
        if keepalive {
            d.keepalive_bytes = d.keepalive_bytes.saturating_sub(body.len());
        }
        let r = d.rand.u32();
        // An unknown id means the queue was handed over meanwhile: nothing to do.
        let _ = d.core.upload_finished(upload.id, outcome, now_ms(), r);
    }
    drive(&shared);
}

/// Builds the driver: claims a tab id, restores this tab's stored queue and
/// identity, adopts queues of closed tabs, and listens to the page lifecycle.
pub async fn start(core: Client, opts: WebOptions, mut rand: RandomPool) -> Shared {
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
    session.set(&tab_key, &tab);

    let store = Store::local(opts.persist);
    let driver = Driver {
        core,
        store,
        rand,
        tab_lock,
        timer: None,
        flush_waiters: Vec::new(),
        keepalive_bytes: 0,
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
        d.load_stored(now_ms());
    }
    adopt_orphans(&shared).await;
    listen(&shared);
    drive(&shared);
    shared
}

/// Adopts the stored queues of tabs that are gone.
pub async fn adopt_orphans(shared: &Shared) {
    let Ok((prefix, mine, locks)) =
        shared.try_borrow().map(|d| (d.key("q."), d.tab.clone(), d.web.web_locks))
    else {
        return;
    };
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
    let handlers: [Listener; 4] = [
        (doc.into(), "visibilitychange", on(on_visibility)),
        (w.clone().into(), "pagehide", on(on_pagehide)),
        (w.clone().into(), "pageshow", on(on_pageshow)),
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
        if let Ok(mut d) = shared.try_borrow_mut() {
            d.on_hide(now_ms());
        }
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

fn on_pagehide(shared: &Shared, e: Event) {
    if let Ok(mut d) = shared.try_borrow_mut() {
        d.on_hide(now_ms());
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
        d.load_stored(now_ms());
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
    let Ok(mut d) = shared.try_borrow_mut() else { return };
    if d.closed {
        return;
    }
    d.persist(now_ms(), true);
    d.closed = true;
    d.timer = None;
    for (target, name, closure) in d.listeners.drain(..) {
        let _ = target.remove_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
    }
    if let Some(h) = d.tab_lock.take() {
        h.release();
    }
    for r in d.flush_waiters.drain(..) {
        let _ = r.call0(&JsValue::NULL);
    }
}
