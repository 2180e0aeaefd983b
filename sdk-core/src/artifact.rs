//! The rules artifact (format v1, `docs/artifact.md`): placements, offers,
//! audiences and experiments, parsed from the exact bytes the server sent
//! and compiled once, so a decision only evaluates what was checked here.
//!
//! Everything an artifact can get wrong is found at load time and named in a
//! typed [`ArtifactError`]: a binding keeps its last good artifact and
//! reports the error, and a bad artifact never reaches a decision. Nothing
//! in this module panics on input.

use std::collections::BTreeSet;
use std::time::UNIX_EPOCH;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::bucket::{Scheme, BUCKETS};
use crate::logic::{self, Condition, LogicError, Window};

/// The format version this SDK reads. A reader never guesses at another one.
pub const VERSION: u64 = 1;

/// Variant id a held-out person's decisions carry (reserved in artifacts).
pub const HOLDOUT: &str = "holdout";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact is {bytes} bytes, over the {limit}-byte limit")]
    TooLarge { bytes: usize, limit: usize },
    #[error("artifact is nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("artifact is not valid JSON: {0}")]
    Malformed(String),
    #[error("artifact has no `version`")]
    MissingVersion,
    #[error("artifact has version {found}; this SDK reads version {VERSION}")]
    UnknownVersion { found: u64 },
    #[error("unknown bucketing scheme `{0}` (this SDK knows murmur3_x86_32/v1)")]
    UnknownBucketing(String),
    /// A field is missing, has the wrong type, or is not part of the format.
    #[error("artifact does not match format v{VERSION}: {0}")]
    Invalid(String),
    #[error("artifact has more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    #[error("duplicate {what} id `{id}`")]
    DuplicateId { what: &'static str, id: String },
    #[error("{item} refers to unknown placement `{placement}`")]
    UnknownPlacement { item: String, placement: String },
    #[error("{item} refers to unknown offer `{offer}`")]
    UnknownOffer { item: String, offer: String },
    #[error("{item} refers to unknown audience `{audience}`")]
    UnknownAudience { item: String, audience: String },
    #[error("{item} uses unknown operator `{operator}`")]
    UnknownOperator { item: String, operator: String },
    #[error("{item}: {source}")]
    Condition { item: String, source: LogicError },
    #[error("offer `{offer}` has a bad schedule: {reason}")]
    BadSchedule { offer: String, reason: String },
    #[error("offer `{offer}` has a bad cap: {reason}")]
    BadCap { offer: String, reason: &'static str },
    #[error("experiment `{experiment}`: {reason}")]
    BadExperiment { experiment: String, reason: String },
    /// Unsigned or badly signed while a public key is configured.
    #[error("artifact signature rejected: {0}")]
    Signature(&'static str),
}

/// Bounds on what an artifact may ask of the device; the defaults leave room
/// for thousands of offers while keeping a load in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    /// JSON nesting of the whole document; below serde_json's own 128 so the
    /// error says what happened.
    pub max_depth: usize,
    pub max_offers: usize,
    pub max_audiences: usize,
    pub max_experiments: usize,
    pub logic: logic::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 2 * 1024 * 1024,
            max_depth: 100,
            max_offers: 5_000,
            max_audiences: 500,
            max_experiments: 200,
            logic: logic::Limits::default(),
        }
    }
}

/// Checks an Ed25519 signature over the exact artifact bytes. `signature`
/// is the 64 raw bytes, `public_key` the 32 raw bytes; `verify_strict`
/// refuses the malleable encodings plain `verify` accepts.
pub fn verify(bytes: &[u8], signature: &[u8], public_key: &[u8]) -> Result<(), ArtifactError> {
    let key: &[u8; 32] =
        public_key.try_into().map_err(|_| ArtifactError::Signature("key is not 32 bytes"))?;
    let key =
        VerifyingKey::from_bytes(key).map_err(|_| ArtifactError::Signature("key is not a valid point"))?;
    let sig = Signature::from_slice(signature)
        .map_err(|_| ArtifactError::Signature("signature is not 64 bytes"))?;
    key.verify_strict(bytes, &sig).map_err(|_| ArtifactError::Signature("signature does not match"))
}

// --- the compiled artifact ----------------------------------------------------------

#[derive(Debug)]
pub struct Artifact {
    pub revision: Option<String>,
    pub(crate) scheme: Scheme,
    /// Sorted by id.
    pub(crate) placements: Vec<Placement>,
    pub(crate) offers: Vec<Offer>,
    /// In artifact order: an audience may only use the ones before it.
    pub(crate) audiences: Vec<Audience>,
    pub(crate) experiments: Vec<Experiment>,
}

