//! Decisions through the client: the profile follows events and consent,
//! is stored and restored, feedback feeds caps, variants stay put.

use super::*;
use crate::rules::RulesConfig;

const T0: Millis = 1_795_512_600_000; // Tuesday 2026-11-24 09:30 UTC
const HOUR: Millis = 3_600_000;
const SHOP: &str = include_str!("../../../tests/artifacts/shop.json");

fn config(consent: &str) -> Config {
    let mut c = Config::new("https://collector.test", "wk");
    c.consent = serde_json::from_str(consent).unwrap();
    c.rules = Some(RulesConfig::default());
    c
}

fn shop_client(consent: &str) -> Client {
    let mut c = Client::new(config(consent), T0, [1; 16]).unwrap();
    assert_eq!(c.load_rules(SHOP, None, false, T0), Ok(true));
    c
}

fn req() -> DecideRequest<'static> {
    DecideRequest { max: 1, context: None, utc_offset_minutes: 60 }
}

fn offer(c: &mut Client, placement: &str, now: Millis) -> String {
    let d = c.decide(placement, &req(), now, [3; 16]).unwrap();
    d[0].offer_id.clone()
}

fn view_slacks(c: &mut Client, now: Millis) {
    c.track("Product Viewed", Some(r#"{"productId":"slacks-01","price":89}"#), now, [2; 16]).unwrap();
}

/// Writes what `take_persist` hands out into a map, as a binding would.
fn persist(c: &mut Client, now: Millis, store: &mut BTreeMap<&'static str, Vec<u8>>) {
    let p = c.take_persist(now, true);
    for (slot, work) in
        [("device", p.device), ("identity", p.identity), ("profile", p.profile), ("rules", p.rules)]
    {
        match work {
            Some(Store::Write(b)) => {
                store.insert(slot, b);
            }
            Some(Store::Remove) => {
                store.remove(slot);
            }
            None => {}
        }
    }
}

/// A new process on the same storage, in the documented restore order.
fn restart(store: &BTreeMap<&'static str, Vec<u8>>, consent: &str, now: Millis) -> Client {
    let mut c = Client::new(config(consent), now, [5; 16]).unwrap();
    if let Some(d) = store.get("device") {
        c.restore_device(d, now, [6; 16], false).unwrap();
    }
    if let Some(i) = store.get("identity") {
        c.restore_identity(i).unwrap();
    }
    if let Some(p) = store.get("profile") {
        c.restore_profile(p).unwrap();
    }
    if let Some(r) = store.get("rules") {
        c.restore_rules(r, now).unwrap();
    }
    c
}

#[test]
fn the_slacks_story() {
    let mut c = shop_client("{}");
    assert_eq!(offer(&mut c, "home", T0), "home-welcome");
    view_slacks(&mut c, T0 + 1_000);
    assert_eq!(offer(&mut c, "home", T0 + 2_000), "home-welcome", "one view is not enough");
    view_slacks(&mut c, T0 + 3_000);
    assert_eq!(offer(&mut c, "home", T0 + 4_000), "slacks-discount");
    let order = r#"{"orderId":"o1","products":[{"productId":"slacks-01","quantity":1}]}"#;
    c.track("Order Completed", Some(order), T0 + 5_000, [4; 16]).unwrap();
    for later in [T0 + 6_000, T0 + 40 * 24 * HOUR] {
        let d = c.decide("home", &DecideRequest { max: 3, ..req() }, later, [3; 16]).unwrap();
        assert!(d.iter().all(|d| d.offer_id != "slacks-discount"), "{d:?}");
    }
    assert!(c
        .take_notices()
        .contains(&Notice::RulesLoaded { revision: Some("demo-shop-2026-11-24".into()) }));
}

#[test]
fn without_personalization_only_defaults_and_no_profile_is_kept() {
    let mut c = shop_client(r#"{"default":{"analytics":"granted","personalization":"denied"}}"#);
    view_slacks(&mut c, T0);
    view_slacks(&mut c, T0 + 1);
    assert_eq!(offer(&mut c, "home", T0 + 2), "home-welcome");
    assert_eq!(c.profile().count("Product Viewed", crate::logic::Window::Lifetime, None, T0 + 2), 0);
    let hero = c.decide("hero", &req(), T0, [3; 16]).unwrap();
    assert_eq!((hero[0].is_default, hero[0].experiment_id.as_deref()), (true, None), "no experiment either");
    let p = c.take_persist(T0 + 10, true);
    assert!(!matches!(p.profile, Some(Store::Write(_))));
}

#[test]
fn analytics_only_configurations_keep_no_profile() {
    let mut c = Client::new(Config::new("https://collector.test", "wk"), T0, [1; 16]).unwrap();
    view_slacks(&mut c, T0);
    assert_eq!(c.profile().count("Product Viewed", crate::logic::Window::Lifetime, None, T0), 0);
    assert_eq!(c.decide("home", &req(), T0, [3; 16]).unwrap_err(), DecideError::NoArtifact);
    assert!(c.take_persist(T0, true).profile.is_none());
}

#[test]
fn denying_personalization_deletes_the_profile_in_memory_and_storage() {
    let mut c = shop_client("{}");
    let mut store = BTreeMap::new();
    view_slacks(&mut c, T0);
    view_slacks(&mut c, T0 + 1);
    c.identify(Some("u1"), Some(r#"{"plan":"gold"}"#), None, None, T0 + 2, [7; 16]).unwrap();
    persist(&mut c, T0 + 3, &mut store);
    assert!(store.contains_key("profile") && store.contains_key("rules"));
    assert_eq!(c.profile().traits().get("plan"), Some(&serde_json::json!("gold")));

    c.set_consent(r#"{"personalization":"denied"}"#, T0 + 4, [8; 16]).unwrap();
    assert_eq!(c.profile().count("Product Viewed", crate::logic::Window::Lifetime, None, T0 + 4), 0);
    assert!(c.profile().traits().is_empty());
    assert_eq!(c.poll_timeout(T0 + 4), Some(0), "the removal is due at once");
    persist(&mut c, T0 + 5, &mut store);
    assert!(!store.contains_key("profile"));
    assert!(store.contains_key("device"), "analytics is untouched");
    view_slacks(&mut c, T0 + 6);
    persist(&mut c, T0 + 7, &mut store);
    assert!(!store.contains_key("profile"), "nothing is learnt while denied");

    // The next process reads the stored denial and deletes any stale copy.
    store.insert("profile", b"{\"v\":1}".to_vec());
    let mut c2 = restart(&store, "{}", T0 + 8);
    persist(&mut c2, T0 + 9, &mut store);
    assert!(!store.contains_key("profile"));
}

#[test]
fn analytics_denial_and_reset_remove_every_slot() {
    let mut c = shop_client("{}");
    let mut store = BTreeMap::new();
    view_slacks(&mut c, T0);
    persist(&mut c, T0 + 1, &mut store);
    c.reset(T0 + 2, [9; 16]);
    persist(&mut c, T0 + 3, &mut store);
    assert!(!store.contains_key("profile"), "the next person starts with no history");
    assert_eq!(offer(&mut c, "home", T0 + 4), "home-welcome");

    view_slacks(&mut c, T0 + 5);
    persist(&mut c, T0 + 6, &mut store);
    assert!(store.contains_key("profile"));
    c.set_consent(r#"{"analytics":"denied"}"#, T0 + 7, [8; 16]).unwrap();
    let p = c.take_persist(T0 + 8, false);
    assert!(p.wipe);
    assert_eq!((p.profile, p.rules), (Some(Store::Remove), Some(Store::Remove)));
}

#[test]
fn profile_caps_and_variants_survive_restarts() {
    let mut c = shop_client("{}");
    let mut store = BTreeMap::new();
    view_slacks(&mut c, T0);
    view_slacks(&mut c, T0 + 1);
    let hero = c.decide("hero", &req(), T0 + 2, [3; 16]).unwrap();
    let variant = hero[0].variant_id.clone();
    assert!(variant.is_some(), "{hero:?}");
    let mut shown = 0;
    let mut now = T0 + 10;
    // The cap is 3 a day; restarts between impressions must not reset it.
    for round in 0..6u8 {
        let d = c.decide("home", &req(), now, [round; 16]).unwrap();
        if d[0].offer_id == "slacks-discount" {
            let json = serde_json::to_string(&d[0]).unwrap();
            assert!(c.displayed(&json, now, [round; 16]).unwrap().is_some());
            shown += 1;
        }
        persist(&mut c, now, &mut store);
        now += 60_000;
        c = restart(&store, "{}", now);
        assert!(c.rules_ready(), "the cached rules are in use at once");
        let again = c.decide("hero", &req(), now, [round; 16]).unwrap();
        assert_eq!(again[0].variant_id, variant, "sticky across restarts");
    }
    assert_eq!(shown, 3);
    // A day later the cap has room again (windows count whole hours, so
    // the hour it started in must have rolled off too).
    assert_eq!(offer(&mut c, "home", now + 24 * HOUR), "home-welcome");
    assert_eq!(offer(&mut c, "home", now + 25 * HOUR), "slacks-discount");
}

#[test]
fn a_remembered_variant_stays_when_the_experiment_is_reweighted() {
    let mut c = shop_client("{}");
    let first = c.decide("hero", &req(), T0, [3; 16]).unwrap();
    let variant = first[0].variant_id.clone().unwrap();
    // The marketer moves all traffic to the variant this person is not in.
    let other = if variant == "control" { "sale-banner" } else { "control" };
    let reweighted = SHOP
        .replace(
            r#"{"id": "control", "weight": 50}"#,
            &format!(r#"{{"id": "control", "weight": {}}}"#, if other == "control" { 100 } else { 0 }),
        )
        .replace(
            r#"{"id": "sale-banner", "weight": 50, "offer": "hero-sale"}"#,
            &format!(
                r#"{{"id": "sale-banner", "weight": {}, "offer": "hero-sale"}}"#,
                if other == "control" { 0 } else { 100 }
            ),
        );
    assert_ne!(reweighted, SHOP);
    assert_eq!(c.load_rules(&reweighted, None, true, T0 + 1), Ok(true));
    let d = c.decide("hero", &req(), T0 + 2, [3; 16]).unwrap();
    assert_eq!(d[0].variant_id.as_deref(), Some(variant.as_str()));
}

#[test]
fn feedback_is_recorded_once_per_decision_and_bad_input_changes_nothing() {
    let mut c = shop_client("{}");
    let d = c.decide("hero", &req(), T0, [3; 16]).unwrap();
    let json = serde_json::to_string(&d[0]).unwrap();
    let before = c.stats().accepted;
    let id = c.displayed(&json, T0 + 1, [4; 16]).unwrap();
    assert!(id.is_some());
    assert_eq!(c.displayed(&json, T0 + 2, [5; 16]), Ok(None), "React renders twice; it counts once");
    assert!(c.clicked(&json, T0 + 3, [6; 16]).unwrap().is_some());
    assert_eq!(c.stats().accepted, before + 2);

    let u = match c.next_upload(T0 + 10_000) {
        NextUpload::Upload(u) => u,
        other => panic!("{other:?}"),
    };
    let body: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    let shown = body["batch"].as_array().unwrap().iter().find(|e| e["event"] == DISPLAYED_EVENT).unwrap();
    assert_eq!(shown["properties"]["decisionId"], serde_json::json!(d[0].decision_id));
    assert_eq!(shown["properties"]["offerId"], serde_json::json!(d[0].offer_id));
    assert_eq!(shown["properties"]["experimentId"], serde_json::json!("hero-banner-test"));

    let rejected = c.stats().rejected;
    for bad in ["", "[]", r#"{"decisionId":"x"}"#, r#"{"decisionId":"","placement":"p","offerId":"o"}"#] {
        assert!(c.displayed(bad, T0, [1; 16]).is_err(), "{bad}");
    }
    assert_eq!(c.stats().rejected, rejected + 4);
    assert_eq!(c.stats().accepted, before + 2);
}

#[test]
fn decide_errors_are_typed_and_context_reaches_conditions() {
    let mut c = shop_client("{}");
    let e = c.decide("nowhere", &req(), T0, [3; 16]).unwrap_err();
    assert_eq!(e.kind(), "decide.unknownPlacement");
    let bad = DecideRequest { context: Some("[1]"), ..req() };
    assert_eq!(c.decide("home", &bad, T0, [3; 16]).unwrap_err().kind(), "decide.invalidContext");

    let rules = r#"{"version":1,"bucketing":"murmur3_x86_32/v1",
      "placements":[{"id":"p","default":{"id":"d","content":null}}],
      "offers":[{"id":"cart","placement":"p","content":1,"condition":{">":[{"var":"cart.total"},100]}},
                {"id":"granted","placement":"p","priority":-1,"content":2,
                 "condition":{"==":[{"var":"consent.advertising"},"granted"]}}]}"#;
    assert_eq!(c.load_rules(rules, None, true, T0), Ok(true));
    let rich = DecideRequest { context: Some(r#"{"cart":{"total":150}}"#), max: 2, ..req() };
    let ids: Vec<_> = c.decide("p", &rich, T0, [3; 16]).unwrap().into_iter().map(|d| d.offer_id).collect();
    assert_eq!(ids, ["cart", "granted"], "the client adds `consent` to the data");
}

#[test]
fn several_placements_in_one_call_decide_as_one_by_one() {
    let mut c = shop_client("{}");
    view_slacks(&mut c, T0);
    view_slacks(&mut c, T0 + 1);
    let many = c.decide_many(&["home", "hero", "home"], &req(), T0 + 2, [3; 16]).unwrap();
    let one = |c: &mut Client, p| c.decide(p, &req(), T0 + 2, [3; 16]).unwrap();
    let pick =
        |ds: &[Decision]| ds.iter().map(|d| (d.offer_id.clone(), d.variant_id.clone())).collect::<Vec<_>>();
    assert_eq!(many.len(), 3);
    assert_eq!(pick(&many[0]), pick(&one(&mut c, "home")));
    assert_eq!(pick(&many[1]), pick(&one(&mut c, "hero")));
    assert_eq!(many[0][0].offer_id, "slacks-discount");
    assert_eq!(many[0][0].decision_id, many[2][0].decision_id, "same inputs, same id");
    assert_ne!(many[0][0].decision_id, many[1][0].decision_id);
    let e = c.decide_many(&["home", "nowhere"], &req(), T0, [3; 16]).unwrap_err();
    assert_eq!(e, DecideError::UnknownPlacement("nowhere".into()));
    assert!(c.decide_many(&[], &req(), T0, [3; 16]).unwrap().is_empty());
}
