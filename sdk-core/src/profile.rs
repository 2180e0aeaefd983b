//! The on-device profile: what decisions may know about the person without
//! their history leaving the device. Traits (from `identify`), history
//! counters per event name and per value of a few configured properties
//! (e.g. `productId`), and impressions per offer for frequency caps.
//!
//! # Counters and windows
//!
//! Each counter keeps a lifetime count, first and last seen, and sparse
//! buckets: clock hours for the `1h` and `24h` windows, UTC days for `7d`
//! and `30d`. Only non-empty buckets are stored and the ones older than the
//! longest window roll off on every update, so a counter holds at most 25 +
//! 31 buckets however many events it saw. A window counts every bucket it
//! overlaps: `24h` at 10:20 counts from 10:00 yesterday, so a window may
//! include up to one bucket more than its length, never less. That errs on
//! the safe side for frequency caps ("2 per day" is never exceeded in any
//! rolling 24 hours), at the price of an offer coming back up to an hour
//! (or a day, for week caps) later than an exact count would allow.
//!
//! # Bounds
//!
//! [`ProfileConfig`] bounds the event names, the property-value counters
//! (over all events) and the offers with impressions; when one is full, the
//! least recently seen entry is evicted. Traits are bounded in bytes. The
//! persisted form ([`Profile::to_bytes`]) is therefore bounded too.
//!
//! # Property values
//!
//! A configured property is read at the top level of the event's properties
//! and in each element of a `products` array (Segment's `Order Completed`),
//! so `{"products": [{"productId": "slacks-01"}]}` counts for `slacks-01`.
//! Values are compared as text: `42` and `"42"` are the same product.
//!
//! # The person's other devices
//!
//! After `identify` with a user token, the collector serves what it knows of
//! the person from their other devices ([`Remote`], `GET /v1/profile`):
//! counters in the same form as ours, computed with this very module
//! ([`Profile::learn_message`]) over every device except the ones whose
//! events this profile counted itself ([`Profile::devices`], sent as
//! `exclude`), so nothing is counted twice. Conditions see the sum: counts
//! add, first seen is the earlier, last seen the later; the collector's
//! audiences join the ones evaluated here; the device's own traits win over
//! the collector's. The remote part belongs to one user id and is dropped the
//! moment another person identifies, the token is refused, or the history
//! is forgotten.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{PAGE_EVENT, SCREEN_EVENT};
use crate::decide::DISPLAYED_EVENT;
use crate::logic::{Context, PropertyFilter, Window};
use crate::time::Millis;

pub const VERSION: u64 = 1;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// Buckets kept: one more than the longest window of each granularity.
const KEEP_HOURS: u64 = 25;
const KEEP_DAYS: u64 = 31;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile is corrupt and was discarded: {0}")]
    Corrupt(String),
    #[error("profile has version {found}, this SDK reads version {VERSION}; it was discarded")]
    UnknownVersion { found: u64 },
    #[error("profile is {bytes} bytes, over the {limit}-byte limit; it was discarded")]
    TooLarge { bytes: usize, limit: usize },
    #[error("traits would take {bytes} bytes, over the {limit}-byte limit; they were not changed")]
    TraitsTooLarge { bytes: usize, limit: usize },
    #[error("the collector's profile is for user `{found}`, not for `{expected}`; it was refused")]
    WrongUser { expected: String, found: String },
}

impl ProfileError {
    /// A stable code for hosts on every platform.
    pub fn kind(&self) -> &'static str {
        match self {
            ProfileError::Corrupt(_) => "profile.corrupt",
            ProfileError::UnknownVersion { .. } => "profile.version",
            ProfileError::TooLarge { .. } => "profile.tooLarge",
            ProfileError::TraitsTooLarge { .. } => "profile.traitsTooLarge",
            ProfileError::WrongUser { .. } => "profile.wrongUser",
        }
    }
}

/// Device ids a profile remembers having counted events of (rotation adds one).
const MAX_DEVICES: usize = 8;
/// Largest collector profile taken, on the wire and stored.
pub const MAX_REMOTE_BYTES: usize = 1024 * 1024;

/// What the profile keeps; the defaults persist at most a few hundred KB.
/// The client configuration's `profile` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    /// Properties whose values get their own counters (`count` with a filter).
    pub properties: Vec<String>,
    pub max_events: usize,
    /// Property-value counters over all events and properties.
    pub max_values: usize,
    /// Offers whose impressions are remembered (frequency caps).
    pub max_offers: usize,
    /// Serialised size of the traits object.
    pub max_trait_bytes: usize,
    /// Longest event name or property value counted; longer ones are skipped.
    pub max_name_bytes: usize,
    /// Experiments whose variant is remembered (sticky assignments).
    pub max_assignments: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            properties: vec!["productId".into(), "product_id".into(), "category".into()],
            max_events: 100,
            max_values: 500,
            max_offers: 500,
            max_trait_bytes: 8 * 1024,
            max_name_bytes: 200,
            max_assignments: 200,
        }
    }
}

