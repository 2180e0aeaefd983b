//! Decisions: "which offers for this placement, for this person, now?",
//! answered synchronously from the compiled artifact and the on-device
//! profile. Time, the device id and random bytes are arguments, so the same
//! inputs always give the same decisions (and tests can replay them).
//!
//! A decision, per placement:
//!
//! 1. without `personalization` consent: the placement's default offer, and
//!    nothing else is read (no profile, no bucketing);
//! 2. the placement's experiment, if any, buckets the device
//!    ([`crate::bucket`]): held-out people get the default offer; people
//!    outside the traffic fraction see the normal ranking untagged; a
//!    variant remembered in the profile ([`Profile::assign`], done by the
//!    client for every tagged decision) is kept while the experiment still
//!    has it;
//! 3. audiences are evaluated once, in artifact order;
//! 4. offers are walked in rank order (priority, highest first, then offer
//!    id), the variant's offer first if it names one, and kept when the
//!    schedule is active in the person's timezone, the frequency cap has
//!    room, the condition holds and the suppression condition does not;
//!    a condition that fails to evaluate counts as false, a suppression
//!    that fails counts as true (when unsure, show less);
//! 5. up to `max` survive; none means the default offer.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::artifact::{self, Artifact, ArtifactError, Placement, DAYS, HOLDOUT};
use crate::bucket;
use crate::profile::Profile;
use crate::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no rules artifact is loaded yet")]
    NoArtifact,
    #[error("placement `{0}` is not in the rules artifact")]
    UnknownPlacement(String),
    #[error("decide context must be a JSON object: {0}")]
    InvalidContext(String),
}

impl DecideError {
    /// A stable code for hosts on every platform.
    pub fn kind(&self) -> &'static str {
        match self {
            DecideError::NoArtifact => "decide.notReady",
            DecideError::UnknownPlacement(_) => "decide.unknownPlacement",
            DecideError::InvalidContext(_) => "decide.invalidContext",
        }
    }
}

/// One call's inputs besides the placement and the profile.
#[derive(Debug, Clone, Copy)]
pub struct DecideOptions<'a> {
    /// Decisions wanted (slots in the placement).
    pub max: usize,
    /// Host context merged into the condition data: `page`, `app`,
    /// `consent`, ... (the keys `profile`, `time` and `audiences` are the engine's).
    pub context: Option<&'a Map<String, Value>>,
    pub now: Millis,
    /// The person's offset from UTC now, e.g. 60 for Berlin in winter; the
    /// binding computes it (`-new Date().getTimezoneOffset()`, `TimeZone`),
    /// so the core needs no timezone database.
    pub utc_offset_minutes: i32,
    /// `None` when no device id may be stored: no experiment then.
    pub device_id: Option<&'a str>,
    pub personalization: bool,
    /// Caller's random bytes, mixed into decision ids.
    pub random: [u8; 16],
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub decision_id: String,
    pub placement: String,
    pub offer_id: String,
    /// The artifact's JSON, verbatim; the SDK never interprets it.
    pub content: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    /// The placement's default offer (no consent, held out, or nothing qualified).
    pub is_default: bool,
}

/// Track events the client records for feedback (`displayed`, `clicked`):
/// through the normal queue, so they obey consent and batching like any event.
pub const DISPLAYED_EVENT: &str = "Offer Displayed";
pub const CLICKED_EVENT: &str = "Offer Clicked";

/// What feedback needs of a decision: the host hands back the decision it
/// got (its JSON on the web, a record on mobile), possibly after a restart,
/// so it is read back rather than looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    pub decision_id: String,
    pub placement: String,
    pub offer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default)]
    pub is_default: bool,
}

impl Feedback {
    /// Properties of the feedback events: enough for a collector to join
    /// impressions and clicks to offers and experiment variants.
    pub fn event_properties(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("decisionId".into(), self.decision_id.clone().into());
        m.insert("placement".into(), self.placement.clone().into());
        m.insert("offerId".into(), self.offer_id.clone().into());
        if let Some(e) = &self.experiment_id {
            m.insert("experimentId".into(), e.clone().into());
        }
        if let Some(v) = &self.variant_id {
            m.insert("variantId".into(), v.clone().into());
        }
        m.insert("isDefault".into(), self.is_default.into());
        m
    }
}

