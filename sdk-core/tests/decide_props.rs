//! Property tests of the decision engine over random histories:
//! decisions are deterministic; frequency caps are never exceeded in any
//! rolling window, even when the profile is saved and restored (a page
//! reload, an app restart) between every decision; variant allocation over
//! 100,000 random device ids matches the weights within 1 percentage point.
//!
//! `cargo test -p sdk-core --test decide_props` (a few seconds).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use sdk_core::decide::{DecideOptions, Engine};
use sdk_core::logic::Window;
use sdk_core::profile::{Profile, ProfileConfig};
use sdk_core::Millis;
use serde_json::{json, Value};

const T0: Millis = 1_795_512_600_000;
const MIN: Millis = 60_000;

fn artifact() -> Value {
    json!({
        "version": 1,
        "bucketing": "murmur3_x86_32/v1",
        "placements": [{"id": "home", "default": {"id": "welcome", "content": {}}}],
        "audiences": [
            {"id": "browsers", "condition": {">=": [{"count": ["view", "24h"]}, 2]}},
            {"id": "gold", "condition": {"==": [{"var": "profile.plan"}, "gold"]}}
        ],
        "offers": [
            {"id": "hourly", "placement": "home", "priority": 9, "content": 1, "cap": {"max": 2, "per": "hour"}},
            {"id": "daily", "placement": "home", "priority": 8, "content": 2, "cap": {"max": 3, "per": "day"},
             "condition": {"inAudience": "browsers"}},
            {"id": "weekly", "placement": "home", "priority": 7, "content": 3, "cap": {"max": 4, "per": "week"}},
            {"id": "once", "placement": "home", "priority": 6, "content": 4, "cap": {"max": 1, "per": "lifetime"},
             "suppress": {">": [{"count": ["buy", "lifetime", {"productId": {"var": "page.productId"}}]}, 0]}},
            {"id": "gold", "placement": "home", "priority": 6, "content": 5, "condition": {"inAudience": "gold"},
             "schedule": {"daysOfWeek": ["mon", "wed", "fri", "sun"], "timeOfDay": {"from": "08:00", "to": "20:00"}}},
            {"id": "always", "placement": "home", "content": 6}
        ],
        "experiments": [{"id": "exp", "placement": "home", "holdout": 0.05, "traffic": 0.9,
            "variants": [{"id": "a", "weight": 1}, {"id": "b", "weight": 1, "offer": "weekly"}]}]
    })
}

fn engine() -> Engine {
    let mut e = Engine::default();
    e.load(artifact().to_string().as_bytes(), None).unwrap();
    e
}

