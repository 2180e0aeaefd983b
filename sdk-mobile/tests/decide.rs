//! On-device decisions through the UniFFI client, as Kotlin or Swift would
//! drive them: the shop artifact's slacks story, what survives a restart
//! (profile, impressions, the rules cache) and the pulled rules fetches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sdk_mobile::{Client, Decision, Notice, PlacementDecisions, RulesFetch, ThreadlineError, UploadPoll};
use serde_json::Value;

fn shop() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/artifacts/shop.json")).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("tl-decide-{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

const RULES_URL: &str = "https://cdn.example.com/rules/shop.json";

fn client(dir: &Path, extra: &str) -> Arc<Client> {
    let cfg = format!(
        r#"{{"endpoint":"https://collector.example.com","writeKey":"wk",
            "consent":{{"default":"granted"}}{extra}}}"#
    );
    Client::new(cfg, dir.to_string_lossy().into_owned()).unwrap()
}

fn with_url() -> String {
    format!(r#","rules":{{"url":"{RULES_URL}"}}"#)
}

fn home(c: &Client) -> Decision {
    let d = c.decide("home".into(), 1, None, 0).unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    d.into_iter().next().unwrap()
}

fn view_slacks(c: &Client) {
    for _ in 0..2 {
        c.track("Product Viewed".into(), Some(r#"{"productId":"slacks-01"}"#.into())).unwrap();
    }
}

fn rules_notices(c: &Client) -> Vec<Notice> {
    c.take_notices()
        .into_iter()
        .filter(|n| matches!(n, Notice::RulesLoaded { .. } | Notice::RulesRejected { .. }))
        .collect()
}

#[test]
fn slacks_story_with_an_inline_artifact() {
    let dir = temp_dir("story");
    let c = client(&dir, "");
    // Nothing loaded yet: an empty list, as on the web, not an error.
    assert_eq!(c.decide("home".into(), 1, None, 0).unwrap(), vec![]);
    assert!(!c.rules_ready());
    assert!(c.load_rules(shop(), None, false).unwrap());
    assert!(c.rules_ready());
    assert_eq!(c.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));
    assert_eq!(rules_notices(&c), [Notice::RulesLoaded { revision: Some("demo-shop-2026-11-24".into()) }]);

    assert_ne!(home(&c).offer_id, "slacks-discount");
    view_slacks(&c);
    let d = home(&c);
    assert_eq!(d.offer_id, "slacks-discount");
    assert!(!d.is_default);
    let content: Value = serde_json::from_str(&d.content_json).unwrap();
    assert_eq!(content["code"], "SLACKS10");

    // Feedback: one event per decision and kind, with its message id.
    let shown = c.displayed(d.clone()).unwrap();
    assert!(shown.is_some());
    assert_eq!(c.displayed(d.clone()).unwrap(), None, "the same decision counts once");
    assert!(c.clicked(d.clone()).unwrap().is_some());
    assert_eq!(c.clicked(d).unwrap(), None);

    // Bought: suppressed for good; a recent buyer is a VIP.
    c.track("Order Completed".into(), Some(r#"{"products":[{"productId":"slacks-01"}]}"#.into())).unwrap();
    assert_eq!(home(&c).offer_id, "vip-shipping");

    // The hero A/B test: a variant (or the holdout's default), sticky.
    let hero = c.decide("hero".into(), 1, None, 0).unwrap();
    assert_eq!(hero.len(), 1);
    if !hero[0].is_default {
        assert_eq!(hero[0].experiment_id.as_deref(), Some("hero-banner-test"));
        assert!(hero[0].variant_id.is_some());
    }
    for _ in 0..5 {
        let again = c.decide("hero".into(), 1, None, 0).unwrap();
        assert_eq!((&again[0].offer_id, &again[0].variant_id), (&hero[0].offer_id, &hero[0].variant_id));
    }

    // Errors carry the core's kinds.
    match c.decide("nowhere".into(), 1, None, 0) {
        Err(ThreadlineError::Decide { kind, .. }) => assert_eq!(kind, "decide.unknownPlacement"),
        other => panic!("{other:?}"),
    }
    match c.decide("home".into(), 1, Some("[1]".into()), 0) {
        Err(ThreadlineError::Decide { kind, .. }) => assert_eq!(kind, "decide.invalidContext"),
        other => panic!("{other:?}"),
    }
    let mut bad = home(&c);
    bad.offer_id = String::new();
    assert!(matches!(c.displayed(bad), Err(ThreadlineError::InvalidEvent { .. })));

    // A bundled copy never replaces the one in use; a broken one is refused.
    assert!(!c.load_rules(shop().replace("demo-shop", "bundled"), None, false).unwrap());
    match c.load_rules("{\"version\":1}".into(), None, true) {
        Err(ThreadlineError::Rules { kind, .. }) => assert_eq!(kind, "rules.artifact"),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&rules_notices(&c)[..], [Notice::RulesRejected { kind, .. }] if kind == "rules.artifact")
    );
    assert_eq!(c.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));
    let _ = fs::remove_dir_all(&dir);
}

/// What the decisions chose, without their per-call ids.
fn chosen(ds: &[Decision]) -> Vec<Decision> {
    ds.iter().cloned().map(|d| Decision { decision_id: String::new(), ..d }).collect()
}

#[test]
fn decide_many_answers_as_decide_does_placement_by_placement() {
    let dir = temp_dir("many");
    let c = client(&dir, "");
    let asked = || vec!["home".to_owned(), "hero".to_owned(), "home".to_owned()];
    // Nothing loaded yet: empty, not an error, as `decide`.
    assert_eq!(c.decide_many(asked(), 1, None, 0).unwrap(), vec![]);
    c.load_rules(shop(), None, false).unwrap();
    view_slacks(&c);

    let many = c.decide_many(asked(), 1, None, 0).unwrap();
    let placements: Vec<&str> = many.iter().map(|p| p.placement.as_str()).collect();
    assert_eq!(placements, ["home", "hero", "home"], "in the order asked, repeats kept");
    for PlacementDecisions { placement, decisions } in &many {
        assert_eq!(decisions.len(), 1, "{placement}: {decisions:?}");
        let one = c.decide(placement.clone(), 1, None, 0).unwrap();
        assert_eq!(chosen(decisions), chosen(&one), "{placement}");
    }
    assert_eq!(many[0].decisions[0].offer_id, "slacks-discount");
    assert_eq!(many[0].decisions, many[2].decisions, "one call, one draw: the same decision");
    assert!(c.decide_many(vec![], 1, None, 0).unwrap().is_empty());

    // An unknown placement (or a bad context) fails the whole call.
    match c.decide_many(vec!["home".into(), "nowhere".into()], 1, None, 0) {
        Err(ThreadlineError::Decide { kind, .. }) => assert_eq!(kind, "decide.unknownPlacement"),
        other => panic!("{other:?}"),
    }
    match c.decide_many(asked(), 1, Some("[1]".into()), 0) {
        Err(ThreadlineError::Decide { kind, .. }) => assert_eq!(kind, "decide.invalidContext"),
        other => panic!("{other:?}"),
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn feedback_events_reach_the_queue_with_the_decision() {
    let dir = temp_dir("feedback");
    let c = client(&dir, r#","batch":{"maxAgeMs":0}"#);
    c.load_rules(shop(), None, false).unwrap();
    view_slacks(&c);
    let d = home(&c);
    let shown = c.displayed(d.clone()).unwrap().unwrap();
    let clicked = c.clicked(d.clone()).unwrap().unwrap();
    c.flush();
    let mut events = Vec::new();
    while let Some(u) = c.next_upload() {
        let body: Value = serde_json::from_slice(&u.body).unwrap();
        events.extend(body["batch"].as_array().unwrap().iter().cloned());
        c.upload_finished(u.id, Some(200), None, false).unwrap();
    }
    let find = |id: &str| events.iter().find(|e| e["messageId"] == id).cloned().unwrap();
    let (s, k) = (find(&shown), find(&clicked));
    assert_eq!(s["event"], "Offer Displayed");
    assert_eq!(k["event"], "Offer Clicked");
    for e in [s, k] {
        assert_eq!(e["properties"]["decisionId"], d.decision_id.as_str());
        assert_eq!(e["properties"]["offerId"], "slacks-discount");
        assert_eq!(e["properties"]["placement"], "home");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn profile_and_impressions_survive_a_restart_and_caps_hold() {
    let dir = temp_dir("restart");
    {
        let c = client(&dir, "");
        c.load_rules(shop(), None, false).unwrap();
        view_slacks(&c);
        // Two of the three impressions a day before the restart.
        for _ in 0..2 {
            let d = home(&c);
            assert_eq!(d.offer_id, "slacks-discount");
            c.displayed(d).unwrap().unwrap();
        }
        // App calls write nothing; only persist / on_background do.
        assert!(!files(&dir).contains("profile.tl"), "{:?}", files(&dir));
        c.on_background();
        assert!(files(&dir).contains("profile.tl"), "{:?}", files(&dir));
        assert!(files(&dir).contains("rules.tl"), "{:?}", files(&dir));
    }
    let c = client(&dir, "");
    // The cache made it ready before anything was handed over; the bundled
    // copy is not taken over it.
    assert!(c.rules_ready());
    assert!(!c.load_rules(shop(), None, false).unwrap());
    // The views are remembered: still qualified after the restart.
    let d = home(&c);
    assert_eq!(d.offer_id, "slacks-discount");
    c.displayed(d).unwrap().unwrap();
    // Three impressions today: the cap (3 a day) holds, restart included.
    assert_ne!(home(&c).offer_id, "slacks-discount");
    c.on_background();
    drop(c);
    let c = client(&dir, "");
    assert_ne!(home(&c).offer_id, "slacks-discount");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn personalization_denial_removes_the_profile_and_defaults_only() {
    let dir = temp_dir("deny");
    let c = client(&dir, "");
    c.load_rules(shop(), None, false).unwrap();
    view_slacks(&c);
    c.on_background();
    assert!(files(&dir).contains("profile.tl"));
    c.set_consent(r#"{"personalization":"denied"}"#.into()).unwrap();
    c.persist();
    assert!(!files(&dir).contains("profile.tl"), "{:?}", files(&dir));
    assert!(files(&dir).contains("device.tl"), "analytics stays: {:?}", files(&dir));
    let d = home(&c);
    assert!(d.is_default);
    assert_eq!(d.offer_id, "home-welcome");
    // A restart does not bring it back, and nothing is learned meanwhile.
    drop(c);
    let c = client(&dir, "");
    view_slacks(&c);
    c.on_background();
    assert!(!files(&dir).contains("profile.tl"), "{:?}", files(&dir));
    c.set_consent(r#"{"personalization":"granted"}"#.into()).unwrap();
    assert_ne!(home(&c).offer_id, "slacks-discount", "the history before the grant is gone");
    // Denying analytics wipes every file, the rules cache and profile included.
    view_slacks(&c);
    c.on_background();
    assert!(files(&dir).contains("profile.tl") && files(&dir).contains("rules.tl"));
    c.set_consent(r#"{"analytics":"denied"}"#.into()).unwrap();
    c.persist();
    assert_eq!(files(&dir), BTreeSet::new());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_profile_or_rules_files_are_dropped_not_fatal() {
    let dir = temp_dir("corrupt");
    {
        let c = client(&dir, "");
        c.load_rules(shop(), None, false).unwrap();
        view_slacks(&c);
        c.on_background();
    }
    // Valid files (checksums right) whose contents the core refuses.
    let mut store = sdk_mobile::store::FileStore::open(&dir);
    store.write(sdk_mobile::store::Slot::Profile, b"not a profile");
    store.write(sdk_mobile::store::Slot::Rules, b"{\"v\":1,\"nonsense\":true}");
    let c = client(&dir, "");
    assert!(!c.rules_ready());
    let s: Value = serde_json::from_str(&c.stats()).unwrap();
    assert_eq!(s["corruptFiles"], 2, "{s}");
    assert!(files(&dir).contains("profile.corrupt") && files(&dir).contains("rules.corrupt"));
    // The client carries on: a bundled artifact, a fresh profile.
    assert!(c.load_rules(shop(), None, false).unwrap());
    assert_ne!(home(&c).offer_id, "slacks-discount");
    view_slacks(&c);
    assert_eq!(home(&c).offer_id, "slacks-discount");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn rules_fetch_with_etag_and_304_then_cache_at_restart() {
    let dir = temp_dir("fetch");
    let c = client(&dir, &with_url());
    assert!(!c.rules_ready());
    // Due at once, and the timer says so; `poll_upload` speaks of uploads only (the host loop asks
    // `next_rules_fetch` on every pass, see the crate docs).
    assert_eq!(c.poll_timeout_ms(), Some(0));
    assert_eq!(c.poll_upload(), UploadPoll::Idle);
    let f = c.next_rules_fetch().unwrap();
    assert_eq!(f, RulesFetch { id: f.id, url: RULES_URL.into(), etag: None, signature: false });
    assert_eq!(c.next_rules_fetch(), None, "one request at a time");
    assert_eq!(
        c.rules_fetched(f.id, Some(200), Some("\"r1\"".into()), Some(shop().into_bytes())).unwrap(),
        None
    );
    assert!(c.rules_ready());
    assert_eq!(rules_notices(&c), [Notice::RulesLoaded { revision: Some("demo-shop-2026-11-24".into()) }]);
    // Reported twice: an error with the core's kind.
    match c.rules_fetched(f.id, Some(200), None, None) {
        Err(ThreadlineError::Rules { kind, .. }) => assert_eq!(kind, "rules.unknownFetch"),
        other => panic!("{other:?}"),
    }
    // Not due again until the refresh interval; only persist writes the cache.
    assert_eq!(c.next_rules_fetch(), None);
    assert!(!files(&dir).contains("rules.tl"));
    assert_eq!(c.poll_timeout_ms(), Some(0), "the cache write is due");
    c.persist();
    assert!(files(&dir).contains("rules.tl"), "{:?}", files(&dir));
    c.on_background(); // the debounced identity record too
    assert!(c.poll_timeout_ms().unwrap() > 60_000, "{:?}", c.poll_timeout_ms());

    // Revalidation sends the ETag; a 304 keeps the artifact.
    c.refresh_rules();
    let f = c.next_rules_fetch().unwrap();
    assert_eq!(f.etag.as_deref(), Some("\"r1\""));
    assert_eq!(c.rules_fetched(f.id, Some(304), None, None).unwrap(), None);
    assert!(c.rules_ready());
    // A network error or a server error changes nothing either.
    c.refresh_rules();
    let f = c.next_rules_fetch().unwrap();
    assert_eq!(c.rules_fetched(f.id, None, None, None).unwrap(), None);
    c.refresh_rules();
    let f = c.next_rules_fetch().unwrap();
    assert_eq!(c.rules_fetched(f.id, Some(500), None, Some(b"oops".to_vec())).unwrap(), None);
    // A broken artifact is refused; the one in use stays.
    c.refresh_rules();
    let f = c.next_rules_fetch().unwrap();
    let r = c.rules_fetched(f.id, Some(200), Some("\"bad\"".into()), Some(b"{\"version\":1}".to_vec()));
    assert!(matches!(r, Err(ThreadlineError::Rules { ref kind, .. }) if kind == "rules.artifact"), "{r:?}");
    assert_eq!(c.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));
    assert!(matches!(&rules_notices(&c)[..], [Notice::RulesRejected { .. }]));

    // A restart is ready from the cache without a fetch.
    c.persist();
    drop(c);
    let c = client(&dir, &with_url());
    assert!(c.rules_ready());
    assert_eq!(rules_notices(&c), [Notice::RulesLoaded { revision: Some("demo-shop-2026-11-24".into()) }]);
    assert_eq!(c.next_rules_fetch(), None, "the cache is fresh");
    view_slacks(&c);
    assert_eq!(home(&c).offer_id, "slacks-discount");
    // The cached ETag is sent at the next revalidation.
    c.refresh_rules();
    assert_eq!(c.next_rules_fetch().unwrap().etag.as_deref(), Some("\"r1\""));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_signed_feed_asks_for_the_signature_at_once_and_refuses_a_bad_one() {
    let dir = temp_dir("sig");
    // Any 32 bytes decode as a key; the signature below cannot match it.
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let c = client(&dir, &format!(r#","rules":{{"url":"{RULES_URL}","publicKey":"{key}"}}"#));
    let f = c.next_rules_fetch().unwrap();
    let sig = c.rules_fetched(f.id, Some(200), Some("\"r1\"".into()), Some(shop().into_bytes())).unwrap();
    let sig = sig.expect("a changed artifact needs its signature first");
    assert!(sig.signature);
    assert!(sig.url.starts_with(RULES_URL), "{}", sig.url);
    assert!(!c.rules_ready(), "not used before its signature checks");
    let r = c.rules_fetched(sig.id, Some(200), None, Some(b"bm90IGEgc2lnbmF0dXJl".to_vec()));
    assert!(matches!(r, Err(ThreadlineError::Rules { ref kind, .. }) if kind == "rules.signature"), "{r:?}");
    assert!(!c.rules_ready());
    assert_eq!(c.decide("home".into(), 1, None, 0).unwrap(), vec![]);
    let _ = fs::remove_dir_all(&dir);
}