#[derive(Debug)]
pub(crate) struct Placement {
    pub id: String,
    pub default_id: String,
    pub default_content: Box<RawValue>,
    /// Offer indices by priority (highest first), then offer id: the ranking
    /// is static, so a decision walks it and stops after N survivors.
    pub ranked: Vec<usize>,
    pub experiment: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct Offer {
    pub id: String,
    pub priority: i64,
    pub content: Box<RawValue>,
    pub condition: Option<Condition>,
    pub schedule: Option<Schedule>,
    pub cap: Option<Cap>,
    pub suppress: Option<Condition>,
}

#[derive(Debug)]
pub(crate) struct Audience {
    pub id: String,
    pub condition: Condition,
}

#[derive(Debug)]
pub(crate) struct Experiment {
    pub id: String,
    /// Buckets `0..holdout` are held out.
    pub holdout: u32,
    pub traffic: f64,
    pub variants: Vec<Variant>,
}

#[derive(Debug)]
pub(crate) struct Variant {
    pub id: String,
    /// Bucket range `start..end` of this variant.
    pub start: u32,
    pub end: u32,
    pub offer: Option<usize>,
    pub content: Option<Box<RawValue>>,
}

/// A schedule bound: an absolute instant, or a wall-clock time in the
/// person's timezone (written without an offset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound {
    Utc(i64),
    Local(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schedule {
    pub start: Option<Bound>,
    pub end: Option<Bound>,
    /// Bit 0 = Monday .. bit 6 = Sunday.
    pub days: u8,
    /// Minutes after local midnight, `from..to`; wraps midnight when from > to.
    pub time_of_day: Option<(u16, u16)>,
}

pub(crate) const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

impl Schedule {
    /// Whether the offer runs at `now` for a person `utc_offset_minutes` east of UTC.
    pub fn active(&self, now: i64, utc_offset_minutes: i32) -> bool {
        let local = now.saturating_add(i64::from(utc_offset_minutes) * MINUTE);
        let at = |b: Bound| match b {
            Bound::Utc(t) => (now, t),
            Bound::Local(t) => (local, t),
        };
        if self.start.map(at).is_some_and(|(n, t)| n < t) || self.end.map(at).is_some_and(|(n, t)| n >= t) {
            return false;
        }
        // 1970-01-01 was a Thursday (index 3).
        let day = (local.div_euclid(DAY) + 3).rem_euclid(7);
        if self.days & (1 << day) == 0 {
            return false;
        }
        match self.time_of_day {
            None => true,
            Some((from, to)) => {
                let m = local.rem_euclid(DAY) / MINUTE;
                let (from, to) = (i64::from(from), i64::from(to));
                if from < to {
                    from <= m && m < to
                } else {
                    m >= from || m < to
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cap {
    pub max: u32,
    pub per: Window,
}

impl Artifact {
    /// Offer ids of a placement in rank order; `None` for an unknown placement.
    pub fn ranked_offers(&self, placement: &str) -> Option<Vec<&str>> {
        let p = self.placement(placement)?;
        Some(p.ranked.iter().filter_map(|&i| self.offers.get(i)).map(|o| o.id.as_str()).collect())
    }

    pub fn placement_ids(&self) -> impl Iterator<Item = &str> {
        self.placements.iter().map(|p| p.id.as_str())
    }

    pub(crate) fn placement(&self, id: &str) -> Option<&Placement> {
        self.placements.binary_search_by(|p| p.id.as_str().cmp(id)).ok().and_then(|i| self.placements.get(i))
    }

    /// Parses and compiles artifact bytes, after checking the signature when
    /// a public key is configured: without a key, a signature is ignored;
    /// with one, a missing or wrong signature rejects the artifact.
    pub fn load(
        bytes: &[u8],
        signature: Option<&[u8]>,
        public_key: Option<&[u8]>,
        limits: &Limits,
    ) -> Result<Artifact, ArtifactError> {
        if let Some(key) = public_key {
            let sig = signature.ok_or(ArtifactError::Signature("artifact is unsigned"))?;
            verify(bytes, sig, key)?;
        }
        Artifact::parse(bytes, limits)
    }

    /// Parses and compiles artifact bytes (no signature check).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Artifact, ArtifactError> {
        if bytes.len() > limits.max_bytes {
            return Err(ArtifactError::TooLarge { bytes: bytes.len(), limit: limits.max_bytes });
        }
        check_depth(bytes, limits.max_depth)?;
        // Parse once; only when that fails, look at version and scheme to say why.
        let raw: RawArtifact = match serde_json::from_slice(bytes) {
            Ok(raw) => raw,
            Err(e) => {
                let probe: Probe =
                    serde_json::from_slice(bytes).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
                check_version(probe.version)?;
                return Err(match probe.bucketing.as_deref() {
                    Some(b) if b != "murmur3_x86_32/v1" => ArtifactError::UnknownBucketing(b.to_owned()),
                    _ => ArtifactError::Invalid(e.to_string()),
                });
            }
        };
        check_version(Some(raw.version))?;
        compile(raw, limits)
    }
}

fn check_version(v: Option<u64>) -> Result<(), ArtifactError> {
    match v {
        None => Err(ArtifactError::MissingVersion),
        Some(v) if v != VERSION => Err(ArtifactError::UnknownVersion { found: v }),
        Some(_) => Ok(()),
    }
}

/// Counts bracket nesting outside strings, so a hostile document fails with
/// `TooDeep` before any parser recurses into it.
fn check_depth(bytes: &[u8], limit: usize) -> Result<(), ArtifactError> {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ArtifactError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

// --- the wire format ----------------------------------------------------------------

#[derive(Deserialize)]
struct Probe {
    version: Option<u64>,
    bucketing: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    version: u64,
    #[serde(default)]
    revision: Option<String>,
    bucketing: Scheme,
    placements: Vec<RawPlacement>,
    #[serde(default)]
    offers: Vec<RawOffer>,
    #[serde(default)]
    audiences: Vec<RawAudience>,
    #[serde(default)]
    experiments: Vec<RawExperiment>,
    /// Free-form notes for tools and people; never read by the SDK.
    #[serde(default)]
    #[allow(dead_code)]
    meta: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlacement {
    id: String,
    default: RawDefault,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    id: String,
    content: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffer {
    id: String,
    placement: String,
    content: Box<RawValue>,
    #[serde(default)]
    priority: i64,
    #[serde(default, deserialize_with = "present")]
    condition: Option<Value>,
    #[serde(default)]
    schedule: Option<RawSchedule>,
    #[serde(default)]
    cap: Option<RawCap>,
    #[serde(default, deserialize_with = "present")]
    suppress: Option<Value>,
}

/// A field that is present is `Some` even when it is `null`: a `null`
/// condition is JSON Logic's falsy `null` (never eligible, never
/// suppressed), and a `null` variant content replaces the offer's content
/// with `null`. Only a missing field means "none".
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSchedule {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    days_of_week: Option<Vec<String>>,
    #[serde(default)]
    time_of_day: Option<RawTimeOfDay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeOfDay {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    max: u32,
    per: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudience {
    id: String,
    condition: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    id: String,
    placement: String,
    #[serde(default = "one")]
    traffic: f64,
    #[serde(default)]
    holdout: f64,
    variants: Vec<RawVariant>,
}

fn one() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    id: String,
    weight: f64,
    #[serde(default)]
    offer: Option<String>,
    #[serde(default, deserialize_with = "present")]
    content: Option<Box<RawValue>>,
}

// --- compilation --------------------------------------------------------------------

fn compile(raw: RawArtifact, limits: &Limits) -> Result<Artifact, ArtifactError> {
    let too_many = |what, n: usize, limit: usize| {
        if n > limit {
            Err(ArtifactError::TooMany { what, limit })
        } else {
            Ok(())
        }
    };
    too_many("offers", raw.offers.len(), limits.max_offers)?;
    too_many("audiences", raw.audiences.len(), limits.max_audiences)?;
    too_many("experiments", raw.experiments.len(), limits.max_experiments)?;

    let mut placements = Vec::with_capacity(raw.placements.len());
    for p in raw.placements {
        placements.push(Placement {
            id: p.id,
            default_id: p.default.id,
            default_content: p.default.content,
            ranked: Vec::new(),
            experiment: None,
        });
    }
    placements.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = placements.windows(2).find(|w| w.first().map(|p| &p.id) == w.get(1).map(|p| &p.id)) {
        let id = w.first().map(|p| p.id.clone()).unwrap_or_default();
        return Err(ArtifactError::DuplicateId { what: "placement", id });
    }
    let placement_index = |placements: &[Placement], id: &str, item: String| {
        placements
            .binary_search_by(|p| p.id.as_str().cmp(id))
            .map_err(|_| ArtifactError::UnknownPlacement { item, placement: id.to_owned() })
    };

    // Audiences first: offers may only name audiences that exist, and an
    // audience only the ones before it, so evaluation order is the list order.
    let mut audiences: Vec<Audience> = Vec::with_capacity(raw.audiences.len());
    for a in raw.audiences {
        let item = format!("audience `{}`", a.id);
        if audiences.iter().any(|x| x.id == a.id) {
            return Err(ArtifactError::DuplicateId { what: "audience", id: a.id });
        }
        check_audiences(&a.condition, &item, &audiences)?;
        let condition = condition(&a.condition, &item, &limits.logic)?;
        audiences.push(Audience { id: a.id, condition });
    }

    let mut offers: Vec<Offer> = Vec::with_capacity(raw.offers.len());
    let mut offer_placement = Vec::with_capacity(raw.offers.len());
    let mut seen = BTreeSet::new();
    for o in raw.offers {
        if !seen.insert(o.id.clone()) {
            return Err(ArtifactError::DuplicateId { what: "offer", id: o.id });
        }
        let p = placement_index(&placements, &o.placement, format!("offer `{}`", o.id))?;
        let compile_opt = |v: Option<Value>, what: &str| -> Result<Option<Condition>, ArtifactError> {
            v.map(|v| {
                let item = format!("offer `{}` {what}", o.id);
                check_audiences(&v, &item, &audiences)?;
                condition(&v, &item, &limits.logic)
            })
            .transpose()
        };
        let cond = compile_opt(o.condition, "condition")?;
        let suppress = compile_opt(o.suppress, "suppress")?;
        let schedule = o.schedule.map(|s| schedule(s, &o.id)).transpose()?;
        let cap = o.cap.map(|c| cap(c, &o.id)).transpose()?;
        offer_placement.push(p);
        offers.push(Offer {
            id: o.id,
            priority: o.priority,
            content: o.content,
            condition: cond,
            schedule,
            cap,
            suppress,
        });
    }
    for (i, &p) in offer_placement.iter().enumerate() {
        if let Some(pl) = placements.get_mut(p) {
            pl.ranked.push(i);
        }
    }
    for pl in &mut placements {
        pl.ranked.sort_by(|&a, &b| match (offers.get(a), offers.get(b)) {
            (Some(a), Some(b)) => b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)),
            _ => std::cmp::Ordering::Equal,
        });
    }

    let mut experiments = Vec::with_capacity(raw.experiments.len());
    for e in raw.experiments {
        if experiments.iter().any(|x: &Experiment| x.id == e.id) {
            return Err(ArtifactError::DuplicateId { what: "experiment", id: e.id });
        }
        let p = placement_index(&placements, &e.placement, format!("experiment `{}`", e.id))?;
        let bad = |reason: String| ArtifactError::BadExperiment { experiment: e.id.clone(), reason };
        let fraction = |x: f64| (0.0..=1.0).contains(&x);
        if !fraction(e.traffic) || !fraction(e.holdout) {
            return Err(bad("traffic and holdout are fractions between 0 and 1".into()));
        }
        if e.variants.is_empty() {
            return Err(bad("has no variants".into()));
        }
        let total: f64 = e.variants.iter().map(|v| v.weight).sum();
        if e.variants.iter().any(|v| !(v.weight >= 0.0 && v.weight.is_finite()))
            || !(total > 0.0 && total.is_finite())
        {
            return Err(bad("variant weights must be non-negative and not all zero".into()));
        }
        // Rounded to whole buckets; `as` saturates, and the range is checked above.
        let holdout = ((e.holdout * f64::from(BUCKETS)).round() as u32).min(BUCKETS);
        let rest = f64::from(BUCKETS - holdout);
        let mut variants: Vec<Variant> = Vec::with_capacity(e.variants.len());
        let (mut acc, mut start) = (0.0, holdout);
        for v in e.variants {
            if v.id == HOLDOUT || variants.iter().any(|x| x.id == v.id) {
                return Err(bad(format!("variant id `{}` is reserved or repeated", v.id)));
            }
            acc += v.weight;
            let end = (holdout + ((acc / total * rest).round() as u32)).min(BUCKETS);
            let offer = match v.offer {
                None => None,
                Some(id) => {
                    let i = offers.iter().position(|o| o.id == id).ok_or_else(|| {
                        ArtifactError::UnknownOffer {
                            item: format!("experiment `{}` variant `{}`", e.id, v.id),
                            offer: id.clone(),
                        }
                    })?;
                    if offer_placement.get(i) != Some(&p) {
                        return Err(bad(format!(
                            "offer `{id}` of variant `{}` is in another placement",
                            v.id
                        )));
                    }
                    Some(i)
                }
            };
            variants.push(Variant { id: v.id, start, end, offer, content: v.content });
            start = end;
        }
        let idx = experiments.len();
        match placements.get_mut(p) {
            Some(pl) if pl.experiment.is_some() => {
                return Err(bad(format!("placement `{}` already has an experiment", pl.id)))
            }
            Some(pl) => pl.experiment = Some(idx),
            None => {}
        }
        experiments.push(Experiment { id: e.id, holdout, traffic: e.traffic, variants });
    }

    Ok(Artifact { revision: raw.revision, scheme: raw.bucketing, placements, offers, audiences, experiments })
}

fn condition(v: &Value, item: &str, limits: &logic::Limits) -> Result<Condition, ArtifactError> {
    Condition::compile(v, limits).map_err(|e| match e {
        LogicError::UnknownOperator(operator) => {
            ArtifactError::UnknownOperator { item: item.to_owned(), operator }
        }
        source => ArtifactError::Condition { item: item.to_owned(), source },
    })
}

/// Every literal `{"inAudience": "id"}` must name a known (earlier) audience;
/// a computed id is looked up at decision time and is simply false if unknown.
fn check_audiences(v: &Value, item: &str, known: &[Audience]) -> Result<(), ArtifactError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| check_audiences(x, item, known)),
        Value::Object(m) => {
            for (k, arg) in m {
                if k == "preserve" {
                    continue;
                }
                if k == "inAudience" {
                    let lit = match arg {
                        Value::String(s) => Some(s),
                        Value::Array(a) => match a.as_slice() {
                            [Value::String(s)] => Some(s),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(id) = lit.filter(|id| !known.iter().any(|a| &a.id == *id)) {
                        return Err(ArtifactError::UnknownAudience {
                            item: item.to_owned(),
                            audience: id.clone(),
                        });
                    }
                }
                check_audiences(arg, item, known)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn schedule(s: RawSchedule, offer: &str) -> Result<Schedule, ArtifactError> {
    let bad = |reason: String| ArtifactError::BadSchedule { offer: offer.to_owned(), reason };
    let bound = |t: Option<String>| {
        t.map(|t| parse_bound(&t).ok_or_else(|| bad(format!("`{t}` is not an RFC 3339 date-time"))))
            .transpose()
    };
    let start = bound(s.start)?;
    let end = bound(s.end)?;
    if let (Some(a), Some(b)) = (start, end) {
        let key = |b: Bound| match b {
            Bound::Utc(t) | Bound::Local(t) => t,
        };
        // Mixed kinds differ by at most a day of offsets; compare like kinds only.
        if std::mem::discriminant(&a) == std::mem::discriminant(&b) && key(a) >= key(b) {
            return Err(bad("start is not before end".into()));
        }
    }
    let days = match s.days_of_week {
        None => 0x7f,
        Some(list) => {
            let mut bits = 0u8;
            for d in &list {
                let i = DAYS.iter().position(|x| x.eq_ignore_ascii_case(d)).ok_or_else(|| {
                    bad(format!("unknown day `{d}` (expected mon, tue, wed, thu, fri, sat or sun)"))
                })?;
                bits |= 1 << i;
            }
            if bits == 0 {
                return Err(bad("daysOfWeek is empty".into()));
            }
            bits
        }
    };
    let time_of_day = match s.time_of_day {
        None => None,
        Some(t) => {
            let hm = |x: &str| parse_hm(x).ok_or_else(|| bad(format!("`{x}` is not a time HH:MM")));
            let (from, to) = (hm(&t.from)?, hm(&t.to)?);
            if from == to {
                return Err(bad("timeOfDay from and to are equal".into()));
            }
            Some((from, to))
        }
    };
    Ok(Schedule { start, end, days, time_of_day })
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn parse_hm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// RFC 3339 date-time: with `Z` or an offset it is an instant; without
/// either it is wall-clock time in the person's timezone.
pub(crate) fn parse_bound(s: &str) -> Option<Bound> {
    let weak = |t: &str| -> Option<i64> {
        // Only `T` or a space may separate date and time; humantime's weak
        // parser also accepts a missing `Z`, which is what a local time is.
        let st = humantime::parse_rfc3339_weak(t).ok()?;
        let ms = st.duration_since(UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    };
    if let Some(rest) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return weak(rest).map(Bound::Utc);
    }
    let n = s.len();
    let tail = s.get(n.checked_sub(6)?..)?;
    let tb = tail.as_bytes();
    if n > 16 && matches!(tb.first(), Some(b'+' | b'-')) && tb.get(3) == Some(&b':') {
        let sign = if tb.first() == Some(&b'-') { -1 } else { 1 };
        let minutes = i64::from(parse_hm(tail.get(1..)?)?);
        let local = weak(s.get(..n - 6)?)?;
        return Some(Bound::Utc(local - sign * minutes * MINUTE));
    }
    weak(s).map(Bound::Local)
}

fn cap(c: RawCap, offer: &str) -> Result<Cap, ArtifactError> {
    let bad = |reason| ArtifactError::BadCap { offer: offer.to_owned(), reason };
    let per = match c.per.as_str() {
        "hour" => Window::Hour,
        "day" => Window::Day,
        "week" => Window::Week,
        "lifetime" => Window::Lifetime,
        _ => return Err(bad("`per` must be hour, day, week or lifetime")),
    };
    if c.max == 0 {
        return Err(bad("`max` must be at least 1 (remove the offer to never show it)"));
    }
    Ok(Cap { max: c.max, per })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    fn base() -> Value {
        json!({
            "version": 1,
            "bucketing": "murmur3_x86_32/v1",
            "placements": [{"id": "home", "default": {"id": "home-default", "content": {"title": "Welcome"}}}],
            "audiences": [{"id": "viewers", "condition": {">": [{"count": ["Product Viewed", "7d"]}, 0]}}],
            "offers": [
                {"id": "b", "placement": "home", "priority": 5, "content": {"x": 1}},
                {"id": "a", "placement": "home", "priority": 5, "content": "<b>not html</b>",
                 "condition": {"inAudience": "viewers"}},
                {"id": "c", "placement": "home", "priority": 9, "content": [1, 2],
                 "cap": {"max": 2, "per": "day"},
                 "schedule": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00",
                              "daysOfWeek": ["mon", "sat"], "timeOfDay": {"from": "22:00", "to": "02:00"}}}
            ],
            "experiments": [{"id": "hero", "placement": "home", "holdout": 0.1, "traffic": 0.5,
                             "variants": [{"id": "control", "weight": 1}, {"id": "b", "weight": 3, "offer": "b"}]}]
        })
    }

    fn parse(v: &Value) -> Result<Artifact, ArtifactError> {
        Artifact::parse(v.to_string().as_bytes(), &Limits::default())
    }

    fn with(path: &str, v: Value) -> Result<Artifact, ArtifactError> {
        let mut doc = base();
        let (parent, key) = path.rsplit_once('/').unwrap();
        match doc.pointer_mut(parent).unwrap() {
            Value::Object(m) => drop(m.insert(key.to_owned(), v)),
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = v,
            _ => unreachable!(),
        }
        parse(&doc)
    }

    #[test]
    fn compiles_ranks_and_lays_out_variants() {
        let a = parse(&base()).unwrap();
        assert_eq!(a.ranked_offers("home").unwrap(), ["c", "a", "b"]);
        assert!(a.ranked_offers("nope").is_none());
        let home = a.placement("home").unwrap();
        assert_eq!(home.default_content.get(), r#"{"title":"Welcome"}"#);
        let e = &a.experiments[home.experiment.unwrap()];
        assert_eq!(e.holdout, 1000);
        assert_eq!((e.variants[0].start, e.variants[0].end), (1000, 3250));
        assert_eq!((e.variants[1].start, e.variants[1].end), (3250, 10_000));
        assert_eq!(a.offers[1].content.get(), r#""<b>not html</b>""#);
        let c = &a.offers[2];
        assert_eq!(c.cap, Some(Cap { max: 2, per: Window::Day }));
        let s = c.schedule.as_ref().unwrap();
        assert_eq!(s.days, 0b010_0001);
        assert_eq!(s.time_of_day, Some((22 * 60, 120)));
        assert!(matches!(s.end, Some(Bound::Local(_))));
    }

    #[test]
    fn null_is_json_logic_null_not_absence() {
        let a = with("/offers/0/condition", Value::Null).unwrap();
        let b = a.offers.iter().find(|o| o.id == "b").unwrap();
        assert!(b.condition.is_some(), "a null condition is a condition (falsy), not `always`");
        let a = with("/experiments/0/variants/0/content", Value::Null).unwrap();
        let v = &a.experiments[0].variants[0];
        assert_eq!(v.content.as_ref().map(|c| c.get()), Some("null"));
    }

    #[test]
    fn content_is_kept_byte_for_byte() {
        let text =
            br#"{"version":1,"bucketing":"murmur3_x86_32/v1","placements":[{"id":"p","default":{"id":"d",
            "content": { "z" : 1,  "a":"<script>x</script>\u00e9", "n": 1.50 }}}]}"#;
        let a = Artifact::parse(text, &Limits::default()).unwrap();
        let p = a.placement("p").unwrap();
        assert_eq!(p.default_content.get(), r#"{ "z" : 1,  "a":"<script>x</script>\u00e9", "n": 1.50 }"#);
        assert_eq!(a.placement_ids().collect::<Vec<_>>(), ["p"]);
    }

    #[test]
    fn schedules_follow_the_persons_clock() {
        let s = schedule(
            RawSchedule {
                start: Some("2026-11-23T00:00:00+01:00".into()),
                end: Some("2026-11-30T00:00:00".into()),
                days_of_week: Some(vec!["Mon".into()]),
                time_of_day: Some(RawTimeOfDay { from: "09:00".into(), to: "17:00".into() }),
            },
            "o",
        )
        .unwrap();
        // 2026-11-23 is a Monday; 08:30Z is 09:30 in Berlin (+60) but 08:30 in London.
        let t = |iso: &str| match parse_bound(iso).unwrap() {
            Bound::Utc(t) => t,
            Bound::Local(_) => unreachable!(),
        };
        let at = t("2026-11-23T08:30:00Z");
        assert!(s.active(at, 60));
        assert!(!s.active(at, 0));
        // Tuesday: not a listed day.
        assert!(!s.active(t("2026-11-24T10:00:00Z"), 0));
        // Before the start instant (23:30Z on the 22nd is 00:30 on the 23rd in Berlin, but the
        // start is 2026-11-22T23:00Z; 22:30Z is before it).
        assert!(!s.active(t("2026-11-22T22:30:00Z"), 60 * 11));
        // The end is local: 2026-11-30 00:00 in each person's zone; Monday the 30th is out.
        assert!(!s.active(t("2026-11-30T10:00:00Z"), 0));
        let wrap = Schedule { start: None, end: None, days: 0x7f, time_of_day: Some((22 * 60, 2 * 60)) };
        assert!(wrap.active(t("2026-11-24T23:00:00Z"), 0));
        assert!(wrap.active(t("2026-11-24T01:59:00Z"), 0));
        assert!(!wrap.active(t("2026-11-24T02:00:00Z"), 0));
        assert!(!wrap.active(t("2026-11-24T12:00:00Z"), 0));
        assert_eq!(parse_bound("2026-11-24"), None);
        assert_eq!(parse_bound("yesterday"), None);
        assert_eq!(parse_bound("2026-11-24T10:00:00-05:30"), Some(Bound::Utc(t("2026-11-24T15:30:00Z"))));
    }

    #[test]
    fn rejects_bad_artifacts_with_typed_errors() {
        let lim = Limits::default();
        assert!(matches!(Artifact::parse(b"{", &lim), Err(ArtifactError::Malformed(_))));
        assert!(matches!(Artifact::parse(b"", &lim), Err(ArtifactError::Malformed(_))));
        assert_eq!(Artifact::parse(b"{}", &lim).unwrap_err(), ArtifactError::MissingVersion);
        let mut v2 = base();
        v2["version"] = json!(2);
        assert_eq!(parse(&v2).unwrap_err(), ArtifactError::UnknownVersion { found: 2 });
        let mut fnv = base();
        fnv["bucketing"] = json!("fnv/v1");
        assert_eq!(parse(&fnv).unwrap_err(), ArtifactError::UnknownBucketing("fnv/v1".into()));
        let small = Limits { max_bytes: 100, ..lim };
        assert!(matches!(
            Artifact::parse(base().to_string().as_bytes(), &small),
            Err(ArtifactError::TooLarge { limit: 100, .. })
        ));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            Artifact::parse(deep.as_bytes(), &lim).unwrap_err(),
            ArtifactError::TooDeep { limit: 100 }
        );
        // Brackets inside strings do not count.
        let mut s = base();
        s["revision"] = json!("[[[[".repeat(100));
        assert!(parse(&s).is_ok());
        let mut unknown = base();
        unknown["surprise"] = json!(1);
        assert!(matches!(parse(&unknown), Err(ArtifactError::Invalid(_))));
        assert!(matches!(with("/offers/0/priority", json!("high")), Err(ArtifactError::Invalid(_))));

        assert_eq!(
            with("/offers/1/condition", json!({"regex": ["a", "b"]})).unwrap_err(),
            ArtifactError::UnknownOperator { item: "offer `a` condition".into(), operator: "regex".into() }
        );
        assert!(matches!(
            with("/offers/1/suppress", json!({"count": ["x", "2d"]})),
            Err(ArtifactError::Condition { item, source: LogicError::UnknownWindow(_) }) if item == "offer `a` suppress"
        ));
        assert_eq!(
            with("/offers/1/condition", json!({"!": {"inAudience": "vips"}})).unwrap_err(),
            ArtifactError::UnknownAudience { item: "offer `a` condition".into(), audience: "vips".into() }
        );
        assert_eq!(
            with("/audiences/0/condition", json!({"inAudience": ["viewers"]})).unwrap_err(),
            ArtifactError::UnknownAudience { item: "audience `viewers`".into(), audience: "viewers".into() }
        );
        assert_eq!(
            with("/offers/1/placement", json!("checkout")).unwrap_err(),
            ArtifactError::UnknownPlacement { item: "offer `a`".into(), placement: "checkout".into() }
        );
        assert_eq!(
            with("/offers/1/id", json!("b")).unwrap_err(),
            ArtifactError::DuplicateId { what: "offer", id: "b".into() }
        );
        let mut dup = base();
        let first = dup["placements"][0].clone();
        dup["placements"].as_array_mut().unwrap().push(first);
        assert_eq!(
            parse(&dup).unwrap_err(),
            ArtifactError::DuplicateId { what: "placement", id: "home".into() }
        );
        for bad in [json!({"days_of_week": []}), json!({"daysOfWeek": ["funday"]}), json!({"daysOfWeek": []})]
        {
            assert!(
                matches!(
                    with("/offers/2/schedule", bad.clone()),
                    Err(ArtifactError::BadSchedule { .. } | ArtifactError::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            with(
                "/offers/2/schedule",
                json!({"start": "2026-12-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"})
            ),
            Err(ArtifactError::BadSchedule { .. })
        ));
        assert!(matches!(
            with("/offers/2/schedule", json!({"timeOfDay": {"from": "25:00", "to": "02:00"}})),
            Err(ArtifactError::BadSchedule { .. })
        ));
        assert!(matches!(
            with("/offers/2/schedule/start", json!("soon")),
            Err(ArtifactError::BadSchedule { .. })
        ));
        assert!(matches!(
            with("/offers/2/cap", json!({"max": 0, "per": "day"})),
            Err(ArtifactError::BadCap { .. })
        ));
        assert!(matches!(
            with("/offers/2/cap", json!({"max": 1, "per": "month"})),
            Err(ArtifactError::BadCap { .. })
        ));
        for (path, v) in [
            ("/experiments/0/variants/0/weight", json!(-1)),
            ("/experiments/0/variants", json!([{"id": "x", "weight": 0}])),
            ("/experiments/0/variants", json!([{"id": "x", "weight": 1e308}, {"id": "y", "weight": 1e308}])),
            ("/experiments/0/variants", json!([])),
            ("/experiments/0/traffic", json!(1.5)),
            ("/experiments/0/variants/0/id", json!("holdout")),
            ("/experiments/0/variants/0/id", json!("b")),
        ] {
            assert!(matches!(with(path, v.clone()), Err(ArtifactError::BadExperiment { .. })), "{path} {v}");
        }
        assert!(matches!(
            with("/experiments/0/variants/0/offer", json!("zzz")),
            Err(ArtifactError::UnknownOffer { .. })
        ));
        assert!(matches!(
            with("/experiments/0/placement", json!("nowhere")),
            Err(ArtifactError::UnknownPlacement { .. })
        ));
        let mut many = base();
        many["experiments"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "e2", "placement": "home", "variants": [{"id": "a", "weight": 1}]}));
        assert!(matches!(parse(&many), Err(ArtifactError::BadExperiment { .. })));
        let few = Limits { max_offers: 2, ..lim };
        assert_eq!(
            Artifact::parse(base().to_string().as_bytes(), &few).unwrap_err(),
            ArtifactError::TooMany { what: "offers", limit: 2 }
        );
    }

    #[test]
    fn signature_policy() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let public = key.verifying_key().to_bytes();
        let bytes = base().to_string().into_bytes();
        let sig = key.sign(&bytes).to_bytes();
        let lim = Limits::default();
        assert!(Artifact::load(&bytes, Some(&sig), Some(&public), &lim).is_ok());
        // No key configured: signatures are not required.
        assert!(Artifact::load(&bytes, None, None, &lim).is_ok());
        let err = |r: Result<Artifact, ArtifactError>| r.unwrap_err();
        assert!(matches!(
            err(Artifact::load(&bytes, None, Some(&public), &lim)),
            ArtifactError::Signature(_)
        ));
        let mut tampered = bytes.clone();
        tampered.push(b' ');
        assert!(matches!(
            err(Artifact::load(&tampered, Some(&sig), Some(&public), &lim)),
            ArtifactError::Signature(_)
        ));
        let other = SigningKey::from_bytes(&[8u8; 32]).sign(&bytes).to_bytes();
        assert!(matches!(
            err(Artifact::load(&bytes, Some(&other), Some(&public), &lim)),
            ArtifactError::Signature(_)
        ));
        assert!(matches!(
            err(Artifact::load(&bytes, Some(&sig[..10]), Some(&public), &lim)),
            ArtifactError::Signature(_)
        ));
        assert!(matches!(
            err(Artifact::load(&bytes, Some(&sig), Some(&[1u8; 5]), &lim)),
            ArtifactError::Signature(_)
        ));
    }
}