/// One history counter. Serialised as a compact tuple.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counter(
    /// Lifetime count.
    u64,
    /// First seen (ms).
    Millis,
    /// Last seen (ms).
    Millis,
    /// `(hour since epoch, count)`, oldest first.
    Vec<(u64, u32)>,
    /// `(UTC day since epoch, count)`, oldest first.
    Vec<(u64, u32)>,
);

impl Counter {
    fn add(&mut self, now: Millis) {
        if self.0 == 0 {
            self.1 = now;
        }
        self.0 = self.0.saturating_add(1);
        self.1 = self.1.min(now);
        self.2 = self.2.max(now);
        bump(&mut self.3, now / HOUR);
        bump(&mut self.4, now / DAY);
        self.roll(now);
    }

    /// Drops buckets no window can reach any more.
    fn roll(&mut self, now: Millis) {
        let (h, d) = (now / HOUR, now / DAY);
        self.3.retain(|&(b, _)| b + KEEP_HOURS > h);
        self.4.retain(|&(b, _)| b + KEEP_DAYS > d);
    }

    fn count(&self, window: Window, now: Millis) -> u64 {
        let sum = |buckets: &[(u64, u32)], from: u64| {
            buckets.iter().filter(|&&(b, _)| b >= from).map(|&(_, n)| u64::from(n)).sum()
        };
        match window {
            Window::Lifetime => self.0,
            Window::Hour | Window::Day => {
                let len = window.millis().unwrap_or(0);
                sum(&self.3, now.saturating_sub(len) / HOUR)
            }
            Window::Week | Window::Month => {
                let len = window.millis().unwrap_or(0);
                sum(&self.4, now.saturating_sub(len) / DAY)
            }
        }
    }

    fn valid(&self) -> bool {
        let sorted = |b: &[(u64, u32)]| b.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0));
        self.0 > 0
            && self.1 <= self.2
            && sorted(&self.3)
            && sorted(&self.4)
            && self.3.len() as u64 <= KEEP_HOURS
            && self.4.len() as u64 <= KEEP_DAYS
    }
}

/// Adds one to bucket `b`, keeping the list sorted (events mostly arrive in order).
fn bump(buckets: &mut Vec<(u64, u32)>, b: u64) {
    match buckets.iter().rposition(|&(x, _)| x <= b) {
        Some(i) => match buckets.get_mut(i) {
            Some(slot) if slot.0 == b => slot.1 = slot.1.saturating_add(1),
            _ => buckets.insert(i + 1, (b, 1)),
        },
        None => buckets.insert(0, (b, 1)),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct EventHistory {
    #[serde(rename = "c")]
    all: Counter,
    /// property → value → counter.
    #[serde(rename = "p", default, skip_serializing_if = "BTreeMap::is_empty")]
    by: BTreeMap<String, BTreeMap<String, Counter>>,
}

/// The persisted form, version 1, as read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    t: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    e: BTreeMap<String, EventHistory>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    i: BTreeMap<String, Counter>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    a: BTreeMap<String, Assignment>,
    #[serde(default)]
    d: Vec<String>,
    #[serde(default)]
    r: Option<Box<serde_json::value::RawValue>>,
}

/// What the collector knows of the person from their other devices, as
/// `GET /v1/profile` serves it (and as it is kept inside the stored profile).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Remote {
    v: u64,
    user_id: String,
    /// The collector's clock when it answered.
    at: Millis,
    /// The rules revision its audiences were evaluated with.
    #[serde(default)]
    revision: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    traits: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    events: BTreeMap<String, EventHistory>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    impressions: BTreeMap<String, Counter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    audiences: Vec<String>,
    /// This device's clock when it arrived (not on the wire), so the next
    /// refresh is planned on the device's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    synced: Option<Millis>,
}

impl Remote {
    /// Parses a `GET /v1/profile` body, refusing it whole unless it is
    /// about `expected_user` and every counter is consistent: a device never
    /// takes another person's data, whatever a server or a proxy sends.
    pub fn from_json(bytes: &[u8], expected_user: &str) -> Result<Remote, ProfileError> {
        if bytes.len() > MAX_REMOTE_BYTES {
            return Err(ProfileError::TooLarge { bytes: bytes.len(), limit: MAX_REMOTE_BYTES });
        }
        let r: Remote = serde_json::from_slice(bytes).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        r.check()?;
        if r.user_id != expected_user {
            return Err(ProfileError::WrongUser { expected: expected_user.to_owned(), found: r.user_id });
        }
        Ok(Remote { synced: None, ..r })
    }

    /// What any copy must satisfy, fresh from the wire or read back from storage.
    fn check(&self) -> Result<(), ProfileError> {
        if self.v != VERSION {
            return Err(ProfileError::UnknownVersion { found: self.v });
        }
        if !counters_valid(&self.events, &self.impressions) {
            return Err(ProfileError::Corrupt("a counter is inconsistent".into()));
        }
        Ok(())
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// When this device received it.
    pub fn synced(&self) -> Option<Millis> {
        self.synced
    }

    fn counter(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> Option<&Counter> {
        history_counter(&self.events, event, filter)
    }
}

fn counters_valid(events: &BTreeMap<String, EventHistory>, impressions: &BTreeMap<String, Counter>) -> bool {
    impressions.values().all(Counter::valid)
        && events
            .values()
            .all(|h| h.all.valid() && h.by.values().flat_map(BTreeMap::values).all(Counter::valid))
}

fn history_counter<'a>(
    events: &'a BTreeMap<String, EventHistory>,
    event: &str,
    filter: Option<PropertyFilter<'_>>,
) -> Option<&'a Counter> {
    let h = events.get(event)?;
    match filter {
        None => Some(&h.all),
        Some(f) => h.by.get(f.property)?.get(value_key(f.value)?.as_ref()),
    }
}

