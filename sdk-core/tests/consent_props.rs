//! Property tests of consent, identity and storage over long random
//! histories, in the style of `delivery_props.rs`: a simulated clock, a
//! simulated collector, a simulated store (queue, identity and device
//! slots) and process restarts that restore from it as a binding does.
//!
//! The binding is modelled as a careful one: after every call it asks for
//! the storage work that is due (`take_persist(now, false)`) and performs
//! it; page hides force a full write. A restart drops the client (events
//! held in memory die with it) and builds a new one from the same config,
//! then restores the device record, the identity record and the queue, in
//! that order.
//!
//! What is checked after every step (numbers as in the consent issue):
//! 1. nothing is handed out while `analytics` is pending; while it is
//!    denied only the anonymous `Consent Changed` denial record, and only
//!    with `sendDenial`;
//! 2. after a denial nothing collected before it is ever handed out, across
//!    restarts too;
//! 3. every uploaded event carries in `context.consent` the effective
//!    consent at its collection;
//! 4. nothing is written before `analytics` was ever granted, the store is
//!    empty after a denial until the next grant, the device slot is
//!    written only when the record changes (and always holds the current
//!    one), and a stored queue never holds a held event, one tracked while
//!    denied or one from before a denial;
//! 5. a device id exists only while `analytics` is, or was since the last
//!    denial, granted; denial forgets the person; events carry the device
//!    id of their collection (held ones the one current at their release),
//!    and a device id is never shared by events of two people (a `reset` or
//!    a denial separates them), nor does a forgotten person come back from
//!    storage after a restart;
//! 6. the stats balance within a client's lifetime;
//! 7. emails and phones given as ids never appear in plain text in an
//!    upload or in a stored byte.
//!
//! Each history ends with a grant and a drain, after which nothing may be
//! left held or queued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;

use proptest::prelude::*;
use sdk_core::consent::DefaultConsent;
use sdk_core::event::message_id;
use sdk_core::{
    Choice, Client, Config, Consent, ConsentUpdate, NextUpload, Outcome, Page, Persist, Stats, Store, Upload,
    CONSENT_EVENT,
};

const T0: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

/// Ids given to `identify`; none of these strings is used anywhere else,
/// so finding one (raw or normalised) in an upload or the store is a leak.
const EMAILS: [&str; 3] = ["Jane.Doe@Example.com", "x@y.com", "Bob.Smith@Shop.Test"];
const PHONES: [&str; 2] = ["+44 20 7946 0958", "+1 (415) 555-2671"];
const PHONES_E164: [&str; 2] = ["+442079460958", "+14155552671"];
const USERS: [&str; 3] = ["u-ann", "u-bob", "u-cy"];

#[derive(Debug, Clone, Copy)]
enum Reply {
    Ok,
    ServerError,
    Network,
    Rejected,
}

#[derive(Debug, Clone)]
enum Op {
    Track {
        name: u8,
        pad: u16,
    },
    Page {
        named: bool,
        pad: u16,
    },
    Screen {
        name: u8,
    },
    Identify {
        user: Option<u8>,
        traits: Option<u8>,
        email: Option<u8>,
        phone: Option<u8>,
        crm: bool,
    },
    Alias {
        user: u8,
        previous: bool,
    },
    Reset,
    /// `set_consent` with these purposes (analytics, personalization,
    /// advertising, sale); `None` leaves a purpose out of the update.
    Consent([Option<Choice>; 4]),
    /// The CMP says GDPR does not apply: the TCF-mapped purposes are granted.
    TcfNotApplicable,
    Gpc(bool),
    Advance(u64),
    /// Just past the expiry of the current device id (a day on without one).
    PastExpiry(u16),
    Pump,
    Complete {
        pick: usize,
        reply: Reply,
    },
    /// The page is hidden: beacons until none is left (or the browser
    /// refuses one), then a forced write of everything.
    Hide {
        refuse: bool,
        budget: u16,
    },
    Flush,
    Persist {
        force: bool,
    },
    Restart,
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![Just(Choice::Pending), Just(Choice::Granted), Just(Choice::Denied)]
}

