//! Profile sync through the UniFFI client, as Kotlin or Swift drive it: the
//! pulled `GET /v1/profile`, its HTTP outcomes mapped to the core's, what a
//! refused token costs, and the collector's part surviving a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sdk_core::profile::{Profile, ProfileConfig};
use sdk_mobile::{Client, Notice, ThreadlineError};
use serde_json::{json, Value};

const ENDPOINT: &str = "https://collector.example.com";

fn shop() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/artifacts/shop.json")).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("tl-sync-{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn client(dir: &Path) -> Arc<Client> {
    let cfg = format!(r#"{{"endpoint":"{ENDPOINT}","writeKey":"wk","consent":{{"default":"granted"}}}}"#);
    let c = Client::new(cfg, dir.to_string_lossy().into_owned()).unwrap();
    c.load_rules(shop(), None, false).unwrap();
    c
}

fn home(c: &Client) -> String {
    c.decide("home".into(), 1, None, 0).unwrap().remove(0).offer_id
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// What the collector serves for `user` after the app bought the slacks on
/// another device, built as the collector builds it (never by hand).
fn bought_on_the_phone(user: &str) -> Vec<u8> {
    let t = now_ms() - 3_600_000;
    let mut p = Profile::new(ProfileConfig { max_events: 1000, max_values: 10_000, ..Default::default() });
    let viewed =
        json!({"type": "track", "event": "Product Viewed", "properties": {"productId": "slacks-01"}});
    p.learn_message(&viewed, t);
    p.learn_message(&viewed, t + 60_000);
    let order = json!({"type": "track", "event": "Order Completed",
                       "properties": {"products": [{"productId": "slacks-01"}]}});
    p.learn_message(&order, t + 120_000);
    p.to_remote_json(user, now_ms(), Some("demo-shop-2026-11-24"), &["bought-slacks".to_owned()])
}

fn sync_notices(c: &Client) -> Vec<Notice> {
    c.take_notices()
        .into_iter()
        .filter(|n| matches!(n, Notice::ProfileSynced { .. } | Notice::ProfileSyncRefused { .. }))
        .collect()
}

fn device_id(c: &Client) -> String {
    let v: Value = serde_json::from_str(&c.get_identity()).unwrap();
    v["deviceId"].as_str().unwrap().to_owned()
}

#[test]
fn the_phone_purchase_suppresses_the_discount_here_and_survives_a_restart() {
    let dir = temp_dir("story");
    let c = client(&dir);
    for _ in 0..2 {
        c.track("Product Viewed".into(), Some(r#"{"productId":"slacks-01"}"#.into())).unwrap();
    }
    assert_eq!(home(&c), "slacks-discount");
    // No token, nothing to ask: the collector would refuse.
    c.identify(Some("u-ann".into()), None, None, None).unwrap();
    assert_eq!(c.next_profile_fetch(), None);
    c.identify(Some("u-ann".into()), None, None, Some("t1".into())).unwrap();
    assert_eq!(c.poll_timeout_ms(), Some(0));
    let f = c.next_profile_fetch().unwrap();
    assert_eq!(f.url, format!("{ENDPOINT}/v1/profile?userId=u-ann&exclude={}", device_id(&c)));
    assert_eq!(f.token, "t1");
    assert!(!format!("{f:?}").contains("t1"), "the token stays out of logs: {f:?}");
    assert_eq!(c.next_profile_fetch(), None, "one request at a time");

    c.profile_fetched(f.id, Some(200), Some(bought_on_the_phone("u-ann"))).unwrap();
    assert_eq!(sync_notices(&c), [Notice::ProfileSynced { audiences: vec!["bought-slacks".into()] }]);
    assert_ne!(home(&c), "slacks-discount", "bought on the phone");
    match c.profile_fetched(f.id, Some(200), Some(bought_on_the_phone("u-ann"))) {
        Err(ThreadlineError::Sync { kind, .. }) => assert_eq!(kind, "sync.unknownFetch"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.next_profile_fetch(), None, "fresh until the refresh interval");

    // Offline after a restart: the stored answer still decides.
    c.on_background();
    assert!(files(&dir).contains("profile.tl"), "{:?}", files(&dir));
    drop(c);
    let c = client(&dir);
    assert_ne!(home(&c), "slacks-discount");
    assert_eq!(c.next_profile_fetch(), None);

    // The host asks again; a network error or a 500 keeps what is in use.
    c.refresh_profile();
    let f = c.next_profile_fetch().unwrap();
    assert_eq!(f.token, "t1", "the token was stored with the identity");
    c.profile_fetched(f.id, None, None).unwrap();
    assert_eq!(c.next_profile_fetch(), None, "retried later, not at once");
    c.refresh_profile();
    let f = c.next_profile_fetch().unwrap();
    c.profile_fetched(f.id, Some(500), Some(b"oops".to_vec())).unwrap();
    assert_ne!(home(&c), "slacks-discount");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn refused_tokens_and_bad_answers_are_typed_errors_that_change_nothing_they_must_not() {
    let dir = temp_dir("refused");
    let c = client(&dir);
    for _ in 0..2 {
        c.track("Product Viewed".into(), Some(r#"{"productId":"slacks-01"}"#.into())).unwrap();
    }
    c.identify(Some("u-ann".into()), None, None, Some("t1".into())).unwrap();
    // Another person's profile is refused whole.
    let f = c.next_profile_fetch().unwrap();
    match c.profile_fetched(f.id, Some(200), Some(bought_on_the_phone("u-eve"))) {
        Err(ThreadlineError::Sync { kind, .. }) => assert_eq!(kind, "profile.wrongUser"),
        other => panic!("{other:?}"),
    }
    assert_eq!(home(&c), "slacks-discount");
    c.refresh_profile();
    let f = c.next_profile_fetch().unwrap();
    c.profile_fetched(f.id, Some(200), Some(bought_on_the_phone("u-ann"))).unwrap();
    assert_ne!(home(&c), "slacks-discount");
    c.take_notices();

    // 401: the collector's part and the token go; nothing is asked until a new token.
    c.refresh_profile();
    let f = c.next_profile_fetch().unwrap();
    match c.profile_fetched(f.id, Some(401), Some(br#"{"error":"expired"}"#.to_vec())) {
        Err(ThreadlineError::Sync { kind, .. }) => assert_eq!(kind, "sync.unauthorized"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sync_notices(&c), [Notice::ProfileSyncRefused { status: 401 }]);
    assert_eq!(home(&c), "slacks-discount", "this device's history only");
    c.refresh_profile();
    assert_eq!(c.next_profile_fetch(), None);
    c.identify(Some("u-ann".into()), None, None, Some("t2".into())).unwrap();
    assert_eq!(c.next_profile_fetch().unwrap().token, "t2");

    // Personalization denied: nothing is fetched.
    let dir2 = temp_dir("denied");
    let d = client(&dir2);
    d.set_consent(r#"{"personalization":"denied"}"#.into()).unwrap();
    d.identify(Some("u-ann".into()), None, None, Some("t1".into())).unwrap();
    assert_eq!(d.next_profile_fetch(), None);
    // A token without any user id is refused like bad input.
    let dir3 = temp_dir("nouser");
    let e = client(&dir3);
    assert!(matches!(
        e.identify(None, Some("{}".into()), None, Some("t".into())),
        Err(ThreadlineError::InvalidEvent { .. })
    ));
    for d in [dir, dir2, dir3] {
        let _ = fs::remove_dir_all(&d);
    }
}