/// A remembered experiment variant and when it was assigned, so a variant
/// stays put when the marketer re-weights a running experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Assignment(String, Millis);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    config: ProfileConfig,
    traits: Map<String, Value>,
    events: BTreeMap<String, EventHistory>,
    impressions: BTreeMap<String, Counter>,
    assignments: BTreeMap<String, Assignment>,
    /// Device ids whose events were counted here, newest last: the collector
    /// leaves them out of what it serves back.
    devices: Vec<String>,
    remote: Option<Remote>,
    values: usize,
    /// Set by every change, so the binding rewrites the stored copy only when needed.
    changed: bool,
}

/// Property values as counter keys: text as is, numbers and booleans as
/// JSON text; anything else is not counted.
fn value_key(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

impl Profile {
    pub fn new(config: ProfileConfig) -> Profile {
        Profile { config, ..Profile::default() }
    }

    pub fn config(&self) -> &ProfileConfig {
        &self.config
    }

    pub fn traits(&self) -> &Map<String, Value> {
        &self.traits
    }

    pub fn is_empty(&self) -> bool {
        self.traits.is_empty()
            && self.events.is_empty()
            && self.impressions.is_empty()
            && self.assignments.is_empty()
            && self.remote.is_none()
    }

    /// The traits conditions see: the collector's, overridden by this device's.
    pub fn merged_traits(&self) -> Cow<'_, Map<String, Value>> {
        match &self.remote {
            Some(r) if !r.traits.is_empty() => {
                let mut m = r.traits.clone();
                m.extend(self.traits.iter().map(|(k, v)| (k.clone(), v.clone())));
                Cow::Owned(m)
            }
            _ => Cow::Borrowed(&self.traits),
        }
    }

    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// Takes what the collector served (already checked by [`Remote::from_json`]).
    pub fn set_remote(&mut self, mut remote: Remote, now: Millis) {
        remote.synced = Some(now);
        self.remote = Some(remote);
        self.changed = true;
    }

    /// Drops the collector's part: another person, a refused token.
    pub fn clear_remote(&mut self) {
        if self.remote.take().is_some() {
            self.changed = true;
        }
    }

    /// Device ids whose events this profile counted (the `exclude` of a sync).
    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    /// Notes that events of `device_id` are counted here from now on.
    pub fn counted_device(&mut self, device_id: &str) {
        if self.devices.last().is_some_and(|d| d == device_id) {
            return;
        }
        self.devices.retain(|d| d != device_id);
        if self.devices.len() >= MAX_DEVICES {
            self.devices.remove(0);
        }
        self.devices.push(device_id.to_owned());
        self.changed = true;
    }

    /// Counts one Segment-spec message as the on-device client counts the
    /// call that made it: the collector replays a person's messages through
    /// this, so both sides compute history the same way.
    pub fn learn_message(&mut self, message: &Value, now: Millis) {
        let props = message.get("properties").filter(|p| p.is_object()).unwrap_or(&Value::Null);
        let name = message.get("name").and_then(Value::as_str);
        let with_name = |event: &str, this: &mut Profile| match name {
            Some(n) => {
                let mut p = props.as_object().cloned().unwrap_or_default();
                p.insert("name".into(), n.into());
                this.record(event, &Value::Object(p), now);
            }
            None => this.record(event, props, now),
        };
        match message.get("type").and_then(Value::as_str) {
            Some("track") => {
                let Some(event) = message.get("event").and_then(Value::as_str) else { return };
                self.record(event, props, now);
                let is_default = props.get("isDefault").and_then(Value::as_bool).unwrap_or(false);
                if let (true, false, Some(offer)) =
                    (event == DISPLAYED_EVENT, is_default, props.get("offerId").and_then(Value::as_str))
                {
                    self.record_impression(offer, now);
                }
            }
            Some("page") => with_name(PAGE_EVENT, self),
            Some("screen") => with_name(SCREEN_EVENT, self),
            Some("identify") => {
                if let Some(t) = message.get("traits").and_then(Value::as_object) {
                    // Too large: the previous traits stay, as on the device.
                    let _ = self.set_traits(t);
                }
            }
            _ => {}
        }
    }

    /// The body of `GET /v1/profile`: this profile's traits, counters and
    /// impressions for `user_id`, with the audiences evaluated on it.
    pub fn to_remote_json(
        &self,
        user_id: &str,
        at: Millis,
        revision: Option<&str>,
        audiences: &[String],
    ) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            v: u64,
            user_id: &'a str,
            at: Millis,
            revision: Option<&'a str>,
            traits: &'a Map<String, Value>,
            events: &'a BTreeMap<String, EventHistory>,
            impressions: &'a BTreeMap<String, Counter>,
            audiences: &'a [String],
        }
        let out = Out {
            v: VERSION,
            user_id,
            at,
            revision,
            traits: &self.traits,
            events: &self.events,
            impressions: &self.impressions,
            audiences,
        };
        serde_json::to_vec(&out).unwrap_or_default()
    }

    /// Forgets everything: `personalization` consent was denied or the person reset.
    pub fn clear(&mut self) {
        self.traits.clear();
        self.events.clear();
        self.impressions.clear();
        self.assignments.clear();
        self.devices.clear();
        self.remote = None;
        self.values = 0;
        self.changed = true;
    }

    /// Merges traits (from `identify`); a `null` removes a trait. Refused
    /// whole if the result would exceed the byte limit.
    pub fn set_traits(&mut self, traits: &Map<String, Value>) -> Result<(), ProfileError> {
        let mut next = self.traits.clone();
        for (k, v) in traits {
            if v.is_null() {
                next.remove(k);
            } else {
                next.insert(k.clone(), v.clone());
            }
        }
        let bytes = serde_json::to_vec(&next).map(|b| b.len()).unwrap_or(usize::MAX);
        if bytes > self.config.max_trait_bytes {
            return Err(ProfileError::TraitsTooLarge { bytes, limit: self.config.max_trait_bytes });
        }
        self.traits = next;
        self.changed = true;
        Ok(())
    }

    /// Counts one tracked event. `properties` is the event's properties object (or null).
    pub fn record(&mut self, event: &str, properties: &Value, now: Millis) {
        if event.is_empty() || event.len() > self.config.max_name_bytes || self.config.max_events == 0 {
            return;
        }
        if !self.events.contains_key(event) && self.events.len() >= self.config.max_events {
            let oldest = self.events.iter().min_by_key(|(_, h)| h.all.2).map(|(k, _)| k.clone());
            if let Some(h) = oldest.and_then(|k| self.events.remove(&k)) {
                self.values = self.values.saturating_sub(h.by.values().map(BTreeMap::len).sum::<usize>());
            }
        }
        let mut keys: Vec<(String, String)> = Vec::new();
        let products = properties.get("products").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for p in &self.config.properties {
            for source in std::iter::once(properties).chain(products) {
                if let Some(k) = source.get(p).and_then(value_key).map(Cow::into_owned) {
                    if k.len() <= self.config.max_name_bytes && !keys.iter().any(|(q, v)| q == p && *v == k) {
                        keys.push((p.clone(), k));
                    }
                }
            }
        }
        self.events.entry(event.to_owned()).or_default().all.add(now);
        self.changed = true;
        for (p, k) in keys {
            let known = self.events.get(event).and_then(|h| h.by.get(&p)).is_some_and(|m| m.contains_key(&k));
            let is_new = !known;
            if is_new {
                if self.config.max_values == 0 {
                    continue;
                }
                if self.values >= self.config.max_values {
                    evict_value(&mut self.events, &mut self.values);
                }
                self.values += 1;
            }
            // Re-borrow: eviction may have touched another event.
            if let Some(h) = self.events.get_mut(event) {
                h.by.entry(p).or_default().entry(k).or_default().add(now);
            }
        }
        // Other counters of this event roll off too, so stale buckets do not persist.
        if let Some(h) = self.events.get_mut(event) {
            h.by.values_mut().flat_map(BTreeMap::values_mut).for_each(|c| c.roll(now));
        }
    }

    /// Counts one impression of an offer (a `displayed` decision).
    pub fn record_impression(&mut self, offer_id: &str, now: Millis) {
        if self.config.max_offers == 0 {
            return;
        }
        if !self.impressions.contains_key(offer_id) && self.impressions.len() >= self.config.max_offers {
            let oldest = self.impressions.iter().min_by_key(|(_, c)| c.2).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.impressions.remove(&k);
            }
        }
        self.impressions.entry(offer_id.to_owned()).or_default().add(now);
        self.changed = true;
    }

    /// The variant this person was given in an experiment, if remembered.
    pub fn assignment(&self, experiment: &str) -> Option<&str> {
        self.assignments.get(experiment).map(|a| a.0.as_str())
    }

    /// Remembers a variant (or `holdout`); the oldest assignment goes when full.
    pub fn assign(&mut self, experiment: &str, variant: &str, now: Millis) {
        if self.assignment(experiment) == Some(variant) || self.config.max_assignments == 0 {
            return;
        }
        if !self.assignments.contains_key(experiment) && self.assignments.len() >= self.config.max_assignments
        {
            let oldest = self.assignments.iter().min_by_key(|(_, a)| a.1).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.assignments.remove(&k);
            }
        }
        self.assignments.insert(experiment.to_owned(), Assignment(variant.to_owned(), now));
        self.changed = true;
    }

    /// Whether anything changed since the last call: the binding persists
    /// [`Profile::to_bytes`] when it did (the client's `take_persist`).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Impressions of an offer in a window ending at `now`, on every device.
    pub fn impressions(&self, offer_id: &str, window: Window, now: Millis) -> u64 {
        let remote = self.remote.as_ref().and_then(|r| r.impressions.get(offer_id));
        [self.impressions.get(offer_id), remote].into_iter().flatten().map(|c| c.count(window, now)).sum()
    }

    /// This device's counter and the collector's.
    fn counters(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> [Option<&Counter>; 2] {
        [
            history_counter(&self.events, event, filter),
            self.remote.as_ref().and_then(|r| r.counter(event, filter)),
        ]
    }

    /// Events in a window ending at `now`, on every device.
    pub fn count(&self, event: &str, window: Window, filter: Option<PropertyFilter<'_>>, now: Millis) -> u64 {
        self.counters(event, filter).into_iter().flatten().map(|c| c.count(window, now)).sum()
    }

    pub fn first_seen(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> Option<Millis> {
        self.counters(event, filter).into_iter().flatten().map(|c| c.1).min()
    }

    pub fn last_seen(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> Option<Millis> {
        self.counters(event, filter).into_iter().flatten().map(|c| c.2).max()
    }

    /// Compact versioned JSON: `{"v":1,"t":{traits},"e":{event:{"c":counter,
    /// "p":{property:{value:counter}}}},"i":{offer:counter},"a":{experiment:[variant,
    /// assigned]},"d":[device ids],"r":{collector's part, as served plus "synced"}}`, a counter being `[count, first, last, [[hour, n]...], [[day, n]...]]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Out<'a> {
            v: u64,
            #[serde(skip_serializing_if = "Map::is_empty")]
            t: &'a Map<String, Value>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            e: &'a BTreeMap<String, EventHistory>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            i: &'a BTreeMap<String, Counter>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            a: &'a BTreeMap<String, Assignment>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            d: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            r: Option<&'a Remote>,
        }
        let out = Out {
            v: VERSION,
            t: &self.traits,
            e: &self.events,
            i: &self.impressions,
            a: &self.assignments,
            d: &self.devices,
            r: self.remote.as_ref(),
        };
        serde_json::to_vec(&out).unwrap_or_default()
    }

    /// Restores a persisted profile, refusing it whole if it cannot be
    /// trusted; then applies this configuration's bounds (they may have shrunk).
    pub fn from_bytes(bytes: &[u8], config: ProfileConfig) -> Result<Profile, ProfileError> {
        // Twice what the bounds allow is generous; beyond that it is not ours.
        let limit = 64 * 1024 * 1024;
        if bytes.len() > limit {
            return Err(ProfileError::TooLarge { bytes: bytes.len(), limit });
        }
        #[derive(Deserialize)]
        struct Probe {
            v: u64,
        }
        let stored: Stored = match serde_json::from_slice(bytes) {
            Ok(s) => s,
            Err(e) => {
                return Err(match serde_json::from_slice::<Probe>(bytes) {
                    Ok(p) if p.v != VERSION => ProfileError::UnknownVersion { found: p.v },
                    _ => ProfileError::Corrupt(e.to_string()),
                })
            }
        };
        if stored.v != VERSION {
            return Err(ProfileError::UnknownVersion { found: stored.v });
        }
        if !counters_valid(&stored.e, &stored.i) {
            return Err(ProfileError::Corrupt("a counter is inconsistent".into()));
        }
        // The collector's part is checked like a fresh answer; one that no
        // longer reads is dropped alone, the device's own history stays.
        let remote = stored
            .r
            .and_then(|raw| serde_json::from_str::<Remote>(raw.get()).ok())
            .filter(|r| r.check().is_ok());
        let mut p = Profile::new(config);
        p.events = stored.e;
        p.impressions = stored.i;
        p.assignments = stored.a;
        p.devices = stored.d;
        let extra = p.devices.len().saturating_sub(MAX_DEVICES);
        p.devices.drain(..extra);
        p.remote = remote;
        p.values = p.events.values().map(|h| h.by.values().map(BTreeMap::len).sum::<usize>()).sum();
        if p.set_traits(&stored.t).is_err() {
            p.traits = Map::new();
        }
        while p.events.len() > p.config.max_events {
            let oldest = p.events.iter().min_by_key(|(_, h)| h.all.2).map(|(k, _)| k.clone());
            if let Some(h) = oldest.and_then(|k| p.events.remove(&k)) {
                p.values = p.values.saturating_sub(h.by.values().map(BTreeMap::len).sum::<usize>());
            }
        }
        while p.values > p.config.max_values {
            evict_value(&mut p.events, &mut p.values);
        }
        while p.assignments.len() > p.config.max_assignments {
            let oldest = p.assignments.iter().min_by_key(|(_, a)| a.1).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                p.assignments.remove(&k);
            }
        }
        while p.impressions.len() > p.config.max_offers {
            let oldest = p.impressions.iter().min_by_key(|(_, c)| c.2).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                p.impressions.remove(&k);
            }
        }
        p.changed = false;
        Ok(p)
    }

    /// A view answering conditions at `now` for a person in `audiences`.
    pub fn at<'a>(&'a self, now: Millis, audiences: &'a [&'a str]) -> View<'a> {
        View { profile: Some(self), now, audiences }
    }
}

