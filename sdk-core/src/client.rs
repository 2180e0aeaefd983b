//! The client: one object per configured SDK instance that ties consent,
//! identity, events, queue, delivery and persistence together. It is a
//! state machine in the style of quinn-proto: every call takes the current
//! time (and random bytes where it needs them) and returns what the binding
//! must do.
//!
//! A binding's loop is:
//! 1. call `track`/`page`/`set_consent`/... as the host calls the SDK;
//! 2. whenever `poll_timeout` says so (or after any call), call
//!    `next_upload` until it stops returning uploads, perform each, and report
//!    it with `upload_finished`;
//! 3. call `take_persist` and write/remove what it returns;
//! 4. drain `take_notices` and tell the host (session started, consent
//!    changed);
//! 5. sleep until `poll_timeout`; no timer at all when it returns `None`.
//!
//! Consent rules, the same on every platform (see the README's table):
//! - `analytics` pending: events are held in memory only (bounded), no
//!   device id is created, nothing is stored or sent;
//! - granted: held events are released into the queue, a device id is
//!   created and stored, the queue is persisted and sent;
//! - denied: held and queued events are dropped, the device id, identity
//!   and stored queue are deleted, nothing is sent (but an optional
//!   `Consent Changed` record without identifiers).
//!
//! Storage is in use exactly while a device id exists: one exists only
//! after `analytics` was granted on this device, and denial deletes it.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};
use crate::consent::{self, Choice, Consent, ConsentError, ConsentState, ConsentUpdate, Source};
use crate::context::{Context, Environment, Page};
#[cfg(feature = "decide")]
use crate::decide::{DecideError, DecideOptions, Decision, Feedback, CLICKED_EVENT, DISPLAYED_EVENT};
use crate::delivery::{Delivery, DeliveryError, NextUpload, Outcome, Upload};
use crate::event::{self, check_name, check_object, EventError, Kind, Parts};
use crate::identity::{self, Device, Identity, Session, Touch};
#[cfg(feature = "decide")]
use crate::profile::{Profile, ProfileError, Remote};
use crate::queue::{Queue, State};
#[cfg(feature = "decide")]
use crate::rules::{Rules, RulesError, RulesEvent, RulesFetch, RulesResponse};
use crate::snapshot::{self, EventOut, SnapshotError};
use crate::stats::Stats;
#[cfg(feature = "decide")]
use crate::sync::{ProfileFetch, ProfileResponse, Sync, SyncError};
use crate::time::Millis;

/// What the binding should do with one storage slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Write(Vec<u8>),
    Remove,
}

/// Storage work handed out by [`Client::take_persist`]. `None` means leave
/// that slot as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persist {
    /// The queue snapshot (per tab on the web, one file on mobile).
    pub queue: Option<Store>,
    /// The identity record: user id, traits, ids, session.
    pub identity: Option<Store>,
    /// The device record: id, creation, expiry, consent. The web binding
    /// keeps it in a cookie on the registrable domain; it changes rarely.
    pub device: Option<Store>,
    /// The on-device profile that decisions read (history counters,
    /// traits, impressions, experiment assignments). Kept only with
    /// `personalization` consent and while a rules configuration exists.
    pub profile: Option<Store>,
    /// The cached rules artifact (no personal data; stored while storage
    /// is in use, like everything else).
    pub rules: Option<Store>,
    /// `analytics` was denied: besides the slots above, delete everything
    /// this SDK ever stored on the device (other tabs' stored queues too).
    pub wipe: bool,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        self.queue.is_none()
            && self.identity.is_none()
            && self.device.is_none()
            && self.profile.is_none()
            && self.rules.is_none()
            && !self.wipe
    }
}

/// Things the host may want to hear about, drained by
/// [`Client::take_notices`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    SessionStarted {
        id: u64,
    },
    /// The consent now in force, as `getConsent()` reports it.
    ConsentChanged {
        consent: ConsentView,
    },
    /// A rules artifact is in use now (`ready()` resolves).
    RulesLoaded {
        revision: Option<String>,
    },
    /// An artifact was refused; the previous one (if any) stays in use.
    RulesRejected {
        kind: &'static str,
        message: String,
    },
    /// The collector's profile of the person arrived and is in use.
    ProfileSynced {
        audiences: Vec<String>,
    },
    /// The collector refused the user token: decisions use this device's
    /// history only until the host identifies again with a new token.
    ProfileSyncRefused {
        status: u16,
    },
}

/// An event collected while `analytics` was pending: encoded already, but
/// without a device id, which does not exist yet.
#[derive(Debug)]
struct Held {
    message_id: Box<str>,
    json: Box<str>,
    created: Millis,
    /// Who it is about: `reset` moves on to the next person.
    person: u64,
}

/// Write-back urgency of the identity record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dirty {
    Clean,
    /// Only the session advanced: written with the next debounced write.
    Since(Millis),
    Now,
}

/// What `getIdentity()` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView<'a> {
    /// Sent as `anonymousId`; `null` until `analytics` is granted.
    pub device_id: Option<&'a str>,
    pub device_id_created: Option<Millis>,
    pub device_id_expires: Option<Millis>,
    pub user_id: Option<&'a str>,
    pub traits: &'a event::Object,
    pub ids: &'a BTreeMap<String, String>,
    pub session: Option<&'a Session>,
}

/// What `getConsent()` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentView {
    #[serde(flatten)]
    pub consent: Consent,
    pub gpc: bool,
}

#[derive(Debug)]
pub struct Client {
    config: Config,
    context: Context,
    consent: ConsentState,
    identity: Identity,
    held: VecDeque<Held>,
    held_bytes: usize,
    queue: Queue,
    delivery: Delivery,
    stats: Stats,
    notices: Vec<Notice>,
    /// Time of the first queue change not yet handed out for persisting.
    queue_dirty_since: Option<Millis>,
    identity_dirty: Dirty,
    /// The device record must be written (or removed, when there is none).
    device_dirty: bool,
    /// Denial happened: every stored slot must be removed.
    wipe: bool,
    /// Counts `reset`s, so held events of a person who left never get the
    /// device id of whoever comes next.
    person: u64,
    #[cfg(feature = "decide")]
    rules: Rules,
    #[cfg(feature = "decide")]
    profile: Profile,
    #[cfg(feature = "decide")]
    sync: Sync,
    /// Time of the first profile change not yet handed out for persisting.
    #[cfg(feature = "decide")]
    profile_dirty_since: Option<Millis>,
    /// The stored profile must go (personalization denied, reset).
    #[cfg(feature = "decide")]
    profile_remove: bool,
    /// Feedback already recorded, by decision id and kind, so a view that
    /// renders twice (React's strict mode) does not count twice against caps.
    #[cfg(feature = "decide")]
    feedback_seen: VecDeque<(String, bool)>,
}

/// Feedback remembered for de-duplication.
#[cfg(feature = "decide")]
const FEEDBACK_SEEN: usize = 64;

/// What a `decide` call asks besides the placement.
#[cfg(feature = "decide")]
#[derive(Debug, Clone, Copy)]
pub struct DecideRequest<'a> {
    /// Decisions wanted (slots in the placement); at least one.
    pub max: usize,
    /// A JSON object merged into the condition data (`page`, `app`, `cart`,
    /// ...); the client adds `consent`, and `page` when the host set one.
    pub context: Option<&'a str>,
    /// The person's offset from UTC now, in minutes (60 for Berlin in winter).
    pub utc_offset_minutes: i32,
}