fn default_consent() -> impl Strategy<Value = DefaultConsent> {
    prop_oneof![
        choice().prop_map(DefaultConsent::All),
        prop::array::uniform4(prop::option::of(choice())).prop_map(|[a, p, ad, s]| {
            DefaultConsent::PerPurpose(ConsentUpdate {
                analytics: a,
                personalization: p,
                advertising: ad,
                sale: s,
            })
        }),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        default_consent(),
        any::<bool>(),
        (1usize..6, 0usize..3),
        (1usize..5, 4usize..16, 1usize..3),
        (1u64..4, any::<bool>()),
        (1_000u64..600_000, prop_oneof![Just(0u64), Just(1_000), Just(30_000)]),
    )
        .prop_map(
            |(
                default,
                send_denial,
                (held_events, held_factor),
                (batch_events, queue_events, in_flight),
                (device_days, renew),
                (session_timeout, debounce),
            )| {
                let mut c = Config::new("https://collector.test", "key");
                c.consent.default = default;
                c.consent.send_denial = send_denial;
                c.consent.max_held_events = held_events;
                c.limits.max_event_bytes = 1_024;
                c.consent.max_held_bytes = 1_024 * (1 + held_factor);
                c.batch.max_events = batch_events;
                c.batch.max_bytes = 4_000;
                c.batch.max_age_ms = 2_000;
                c.batch.max_in_flight = in_flight;
                c.queue.max_events = queue_events;
                c.queue.max_bytes = 8_000;
                c.queue.max_persist_bytes = 6_000;
                c.queue.persist_debounce_ms = debounce;
                c.retry.base_backoff_ms = 100;
                c.retry.max_backoff_ms = 5_000;
                c.retry.max_attempts = 4;
                c.retry.max_event_age_ms = 2 * DAY;
                c.identity.device_id_max_age_ms = device_days * DAY;
                c.identity.renew_device_id = renew;
                c.identity.session_timeout_ms = session_timeout;
                c.identity.session_max_ms = 3_600_000;
                c
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let reply = prop_oneof![
        5 => Just(Reply::Ok),
        2 => Just(Reply::ServerError),
        2 => Just(Reply::Network),
        1 => Just(Reply::Rejected),
    ];
    prop_oneof![
        8 => (0u8..4, 0u16..500).prop_map(|(name, pad)| Op::Track { name, pad }),
        2 => (any::<bool>(), 0u16..300).prop_map(|(named, pad)| Op::Page { named, pad }),
        2 => (0u8..3).prop_map(|name| Op::Screen { name }),
        3 => (
            prop::option::of(0u8..3),
            prop::option::of(0u8..3),
            prop::option::of(0u8..3),
            prop::option::of(0u8..2),
            any::<bool>()
        )
            .prop_map(|(user, traits, email, phone, crm)| Op::Identify { user, traits, email, phone, crm }),
        1 => (0u8..3, any::<bool>()).prop_map(|(user, previous)| Op::Alias { user, previous }),
        1 => Just(Op::Reset),
        5 => prop::array::uniform4(prop::option::weighted(0.6, choice())).prop_map(Op::Consent),
        1 => Just(Op::TcfNotApplicable),
        1 => any::<bool>().prop_map(Op::Gpc),
        4 => prop_oneof![
            4 => 0u64..3_000,
            2 => 0u64..900_000,
            1 => 0u64..3 * DAY,
        ]
        .prop_map(Op::Advance),
        1 => any::<u16>().prop_map(Op::PastExpiry),
        5 => Just(Op::Pump),
        5 => (any::<usize>(), reply).prop_map(|(pick, reply)| Op::Complete { pick, reply }),
        1 => (prop::bool::weighted(0.2), 1_500u16..20_000).prop_map(|(refuse, budget)| Op::Hide { refuse, budget }),
        1 => Just(Op::Flush),
        2 => any::<bool>().prop_map(|force| Op::Persist { force }),
        2 => Just(Op::Restart),
    ]
}

/// What the `anonymousId` of an event must be when it is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anon {
    /// Collected while granted: the device id of that moment.
    Exact(String),
    /// The denial record: none at all.
    Absent,
    /// Collected while pending and still held; `pre_reset` once a `reset`
    /// happened after its collection.
    Held { pre_reset: bool },
    /// Held across a `reset`, then released: some device id, which the
    /// person-linking check keeps apart from the next person's.
    Foreign,
    /// Tracked while denied, or held when it was denied or the process
    /// died: must never be sent.
    Discarded,
}

#[derive(Debug, Clone)]
struct Meta {
    /// The step that collected it.
    step: u64,
    what: &'static str,
    consent: Consent,
    anon: Anon,
    user: Option<String>,
    /// Which person (reset and denial start a new one) it is about.
    person: u64,
    denial_record: bool,
}

#[derive(Debug, Default, Clone)]
struct Slots {
    queue: Option<Vec<u8>>,
    identity: Option<Vec<u8>>,
    device: Option<Vec<u8>>,
}

impl Slots {
    fn is_empty(&self) -> bool {
        self.queue.is_none() && self.identity.is_none() && self.device.is_none()
    }
}

struct Sim {
    cfg: Config,
    client: Client,
    now: u64,
    seq: u64,
    step: u64,
    store: Slots,
    in_flight: Vec<u64>,
    events: HashMap<String, Meta>,
    /// messageIds of events held by the current client (as far as we know).
    held: Vec<String>,
    last_denial: Option<u64>,
    /// No grant yet, or denied since the last one: nothing may be stored
    /// and no device id may exist.
    locked: bool,
    person: u64,
    device_person: HashMap<String, u64>,
    gpc: bool,
    device_writes: u64,
    history: Vec<String>,
}

fn writes(p: &Persist) -> bool {
    [&p.queue, &p.identity, &p.device].into_iter().any(|s| matches!(s, Some(Store::Write(_))))
}

fn leaks(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    let normal = EMAILS.iter().map(|e| e.trim().to_lowercase());
    let phones = PHONES.iter().chain(&PHONES_E164).map(|p| p.to_lowercase());
    normal.chain(phones).find(|needle| text.contains(needle.as_str()))
}

fn consent_json(update: &[Option<Choice>; 4]) -> String {
    let names = ["analytics", "personalization", "advertising", "sale"];
    let parts: Vec<String> = names
        .iter()
        .zip(update)
        .filter_map(|(n, c)| c.map(|c| format!("\"{n}\":{}", serde_json::to_string(&c).unwrap())))
        .collect();
    format!("{{{}}}", parts.join(","))
}

impl Sim {
    fn new(cfg: Config) -> Sim {
        let client = Client::new(cfg.clone(), T0, [0xAA; 16]).unwrap();
        let locked = client.consent().analytics != Choice::Granted;
        let mut sim = Sim {
            cfg,
            client,
            now: T0,
            seq: 1,
            step: 0,
            store: Slots::default(),
            in_flight: vec![],
            events: HashMap::new(),
            held: vec![],
            last_denial: None,
            locked,
            person: 0,
            device_person: HashMap::new(),
            gpc: false,
            device_writes: 0,
            history: vec![],
        };
        sim.client.set_page(Page {
            url: Some("https://shop.test/p/slacks?utm_source=mail".into()),
            path: Some("/p/slacks".into()),
            search: Some("?utm_source=mail".into()),
            ..Page::default()
        });
        sim.persist(false);
        sim.check_identity("start");
        sim
    }

    fn random(&mut self) -> [u8; 16] {
        self.seq += 1;
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&self.seq.to_le_bytes());
        r[8] = 0x5A;
        r
    }

    fn device_id(&self) -> Option<String> {
        self.client.identity_view().device_id.map(str::to_owned)
    }

    fn user_id(&self) -> Option<String> {
        self.client.identity_view().user_id.map(str::to_owned)
    }

    /// Bookkeeping for an event a call returned the messageId of.
    fn collected(&mut self, id: String, what: &'static str, user: Option<String>) {
        let consent = self.client.consent();
        let anon = match consent.analytics {
            Choice::Granted => {
                let d = self.device_id();
                assert!(d.is_some(), "{what} collected while granted, but there is no device id");
                Anon::Exact(d.unwrap())
            }
            Choice::Pending => {
                self.held.push(id.clone());
                Anon::Held { pre_reset: false }
            }
            Choice::Denied => Anon::Discarded,
        };
        let meta =
            Meta { step: self.step, what, consent, anon, user, person: self.person, denial_record: false };
        assert!(self.events.insert(id, meta).is_none(), "a messageId was minted twice");
    }

    fn fail(&self, msg: String) -> ! {
        panic!("{msg}\n  at step {} (t = T0 + {} ms); recent steps:\n    {}", self.step, self.now - T0, {
            let from = self.history.len().saturating_sub(12);
            self.history[from..].join("\n    ")
        });
    }

    /// Invariants 1, 2, 3, 5 and 7 on one upload, at the moment it is
    /// handed out.
    fn check_upload(&mut self, u: &Upload) {
        let consent = self.client.consent();
        if consent.analytics == Choice::Pending {
            self.fail(format!("an upload was handed out while analytics is pending: {consent:?}"));
        }
        if let Some(leak) = leaks(&u.body) {
            self.fail(format!("{leak} is in plain text in an upload"));
        }
        let v: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
        for e in v["batch"].as_array().unwrap() {
            let id = e["messageId"].as_str().unwrap();
            let Some(meta) = self.events.get(id).cloned() else {
                self.fail(format!("an event nobody collected was uploaded: {e}"));
            };
            let ctx = &e["context"];
            if consent.analytics == Choice::Denied {
                if !self.cfg.consent.send_denial || !meta.denial_record {
                    self.fail(format!(
                        "while denied only the denial record may go (sendDenial {}), but got {} {e}",
                        self.cfg.consent.send_denial, meta.what
                    ));
                }
                for field in [&e["anonymousId"], &e["userId"], &ctx["sessionId"], &ctx["externalIds"]] {
                    if !field.is_null() {
                        self.fail(format!("the denial record carries an identifier: {e}"));
                    }
                }
                if e["event"] != CONSENT_EVENT || e["properties"]["analytics"] != "denied" {
                    self.fail(format!("not a denial record: {e}"));
                }
            }
            if let Some(d) = self.last_denial {
                if meta.step < d {
                    self.fail(format!(
                        "{} collected at step {} went out after the denial at step {d}: {e}",
                        meta.what, meta.step
                    ));
                }
            }
            let recorded: Consent = serde_json::from_value(ctx["consent"].clone())
                .unwrap_or_else(|err| self.fail(format!("context.consent unreadable ({err}): {e}")));
            if recorded != meta.consent {
                self.fail(format!(
                    "{} carries consent {recorded:?} but was collected under {:?}: {e}",
                    meta.what, meta.consent
                ));
            }
            let anon = e["anonymousId"].as_str();
            match &meta.anon {
                Anon::Exact(want) if anon == Some(want.as_str()) => {}
                Anon::Absent if anon.is_none() => {}
                Anon::Foreign if anon.is_some() => {}
                other => self.fail(format!(
                    "{} (collected at step {}) has anonymousId {anon:?}, expected {other:?}: {e}",
                    meta.what, meta.step
                )),
            }
            if e["userId"].as_str() != meta.user.as_deref() {
                self.fail(format!(
                    "{} has userId {}, collected with {:?}: {e}",
                    meta.what, e["userId"], meta.user
                ));
            }
            if let Some(a) = anon {
                let owner = *self.device_person.entry(a.to_owned()).or_insert(meta.person);
                if owner != meta.person {
                    self.fail(format!(
                        "device id {a} links two people ({owner} and {}): {} collected at step {}: {e}",
                        meta.person, meta.what, meta.step
                    ));
                }
            }
        }
    }

    fn pump(&mut self) {
        loop {
            match self.client.next_upload(self.now) {
                NextUpload::Upload(u) => {
                    self.check_upload(&u);
                    self.in_flight.push(u.id);
                    self.check_stats("pump");
                }
                _ => return,
            }
        }
    }

    fn check_stats(&self, when: &str) {
        let s: Stats = self.client.stats();
        let out = s.delivered
            + s.dropped_queue_full
            + s.dropped_rejected
            + s.dropped_max_attempts
            + s.dropped_expired
            + s.dropped_consent
            + s.dropped_held_full
            + s.handed_over
            + s.queued as u64
            + s.held as u64;
        if s.accepted + s.restored != out {
            self.fail(format!(
                "stats do not balance after {when}: in {} out {out}: {s:?}",
                s.accepted + s.restored
            ));
        }
        if s.held > self.cfg.consent.max_held_events {
            self.fail(format!("{} held, over maxHeldEvents", s.held));
        }
    }

    /// Performs what `take_persist` asked for; invariants 4 and 7.
    fn persist(&mut self, force: bool) {
        let p = self.client.take_persist(self.now, force);
        if self.locked && writes(&p) {
            self.fail(format!(
                "storage written while analytics was never granted or denied since: {:?}",
                (p.queue.is_some(), p.identity.is_some(), p.device.is_some())
            ));
        }
        if p.wipe {
            self.store = Slots::default();
        }
        let apply = |slot: &mut Option<Vec<u8>>, s: Option<Store>| match s {
            Some(Store::Write(b)) => *slot = Some(b),
            Some(Store::Remove) => *slot = None,
            None => {}
        };
        if let Some(Store::Write(b)) = &p.device {
            if self.store.device.as_ref() == Some(b) {
                self.fail(format!("the device record was written unchanged: {}", String::from_utf8_lossy(b)));
            }
            let now = self.client.identity().device.as_ref().map(|d| d.encode());
            if now.as_ref() != Some(b) {
                self.fail(format!("the device record written is not the current one: {now:?}"));
            }
            self.device_writes += 1;
        }
        apply(&mut self.store.queue, p.queue);
        apply(&mut self.store.identity, p.identity);
        apply(&mut self.store.device, p.device);
        // Device writes are never deferred: the stored record is the
        // current one (or none), whatever else is still to be written.
        let current = self.client.identity().device.as_ref().map(|d| d.encode());
        if self.store.device != current {
            self.fail(format!(
                "the stored device record {:?} is not the current one {:?}",
                self.store.device.as_deref().map(String::from_utf8_lossy),
                current.as_deref().map(String::from_utf8_lossy)
            ));
        }
        if let Some(q) = &self.store.queue {
            self.check_stored_queue(q);
        }
        if self.locked && !self.store.is_empty() {
            self.fail("the store is not empty after a denial (or before any grant)".into());
        }
        for b in [&self.store.queue, &self.store.identity, &self.store.device].into_iter().flatten() {
            if let Some(leak) = leaks(b) {
                self.fail(format!("{leak} is stored in plain text"));
            }
        }
    }

    /// Held events stay in memory, and nothing from before a denial (or
    /// tracked while denied) is ever stored.
    fn check_stored_queue(&self, bytes: &[u8]) {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        for e in v["events"].as_array().unwrap() {
            let id = e["id"].as_str().unwrap();
            let Some(meta) = self.events.get(id) else {
                self.fail(format!("an event nobody collected was stored: {e}"));
            };
            if matches!(meta.anon, Anon::Held { .. } | Anon::Discarded) {
                self.fail(format!(
                    "{} (collected at step {}) was stored as {:?}",
                    meta.what, meta.step, meta.anon
                ));
            }
            if self.last_denial.is_some_and(|d| meta.step < d) {
                self.fail(format!("{} collected at step {} is stored after a denial", meta.what, meta.step));
            }
        }
    }

    /// The model's consent bookkeeping after every step (`before` is
    /// analytics before it), before the binding persists.
    fn track_consent(&mut self, before: Choice) {
        let consent = self.client.consent();
        let now = consent.analytics;
        if consent.analytics == Choice::Denied && before != Choice::Denied {
            self.last_denial = Some(self.step);
            self.person += 1;
        }
        match now {
            Choice::Granted => {
                self.locked = false;
                // Held events were released with the device id of now.
                let device = self.device_id();
                for id in std::mem::take(&mut self.held) {
                    let m = self.events.get_mut(&id).unwrap();
                    m.anon = match (&m.anon, &device) {
                        (Anon::Held { pre_reset: false }, Some(d)) => Anon::Exact(d.clone()),
                        (Anon::Held { pre_reset: true }, Some(_)) => Anon::Foreign,
                        _ => Anon::Discarded,
                    };
                }
            }
            Choice::Denied => {
                self.locked = true;
                for id in std::mem::take(&mut self.held) {
                    self.events.get_mut(&id).unwrap().anon = Anon::Discarded;
                }
            }
            Choice::Pending => {}
        }
    }

    /// The identity invariants after every step.
    fn check_identity(&mut self, what: &str) {
        let consent = self.client.consent();
        let now = consent.analytics;
        if self.gpc != self.client.consent_view().gpc {
            self.fail("the GPC signal was lost".into());
        }
        if self.gpc && (consent.sale != Choice::Denied || consent.advertising != Choice::Denied) {
            self.fail(format!("GPC is on but {consent:?}"));
        }
        let device = self.device_id();
        if let Some(d) = device {
            if self.locked {
                self.fail(format!(
                    "device id {d} exists though analytics was not granted since the last denial"
                ));
            }
            self.device_person.entry(d).or_insert(self.person);
        } else if now == Choice::Granted {
            self.fail("analytics is granted but there is no device id".into());
        }
        if now == Choice::Denied {
            let v = self.client.identity_view();
            if v.device_id.is_some()
                || v.user_id.is_some()
                || !v.traits.is_empty()
                || !v.ids.is_empty()
                || v.session.is_some()
            {
                self.fail(format!(
                    "analytics is denied but the identity is kept: {}",
                    serde_json::to_string(&v).unwrap()
                ));
            }
        }
        if now == Choice::Granted && self.client.stats().held > 0 {
            self.fail("analytics is granted but events are still held".into());
        }
        self.check_stats(what);
        let _ = self.client.take_notices();
    }

    fn apply(&mut self, op: Op) {
        self.step += 1;
        self.history.push(format!("{}: {op:?}", self.step));
        let before = self.client.consent().analytics;
        let now = self.now;
        match op {
            Op::Track { name, pad } => {
                let names = ["Product Viewed", "Order Completed", "Tick", "Signed Up"];
                let props = format!(r#"{{"pad":"{}","n":{name}}}"#, "p".repeat(usize::from(pad)));
                let r = self.random();
                if let Ok(id) = self.client.track(names[usize::from(name)], Some(&props), now, r) {
                    self.collected(id, "track", self.user_id());
                }
            }
            Op::Page { named, pad } => {
                let props = format!(r#"{{"pad":"{}"}}"#, "q".repeat(usize::from(pad)));
                let r = self.random();
                let name = named.then_some("Product");
                if let Ok(id) = self.client.page(name, Some(&props), now, r) {
                    self.collected(id, "page", self.user_id());
                }
            }
            Op::Screen { name } => {
                let r = self.random();
                if let Ok(id) =
                    self.client.screen(["Home", "Cart", "Search"][usize::from(name)], None, now, r)
                {
                    self.collected(id, "screen", self.user_id());
                }
            }
            Op::Identify { user, traits, email, phone, crm } => {
                let user = user.map(|u| USERS[usize::from(u)]);
                let traits = traits.map(|t| format!(r#"{{"plan":"p{t}","visits":{t}}}"#));
                let mut ids = vec![];
                if let Some(e) = email {
                    ids.push(format!(r#""email":"{}""#, EMAILS[usize::from(e)]));
                }
                if let Some(p) = phone {
                    ids.push(format!(r#""phone":"{}""#, PHONES[usize::from(p)]));
                }
                if crm {
                    ids.push(r#""crmId":"C-7""#.to_owned());
                }
                let ids = (!ids.is_empty()).then(|| format!("{{{}}}", ids.join(",")));
                let r = self.random();
                if let Ok(id) = self.client.identify(user, traits.as_deref(), ids.as_deref(), None, now, r) {
                    self.collected(id, "identify", self.user_id());
                }
            }
            Op::Alias { user, previous } => {
                let r = self.random();
                let target = USERS[usize::from(user)];
                let prev = previous.then_some("legacy-42");
                let user_before = self.user_id();
                if let Ok(id) = self.client.alias(target, prev, now, r) {
                    self.collected(id, "alias", Some(target.to_owned()));
                }
                assert_eq!(self.user_id(), user_before, "alias changed the current user id");
            }
            Op::Reset => {
                let device_before = self.device_id();
                let r = self.random();
                self.client.reset(now, r);
                self.person += 1;
                for id in &self.held {
                    if let Some(m) = self.events.get_mut(id) {
                        if m.anon == (Anon::Held { pre_reset: false }) {
                            m.anon = Anon::Held { pre_reset: true };
                        }
                    }
                }
                let v = self.client.identity_view();
                if v.user_id.is_some() || !v.traits.is_empty() || !v.ids.is_empty() || v.session.is_some() {
                    self.fail("reset kept something of the person".into());
                }
                if v.device_id.is_some() && v.device_id.map(str::to_owned) == device_before {
                    self.fail("reset kept the device id".into());
                }
            }
            Op::Consent(_) | Op::TcfNotApplicable => {
                let consent_before = self.client.consent();
                let r = self.random();
                let got = match op {
                    Op::Consent(update) => self.client.set_consent(&consent_json(&update), now, r).unwrap(),
                    _ => self.client.set_tcf_not_applicable(now, r),
                };
                let after = self.client.consent();
                assert_eq!(got, after);
                if after != consent_before {
                    let id = message_id(r);
                    if after.analytics == Choice::Denied {
                        if self.cfg.consent.send_denial {
                            // Collected after the wipe: it is the step's own.
                            self.last_denial = Some(self.step);
                            let meta = Meta {
                                step: self.step,
                                what: "denial record",
                                consent: after,
                                anon: Anon::Absent,
                                user: None,
                                person: self.person,
                                denial_record: true,
                            };
                            self.events.insert(id, meta);
                        }
                    } else {
                        self.collected(id, "Consent Changed", self.user_id());
                    }
                }
            }
            Op::Gpc(on) => {
                let r = self.random();
                self.gpc = on;
                self.client.set_gpc(on, now, r);
            }
            Op::Advance(ms) => self.now += ms,
            Op::PastExpiry(ms) => {
                let expires = self.client.identity_view().device_id_expires.unwrap_or(self.now + DAY);
                self.now = self.now.max(expires) + u64::from(ms);
            }
            Op::Pump => self.pump(),
            Op::Complete { pick, reply } => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight.remove(pick % self.in_flight.len());
                    let outcome = match reply {
                        Reply::Ok => Outcome::Status { code: 200, retry_after: None },
                        Reply::ServerError => Outcome::Status { code: 503, retry_after: None },
                        Reply::Network => Outcome::NetworkError,
                        Reply::Rejected => Outcome::Status { code: 400, retry_after: None },
                    };
                    let r = self.random()[0];
                    self.client.upload_finished(id, outcome, now, u32::from(r)).unwrap();
                }
            }
            Op::Hide { refuse, budget } => {
                while let Some(b) = self.client.next_beacon(now, usize::from(budget)) {
                    self.check_upload(&b);
                    let outcome = if refuse { Outcome::NotSent } else { Outcome::Handoff };
                    self.client.upload_finished(b.id, outcome, now, 0).unwrap();
                    if refuse {
                        break;
                    }
                }
                self.persist(true);
            }
            Op::Flush => self.client.flush(),
            Op::Persist { force } => self.persist(force),
            Op::Restart => self.restart(),
        }
        self.track_consent(before);
        self.persist(false);
        self.check_identity("the step");
    }

    fn restart(&mut self) {
        let before = self.client.identity_view();
        let (user_before, ids_before) = (before.user_id.map(str::to_owned), before.ids.clone());
        let traits_before = serde_json::to_string(before.traits).unwrap();
        // Held events live in memory only.
        for id in std::mem::take(&mut self.held) {
            self.events.get_mut(&id).unwrap().anon = Anon::Discarded;
        }
        self.in_flight.clear();
        let (r1, r2, r3) = (self.random(), self.random(), self.random());
        let mut c = Client::new(self.cfg.clone(), self.now, r1).unwrap();
        if let Some(b) = &self.store.device {
            c.restore_device(b, self.now, r2, false).unwrap();
        }
        if let Some(b) = &self.store.identity {
            c.restore_identity(b).unwrap();
        }
        if let Some(b) = &self.store.queue {
            c.restore(b, self.now).unwrap();
        }
        if self.gpc {
            c.set_gpc(true, self.now, r3);
        }
        self.client = c;
        let after = self.client.identity_view();
        let user = after.user_id.map(str::to_owned);
        if user.is_some() && user != user_before {
            self.fail(format!(
                "after a restart the user id is {user:?}; before it, it was {user_before:?} (a forgotten person came back)"
            ));
        }
        if !after.ids.is_empty() && after.ids != &ids_before {
            self.fail(format!("after a restart the ids are {:?}; before it {ids_before:?}", after.ids));
        }
        let traits = serde_json::to_string(after.traits).unwrap();
        if !after.traits.is_empty() && traits != traits_before {
            self.fail(format!("after a restart the traits are {traits}; before it {traits_before}"));
        }
    }
}

/// 1024 cases by default (a few seconds); `PROPTEST_CASES` asks for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4_096, ..ProptestConfig::default() })]

    /// Random histories of calls, consent changes, uploads, storage and
    /// restarts keep every consent, identity and storage rule.
    #[test]
    fn consent_rules_hold_over_random_histories(
        cfg in config(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut sim = Sim::new(cfg);
        for op in ops {
            sim.apply(op);
        }
        // Grant at the end and drain: what is sent then still obeys the rules.
        sim.apply(Op::Consent([Some(Choice::Granted), None, None, None]));
        for _ in 0..20 {
            sim.apply(Op::Flush);
            sim.apply(Op::Pump);
            for _ in 0..sim.in_flight.len() {
                sim.apply(Op::Complete { pick: 0, reply: Reply::Ok });
            }
            sim.apply(Op::Advance(10_000));
        }
        // ... and everything still held or queued gets out.
        let s = sim.client.stats();
        prop_assert_eq!((s.queued, s.held), (0, 0), "left after draining: {:?}", s);
    }
}