/// Evicts the least recently seen property-value counter (over all events).
fn evict_value(events: &mut BTreeMap<String, EventHistory>, values: &mut usize) {
    let mut oldest: Option<(Millis, String, String, String)> = None;
    for (e, h) in events.iter() {
        for (p, m) in &h.by {
            for (v, c) in m {
                if oldest.as_ref().is_none_or(|o| c.2 < o.0) {
                    oldest = Some((c.2, e.clone(), p.clone(), v.clone()));
                }
            }
        }
    }
    if let Some((_, e, p, v)) = oldest {
        if let Some(m) = events.get_mut(&e).and_then(|h| h.by.get_mut(&p)) {
            if m.remove(&v).is_some() {
                *values = values.saturating_sub(1);
            }
            if m.is_empty() {
                if let Some(h) = events.get_mut(&e) {
                    h.by.remove(&p);
                }
            }
        }
    } else {
        *values = 0;
    }
}

/// The profile as conditions see it at one decision: its time and the
/// audiences already computed. `profile: None` answers like an empty history.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub profile: Option<&'a Profile>,
    pub now: Millis,
    pub audiences: &'a [&'a str],
}

impl Context for View<'_> {
    fn now(&self) -> Millis {
        self.now
    }
    fn count(&self, event: &str, window: Window, filter: Option<PropertyFilter<'_>>) -> u64 {
        self.profile.map_or(0, |p| p.count(event, window, filter, self.now))
    }
    fn first_seen(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> Option<Millis> {
        self.profile.and_then(|p| p.first_seen(event, filter))
    }
    fn last_seen(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> Option<Millis> {
        self.profile.and_then(|p| p.last_seen(event, filter))
    }
    fn in_audience(&self, audience: &str) -> bool {
        self.audiences.contains(&audience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: Millis = 1_795_512_600_000; // 2026-11-24T09:30:00Z

    fn f<'a>(p: &'a str, v: &'a Value) -> Option<PropertyFilter<'a>> {
        Some(PropertyFilter { property: p, value: v })
    }

    #[test]
    fn counts_windows_and_property_values() {
        let mut p = Profile::new(ProfileConfig::default());
        let slacks = json!({"productId": "slacks-01", "price": 10});
        p.record("Product Viewed", &slacks, T0 - 10 * DAY);
        p.record("Product Viewed", &slacks, T0 - 2 * DAY);
        p.record("Product Viewed", &json!({"productId": 42}), T0 - 3 * HOUR);
        p.record("Product Viewed", &slacks, T0 - 10 * 60_000);
        p.record(
            "Order Completed",
            &json!({"products": [{"productId": "slacks-01"}, {"product_id": "x"}]}),
            T0,
        );
        let pv = "Product Viewed";
        let counts: Vec<u64> = Window::ALL.iter().map(|&w| p.count(pv, w, None, T0)).collect();
        assert_eq!(counts, [1, 2, 3, 4, 4]);
        let s = json!("slacks-01");
        let counts: Vec<u64> = Window::ALL.iter().map(|&w| p.count(pv, w, f("productId", &s), T0)).collect();
        assert_eq!(counts, [1, 1, 2, 3, 3]);
        assert_eq!(p.count(pv, Window::Lifetime, f("productId", &json!("42")), T0), 1);
        assert_eq!(p.count(pv, Window::Lifetime, f("productId", &json!(42)), T0), 1);
        assert_eq!(p.count(pv, Window::Lifetime, f("price", &json!(10)), T0), 0, "price is not configured");
        assert_eq!(p.first_seen(pv, f("productId", &s)), Some(T0 - 10 * DAY));
        assert_eq!(p.last_seen(pv, None), Some(T0 - 10 * 60_000));
        assert_eq!(p.count("Order Completed", Window::Hour, f("productId", &s), T0), 1);
        assert_eq!(p.count("Order Completed", Window::Hour, f("product_id", &json!("x")), T0), 1);
        assert_eq!(p.last_seen("never", None), None);
        // A day later the 1h and 24h windows are empty; old buckets roll off.
        let later = T0 + DAY + 2 * HOUR;
        assert_eq!(p.count("Order Completed", Window::Day, None, later), 0);
        assert_eq!(p.count("Order Completed", Window::Week, None, later), 1);
        assert_eq!(p.count("Order Completed", Window::Lifetime, None, T0 + 400 * DAY), 1);
        assert_eq!(p.count(pv, Window::Month, None, T0 + 40 * DAY), 0);
    }

    #[test]
    fn windows_never_undercount() {
        // An event exactly at the edge of each window is still counted.
        let mut p = Profile::default();
        for w in [Window::Hour, Window::Day, Window::Week, Window::Month] {
            let len = w.millis().unwrap();
            p.clear();
            p.record("e", &Value::Null, T0 - len + 1);
            assert_eq!(p.count("e", w, None, T0), 1, "{w:?}");
        }
    }

    #[test]
    fn bounded_with_least_recently_seen_evicted() {
        let cfg = ProfileConfig { max_events: 2, max_values: 3, max_offers: 2, ..ProfileConfig::default() };
        let mut p = Profile::new(cfg.clone());
        p.record("a", &json!({"productId": "1"}), T0);
        p.record("b", &json!({"productId": "2"}), T0 + 1);
        p.record("a", &json!({"productId": "3"}), T0 + 2);
        p.record("c", &json!({"productId": "4"}), T0 + 3);
        assert_eq!(p.last_seen("b", None), None, "b was least recently seen");
        assert_eq!(p.count("a", Window::Lifetime, None, T0 + 3), 2);
        assert_eq!(p.values, 3);
        p.record("c", &json!({"productId": "5"}), T0 + 4);
        assert_eq!(p.values, 3);
        assert_eq!(p.last_seen("a", f("productId", &json!("1"))), None);
        assert_eq!(p.last_seen("a", f("productId", &json!("3"))), Some(T0 + 2));
        p.record_impression("o1", T0);
        p.record_impression("o2", T0 + 1);
        p.record_impression("o1", T0 + 2);
        p.record_impression("o3", T0 + 3);
        assert_eq!(p.impressions("o2", Window::Lifetime, T0), 0);
        assert_eq!(p.impressions("o1", Window::Day, T0 + 3), 2);
        let long = "x".repeat(300);
        p.record(&long, &Value::Null, T0);
        assert_eq!(p.last_seen(&long, None), None);
        // A restore under smaller bounds applies them.
        let small = ProfileConfig { max_events: 1, max_values: 1, max_offers: 1, ..cfg };
        let q = Profile::from_bytes(&p.to_bytes(), small).unwrap();
        assert_eq!((q.events.len(), q.values, q.impressions.len()), (1, 1, 1));
    }

    #[test]
    fn persists_and_refuses_what_it_cannot_trust() {
        let mut p = Profile::default();
        p.set_traits(json!({"plan": "gold", "age": 40}).as_object().unwrap()).unwrap();
        p.set_traits(json!({"age": null}).as_object().unwrap()).unwrap();
        p.record("Product Viewed", &json!({"productId": "slacks-01"}), T0);
        p.record_impression("o", T0);
        let bytes = p.to_bytes();
        let mut q = Profile::from_bytes(&bytes, ProfileConfig::default()).unwrap();
        assert!(p.take_changed() && !p.take_changed());
        assert!(!q.take_changed(), "a restored profile has nothing new to save");
        assert_eq!(q, p);
        assert_eq!(q.traits(), json!({"plan": "gold"}).as_object().unwrap());
        let huge = json!({"bio": "x".repeat(10_000)});
        assert!(matches!(p.set_traits(huge.as_object().unwrap()), Err(ProfileError::TraitsTooLarge { .. })));
        assert_eq!(p.traits().len(), 1);
        let err = |b: &[u8]| Profile::from_bytes(b, ProfileConfig::default()).unwrap_err();
        assert_eq!(err(br#"{"v":2}"#), ProfileError::UnknownVersion { found: 2 });
        assert!(matches!(err(b"{"), ProfileError::Corrupt(_)));
        assert!(matches!(err(br#"{"v":1,"x":1}"#), ProfileError::Corrupt(_)));
        assert!(matches!(err(br#"{"v":1,"i":{"o":[0,1,1,[],[]]}}"#), ProfileError::Corrupt(_)));
        assert!(matches!(err(br#"{"v":1,"i":{"o":[1,5,1,[],[]]}}"#), ProfileError::Corrupt(_)));
        assert!(matches!(err(br#"{"v":1,"i":{"o":[2,1,1,[[5,1],[4,1]],[]]}}"#), ProfileError::Corrupt(_)));
        assert!(Profile::from_bytes(br#"{"v":1}"#, ProfileConfig::default()).unwrap().events.is_empty());
        p.clear();
        assert_eq!(p.to_bytes(), br#"{"v":1}"#);
    }

    #[test]
    fn learns_messages_like_the_client() {
        use crate::{Client, Config};
        let cfg = r#"{"endpoint":"https://c.test","writeKey":"k","rules":{},
            "profile":{"properties":["productId","name","path","offerId"]}}"#;
        let mut c = Client::new(Config::from_json(cfg).unwrap(), T0, [1; 16]).unwrap();
        c.track("Product Viewed", Some(r#"{"productId":"slacks-01"}"#), T0, [2; 16]).unwrap();
        c.page(Some("Sale"), Some(r#"{"path":"/sale"}"#), T0 + 1, [3; 16]).unwrap();
        c.screen("Cart", None, T0 + 2, [4; 16]).unwrap();
        c.identify(Some("u1"), Some(r#"{"plan":"gold"}"#), None, None, T0 + 3, [5; 16]).unwrap();
        let offer = r#"{"decisionId":"d","placement":"home","offerId":"o1","isDefault":false}"#;
        c.displayed(offer, T0 + 4, [6; 16]).unwrap();
        let mut replayed = Profile::new(c.profile().config().clone());
        let NextUploadBody(events) = uploaded(&mut c, T0 + 5);
        for m in &events {
            let at = if m["type"] == "identify" { T0 + 3 } else { T0 };
            replayed.learn_message(m, at.max(T0));
        }
        for (e, f) in [
            ("Product Viewed", None),
            ("Page Viewed", Some(("name", json!("Sale")))),
            ("Page Viewed", Some(("path", json!("/sale")))),
            ("Screen Viewed", Some(("name", json!("Cart")))),
            ("Offer Displayed", Some(("offerId", json!("o1")))),
        ] {
            let filter = f.as_ref().map(|(p, v)| PropertyFilter { property: p, value: v });
            assert_eq!(replayed.count(e, Window::Lifetime, filter, T0 + 5), 1, "{e} {f:?}");
            assert_eq!(c.profile().count(e, Window::Lifetime, filter, T0 + 5), 1, "{e} {f:?}");
        }
        assert_eq!(replayed.impressions("o1", Window::Day, T0 + 5), 1);
        assert_eq!(replayed.traits(), c.profile().traits());
    }

    struct NextUploadBody(Vec<Value>);

    fn uploaded(c: &mut crate::Client, now: Millis) -> NextUploadBody {
        c.flush();
        let crate::NextUpload::Upload(u) = c.next_upload(now) else { panic!("no upload") };
        let body: Value = serde_json::from_slice(&u.body).unwrap();
        NextUploadBody(body["batch"].as_array().unwrap().clone())
    }

    #[test]
    fn remote_part_adds_to_local_counts() {
        let mut server = Profile::default();
        let slacks = json!({"productId": "slacks-01"});
        server.learn_message(
            &json!({"type": "track", "event": "Product Viewed", "properties": slacks}),
            T0 - DAY,
        );
        server.learn_message(
            &json!({"type": "track", "event": "Order Completed",
            "properties": {"products": [{"productId": "slacks-01"}]}}),
            T0 - HOUR,
        );
        server.learn_message(&json!({"type": "identify", "traits": {"plan": "gold", "city": "Bonn"}}), T0);
        let body = server.to_remote_json("u1", T0, Some("r1"), &["buyers".to_owned()]);
        assert!(matches!(Remote::from_json(&body, "u2"), Err(ProfileError::WrongUser { .. })));
        let remote = Remote::from_json(&body, "u1").unwrap();
        assert_eq!((remote.audiences(), remote.revision()), (&["buyers".to_owned()][..], Some("r1")));

        let mut p = Profile::default();
        p.record("Product Viewed", &slacks, T0);
        p.set_traits(json!({"city": "Köln"}).as_object().unwrap()).unwrap();
        p.counted_device("d1");
        p.set_remote(remote, T0 + 5);
        let s = json!("slacks-01");
        let f = Some(PropertyFilter { property: "productId", value: &s });
        assert_eq!(p.count("Product Viewed", Window::Week, f, T0), 2);
        assert_eq!(p.count("Product Viewed", Window::Hour, f, T0), 1);
        assert_eq!(p.count("Order Completed", Window::Lifetime, f, T0), 1);
        assert_eq!(p.first_seen("Product Viewed", None), Some(T0 - DAY));
        assert_eq!(p.last_seen("Product Viewed", None), Some(T0));
        assert_eq!(*p.merged_traits(), *json!({"plan": "gold", "city": "Köln"}).as_object().unwrap());
        // Stored and restored with it, and the device list too.
        let q = Profile::from_bytes(&p.to_bytes(), ProfileConfig::default()).unwrap();
        assert_eq!(q, Profile { changed: false, ..p.clone() });
        assert_eq!(q.remote().and_then(Remote::synced), Some(T0 + 5));
        assert_eq!(q.devices(), ["d1"]);
        // Another person: the collector's part goes, the device's stays.
        p.clear_remote();
        assert_eq!(p.count("Order Completed", Window::Lifetime, None, T0), 0);
        assert_eq!(p.count("Product Viewed", Window::Lifetime, None, T0), 1);
        // A corrupt answer is refused whole.
        let bad = br#"{"v":1,"userId":"u1","at":1,"events":{"e":{"c":[0,1,1,[],[]]}}}"#;
        assert!(matches!(Remote::from_json(bad, "u1"), Err(ProfileError::Corrupt(_))));
        assert!(matches!(
            Remote::from_json(br#"{"v":2,"userId":"u1","at":1}"#, "u1"),
            Err(ProfileError::UnknownVersion { found: 2 })
        ));
        for i in 0..10 {
            p.counted_device(&format!("d{i}"));
        }
        assert_eq!(p.devices().len(), MAX_DEVICES);
        assert_eq!(p.devices().last().map(String::as_str), Some("d9"));
    }

    #[test]
    fn view_answers_conditions() {
        use crate::logic::{Condition, Limits};
        let mut p = Profile::default();
        p.record("Product Viewed", &json!({"productId": "slacks-01"}), T0 - HOUR);
        p.record("Product Viewed", &json!({"productId": "slacks-01"}), T0);
        let c = Condition::compile(
            &json!({"and": [
                {">=": [{"count": ["Product Viewed", "7d", {"productId": "slacks-01"}]}, 2]},
                {"inAudience": "browsers"},
                {"==": [{"lastSeen": ["Product Viewed"]}, {"now": []}]}
            ]}),
            &Limits::default(),
        )
        .unwrap();
        assert!(c.matches(&Value::Null, &p.at(T0, &["browsers"])).unwrap());
        assert!(!c.matches(&Value::Null, &p.at(T0, &[])).unwrap());
        let empty = View { profile: None, now: T0, audiences: &["browsers"] };
        assert!(!c.matches(&Value::Null, &empty).unwrap());
    }
}