#[derive(Debug, Clone)]
enum Step {
    Wait(Millis),
    Event(&'static str, u8),
    Decide(usize, u8),
    Gold(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (1..(40 * 60 * MIN)).prop_map(Step::Wait),
        2 => (1..(20 * MIN)).prop_map(Step::Wait),
        2 => (prop::sample::select(vec!["view", "buy", "other"]), 0..3u8).prop_map(|(e, p)| Step::Event(e, p)),
        4 => (1..4usize, 0..3u8).prop_map(|(n, p)| Step::Decide(n, p)),
        1 => any::<bool>().prop_map(Step::Gold),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn caps_hold_across_restarts_and_decisions_are_deterministic(
        steps in prop::collection::vec(step(), 1..300),
        device in "[a-z0-9]{1,12}",
        offset in -720i32..=840,
    ) {
        let e = engine();
        let other = engine();
        let cfg = ProfileConfig { properties: vec!["productId".into()], ..ProfileConfig::default() };
        let mut profile = Profile::new(cfg.clone());
        let mut now = T0;
        let mut shown: BTreeMap<String, Vec<Millis>> = BTreeMap::new();
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Wait(ms) => now += ms,
                Step::Event(name, p) => profile.record(name, &json!({"productId": format!("p{p}")}), now),
                Step::Gold(g) => {
                    let plan = if *g { json!("gold") } else { Value::Null };
                    profile.set_traits(json!({"plan": plan}).as_object().unwrap()).unwrap();
                }
                Step::Decide(n, p) => {
                    let ctx = json!({"page": {"productId": format!("p{p}")}});
                    let mut random = [0u8; 16];
                    random[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    let o = DecideOptions {
                        max: *n, context: ctx.as_object(), now, utc_offset_minutes: offset,
                        device_id: Some(&device), personalization: true, random,
                    };
                    let d = e.decide("home", &o, &profile).unwrap();
                    let again = other.decide("home", &o, &profile.clone()).unwrap();
                    prop_assert_eq!(serde_json::to_string(&d).unwrap(), serde_json::to_string(&again).unwrap());
                    prop_assert!(!d.is_empty() && d.len() <= *n);
                    let mut ids: Vec<&str> = d.iter().map(|d| d.offer_id.as_str()).collect();
                    ids.dedup();
                    prop_assert_eq!(ids.len(), d.len(), "an offer appears once");
                    for dec in d.iter().filter(|d| !d.is_default) {
                        profile.record_impression(&dec.offer_id, now);
                        shown.entry(dec.offer_id.clone()).or_default().push(now);
                    }
                    // A restart: the profile goes through its bytes.
                    profile = Profile::from_bytes(&profile.to_bytes(), cfg.clone()).unwrap();
                }
            }
        }
        for (offer, max, window) in
            [("hourly", 2, Window::Hour), ("daily", 3, Window::Day), ("weekly", 4, Window::Week), ("once", 1, Window::Lifetime)]
        {
            let times = shown.get(offer).cloned().unwrap_or_default();
            match window.millis() {
                None => prop_assert!(times.len() <= max, "{offer}: {}", times.len()),
                Some(len) => {
                    for &t in &times {
                        let n = times.iter().filter(|&&u| u <= t && u + len > t).count();
                        prop_assert!(n <= max, "{offer}: {n} impressions in a {len} ms window ending {t}");
                    }
                }
            }
        }
    }
}

/// SplitMix64, for device ids.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn allocation_matches_weights(
        weights in prop::collection::vec(1u32..20, 2..5),
        holdout in 0u32..=20,
        traffic in 50u32..=100,
        seed in any::<u64>(),
    ) {
        let (holdout, traffic) = (f64::from(holdout) / 100.0, f64::from(traffic) / 100.0);
        let variants: Vec<Value> =
            weights.iter().enumerate().map(|(i, w)| json!({"id": format!("v{i}"), "weight": w})).collect();
        let doc = json!({
            "version": 1, "bucketing": "murmur3_x86_32/v1",
            "placements": [{"id": "hero", "default": {"id": "d", "content": null}}],
            "offers": [{"id": "o", "placement": "hero", "content": null}],
            "experiments": [{"id": "hero-test", "placement": "hero", "holdout": holdout, "traffic": traffic,
                             "variants": variants}]
        });
        let mut e = Engine::default();
        e.load(doc.to_string().as_bytes(), None).unwrap();
        let profile = Profile::default();
        const N: usize = 100_000;
        let mut state = seed;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..N {
            let device = format!("{:016x}{:08x}", next(&mut state), next(&mut state) as u32);
            let o = DecideOptions {
                max: 1, context: None, now: T0, utc_offset_minutes: 0,
                device_id: Some(&device), personalization: true, random: [0; 16],
            };
            let d = e.decide("hero", &o, &profile).unwrap();
            let key = d[0].variant_id.clone().unwrap_or_else(|| "out".into());
            *counts.entry(key).or_default() += 1;
        }
        let frac = |k: &str| counts.get(k).copied().unwrap_or(0) as f64 / N as f64;
        let close = |got: f64, want: f64, what: &str| {
            prop_assert!((got - want).abs() < 0.01, "{what}: {got:.4} vs {want:.4} ({counts:?})");
            Ok(())
        };
        close(frac("holdout"), holdout, "holdout")?;
        close(frac("out"), (1.0 - holdout) * (1.0 - traffic), "outside traffic")?;
        let participants: usize = (0..weights.len()).map(|i| counts.get(&format!("v{i}")).copied().unwrap_or(0)).sum();
        let total: u32 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let got = counts.get(&format!("v{i}")).copied().unwrap_or(0) as f64 / participants as f64;
            close(got, f64::from(*w) / f64::from(total), &format!("variant v{i}"))?;
        }
    }
}