impl Decision {
    pub fn feedback(&self) -> Feedback {
        Feedback {
            decision_id: self.decision_id.clone(),
            placement: self.placement.clone(),
            offer_id: self.offer_id.clone(),
            experiment_id: self.experiment_id.clone(),
            variant_id: self.variant_id.clone(),
            is_default: self.is_default,
        }
    }

    pub fn event_properties(&self) -> Map<String, Value> {
        self.feedback().event_properties()
    }
}

/// The engine: the artifact in use and how new ones are checked.
#[derive(Debug, Default)]
pub struct Engine {
    artifact: Option<Artifact>,
    limits: artifact::Limits,
    public_key: Option<Vec<u8>>,
}

impl Engine {
    /// `public_key` (32 raw Ed25519 bytes) makes signatures mandatory.
    pub fn new(limits: artifact::Limits, public_key: Option<Vec<u8>>) -> Engine {
        Engine { artifact: None, limits, public_key }
    }

    pub fn artifact(&self) -> Option<&Artifact> {
        self.artifact.as_ref()
    }

    /// Loads a new artifact; on any error the previous one stays in use.
    pub fn load(&mut self, bytes: &[u8], signature: Option<&[u8]>) -> Result<(), ArtifactError> {
        let a = Artifact::load(bytes, signature, self.public_key.as_deref(), &self.limits)?;
        self.artifact = Some(a);
        Ok(())
    }