/// A second, independent 16 bytes from one caller-supplied draw, so one
/// call can mint both a messageId and a device id.
fn fork(random: [u8; 16], tag: &[u8]) -> [u8; 16] {
    let digest = Sha256::new().chain_update(random).chain_update(tag).finalize();
    let mut out = [0u8; 16];
    for (o, d) in out.iter_mut().zip(digest) {
        *o = d;
    }
    out
}

impl Client {
    /// `random` seeds the device id, created here only if `analytics` is
    /// granted by default; a stored device record replaces it (see
    /// [`Client::restore_device`]).
    pub fn new(config: Config, now: Millis, random: [u8; 16]) -> Result<Client, ConfigError> {
        config.validate()?;
        #[cfg(feature = "decide")]
        let rules = Rules::new(config.rules.clone().unwrap_or_default(), Default::default(), now)
            .map_err(|e| ConfigError::Rules(e.to_string()))?;
        let consent = ConsentState::new(&config.consent);
        let mut context = Context::new(config.library.clone());
        context.set_consent(consent.effective());
        let mut c = Client {
            context,
            consent,
            identity: Identity::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            queue: Queue::new(config.queue.max_events, config.queue.max_bytes),
            delivery: Delivery::new(&config),
            stats: Stats::default(),
            notices: Vec::new(),
            queue_dirty_since: None,
            identity_dirty: Dirty::Clean,
            device_dirty: false,
            wipe: false,
            person: 0,
            #[cfg(feature = "decide")]
            rules,
            #[cfg(feature = "decide")]
            profile: Profile::new(config.profile.clone()),
            #[cfg(feature = "decide")]
            sync: Sync::new(config.profile_sync.clone()),
            #[cfg(feature = "decide")]
            profile_dirty_since: None,
            #[cfg(feature = "decide")]
            profile_remove: false,
            #[cfg(feature = "decide")]
            feedback_seen: VecDeque::new(),
            config,
        };
        if c.analytics() == Choice::Granted {
            c.create_device(now, random);
        }
        Ok(c)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn identity_view(&self) -> IdentityView<'_> {
        let d = self.identity.device.as_ref();
        IdentityView {
            device_id: d.map(|d| d.id.as_str()),
            device_id_created: d.map(|d| d.created),
            device_id_expires: d.map(|d| d.expires),
            user_id: self.identity.user_id.as_deref(),
            traits: &self.identity.traits,
            ids: &self.identity.ids,
            session: self.identity.session.as_ref(),
        }
    }

    /// The consent every decision uses now (GPC applied).
    pub fn consent(&self) -> Consent {
        self.consent.effective()
    }

    pub fn consent_view(&self) -> ConsentView {
        ConsentView { consent: self.consent.effective(), gpc: self.consent.gpc() }
    }

    fn analytics(&self) -> Choice {
        self.consent.effective().analytics
    }

    pub fn set_environment(&mut self, env: Environment) {
        self.context.set_environment(env);
    }

    pub fn set_page(&mut self, page: Page) {
        self.context.set_page(page);
    }