    pub fn decide(
        &self,
        placement: &str,
        opts: &DecideOptions<'_>,
        profile: &Profile,
    ) -> Result<Vec<Decision>, DecideError> {
        let mut all = self.decide_many(&[placement], opts, profile)?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Several placements for one person at once, in the order given. The
    /// condition data and the audiences are built once for all of them, so
    /// a page with many slots pays for them once. An unknown placement
    /// fails the whole call (nothing is decided).
    pub fn decide_many(
        &self,
        placements: &[&str],
        opts: &DecideOptions<'_>,
        profile: &Profile,
    ) -> Result<Vec<Vec<Decision>>, DecideError> {
        let a = self.artifact.as_ref().ok_or(DecideError::NoArtifact)?;
        let ps = placements
            .iter()
            .map(|&id| a.placement(id).ok_or_else(|| DecideError::UnknownPlacement(id.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        if opts.max == 0 {
            return Ok(ps.iter().map(|_| Vec::new()).collect());
        }
        if !opts.personalization {
            return Ok(ps.iter().map(|p| vec![default(p, opts, None)]).collect());
        }
        let mut shared = None;
        Ok(ps.into_iter().map(|p| place(a, p, opts, profile, &mut shared)).collect())
    }
}

impl Engine {
    /// The ids of the artifact's audiences `profile` is in at `now`, in
    /// artifact order, evaluated as `decide` does without a page context:
    /// the collector serves these with a person's profile.
    pub fn audiences(&self, profile: &Profile, now: Millis) -> Vec<String> {
        let Some(a) = &self.artifact else { return Vec::new() };
        let opts = DecideOptions {
            max: 1,
            context: None,
            now,
            utc_offset_minutes: 0,
            device_id: None,
            personalization: true,
            random: [0; 16],
        };
        shared_data(a, &opts, profile).audiences.into_iter().map(str::to_owned).collect()
    }
}

/// The data conditions see and the audiences the person is in: the same for
/// every placement of one call.
struct Shared<'a> {
    data: Value,
    audiences: Vec<&'a str>,
}

fn shared_data<'a>(a: &'a Artifact, opts: &DecideOptions<'_>, profile: &Profile) -> Shared<'a> {
    let mut data = opts.context.cloned().unwrap_or_default();
    data.insert("profile".into(), Value::Object(profile.merged_traits().into_owned()));
    data.insert("time".into(), time_data(opts.now, opts.utc_offset_minutes));
    let mut data = Value::Object(data);
    let mut audiences: Vec<&str> = Vec::new();
    // The collector's audiences (evaluated over the person's other devices)
    // count as well as the ones this device's own view reaches.
    let remote = profile.remote().map_or(&[][..], |r| r.audiences());
    for au in &a.audiences {
        let view = profile.at(opts.now, &audiences);
        if remote.contains(&au.id) || au.condition.matches(&data, &view).unwrap_or(false) {
            audiences.push(&au.id);
        }
    }
    if let Value::Object(m) = &mut data {
        m.insert("audiences".into(), audiences.iter().map(|&s| Value::from(s)).collect());
    }
    Shared { data, audiences }
}

/// One placement's decisions (personalised path); `shared` is built by the
/// first placement that needs it.
fn place<'a>(
    a: &'a Artifact,
    p: &Placement,
    opts: &DecideOptions<'_>,
    profile: &Profile,
    shared: &mut Option<Shared<'a>>,
) -> Vec<Decision> {
    let mut assigned = None;
    if let (Some(e), Some(device)) = (p.experiment.and_then(|i| a.experiments.get(i)), opts.device_id) {
        // A remembered variant wins over the hash, so re-weighting a
        // running experiment never moves people already in it.
        let sticky = profile.assignment(&e.id);
        if sticky == Some(HOLDOUT) {
            return vec![default(p, opts, Some((&e.id, HOLDOUT)))];
        }
        match sticky.and_then(|id| e.variants.iter().find(|v| v.id == id)) {
            Some(v) => assigned = Some((e, v)),
            None => {
                let b = bucket::bucket(a.scheme, &e.id, device);
                if b < e.holdout {
                    return vec![default(p, opts, Some((&e.id, HOLDOUT)))];
                }
                assigned = e
                    .variants
                    .iter()
                    .find(|v| v.start <= b && b < v.end)
                    .filter(|v| f64::from(b - v.start) < e.traffic * f64::from(v.end - v.start))
                    .map(|v| (e, v));
            }
        }
    }

    let Shared { data, audiences } = shared.get_or_insert_with(|| shared_data(a, opts, profile));
    let view = profile.at(opts.now, audiences);

    let promoted = assigned.and_then(|(_, v)| v.offer);
    let order = promoted.into_iter().chain(p.ranked.iter().copied().filter(|&i| Some(i) != promoted));
    let now = i64::try_from(opts.now).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for i in order {
        let Some(o) = a.offers.get(i) else { continue };
        let ok = o.schedule.as_ref().is_none_or(|s| s.active(now, opts.utc_offset_minutes))
            && o.cap.is_none_or(|c| profile.impressions(&o.id, c.per, opts.now) < u64::from(c.max))
            && o.condition.as_ref().is_none_or(|c| c.matches(data, &view).unwrap_or(false))
            && !o.suppress.as_ref().is_some_and(|c| c.matches(data, &view).unwrap_or(true));
        if !ok {
            continue;
        }
        let tag = assigned.map(|(e, v)| (e.id.as_str(), v.id.as_str()));
        out.push(decision(p, &o.id, o.content.clone(), tag, false, out.len(), opts));
        if out.len() >= opts.max {
            break;
        }
    }
    if out.is_empty() {
        return vec![default(p, opts, assigned.map(|(e, v)| (e.id.as_str(), v.id.as_str())))];
    }
    if let Some((_, v)) = assigned {
        if let Some(content) = &v.content {
            let target = v.offer.and_then(|i| a.offers.get(i)).map(|o| o.id.as_str());
            let hit = out.iter_mut().find(|d| target.is_none_or(|t| d.offer_id == t));
            if let Some(d) = hit {
                d.content = content.clone();
            }
        }
    }
    out
}

fn default(p: &Placement, opts: &DecideOptions<'_>, tag: Option<(&str, &str)>) -> Decision {
    decision(p, &p.default_id, p.default_content.clone(), tag, true, 0, opts)
}

fn decision(
    p: &Placement,
    offer: &str,
    content: Box<RawValue>,
    tag: Option<(&str, &str)>,
    is_default: bool,
    rank: usize,
    opts: &DecideOptions<'_>,
) -> Decision {
    Decision {
        decision_id: decision_id(opts, &p.id, offer, rank),
        placement: p.id.clone(),
        offer_id: offer.to_owned(),
        content,
        experiment_id: tag.map(|t| t.0.to_owned()),
        variant_id: tag.map(|t| t.1.to_owned()),
        is_default,
    }
}

/// A UUID-shaped id from the caller's random bytes and what was decided:
/// unique per call when the bytes are, identical when the inputs are.
fn decision_id(opts: &DecideOptions<'_>, placement: &str, offer: &str, rank: usize) -> String {
    let mut h = Sha256::new();
    h.update(opts.random);
    h.update(opts.now.to_le_bytes());
    h.update((rank as u64).to_le_bytes());
    for s in [placement, offer] {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.iter_mut().zip(d.iter()).for_each(|(o, i)| *o = *i);
    uuid::Builder::from_random_bytes(b).into_uuid().hyphenated().to_string()
}

/// `time` in the condition data: the person's local clock.
fn time_data(now: Millis, offset: i32) -> Value {
    const MIN: i64 = 60_000;
    let local = i64::try_from(now).unwrap_or(i64::MAX).saturating_add(i64::from(offset) * MIN);
    let minutes = local.rem_euclid(24 * 60 * MIN) / MIN;
    let day = usize::try_from((local.div_euclid(24 * 60 * MIN) + 3).rem_euclid(7)).unwrap_or(0);
    let mut m = Map::new();
    m.insert("now".into(), now.into());
    m.insert("hour".into(), (minutes / 60).into());
    m.insert("minute".into(), (minutes % 60).into());
    m.insert("dayOfWeek".into(), DAYS.get(day).copied().unwrap_or("mon").into());
    m.insert("utcOffsetMinutes".into(), offset.into());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileConfig;
    use serde_json::json;

    const T0: Millis = 1_795_512_600_000; // 2026-11-24T09:30:00Z, a Tuesday
    const HOUR: Millis = 3_600_000;

    /// The demo shop's rules: the slacks story and a hero-banner A/B test.
    fn shop() -> Value {
        json!({
            "version": 1,
            "revision": "shop-1",
            "bucketing": "murmur3_x86_32/v1",
            "placements": [
                {"id": "home", "default": {"id": "home-welcome", "content": {"title": "Welcome"}}},
                {"id": "hero", "default": {"id": "hero-default", "content": {"image": "default.jpg"}}}
            ],
            "audiences": [
                {"id": "slacks-browsers",
                 "condition": {">=": [{"count": ["Product Viewed", "30d", {"productId": "slacks-01"}]}, 2]}},
                {"id": "vip", "condition": {"==": [{"var": "profile.plan"}, "gold"]}}
            ],
            "offers": [
                {"id": "slacks-discount", "placement": "home", "priority": 10,
                 "content": {"title": "10% off the slacks you liked", "productId": "slacks-01"},
                 "condition": {"inAudience": "slacks-browsers"},
                 "suppress": {">": [{"count": ["Order Completed", "lifetime", {"productId": "slacks-01"}]}, 0]}},
                {"id": "vip-perk", "placement": "home", "priority": 5, "content": {"title": "Free shipping"},
                 "condition": {"inAudience": "vip"}, "cap": {"max": 2, "per": "day"}},
                {"id": "night-owl", "placement": "home", "priority": 20, "content": {"title": "Late deals"},
                 "schedule": {"timeOfDay": {"from": "22:00", "to": "06:00"}}},
                {"id": "hero-spring", "placement": "hero", "content": {"image": "spring.jpg"}},
                {"id": "hero-sale", "placement": "hero", "content": {"image": "sale.jpg"}, "priority": -1}
            ],
            "experiments": [
                {"id": "hero-test", "placement": "hero", "holdout": 0.1, "traffic": 1.0, "variants": [
                    {"id": "control", "weight": 1},
                    {"id": "sale", "weight": 1, "offer": "hero-sale"},
                    {"id": "new-copy", "weight": 1, "content": {"image": "spring-v2.jpg"}}
                ]}
            ]
        })
    }

    fn engine() -> Engine {
        let mut e = Engine::default();
        e.load(shop().to_string().as_bytes(), None).unwrap();
        e
    }

    fn opts(now: Millis) -> DecideOptions<'static> {
        DecideOptions {
            max: 1,
            context: None,
            now,
            utc_offset_minutes: 0,
            device_id: Some("device-1"),
            personalization: true,
            random: [0; 16],
        }
    }

    fn ids(d: &[Decision]) -> Vec<&str> {
        d.iter().map(|d| d.offer_id.as_str()).collect()
    }

    #[test]
    fn the_slacks_story() {
        let e = engine();
        let mut p = Profile::new(ProfileConfig::default());
        let slacks = json!({"productId": "slacks-01"});
        let home = |p: &Profile, now| e.decide("home", &opts(now), p).unwrap();
        assert_eq!(ids(&home(&p, T0)), ["home-welcome"]);
        assert!(home(&p, T0)[0].is_default);
        p.record("Product Viewed", &slacks, T0);
        assert_eq!(ids(&home(&p, T0 + 1)), ["home-welcome"], "one view is not enough");
        p.record("Product Viewed", &slacks, T0 + HOUR);
        let d = home(&p, T0 + 2 * HOUR);
        assert_eq!(ids(&d), ["slacks-discount"]);
        let content: Value = serde_json::from_str(d[0].content.get()).unwrap();
        assert_eq!(content, json!({"title": "10% off the slacks you liked", "productId": "slacks-01"}));
        assert!(!d[0].is_default && d[0].experiment_id.is_none());
        // Without personalization consent: the default, whatever the history.
        let no = DecideOptions { personalization: false, max: 3, ..opts(T0 + 2 * HOUR) };
        assert_eq!(ids(&e.decide("home", &no, &p).unwrap()), ["home-welcome"]);
        // She buys them: never offered again, however often she looks.
        p.record(
            "Order Completed",
            &json!({"products": [{"productId": "slacks-01", "price": 89}]}),
            T0 + 3 * HOUR,
        );
        for k in 0..5 {
            p.record("Product Viewed", &slacks, T0 + (4 + k) * HOUR);
        }
        for later in [T0 + 10 * HOUR, T0 + 40 * 24 * HOUR, T0 + 400 * 24 * HOUR] {
            assert!(!ids(&e.decide("home", &DecideOptions { max: 5, ..opts(later) }, &p).unwrap())
                .contains(&"slacks-discount"));
        }
    }

    #[test]
    fn audiences_for_the_collector_and_the_collectors_for_the_device() {
        let e = engine();
        let mut server = Profile::new(ProfileConfig::default());
        assert!(e.audiences(&server, T0).is_empty());
        assert!(Engine::default().audiences(&server, T0).is_empty(), "no artifact, no audiences");
        let slacks =
            json!({"type": "track", "event": "Product Viewed", "properties": {"productId": "slacks-01"}});
        server.learn_message(&slacks, T0);
        server.learn_message(&slacks, T0 + 1);
        server.learn_message(&json!({"type": "identify", "traits": {"plan": "gold"}}), T0 + 2);
        assert_eq!(e.audiences(&server, T0 + 3), ["slacks-browsers", "vip"]);
        // The device knows nothing itself; the collector's answer puts it in
        // both audiences (counts and traits merged, audiences joined).
        let body = server.to_remote_json("u1", T0 + 3, Some("shop-1"), &["vip".to_owned()]);
        let mut device = Profile::new(ProfileConfig::default());
        assert_eq!(
            ids(&e.decide("home", &DecideOptions { max: 3, ..opts(T0 + 4) }, &device).unwrap()),
            ["home-welcome"]
        );
        device.set_remote(crate::profile::Remote::from_json(&body, "u1").unwrap(), T0 + 4);
        let got = e.decide("home", &DecideOptions { max: 3, ..opts(T0 + 4) }, &device).unwrap();
        assert_eq!(ids(&got), ["slacks-discount", "vip-perk"]);
    }

    #[test]
    fn ranks_caps_schedules_and_context() {
        let e = engine();
        let mut p = Profile::default();
        p.set_traits(json!({"plan": "gold"}).as_object().unwrap()).unwrap();
        p.record("Product Viewed", &json!({"productId": "slacks-01"}), T0);
        p.record("Product Viewed", &json!({"productId": "slacks-01"}), T0);
        let three = DecideOptions { max: 3, ..opts(T0) };
        assert_eq!(ids(&e.decide("home", &three, &p).unwrap()), ["slacks-discount", "vip-perk"]);
        // 23:30 in Kiribati (UTC+14): the night offer ranks first there.
        let kiribati = DecideOptions { utc_offset_minutes: 14 * 60, ..three };
        assert_eq!(
            ids(&e.decide("home", &kiribati, &p).unwrap()),
            ["night-owl", "slacks-discount", "vip-perk"]
        );
        let two = DecideOptions { max: 2, ..kiribati };
        assert_eq!(e.decide("home", &two, &p).unwrap().len(), 2);
        // Two impressions per day, then the cap holds until a day has passed.
        p.record_impression("vip-perk", T0);
        p.record_impression("vip-perk", T0 + HOUR);
        assert_eq!(
            ids(&e.decide("home", &DecideOptions { now: T0 + 2 * HOUR, ..three }, &p).unwrap()),
            ["slacks-discount"]
        );
        let next_day = DecideOptions { now: T0 + 26 * HOUR, ..three };
        assert!(ids(&e.decide("home", &next_day, &p).unwrap()).contains(&"vip-perk"));
        assert_eq!(
            e.decide("nowhere", &three, &p).unwrap_err(),
            DecideError::UnknownPlacement("nowhere".into())
        );
        assert!(e.decide("home", &DecideOptions { max: 0, ..three }, &p).unwrap().is_empty());
        assert_eq!(Engine::default().decide("home", &three, &p).unwrap_err(), DecideError::NoArtifact);
        // Host context reaches conditions; `time` is the engine's.
        let mut e2 = Engine::default();
        let mut doc = shop();
        doc["offers"][1]["condition"] = json!({"and": [
            {"==": [{"var": "page.path"}, "/"]}, {"==": [{"var": "time.dayOfWeek"}, "tue"]}, {"==": [{"var": "time.hour"}, 9]}
        ]});
        e2.load(doc.to_string().as_bytes(), None).unwrap();
        let ctx = json!({"page": {"path": "/"}, "time": "ignored"});
        let with = DecideOptions { context: ctx.as_object(), ..three };
        assert_eq!(ids(&e2.decide("home", &with, &Profile::default()).unwrap()), ["vip-perk"]);
        let ctx = json!({"page": {"path": "/cart"}});
        let with = DecideOptions { context: ctx.as_object(), ..three };
        assert_eq!(ids(&e2.decide("home", &with, &Profile::default()).unwrap()), ["home-welcome"]);
    }

    #[test]
    fn experiments_tag_promote_and_override() {
        let e = engine();
        let p = Profile::default();
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..400 {
            let device = format!("device-{i}");
            let o = DecideOptions { device_id: Some(&device), ..opts(T0) };
            let d = e.decide("hero", &o, &p).unwrap();
            assert_eq!(d.len(), 1);
            let d = &d[0];
            assert_eq!(d.experiment_id.as_deref(), Some("hero-test"));
            let v = d.variant_id.clone().unwrap();
            let expected = match v.as_str() {
                "holdout" => ("hero-default", r#"{"image":"default.jpg"}"#),
                "control" => ("hero-spring", r#"{"image":"spring.jpg"}"#),
                "sale" => ("hero-sale", r#"{"image":"sale.jpg"}"#),
                "new-copy" => ("hero-spring", r#"{"image":"spring-v2.jpg"}"#),
                other => panic!("{other}"),
            };
            assert_eq!((d.offer_id.as_str(), d.content.get()), expected, "{v}");
            // Sticky: the same device gets the same variant on a reloaded engine.
            let again = engine().decide("hero", &o, &p).unwrap();
            assert_eq!(again[0].variant_id.as_deref(), Some(v.as_str()));
            *seen.entry(v).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        // No device id (no storage consent): no experiment, normal ranking.
        let d = e.decide("hero", &DecideOptions { device_id: None, ..opts(T0) }, &p).unwrap();
        assert_eq!((d[0].offer_id.as_str(), d[0].experiment_id.as_deref()), ("hero-spring", None));
    }

    #[test]
    fn deterministic_ids_and_last_good_artifact() {
        let e = engine();
        let p = Profile::default();
        let o = DecideOptions { max: 3, ..opts(T0 + 13 * HOUR) };
        let a = e.decide("home", &o, &p).unwrap();
        let b = e.decide("home", &o, &p).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let c = e.decide("home", &DecideOptions { random: [1; 16], ..o }, &p).unwrap();
        assert_ne!(a[0].decision_id, c[0].decision_id);
        assert_eq!(a[0].decision_id.len(), 36);
        let json = serde_json::to_value(&a[0]).unwrap();
        assert_eq!(json["content"], json!({"title": "Late deals"}));
        assert_eq!(json["offerId"], "night-owl");
        let props = Value::Object(a[0].event_properties());
        let want = json!({"decisionId": a[0].decision_id, "placement": "home", "offerId": "night-owl", "isDefault": false});
        assert_eq!(props, want);
        let hero = e.decide("hero", &opts(T0), &p).unwrap();
        let props = hero[0].event_properties();
        assert_eq!(props["experimentId"], "hero-test");
        assert_eq!(props["variantId"], json!(hero[0].variant_id));

        let mut e = engine();
        assert!(matches!(e.load(b"{\"version\":9}", None), Err(ArtifactError::UnknownVersion { found: 9 })));
        assert_eq!(e.artifact().unwrap().revision.as_deref(), Some("shop-1"), "last good stays");
        let mut signed = Engine::new(artifact::Limits::default(), Some(vec![0; 32]));
        assert!(matches!(signed.load(shop().to_string().as_bytes(), None), Err(ArtifactError::Signature(_))));
        assert!(signed.artifact().is_none());
    }
}