    /// What happened since the last call, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        #[cfg(feature = "decide")]
        self.collect_rules_events();
        std::mem::take(&mut self.notices)
    }

    #[cfg(feature = "decide")]
    fn collect_rules_events(&mut self) {
        for e in self.rules.take_events() {
            self.notices.push(match e {
                RulesEvent::Loaded { revision } => Notice::RulesLoaded { revision },
                RulesEvent::Rejected { kind, message } => Notice::RulesRejected { kind, message },
            });
        }
    }

    // ---- consent ---------------------------------------------------------

    /// Applies the host's choices, `{"analytics":"granted", ...}` (any
    /// subset of purposes). Returns the consent now in force.
    pub fn set_consent(
        &mut self,
        json: &str,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Consent, ConsentError> {
        let update = ConsentUpdate::from_json(json)?;
        Ok(self.update_consent(&update, Some(Source::Api), now, random))
    }

    /// Applies an IAB TCF TC string (from a CMP). A string that cannot be
    /// decoded is refused whole and changes nothing.
    pub fn set_consent_tcf(
        &mut self,
        tc_string: &str,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Consent, ConsentError> {
        let update = consent::tcf_update(&self.config.consent, tc_string)?;
        Ok(self.update_consent(&update, Some(Source::Tcf), now, random))
    }

    /// Applies what an app's CMP stored under the IAB's mobile keys
    /// (`IABTCF_gdprApplies`, `IABTCF_TCString` in SharedPreferences or
    /// UserDefaults), so Android and iOS read them by the same rule: `0`
    /// means GDPR does not apply; otherwise a non-empty TC string is applied
    /// (also while `gdprApplies` is still unset: it is the person's recorded
    /// choice); no string yet means the CMP has not asked, and consent stays
    /// as it is. Any other `gdprApplies` value is refused.
    pub fn set_consent_iab(
        &mut self,
        gdpr_applies: Option<i64>,
        tc_string: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Consent, ConsentError> {
        let tc = tc_string.map(str::trim).filter(|s| !s.is_empty());
        match (gdpr_applies, tc) {
            (Some(0), _) => Ok(self.set_tcf_not_applicable(now, random)),
            (Some(1) | None, Some(tc)) => self.set_consent_tcf(tc, now, random),
            (Some(1) | None, None) => Ok(self.consent.effective()),
            (Some(other), _) => {
                Err(ConsentError::Invalid(format!("IABTCF_gdprApplies must be 0 or 1, got {other}")))
            }
        }
    }

    /// A device record this device kept in a store shared by the site's
    /// pages (the web's cookie, another tab's copy) is gone. `last` is the
    /// record as last seen there, if known. Unless it simply ran out,
    /// another page deleted it on a denial (or the person cleared it):
    /// deny here too and delete everything stored, so a per-origin copy
    /// never brings the id back. Returns whether it was taken as a denial.
    pub fn device_record_lost(&mut self, last: Option<&[u8]>, now: Millis, random: [u8; 16]) -> bool {
        if last.and_then(|b| Device::decode(b).ok()).is_some_and(|d| d.expires <= now) {
            return false;
        }
        // The page that saw the denial recorded it: no second record here.
        let update = ConsentUpdate { analytics: Some(Choice::Denied), ..ConsentUpdate::default() };
        self.update_consent(&update, None, now, random);
        self.wipe = true;
        true
    }

    /// The CMP says GDPR does not apply to this person (`gdprApplies:
    /// false`): the TCF-mapped purposes need no consent.
    pub fn set_tcf_not_applicable(&mut self, now: Millis, random: [u8; 16]) -> Consent {
        let update = self.config.consent.tcf_not_applicable();
        self.update_consent(&update, Some(Source::Tcf), now, random)
    }

    /// The Global Privacy Control signal: while on, `sale` and
    /// `advertising` read as denied whatever else says. A browser setting,
    /// not a choice made on this page, so it records no event; every event
    /// still carries its effect in `context.consent`.
    pub fn set_gpc(&mut self, on: bool, now: Millis, random: [u8; 16]) {
        let before = self.consent.effective();
        self.consent.set_gpc(on);
        self.consent_moved(before, None, now, random);
    }

    fn update_consent(
        &mut self,
        update: &ConsentUpdate,
        source: Option<Source>,
        now: Millis,
        random: [u8; 16],
    ) -> Consent {
        let before = self.consent.effective();
        self.consent.apply(update);
        self.consent_moved(before, source, now, random);
        self.consent.effective()
    }

    /// Carries out what a consent change means. `source` is `None` for
    /// changes that are not choices (stored state, GPC): they record no
    /// `Consent Changed` event.
    fn consent_moved(&mut self, before: Consent, source: Option<Source>, now: Millis, random: [u8; 16]) {
        let after = self.consent.effective();
        let base = self.consent.base();
        if let Some(d) = self.identity.device.as_mut().filter(|d| d.consent != base) {
            if after.analytics != Choice::Denied {
                d.consent = base;
                self.device_dirty = true;
            }
        }
        if after == before {
            return;
        }
        self.context.set_consent(after);
        self.notices.push(Notice::ConsentChanged { consent: self.consent_view() });
        #[cfg(feature = "decide")]
        if before.personalization == Choice::Granted && after.personalization != Choice::Granted {
            self.forget_profile();
        }
        match after.analytics {
            Choice::Granted => {
                if self.identity.device.is_none() {
                    self.create_device(now, fork(random, b"device"));
                }
                self.release_held(now, random);
                self.identity_dirty = Dirty::Now;
            }
            Choice::Denied => self.wipe(),
            Choice::Pending => {}
        }
        let Some(source) = source else { return };
        let props = consent_properties(after, source);
        if after.analytics == Choice::Denied {
            if self.config.consent.send_denial {
                self.record_denial(&props, now, random);
            }
            return;
        }
        let _ = self.record(Kind::Track { event: CONSENT_EVENT }, Some(&props), None, None, now, random);
    }

    fn create_device(&mut self, now: Millis, random: [u8; 16]) {
        self.identity.device = Some(Device::new(random, now, &self.config.identity, self.consent.base()));
        self.device_dirty = true;
        self.identity_dirty = Dirty::Now;
        // Storage is in use again: what lived in memory only is stored now.
        #[cfg(feature = "decide")]
        self.rules.mark_cache_dirty();
        #[cfg(feature = "decide")]
        if self.profiling() && !self.profile.is_empty() {
            self.profile_dirty_since.get_or_insert(now);
        }
    }

    /// Held events enter the queue, in order, with the device id. Events
    /// of a person who left (`reset`) while they were held get an id of
    /// their own instead, one per person and never stored, as if their
    /// device id had been rotated at the reset.
    fn release_held(&mut self, now: Millis, random: [u8; 16]) {
        if !self.held.is_empty() {
            // A device id that ran out while they were held is rotated (or
            // renewed) before they get it.
            self.renew_device(now, random);
        }
        let Some(anon) = self.identity.anonymous_id().map(str::to_owned) else { return };
        self.held_bytes = 0;
        let mut left: Option<(u64, String)> = None;
        for h in std::mem::take(&mut self.held) {
            let id = if h.person == self.person {
                &anon
            } else {
                if left.as_ref().is_none_or(|(p, _)| *p != h.person) {
                    let tag = [&b"held"[..], &h.person.to_le_bytes()].concat();
                    left = Some((h.person, event::message_id(fork(random, &tag))));
                }
                left.as_ref().map_or(&anon, |(_, id)| id)
            };
            let json = event::with_anonymous_id(&h.json, id);
            let dropped = self.queue.push(h.message_id, json, h.created, now, 0);
            self.stats.dropped_queue_full += dropped as u64;
        }
        self.mark_dirty(now);
    }

    /// Denial: everything collected and every identifier goes, in memory
    /// and in storage.
    fn wipe(&mut self) {
        self.stats.dropped_consent += self.held.len() as u64;
        self.held.clear();
        self.held_bytes = 0;
        self.stats.dropped_consent += self.queue.remove_where(|_| true).len() as u64;
        self.identity.forget_person();
        self.identity.device = None;
        self.context.set_session(None);
        self.wipe = true;
        self.queue_dirty_since = None;
        self.identity_dirty = Dirty::Clean;
        self.device_dirty = false;
    }

    /// The one record a denial may send: no device id, no user id, no
    /// session; never stored.
    fn record_denial(&mut self, props: &RawValue, now: Millis, random: [u8; 16]) {
        let encoded = event::encode(
            Parts {
                kind: Kind::Track { event: CONSENT_EVENT },
                properties: Some(props),
                traits: None,
                anonymous_id: None,
                user_id: None,
                context: self.context.json(),
                external_ids: None,
                now,
                random,
            },
            &self.config.limits,
        );
        if let Ok(e) = encoded {
            self.stats.accepted += 1;
            let dropped = self.queue.push(e.message_id.into_boxed_str(), e.json, now, now, 0);
            self.stats.dropped_queue_full += dropped as u64;
        }
    }

    // ---- decisions -------------------------------------------------------

    /// The profile is kept while `personalization` is granted and decisions
    /// are in use (a `rules` configuration, or an artifact handed over):
    /// an SDK used only for analytics keeps no history at all.
    #[cfg(feature = "decide")]
    fn profiling(&self) -> bool {
        self.consent.effective().personalization == Choice::Granted
            && (self.config.rules.is_some() || self.rules.is_ready())
    }

    #[cfg(feature = "decide")]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// `personalization` went or the person left: the history goes, in
    /// memory and in storage.
    #[cfg(feature = "decide")]
    fn forget_profile(&mut self) {
        self.profile.clear();
        self.profile.take_changed();
        self.profile_dirty_since = None;
        self.profile_remove = true;
    }

    /// Counts an accepted event in the profile.
    #[cfg(feature = "decide")]
    fn learn(&mut self, event: &str, properties: Option<&str>, name: Option<&str>, now: Millis) {
        if !self.profiling() {
            return;
        }
        let mut props: serde_json::Value =
            properties.and_then(|p| serde_json::from_str(p).ok()).unwrap_or(serde_json::Value::Null);
        if let (Some(n), Some(m)) = (name, props.as_object_mut()) {
            m.insert("name".into(), n.into());
        } else if let Some(n) = name {
            props = serde_json::json!({ "name": n });
        }
        self.profile.record(event, &props, now);
        if let (Choice::Granted, Some(d)) = (self.analytics(), self.identity.anonymous_id()) {
            self.profile.counted_device(d);
        }
        self.profile_dirty_since.get_or_insert(now);
    }

    /// Takes the stored profile. Ignored unless `personalization` is
    /// granted; while it is denied the stored copy is deleted.
    #[cfg(feature = "decide")]
    pub fn restore_profile(&mut self, bytes: &[u8]) -> Result<(), ProfileError> {
        match self.consent.effective().personalization {
            Choice::Granted => {}
            Choice::Denied => {
                self.profile_remove = true;
                return Ok(());
            }
            Choice::Pending => return Ok(()),
        }
        self.profile = Profile::from_bytes(bytes, self.config.profile.clone())?;
        Ok(())
    }

    /// Which offers to show in `placement` now: synchronous, offline, from
    /// the artifact in use and the on-device profile. Without
    /// `personalization` consent, the placement's default offer and nothing
    /// read from the profile. Experiment variants are remembered in the
    /// profile, so they stay put when the artifact changes.
    #[cfg(feature = "decide")]
    pub fn decide(
        &mut self,
        placement: &str,
        request: &DecideRequest<'_>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Vec<Decision>, DecideError> {
        let mut all = self.decide_many(&[placement], request, now, random)?;
        Ok(all.pop().unwrap_or_default())
    }

    /// `decide` for several placements of one page or screen at once, in
    /// the order given: one context, one pass over the audiences, one
    /// crossing from JavaScript or Kotlin. An unknown placement fails the
    /// whole call.
    #[cfg(feature = "decide")]
    pub fn decide_many(
        &mut self,
        placements: &[&str],
        request: &DecideRequest<'_>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Vec<Vec<Decision>>, DecideError> {
        let mut data: serde_json::Map<String, serde_json::Value> = match request.context {
            Some(c) => serde_json::from_str(c).map_err(|e| DecideError::InvalidContext(e.to_string()))?,
            None => serde_json::Map::new(),
        };
        if !data.contains_key("consent") {
            data.insert("consent".into(), serde_json::to_value(self.consent_view()).unwrap_or_default());
        }
        if let (false, Some(page)) = (data.contains_key("page"), self.context.page()) {
            data.insert("page".into(), serde_json::to_value(page).unwrap_or_default());
        }
        let personalization = self.consent.effective().personalization == Choice::Granted;
        let opts = DecideOptions {
            max: request.max.max(1),
            context: Some(&data),
            now,
            utc_offset_minutes: request.utc_offset_minutes,
            device_id: self.identity.anonymous_id().filter(|_| self.analytics() == Choice::Granted),
            personalization,
            random,
        };
        let decisions = self.rules.engine().decide_many(placements, &opts, &self.profile)?;
        if self.profiling() {
            for d in decisions.iter().flatten() {
                if let (Some(e), Some(v)) = (&d.experiment_id, &d.variant_id) {
                    self.profile.assign(e, v, now);
                }
            }
            if self.profile.take_changed() {
                self.profile_dirty_since.get_or_insert(now);
            }
        }
        Ok(decisions)
    }

    /// The host showed a decision: counts an impression (frequency caps)
    /// and records `Offer Displayed`. `decision` is the decision's JSON as
    /// `decide` returned it. The same decision reported twice counts once;
    /// `Ok(None)` then.
    #[cfg(feature = "decide")]
    pub fn displayed(
        &mut self,
        decision: &str,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Option<String>, EventError> {
        self.feedback(decision, false, now, random)
    }

    /// The person clicked a decision: records `Offer Clicked` (once per decision).
    #[cfg(feature = "decide")]
    pub fn clicked(
        &mut self,
        decision: &str,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Option<String>, EventError> {
        self.feedback(decision, true, now, random)
    }

    #[cfg(feature = "decide")]
    fn feedback(
        &mut self,
        decision: &str,
        click: bool,
        now: Millis,
        random: [u8; 16],
    ) -> Result<Option<String>, EventError> {
        let limits = &self.config.limits;
        let r = serde_json::from_str::<Feedback>(decision)
            .map_err(|e| EventError::NotAnObject { what: "decision", reason: e.to_string() })
            .and_then(|f| {
                check_name("decisionId", &f.decision_id, limits)?;
                check_name("placement", &f.placement, limits)?;
                check_name("offerId", &f.offer_id, limits)?;
                Ok(f)
            });
        let f = self.counted(r)?;
        if self.feedback_seen.iter().any(|(id, c)| *id == f.decision_id && *c == click) {
            return Ok(None);
        }
        let props = serde_json::to_string(&f.event_properties()).unwrap_or_default();
        let name = if click { CLICKED_EVENT } else { DISPLAYED_EVENT };
        let id = self.track(name, Some(&props), now, random)?;
        if !click && !f.is_default && self.profiling() {
            self.profile.record_impression(&f.offer_id, now);
            self.profile_dirty_since.get_or_insert(now);
        }
        if self.feedback_seen.len() >= FEEDBACK_SEEN {
            self.feedback_seen.pop_front();
        }
        self.feedback_seen.push_back((f.decision_id, click));
        Ok(Some(id))
    }

    // ---- rules artifact ----------------------------------------------------

    /// Whether an artifact is loaded (`ready()`).
    #[cfg(feature = "decide")]
    pub fn rules_ready(&self) -> bool {
        self.rules.is_ready()
    }

    /// The revision label of the artifact in use.
    #[cfg(feature = "decide")]
    pub fn rules_revision(&self) -> Option<&str> {
        self.rules.engine().artifact().and_then(|a| a.revision.as_deref())
    }

    /// An artifact from the host (inline in the page, bundled in the app),
    /// with its detached signature as base64. Unless `replace`, it is taken
    /// only while none is loaded, so a bundled copy never overrides a newer
    /// cached one. Returns whether it is in use now; on an error the
    /// previous artifact stays.
    #[cfg(feature = "decide")]
    pub fn load_rules(
        &mut self,
        artifact: &str,
        signature: Option<&str>,
        replace: bool,
        now: Millis,
    ) -> Result<bool, RulesError> {
        let r = self.rules.provide(artifact, signature, replace, now);
        self.collect_rules_events();
        r
    }

    /// The cached artifact from the previous run (the `rules` slot).
    #[cfg(feature = "decide")]
    pub fn restore_rules(&mut self, bytes: &[u8], now: Millis) -> Result<(), RulesError> {
        let r = self.rules.restore(bytes, now);
        self.collect_rules_events();
        r
    }

    /// The next artifact request to perform, when one is due.
    #[cfg(feature = "decide")]
    pub fn next_rules_fetch(&mut self, now: Millis) -> Option<RulesFetch> {
        self.rules.next_fetch(now)
    }

    /// Reports an artifact request; may return a follow-up request (the
    /// signature of a changed artifact) to perform at once.
    #[cfg(feature = "decide")]
    pub fn rules_fetched(
        &mut self,
        id: u64,
        response: RulesResponse<'_>,
        now: Millis,
        random: u32,
    ) -> Result<Option<RulesFetch>, RulesError> {
        let r = self.rules.fetched(id, response, now, random);
        self.collect_rules_events();
        r
    }

    /// Revalidates the artifact at once (the host's `refreshRules()`).
    #[cfg(feature = "decide")]
    pub fn refresh_rules(&mut self, now: Millis) {
        self.rules.refresh(now);
    }

    // ---- profile sync ------------------------------------------------------

    /// The person's profile is fetched only with everything it needs:
    /// `personalization`, a profile in use, a user id and its token.
    #[cfg(feature = "decide")]
    fn sync_wanted(&self) -> bool {
        self.sync.enabled()
            && self.profiling()
            && self.identity.user_id.is_some()
            && self.identity.user_token.is_some()
    }

    #[cfg(feature = "decide")]
    fn sync_due(&self) -> Option<Millis> {
        if !self.sync_wanted() {
            return None;
        }
        self.sync.due(self.profile.remote().and_then(Remote::synced))
    }

    /// The next profile request to perform, when one is due. Its URL
    /// excludes the devices whose events this profile counted itself.
    #[cfg(feature = "decide")]
    pub fn next_profile_fetch(&mut self, now: Millis) -> Option<ProfileFetch> {
        if self.sync_due().is_none_or(|t| t > now) {
            return None;
        }
        let user = self.identity.user_id.clone()?;
        let token = self.identity.user_token.clone()?;
        let mut exclude: Vec<&str> = self.profile.devices().iter().map(String::as_str).collect();
        if let (Choice::Granted, Some(d)) = (self.analytics(), self.identity.anonymous_id()) {
            if !exclude.contains(&d) {
                exclude.push(d);
            }
        }
        let url = self.sync.url(&self.config.endpoint, &user, &exclude);
        let id = self.sync.start(&user);
        Some(ProfileFetch { id, url, token })
    }

    /// Reports a profile request. An answer for someone who is no longer
    /// the user, or arriving after consent went, is dropped unread. A
    /// refused token (401, 403) drops the collector's part and the token.
    /// `random` feeds the retry jitter.
    #[cfg(feature = "decide")]
    pub fn profile_fetched(
        &mut self,
        id: u64,
        response: ProfileResponse<'_>,
        now: Millis,
        random: u32,
    ) -> Result<(), SyncError> {
        let user = self.sync.finish(id)?;
        if !self.sync_wanted() || self.identity.user_id.as_deref() != Some(user.as_str()) {
            return Ok(());
        }
        match response {
            ProfileResponse::Body { bytes } => match Remote::from_json(bytes, &user) {
                Ok(remote) => {
                    let audiences = remote.audiences().to_vec();
                    self.profile.set_remote(remote, now);
                    self.profile_dirty_since.get_or_insert(now);
                    self.sync.succeeded();
                    self.notices.push(Notice::ProfileSynced { audiences });
                    Ok(())
                }
                Err(e) => {
                    self.sync.failed(now, random);
                    Err(e.into())
                }
            },
            ProfileResponse::Failed { status: Some(status @ (401 | 403)) } => {
                self.profile.clear_remote();
                self.profile_dirty_since.get_or_insert(now);
                self.identity.user_token = None;
                self.identity_dirty = Dirty::Now;
                self.sync.refuse();
                self.notices.push(Notice::ProfileSyncRefused { status });
                Err(SyncError::Unauthorized(status))
            }
            ProfileResponse::Failed { .. } => {
                self.sync.failed(now, random);
                Ok(())
            }
        }
    }

    /// Fetches the person's profile at once (the host's `refreshProfile()`),
    /// unless one is in flight or nothing may be fetched.
    #[cfg(feature = "decide")]
    pub fn refresh_profile(&mut self) {
        self.sync.refresh();
    }

    // ---- events ----------------------------------------------------------

    /// Records a `track` event; returns its messageId. While `analytics` is
    /// denied the event is checked, counted in `droppedConsent` and
    /// discarded.
    pub fn track(
        &mut self,
        event: &str,
        properties: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let r = check_name("event name", event, &self.config.limits)
            .and_then(|()| check_object("properties", properties, &self.config.limits));
        let props = self.counted(r)?;
        let id = self.record(Kind::Track { event }, props, None, None, now, random)?;
        #[cfg(feature = "decide")]
        self.learn(event, props.map(RawValue::get), None, now);
        Ok(id)
    }

    /// Records a `page` event. Its properties start from the current page
    /// context (url, path, referrer, title, search), as analytics.js does,
    /// and the caller's properties override them.
    pub fn page(
        &mut self,
        name: Option<&str>,
        properties: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let r = name
            .map_or(Ok(()), |n| check_name("page name", n, limits))
            .and_then(|()| check_object("properties", properties, limits));
        let user = self.counted(r)?;
        let mut merged = match self.context.page().and_then(|p| serde_json::to_string(p).ok()) {
            Some(page) => event::parse_object(&page),
            None => event::Object::new(),
        };
        if let Some(user) = user {
            merged.extend(event::parse_object(user.get()));
        }
        let merged = Some(event::object_json(&merged));
        let id = self.record(Kind::Page { name }, merged.as_deref(), None, None, now, random)?;
        #[cfg(feature = "decide")]
        self.learn(PAGE_EVENT, merged.as_deref().map(RawValue::get), name, now);
        Ok(id)
    }

    /// Records a `screen` event (apps).
    pub fn screen(
        &mut self,
        name: &str,
        properties: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let r = check_name("screen name", name, limits)
            .and_then(|()| check_object("properties", properties, limits));
        let props = self.counted(r)?;
        let id = self.record(Kind::Screen { name }, props, None, None, now, random)?;
        #[cfg(feature = "decide")]
        self.learn(SCREEN_EVENT, props.map(RawValue::get), Some(name), now);
        Ok(id)
    }

    /// Attaches a known user id, traits and namespaced ids
    /// (`{"email": ..., "phone": ..., "crmId": ...}`; emails and phones are
    /// normalised and hashed unless configured otherwise) and records an
    /// `identify` event carrying them in `context.externalIds`. Any of the
    /// three may be left out, not all. Later events carry the user id.
    /// `user_token` (issued by the host's back end for this user id; never
    /// sent with events) lets the client fetch the person's profile from the
    /// collector (see [`crate::sync`]).
    pub fn identify(
        &mut self,
        user_id: Option<&str>,
        traits: Option<&str>,
        ids: Option<&str>,
        user_token: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let known_user = self.identity.user_id.is_some();
        let r = (|| {
            if user_id.is_none() && traits.is_none() && ids.is_none() {
                return Err(EventError::Empty { what: "identify (a user id, traits or ids)" });
            }
            if let Some(u) = user_id {
                check_name("user id", u, limits)?;
            }
            if let Some(t) = user_token {
                check_name("user token", t, limits)?;
                if user_id.is_none() && !known_user {
                    return Err(EventError::Empty { what: "user id (a user token is for one)" });
                }
            }
            let traits = check_object("traits", traits, limits)?;
            let ids = ids.map(|j| identity::parse_ids(j, &self.config.identity)).transpose()?;
            Ok((traits, ids))
        })();
        let (traits, ids) = self.counted(r)?;
        let previous = (self.identity.user_id.clone(), self.identity.ids.clone());
        if let Some(u) = user_id {
            self.identity.user_id = Some(u.to_owned());
        }
        if let Some(ids) = ids {
            self.identity.ids.extend(ids);
        }
        let external = external_ids(&self.identity.ids, &self.config.identity.hash_ids);
        let result = self.record(Kind::Identify, None, traits, external.as_deref(), now, random);
        match &result {
            // While denied the call is dropped like any event, and nothing
            // of the person is kept (denial deleted it; see `wipe`).
            Ok(_) if self.analytics() != Choice::Denied => {
                if let Some(t) = traits {
                    self.identity.merge_traits(event::parse_object(t.get()));
                }
                if previous.0 != self.identity.user_id {
                    // Another person: nothing of the previous one may be used
                    // for them, and the previous token is not theirs.
                    #[cfg(feature = "decide")]
                    self.profile.clear_remote();
                    #[cfg(feature = "decide")]
                    self.profile_dirty_since.get_or_insert(now);
                    self.identity.user_token = user_token.map(str::to_owned);
                    #[cfg(feature = "decide")]
                    self.sync.restart();
                } else if let Some(t) = user_token.filter(|t| self.identity.user_token.as_deref() != Some(t))
                {
                    self.identity.user_token = Some(t.to_owned());
                    #[cfg(feature = "decide")]
                    self.sync.restart();
                }
                self.identity_dirty = Dirty::Now;
            }
            _ => (self.identity.user_id, self.identity.ids) = previous,
        }
        #[cfg(feature = "decide")]
        if let (Ok(_), Some(t)) = (&result, traits) {
            // The profile's traits follow `personalization`, not
            // `analytics`: they never leave the device. Traits past the
            // profile's byte bound are left out of it (the event carries them).
            if self.profiling() {
                let traits = serde_json::from_str(t.get()).unwrap_or_default();
                if self.profile.set_traits(&traits).is_ok() {
                    self.profile_dirty_since.get_or_insert(now);
                }
            }
        }
        result
    }

    /// Links `user_id` with a previous id (by default the current user id,
    /// else the device id), as Segment's `alias`; the current user id does
    /// not change.
    pub fn alias(
        &mut self,
        user_id: &str,
        previous_id: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let known = self.identity.user_id.clone().or_else(|| self.identity.anonymous_id().map(str::to_owned));
        let r = check_name("user id", user_id, limits).and_then(|()| {
            let prev = previous_id
                .map(str::to_owned)
                .or(known)
                .ok_or(EventError::Empty { what: "previous id (no user or device id is known yet)" })?;
            check_name("previous id", &prev, limits).map(|()| prev)
        });
        let prev = self.counted(r)?;
        // Segment's alias carries the new id as `userId`.
        let before = self.identity.user_id.replace(user_id.to_owned());
        let result = self.record(Kind::Alias { previous_id: &prev }, None, None, None, now, random);
        self.identity.user_id = before;
        result
    }

    /// Logout: the user id, traits, ids and session are forgotten and the
    /// device id is rotated, so nothing links what comes next to the person
    /// who left. Queued events keep the ids they were collected with.
    pub fn reset(&mut self, now: Millis, random: [u8; 16]) {
        self.person += 1;
        self.identity.forget_person();
        #[cfg(feature = "decide")]
        self.sync.restart();
        self.context.set_session(None);
        self.identity_dirty = Dirty::Now;
        #[cfg(feature = "decide")]
        self.forget_profile();
        if self.analytics() == Choice::Granted {
            self.create_device(now, fork(random, b"reset"));
        } else if self.identity.device.take().is_some() {
            self.device_dirty = true;
        }
    }

    fn counted<T>(&mut self, r: Result<T, EventError>) -> Result<T, EventError> {
        if r.is_err() {
            self.stats.rejected += 1;
        }
        r
    }

    fn record(
        &mut self,
        kind: Kind<'_>,
        properties: Option<&RawValue>,
        traits: Option<&RawValue>,
        external_ids: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let analytics = self.analytics();
        if analytics != Choice::Denied {
            self.renew_device(now, random);
            match self.identity.touch(now, &self.config.identity) {
                Touch::Started(id) => {
                    self.notices.push(Notice::SessionStarted { id });
                    self.context.set_session(Some((id, true)));
                }
                Touch::Continued => {
                    if let Some(s) = self.identity.session {
                        self.context.set_session(Some((s.id, false)));
                    }
                }
            }
            if self.identity_dirty == Dirty::Clean {
                self.identity_dirty = Dirty::Since(now);
            }
        }
        let anonymous_id = match analytics {
            Choice::Granted => self.identity.anonymous_id(),
            _ => None,
        };
        let encoded = event::encode(
            Parts {
                kind,
                properties,
                traits,
                anonymous_id,
                user_id: self.identity.user_id.as_deref(),
                context: self.context.json(),
                external_ids,
                now,
                random,
            },
            &self.config.limits,
        );
        let encoded = self.counted(encoded)?;
        let id = encoded.message_id.clone();
        self.stats.accepted += 1;
        match analytics {
            Choice::Granted => {
                let dropped = self.queue.push(encoded.message_id.into_boxed_str(), encoded.json, now, now, 0);
                self.stats.dropped_queue_full += dropped as u64;
                self.mark_dirty(now);
            }
            Choice::Pending => self.hold(encoded.message_id.into_boxed_str(), encoded.json, now),
            Choice::Denied => self.stats.dropped_consent += 1,
        }
        Ok(id)
    }

    fn hold(&mut self, message_id: Box<str>, json: Box<str>, now: Millis) {
        self.held_bytes += json.len();
        self.held.push_back(Held { message_id, json, created: now, person: self.person });
        let cfg = &self.config.consent;
        while self.held.len() > cfg.max_held_events || self.held_bytes > cfg.max_held_bytes {
            let Some(old) = self.held.pop_front() else { break };
            self.held_bytes -= old.json.len();
            self.stats.dropped_held_full += 1;
        }
    }

    /// Rotates an expired device id, or extends it when renewal is on (at
    /// most one write a day).
    fn renew_device(&mut self, now: Millis, random: [u8; 16]) {
        let cfg = &self.config.identity;
        let Some(d) = &mut self.identity.device else { return };
        if cfg.renew_device_id {
            let expires = now.saturating_add(cfg.device_id_max_age_ms);
            if expires.saturating_sub(d.expires) >= 86_400_000 {
                d.expires = expires;
                self.device_dirty = true;
            }
        } else if now >= d.expires {
            if self.analytics() == Choice::Granted {
                self.create_device(now, fork(random, b"rotate"));
            } else {
                self.identity.device = None;
                self.device_dirty = true;
            }
        }
    }

    fn mark_dirty(&mut self, now: Millis) {
        self.queue_dirty_since.get_or_insert(now);
    }

    /// Events are on their way out: the stored queue must hold them before
    /// the outcome is known, so a crash between send and acknowledgement
    /// loses nothing. One write per upload, not per event.
    fn persist_now(&mut self, now: Millis) {
        let due = now.saturating_sub(self.config.queue.persist_debounce_ms);
        self.queue_dirty_since = Some(self.queue_dirty_since.map_or(due, |t| t.min(due)));
    }

    pub fn flush(&mut self) {
        self.delivery.flush(&self.queue);
    }

    /// The platform reports connectivity again: end a wait caused by
    /// network errors.
    pub fn network_available(&mut self) {
        self.delivery.network_available();
    }

    /// Nothing is sent while `analytics` is pending (and while it is
    /// denied the queue holds at most the anonymous denial record).
    fn may_send(&self) -> bool {
        self.analytics() != Choice::Pending
    }

    /// Storage is used only while a device id exists (see the module docs).
    fn may_store(&self) -> bool {
        self.identity.device.is_some()
    }

    pub fn next_upload(&mut self, now: Millis) -> NextUpload {
        if !self.may_send() {
            return NextUpload::Idle;
        }
        self.housekeeping(now);
        let next = self.delivery.next_upload(&mut self.queue, &mut self.stats, now);
        if matches!(next, NextUpload::Upload(_)) {
            self.persist_now(now);
        }
        next
    }

    /// An upload for `navigator.sendBeacon` (at most `max_body_bytes`),
    /// while the page is hidden or being unloaded. Call until `None`, or
    /// until the browser refuses one (report [`Outcome::NotSent`] and stop).
    pub fn next_beacon(&mut self, now: Millis, max_body_bytes: usize) -> Option<Upload> {
        if !self.may_send() {
            return None;
        }
        self.housekeeping(now);
        let upload = self.delivery.next_beacon(&mut self.queue, &mut self.stats, now, max_body_bytes);
        if upload.is_some() {
            self.persist_now(now);
        }
        upload
    }

    /// While the page is hidden or being unloaded: the next last-chance
    /// upload within `max_wire_bytes` (the keepalive budget left). Perform it
    /// as its `transport` says: a `Transport::Beacon` while the
    /// rest fits as it is, otherwise (with `gzip`, a synchronous compressor)
    /// a keepalive `Transport::Fetch` whose headers include
    /// `Content-Encoding: gzip`. Call until `None`, or until the browser
    /// refuses one (report [`Outcome::NotSent`] and stop). Outcomes are
    /// reported as for any upload, if the page lives to see them; if not,
    /// the stored queue still holds the events.
    pub fn next_unload(
        &mut self,
        now: Millis,
        max_wire_bytes: usize,
        gzip: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Upload> {
        if !self.may_send() {
            return None;
        }
        self.housekeeping(now);
        let upload = self.delivery.next_unload(&mut self.queue, &mut self.stats, now, max_wire_bytes, gzip);
        if upload.is_some() {
            self.persist_now(now);
        }
        upload
    }

    /// Reports what happened to an upload. `random` feeds the backoff jitter.
    pub fn upload_finished(
        &mut self,
        id: u64,
        outcome: Outcome,
        now: Millis,
        random: u32,
    ) -> Result<(), DeliveryError> {
        self.delivery.finished(&mut self.queue, &mut self.stats, id, &outcome, now, random)?;
        self.mark_dirty(now);
        Ok(())
    }

    /// Sends beacon hand-offs again once their grace period is over (no
    /// receipt came, and this page is still alive), and drops events past
    /// their maximum age.
    fn housekeeping(&mut self, now: Millis) {
        let requeued = self.queue.requeue_unconfirmed(now);
        self.stats.beacons_requeued += requeued as u64;
        let max_age = self.config.retry.max_event_age_ms;
        let expired = self
            .queue
            .remove_where(|e| e.state == State::Pending && now.saturating_sub(e.created) > max_age)
            .len();
        self.stats.dropped_expired += expired as u64;
        if requeued + expired > 0 {
            self.mark_dirty(now);
        }
    }

    /// The earliest time the binding must call back (`next_upload` and
    /// `take_persist`); `None` means no timer is needed.
    pub fn poll_timeout(&self, now: Millis) -> Option<Millis> {
        let (upload, beacon) = if self.may_send() {
            (self.delivery.due(&self.queue, now), self.queue.next_unconfirmed_expiry())
        } else {
            (None, None)
        };
        #[cfg(feature = "decide")]
        let (rules, sync) = (self.rules.due(), self.sync_due());
        #[cfg(not(feature = "decide"))]
        let (rules, sync) = (None, None);
        [upload, self.persist_due(), beacon, rules, sync].into_iter().flatten().min()
    }

    fn persist_due(&self) -> Option<Millis> {
        #[cfg(feature = "decide")]
        let profile_remove = self.profile_remove;
        #[cfg(not(feature = "decide"))]
        let profile_remove = false;
        if self.wipe
            || profile_remove
            || (self.device_dirty && (self.may_store() || self.identity.device.is_none()))
        {
            return Some(0);
        }
        if !self.may_store() {
            return None;
        }
        let debounce = self.config.queue.persist_debounce_ms;
        let identity = match self.identity_dirty {
            Dirty::Clean => None,
            Dirty::Now => Some(0),
            Dirty::Since(t) => Some(t.saturating_add(debounce)),
        };
        #[cfg(feature = "decide")]
        let profile = self.profile_dirty_since.map(|t| t.saturating_add(debounce));
        #[cfg(feature = "decide")]
        let rules = self.rules.cache_pending().then_some(0);
        #[cfg(not(feature = "decide"))]
        let (profile, rules) = (None, None);
        // An empty queue is written at once: it is cheap, and it means no
        // timer has to stay armed while nothing is queued.
        let queue = self.queue_dirty_since.map(|since| {
            if self.queue.len() == 0 {
                since
            } else {
                since.saturating_add(debounce)
            }
        });
        [identity, queue, profile, rules].into_iter().flatten().min()
    }

    /// Storage work that is due (or all of it with `force`, when the page is
    /// being hidden or the app backgrounded). The queue snapshot holds every
    /// unacknowledged event, in flight ones included, so a crash between
    /// send and acknowledgement loses nothing.
    pub fn take_persist(&mut self, now: Millis, force: bool) -> Persist {
        let mut out = Persist::default();
        if std::mem::take(&mut self.wipe) {
            out.wipe = true;
            out.queue = Some(Store::Remove);
            out.identity = Some(Store::Remove);
            out.device = Some(Store::Remove);
            out.profile = Some(Store::Remove);
            out.rules = Some(Store::Remove);
            #[cfg(feature = "decide")]
            {
                self.profile_remove = false;
            }
        }
        #[cfg(feature = "decide")]
        if std::mem::take(&mut self.profile_remove) {
            out.profile = Some(Store::Remove);
        }
        if std::mem::take(&mut self.device_dirty) {
            out.device = Some(match &self.identity.device {
                Some(d) => Store::Write(d.encode()),
                None => {
                    // Storage goes out of use with the device id (`reset`
                    // or expiry while not granted): the other records go
                    // too, or a forgotten person comes back at the next
                    // start. The queue stays in memory, and is stored again
                    // with the next device id.
                    out.identity = Some(Store::Remove);
                    out.queue = Some(Store::Remove);
                    out.profile = Some(Store::Remove);
                    out.rules = Some(Store::Remove);
                    Store::Remove
                }
            });
        }
        if !self.may_store() {
            // Nothing else is written without a device id; what is dirty
            // now is written if one is created later.
            return out;
        }
        let debounce = self.config.queue.persist_debounce_ms;
        let identity_due = match self.identity_dirty {
            Dirty::Clean => false,
            Dirty::Now => true,
            Dirty::Since(t) => force || t.saturating_add(debounce) <= now,
        };
        if identity_due {
            out.identity = Some(Store::Write(self.identity.encode()));
            self.identity_dirty = Dirty::Clean;
        }
        #[cfg(feature = "decide")]
        if let Some(since) = self.profile_dirty_since {
            if !self.profiling() {
                self.profile_dirty_since = None;
            } else if force || since.saturating_add(debounce) <= now {
                self.profile_dirty_since = None;
                self.profile.take_changed();
                out.profile = Some(Store::Write(self.profile.to_bytes()));
            }
        }
        #[cfg(feature = "decide")]
        if let Some(bytes) = self.rules.take_cache() {
            out.rules = Some(Store::Write(bytes));
        }
        let due = self
            .queue_dirty_since
            .is_some_and(|since| self.queue.len() == 0 || since.saturating_add(debounce) <= now);
        if self.queue_dirty_since.is_some() && (force || due) {
            self.queue_dirty_since = None;
            if self.queue.len() == 0 {
                self.stats.not_persisted = 0;
                out.queue = Some(Store::Remove);
            } else {
                let (bytes, left_out) = self.export_queue();
                self.stats.not_persisted = left_out;
                out.queue = Some(Store::Write(bytes));
            }
        }
        out
    }

    fn export_queue(&self) -> (Vec<u8>, usize) {
        let events = self.queue.iter().map(|e| EventOut {
            id: &e.message_id,
            t: e.created,
            a: e.attempts,
            e: &e.json,
        });
        snapshot::encode(self.delivery.backoff(), events, self.config.queue.max_persist_bytes)
    }

    /// The queue snapshot as it is now, regardless of what is due.
    pub fn snapshot(&self) -> Vec<u8> {
        self.export_queue().0
    }

    /// Adds the events of a snapshot (this process's previous life, or a
    /// queue adopted from a closed tab). Events already queued are skipped
    /// by messageId, so adopting twice sends nothing twice. Restored events
    /// are due at once (after any retry wait the snapshot carries). Returns
    /// how many were added.
    /// While `analytics` is denied, restored events are counted and
    /// dropped at once.
    pub fn restore(&mut self, bytes: &[u8], now: Millis) -> Result<usize, SnapshotError> {
        let decoded = decode(bytes)?;
        Ok(self.merge(decoded, now))
    }

    /// Replaces the queue with a stored snapshot (or with nothing). A page
    /// coming back from the back/forward cache does this: it stored all it
    /// had when it left, and another page of the tab may have sent some of
    /// it and added its own since, so the stored queue is the truth. A
    /// snapshot that cannot be read changes nothing.
    pub fn replace_queue(&mut self, bytes: Option<&[u8]>, now: Millis) -> Result<usize, SnapshotError> {
        let decoded = bytes.map(decode).transpose()?;
        self.hand_over(now);
        Ok(decoded.map_or(0, |d| self.merge(d, now)))
    }

    fn merge(&mut self, decoded: snapshot::Decoded<'_>, now: Millis) -> usize {
        if let Some(b) = decoded.backoff {
            self.delivery.merge_backoff(b);
        }
        // One pass with a set: restoring must stay linear in the queue size.
        // Inserted one by one: `collect` would sort first and ship two sort
        // implementations in the wasm for no gain here.
        let mut known = std::collections::BTreeSet::new();
        for e in self.queue.iter() {
            known.insert(e.message_id.clone());
        }
        let mut added = 0;
        for ev in decoded.events {
            if !known.insert(ev.id.as_ref().into()) {
                continue;
            }
            let dropped = self.queue.push(ev.id.into(), ev.e.get().into(), ev.t, 0, ev.a);
            self.stats.dropped_queue_full += dropped as u64;
            added += 1;
        }
        self.stats.restored += added as u64;
        if self.analytics() == Choice::Denied {
            let dropped = self.queue.remove_where(|_| true).len();
            self.stats.dropped_consent += dropped as u64;
            return 0;
        }
        if added > 0 {
            self.mark_dirty(now);
        }
        added
    }

    /// Gives up every queued event: the stored queue replaces them (see
    /// [`Client::replace_queue`]). Returns how many undelivered events went.
    fn hand_over(&mut self, now: Millis) -> usize {
        let n = self.queue.remove_where(|_| true).len();
        self.stats.handed_over += n as u64;
        if n > 0 {
            self.mark_dirty(now);
        }
        n
    }

    /// Takes the stored identity record (user id, traits, ids, session).
    /// Refused while `analytics` is denied: nothing of the person may come
    /// back then.
    pub fn restore_identity(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        if self.analytics() == Choice::Denied {
            return Ok(());
        }
        self.identity.decode_into(bytes)?;
        self.identity_dirty = Dirty::Clean;
        if let Some(s) = self.identity.session {
            self.context.set_session(Some((s.id, false)));
        }
        Ok(())
    }

    /// Takes the stored device record (the cookie on the web): its id
    /// replaces a fresh one, and its consent (the choices made earlier on
    /// this device) replaces the configured default. An expired id is
    /// rotated, or dropped if consent no longer allows one. `rewrite` asks
    /// for the record to be written back (it came from a fallback store).
    pub fn restore_device(
        &mut self,
        bytes: &[u8],
        now: Millis,
        random: [u8; 16],
        rewrite: bool,
    ) -> Result<(), SnapshotError> {
        let device = Device::decode(bytes)?;
        let before = self.consent.effective();
        self.consent.replace_base(device.consent);
        self.identity.device = Some(device);
        // The record is what is stored: nothing to write back unless the
        // binding found it in a fallback store, or it changes below.
        self.device_dirty = rewrite;
        self.consent_moved(before, None, now, random);
        // The identity record is restored next (`restore_identity`), or
        // written with the next event's session.
        self.identity_dirty = Dirty::Clean;
        self.renew_device(now, random);
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.queued = self.queue.len();
        s.queued_bytes = self.queue.bytes();
        for e in self.queue.iter() {
            match e.state {
                State::InFlight(_) => s.in_flight += 1,
                State::Unconfirmed { .. } => s.unconfirmed += 1,
                State::Pending => {}
            }
        }
        s.backoff_until = self.delivery.backoff_until();
        s.held = self.held.len();
        s
    }

    /// Uploads handed out and not yet reported.
    pub fn uploads_in_flight(&self) -> usize {
        self.delivery.in_flight_uploads()
    }
}

/// The `track` event a consent change records.
pub const CONSENT_EVENT: &str = "Consent Changed";
/// The names `page` and `screen` calls are counted under in the profile
/// (their `name` is a property there), so conditions can ask for
/// `{"count": ["Page Viewed", "7d", {"path": "/sale"}]}`.
pub const PAGE_EVENT: &str = "Page Viewed";
pub const SCREEN_EVENT: &str = "Screen Viewed";

fn consent_properties(consent: Consent, source: Source) -> Box<RawValue> {
    #[derive(Serialize)]
    struct Props {
        #[serde(flatten)]
        consent: Consent,
        source: Source,
    }
    serde_json::to_string(&Props { consent, source })
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .unwrap_or_else(event::empty_object)
}

/// `context.externalIds` in Segment's shape.
fn external_ids(ids: &BTreeMap<String, String>, hashed: &[String]) -> Option<String> {
    #[derive(Serialize)]
    struct Ext<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        collection: &'static str,
        encoding: &'static str,
    }
    if ids.is_empty() {
        return None;
    }
    let list: Vec<Ext<'_>> = ids
        .iter()
        .map(|(k, v)| Ext {
            id: v,
            kind: k,
            collection: "users",
            encoding: if hashed.contains(k) { "sha256" } else { "none" },
        })
        .collect();
    serde_json::to_string(&list).ok()
}

/// Snapshot bytes as text, then parsed; any failure is a typed error.
fn decode(bytes: &[u8]) -> Result<snapshot::Decoded<'_>, SnapshotError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    snapshot::decode(text)
}

#[cfg(test)]
mod consent_tests;
#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
