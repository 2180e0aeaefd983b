use super::*;
use crate::config::{BatchConfig, RetryConfig};
use crate::delivery::Transport;

const T0: Millis = 1_795_512_600_000;

fn config() -> Config {
    let mut c = Config::new("https://collector.test", "wk");
    c.batch = BatchConfig { max_events: 3, max_bytes: 60_000, max_age_ms: 5_000, max_in_flight: 1 };
    c.retry = RetryConfig {
        base_backoff_ms: 1_000,
        max_backoff_ms: 8_000,
        max_attempts: 3,
        ..RetryConfig::default()
    };
    c
}

fn client() -> Client {
    Client::new(config(), T0, [9; 16]).unwrap()
}

/// Deterministic distinct random bytes per call.
fn rnd(n: u8) -> [u8; 16] {
    [n; 16]
}

fn ids_of(u: &Upload) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    v["batch"].as_array().unwrap().iter().map(|e| e["messageId"].as_str().unwrap().to_owned()).collect()
}

fn upload(c: &mut Client, now: Millis) -> Upload {
    match c.next_upload(now) {
        NextUpload::Upload(u) => u,
        other => panic!("expected an upload, got {other:?}"),
    }
}

fn status(code: u16) -> Outcome {
    Outcome::Status { code, retry_after: None }
}

#[test]
fn a_small_batch_waits_for_its_age_then_goes_in_one_request() {
    let mut c = client();
    assert_eq!(c.poll_timeout(T0), Some(0), "a fresh identity must be persisted");
    let p = c.take_persist(T0, false);
    assert!(matches!(p.identity, Some(Store::Write(_))) && p.queue.is_none());
    assert_eq!(c.poll_timeout(T0), None, "no timer while nothing is queued");

    let id = c.track("Product Viewed", Some(r#"{"sku":"S1"}"#), T0, rnd(1)).unwrap();
    assert_eq!(c.next_upload(T0 + 10), NextUpload::WaitUntil(T0 + 5_000));
    assert_eq!(c.poll_timeout(T0 + 10), Some(T0 + 1_000), "persist debounce comes first");
    let u = upload(&mut c, T0 + 5_000);
    assert_eq!(u.url, "https://collector.test/v1/batch");
    assert_eq!(u.transport, Transport::Fetch);
    assert!(u.headers.contains(&("Authorization".into(), "Basic d2s6".into())), "{:?}", u.headers);
    assert!(u.headers.contains(&("Content-Type".into(), "application/json".into())));
    let body: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    assert_eq!(body["sentAt"], "2026-11-24T09:30:05.000Z");
    assert_eq!(body["batch"][0]["event"], "Product Viewed");
    assert_eq!(ids_of(&u), vec![id]);
    assert_eq!(c.next_upload(T0 + 5_001), NextUpload::Idle, "one upload in flight at a time");

    c.upload_finished(u.id, status(200), T0 + 5_100, 0).unwrap();
    let s = c.stats();
    assert_eq!((s.accepted, s.delivered, s.queued, s.uploads), (1, 1, 0, 1));
    assert_eq!(c.take_persist(T0 + 5_100, false).queue, Some(Store::Remove));
    assert_eq!(c.poll_timeout(T0 + 5_100), None);
    assert_eq!(c.upload_finished(u.id, status(200), T0, 0), Err(DeliveryError::UnknownUpload(u.id)));
}

#[test]
fn count_trigger_and_flush_send_without_waiting() {
    let mut c = client();
    for i in 0..4 {
        c.track("E", None, T0, rnd(i)).unwrap();
    }
    let u = upload(&mut c, T0);
    assert_eq!(u.events, 3);
    c.upload_finished(u.id, status(200), T0, 0).unwrap();
    assert_eq!(c.next_upload(T0), NextUpload::WaitUntil(T0 + 5_000));
    c.flush();
    assert_eq!(upload(&mut c, T0).events, 1);
}

#[test]
fn server_errors_retry_with_backoff_keep_ids_and_give_up_after_max_attempts() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    let first = upload(&mut c, T0);
    c.upload_finished(first.id, status(503), T0, 0).unwrap();
    // failure 1: backoff between 500 and 1000 ms; jitter 0 gives 500
    assert_eq!(c.next_upload(T0 + 1), NextUpload::WaitUntil(T0 + 500));
    let second = upload(&mut c, T0 + 500);
    assert_eq!(ids_of(&second), ids_of(&first), "messageIds are stable across retries");
    let batch = |u: &Upload| serde_json::from_slice::<serde_json::Value>(&u.body).unwrap()["batch"].clone();
    assert_eq!(batch(&second), batch(&first), "the events are identical; only sentAt changes");
    c.upload_finished(second.id, status(500), T0 + 500, 1_000).unwrap();
    // failure 2: 1000..=2000, jitter 1000 % 1001 → 1000 + 1000
    assert_eq!(c.stats().backoff_until, Some(T0 + 500 + 2_000));
    let third = upload(&mut c, T0 + 2_500);
    c.upload_finished(third.id, status(502), T0 + 2_500, 0).unwrap();
    let s = c.stats();
    assert_eq!((s.dropped_max_attempts, s.queued, s.retries), (1, 0, 3));
}

#[test]
fn retry_after_is_honoured_and_429_does_not_use_attempts() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    for i in 0..5u64 {
        let now = T0 + i * 100_000;
        let u = upload(&mut c, now);
        c.upload_finished(u.id, Outcome::Status { code: 429, retry_after: Some("30".into()) }, now, 0)
            .unwrap();
        assert_eq!(c.next_upload(now + 1), NextUpload::WaitUntil(now + 30_000));
        // a beacon must respect the server's request too
        assert_eq!(c.next_beacon(now + 1, 65_536), None);
    }
    assert_eq!(c.stats().queued, 1, "429 does not count against maxAttempts");
    // an absurd Retry-After is capped
    let u = upload(&mut c, T0 + 10_000_000);
    c.upload_finished(u.id, Outcome::Status { code: 503, retry_after: Some("99999999".into()) }, T0, 0)
        .unwrap();
    assert_eq!(c.stats().backoff_until, Some(T0 + config().retry.max_retry_after_ms));
}

#[test]
fn permanent_4xx_drops_the_batch_and_413_halves_it_first() {
    let mut c = client();
    for i in 0..3 {
        c.track("E", None, T0, rnd(i)).unwrap();
    }
    let u = upload(&mut c, T0);
    c.upload_finished(u.id, status(413), T0, 0).unwrap();
    let u = upload(&mut c, T0);
    assert_eq!(u.events, 1, "3 events refused as too large → batches of 1");
    c.upload_finished(u.id, status(413), T0, 0).unwrap();
    assert_eq!(c.stats().dropped_rejected, 1, "a single event still too large is dropped");
    c.flush();
    let u = upload(&mut c, T0);
    c.upload_finished(u.id, status(400), T0, 0).unwrap();
    let s = c.stats();
    assert_eq!((s.dropped_rejected, s.queued, s.backoff_until), (2, 1, None));
    let u = upload(&mut c, T0);
    c.upload_finished(u.id, status(200), T0, 0).unwrap();
    // success restores the full batch size
    for i in 10..13 {
        c.track("E", None, T0, rnd(i)).unwrap();
    }
    assert_eq!(upload(&mut c, T0).events, 3);
}

#[test]
fn network_errors_do_not_use_attempts_and_end_when_back_online() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    let mut now = T0;
    for i in 0..10u64 {
        now = T0 + i * 60_000;
        let u = upload(&mut c, now);
        c.upload_finished(u.id, Outcome::NetworkError, now, 0).unwrap();
    }
    assert_eq!(c.stats().queued, 1);
    assert!(matches!(c.next_upload(now), NextUpload::WaitUntil(t) if t > now));
    c.network_available();
    assert!(matches!(c.next_upload(now), NextUpload::Upload(_)));
}

#[test]
fn server_backoff_survives_back_online() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    let u = upload(&mut c, T0);
    c.upload_finished(u.id, status(500), T0, 0).unwrap();
    c.network_available();
    assert_eq!(c.next_upload(T0), NextUpload::WaitUntil(T0 + 500));
}

#[test]
fn events_expire_after_max_event_age() {
    let mut c = client();
    c.track("Old", None, T0, rnd(1)).unwrap();
    let later = T0 + config().retry.max_event_age_ms + 1;
    c.track("New", None, later, rnd(2)).unwrap();
    c.flush();
    let u = upload(&mut c, later);
    assert_eq!(u.events, 1);
    assert_eq!(c.stats().dropped_expired, 1);
}

#[test]
fn beacons_carry_the_key_in_the_body_and_are_kept_until_confirmed() {
    let mut c = client();
    c.take_persist(T0, false);
    for i in 0..5 {
        c.track("E", None, T0, rnd(i)).unwrap();
    }
    let fetch = upload(&mut c, T0);
    assert_eq!(fetch.events, 3);
    let b = c.next_beacon(T0 + 1, 65_536).unwrap();
    assert_eq!(b.transport, Transport::Beacon);
    assert_eq!(b.events, 2, "events in flight are not beaconed again");
    assert_eq!(b.headers, vec![("Content-Type".to_owned(), "text/plain;charset=UTF-8".to_owned())]);
    let body: serde_json::Value = serde_json::from_slice(&b.body).unwrap();
    assert_eq!(body["writeKey"], "wk");
    c.upload_finished(b.id, Outcome::Handoff, T0 + 1, 0).unwrap();
    assert_eq!(c.next_beacon(T0 + 2, 65_536), None);
    // the hand-off stays in the snapshot (the page may die before delivery)
    let snap = c.snapshot();
    let mut other = Client::new(config(), T0, [1; 16]).unwrap();
    assert_eq!(other.restore(&snap, T0 + 3), Ok(5));
    // ... and, if the page outlives the grace period without a receipt, sent
    // again: only a 2xx counts as delivered.
    c.upload_finished(fetch.id, status(200), T0 + 2, 0).unwrap();
    assert_eq!(
        c.poll_timeout(T0 + 2),
        Some(T0),
        "the queue is due for storage as soon as events leave, before the grace period ends"
    );
    c.take_persist(T0 + 1_000, false);
    assert_eq!(c.poll_timeout(T0 + 1_000), Some(T0 + 1 + 30_000), "a timer for the end of the grace period");
    let s = c.stats();
    assert_eq!((s.queued, s.unconfirmed, s.delivered), (2, 2, 3));
    c.flush();
    let again = upload(&mut c, T0 + 1 + 30_000);
    assert_eq!(ids_of(&again), ids_of(&b));
    c.upload_finished(again.id, status(200), T0 + 30_002, 0).unwrap();
    let s = c.stats();
    assert_eq!((s.queued, s.delivered, s.beaconed, s.beacons_requeued), (0, 5, 2, 2));
}

#[test]
fn no_beacon_is_tried_when_the_next_event_cannot_fit() {
    let mut c = client();
    c.track("E", Some(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(800))), T0, rnd(1)).unwrap();
    assert_eq!(c.next_beacon(T0, 500), None);
    assert_eq!(c.stats().uploads, 0);
    assert!(c.next_beacon(T0, 2_000).is_some());
}

#[test]
fn a_reload_during_an_outage_keeps_waiting_instead_of_burning_attempts() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    let u = upload(&mut c, T0);
    c.upload_finished(u.id, status(503), T0, 1_000).unwrap();
    let until = c.stats().backoff_until.unwrap();
    let Some(Store::Write(snap)) = c.take_persist(T0 + 1, true).queue else { panic!() };
    // the page reloads before the wait is over
    let mut d = Client::new(config(), T0, [2; 16]).unwrap();
    d.restore(&snap, T0 + 2).unwrap();
    assert_eq!(d.next_upload(T0 + 2), NextUpload::WaitUntil(until));
    assert_eq!(d.stats().backoff_until, Some(until));
    // and the next failure keeps growing the wait from where it was
    let u = upload(&mut d, until);
    d.upload_finished(u.id, status(503), until, 0).unwrap();
    assert_eq!(d.stats().backoff_until, Some(until + 1_000), "failure 2: 1000..2000 ms");
}

#[test]
fn replace_queue_takes_the_stored_queue_as_the_truth() {
    let mut c = client();
    let a = c.track("A", None, T0, rnd(1)).unwrap();
    let Some(Store::Write(stored_a)) = c.take_persist(T0, true).queue else { panic!() };
    // another page of the tab restored it, delivered A, added B and stored that
    let mut other = Client::new(config(), T0, [3; 16]).unwrap();
    other.restore(&stored_a, T0).unwrap();
    let b = other.track("B", None, T0, rnd(2)).unwrap();
    other.flush();
    let u = upload(&mut other, T0);
    other.upload_finished(u.id, status(200), T0, 0).unwrap();
    let x = other.track("X", None, T0, rnd(3)).unwrap();
    let Some(Store::Write(stored)) = other.take_persist(T0, true).queue else { panic!() };
    assert!(ids_of(&u).contains(&a) && ids_of(&u).contains(&b));
    // the first page comes back from the back/forward cache
    assert!(c.replace_queue(Some(b"{broken"), T0).is_err());
    assert_eq!(c.stats().queued, 1, "an unreadable snapshot changes nothing");
    assert_eq!(c.replace_queue(Some(&stored), T0), Ok(1));
    c.flush();
    assert_eq!(ids_of(&upload(&mut c, T0)), vec![x]);
    assert_eq!(c.replace_queue(None, T0), Ok(0));
    assert_eq!(c.stats().queued, 0);
}

#[test]
fn a_refused_beacon_returns_its_events_without_penalty() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    let b = c.next_beacon(T0, 65_536).unwrap();
    c.upload_finished(b.id, Outcome::NotSent, T0, 0).unwrap();
    let s = c.stats();
    assert_eq!((s.queued, s.retries, s.backoff_until), (1, 0, None));
    assert_eq!(c.next_beacon(T0, 65_536).map(|b| b.events), Some(1));
}

#[test]
fn beacon_batches_fit_the_body_limit() {
    let mut c = client();
    for i in 0..3 {
        c.track("E", Some(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(400))), T0, rnd(i)).unwrap();
    }
    let b = c.next_beacon(T0, 1_200).unwrap();
    assert!(b.body.len() <= 1_200, "{}", b.body.len());
    assert_eq!(b.events, 1);
}

#[test]
fn concurrent_uploads_never_share_an_event() {
    let mut cfg = config();
    cfg.batch.max_in_flight = 2;
    let mut c = Client::new(cfg, T0, [0; 16]).unwrap();
    for i in 0..6 {
        c.track("E", None, T0, rnd(i)).unwrap();
    }
    let a = upload(&mut c, T0);
    let b = upload(&mut c, T0);
    assert_eq!(c.next_upload(T0), NextUpload::Idle);
    let (ia, ib) = (ids_of(&a), ids_of(&b));
    assert!(ia.iter().all(|id| !ib.contains(id)));
    c.upload_finished(b.id, status(200), T0, 0).unwrap();
    c.upload_finished(a.id, Outcome::NetworkError, T0, 0).unwrap();
    c.network_available();
    assert_eq!(ids_of(&upload(&mut c, T0)), ia, "a failed batch is retried, not the delivered one");
}

#[test]
fn snapshots_restore_every_unacknowledged_event_including_in_flight() {
    let mut c = client();
    let mut ids = vec![];
    for i in 0..4 {
        ids.push(c.track("E", None, T0, rnd(i)).unwrap());
    }
    let _in_flight = upload(&mut c, T0);
    let p = c.take_persist(T0, true);
    let (Some(Store::Write(queue)), Some(Store::Write(identity)), Some(Store::Write(device))) =
        (p.queue, p.identity, p.device)
    else {
        panic!("expected all slots written")
    };
    // "crash": a new process restores
    let mut d = Client::new(config(), T0, [5; 16]).unwrap();
    assert_ne!(d.identity().anonymous_id(), c.identity().anonymous_id());
    d.restore_device(&device, T0, rnd(77), false).unwrap();
    d.restore_identity(&identity).unwrap();
    assert_eq!(d.identity(), c.identity());
    assert_eq!(d.restore(&queue, T0 + 1), Ok(4));
    assert_eq!(d.restore(&queue, T0 + 1), Ok(0), "restoring twice adds nothing");
    let u = upload(&mut d, T0 + 1);
    assert_eq!(ids_of(&u), ids[..3].to_vec(), "restored events are due at once, oldest first");
    assert_eq!(d.stats().restored, 4);
}

#[test]
fn corrupt_snapshots_change_nothing() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    let before = c.stats();
    assert!(matches!(c.restore(b"{\"v\":1,\"events\":[{", T0), Err(SnapshotError::Corrupt(_))));
    assert!(matches!(c.restore(br#"{"v":7}"#, T0), Err(SnapshotError::UnknownVersion { found: 7 })));
    assert!(c.restore_identity(b"nope").is_err());
    assert_eq!(c.stats(), before);
}

#[test]
fn persisted_snapshot_respects_its_byte_cap() {
    let mut cfg = config();
    cfg.queue.max_persist_bytes = 33_000;
    let mut c = Client::new(cfg, T0, [0; 16]).unwrap();
    for i in 0..100 {
        c.track("E", Some(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(500))), T0, rnd(i)).unwrap();
    }
    let Some(Store::Write(bytes)) = c.take_persist(T0, true).queue else { panic!() };
    assert!(bytes.len() <= 33_000);
    let kept = crate::snapshot::decode(std::str::from_utf8(&bytes).unwrap()).unwrap().events.len();
    assert!(kept > 0 && kept < 100);
    assert_eq!(c.stats().not_persisted, 100 - kept);
}

#[test]
fn persistence_is_debounced() {
    let mut c = client();
    c.take_persist(T0, false);
    c.track("E", None, T0, rnd(1)).unwrap();
    c.track("E", None, T0 + 300, rnd(2)).unwrap();
    assert!(c.take_persist(T0 + 500, false).is_empty());
    assert!(c.take_persist(T0 + 1_000, false).queue.is_some());
    assert!(c.take_persist(T0 + 1_001, false).is_empty(), "nothing changed since");
}

#[test]
fn bad_events_are_refused_and_never_queued() {
    let mut c = client();
    let long = "n".repeat(201);
    assert!(matches!(
        c.track(&long, None, T0, rnd(1)),
        Err(EventError::NameTooLong { len: 201, max: 200, .. })
    ));
    assert!(matches!(c.track("", None, T0, rnd(1)), Err(EventError::Empty { .. })));
    assert!(matches!(c.track("E", Some("[1]"), T0, rnd(1)), Err(EventError::NotAnObject { .. })));
    let deep = format!("{}1{}", r#"{"a":"#.repeat(11), "}".repeat(11));
    assert!(matches!(c.track("E", Some(&deep), T0, rnd(1)), Err(EventError::TooDeep { depth: 11, .. })));
    let huge = format!(r#"{{"b":"{}"}}"#, "x".repeat(40_000));
    assert!(matches!(c.track("E", Some(&huge), T0, rnd(1)), Err(EventError::TooLarge { .. })));
    assert!(matches!(c.identify(Some(" "), None, None, None, T0, rnd(1)), Err(EventError::Empty { .. })));
    let s = c.stats();
    assert_eq!((s.rejected, s.accepted, s.queued), (6, 0, 0));
    assert_eq!(c.identity().user_id, None);
}

#[test]
fn identify_and_page_shape_later_events() {
    let mut c = client();
    c.set_page(Page {
        url: Some("https://shop.test/p/slacks?utm_source=mail".into()),
        path: Some("/p/slacks".into()),
        title: Some("Slacks".into()),
        search: Some("?utm_source=mail".into()),
        referrer: None,
    });
    c.set_environment(Environment {
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
        user_agent: Some("UA".into()),
    });
    c.identify(Some("user-1"), Some(r#"{"email":"a@example.com"}"#), None, None, T0, rnd(1)).unwrap();
    c.page(None, Some(r#"{"title":"Override","extra":1}"#), T0, rnd(2)).unwrap();
    c.track("Order Completed", Some(r#"{"total":10}"#), T0, rnd(3)).unwrap();
    assert_eq!(c.identity().user_id.as_deref(), Some("user-1"));
    assert_eq!(c.identity().traits["email"].get(), r#""a@example.com""#);
    let u = upload(&mut c, T0);
    let body: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    let b = body["batch"].as_array().unwrap();
    assert_eq!(b[0]["type"], "identify");
    assert_eq!(b[0]["traits"]["email"], "a@example.com");
    assert_eq!(b[1]["type"], "page");
    assert_eq!(b[1]["properties"]["path"], "/p/slacks");
    assert_eq!(b[1]["properties"]["title"], "Override");
    assert_eq!(b[1]["properties"]["extra"], 1);
    for e in b {
        assert_eq!(e["userId"], "user-1");
        assert_eq!(e["anonymousId"], c.identity().anonymous_id().unwrap());
        assert_eq!(e["context"]["campaign"]["source"], "mail");
        assert_eq!(e["context"]["locale"], "en-GB");
        assert_eq!(e["context"]["library"]["name"], "threadline-core");
    }
    c.screen("Home", None, T0, rnd(4)).unwrap();
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts() {
    let mut cfg = config();
    cfg.queue.max_events = 5;
    let mut c = Client::new(cfg, T0, [0; 16]).unwrap();
    let ids: Vec<_> = (0..8).map(|i| c.track("E", None, T0, rnd(i)).unwrap()).collect();
    let s = c.stats();
    assert_eq!((s.queued, s.dropped_queue_full), (5, 3));
    c.flush();
    assert_eq!(ids_of(&upload(&mut c, T0)), ids[3..6].to_vec());
}

#[test]
fn hand_over_gives_up_the_queue_to_another_tab() {
    let mut c = client();
    for i in 0..4 {
        c.track("E", None, T0, rnd(i)).unwrap();
    }
    let u = upload(&mut c, T0);
    assert_eq!(c.hand_over(T0), 4);
    let s = c.stats();
    assert_eq!((s.queued, s.handed_over), (0, 4));
    // the upload still in flight may finish; it changes nothing
    c.upload_finished(u.id, status(200), T0, 0).unwrap();
    assert_eq!(c.stats().delivered, 0);
    assert_eq!(c.take_persist(T0, true).queue, Some(Store::Remove));
}

#[test]
fn a_flushed_event_that_fails_is_retried_after_the_backoff_not_the_batch_age() {
    let mut c = client();
    c.take_persist(T0, false);
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    let u = upload(&mut c, T0);
    c.take_persist(T0, false); // stored as it leaves
    assert_eq!(c.next_upload(T0), NextUpload::Idle);
    c.upload_finished(u.id, status(503), T0 + 10, 0).unwrap();
    assert_eq!(c.next_upload(T0 + 11), NextUpload::WaitUntil(T0 + 510));
    assert_eq!(c.poll_timeout(T0 + 11), Some(T0 + 510));
    let again = upload(&mut c, T0 + 510);
    c.upload_finished(again.id, status(200), T0 + 600, 0).unwrap();
    // the flush is over: a new event waits for its batch again
    c.track("E", None, T0 + 700, rnd(2)).unwrap();
    assert_eq!(c.next_upload(T0 + 700), NextUpload::WaitUntil(T0 + 5_700));
}

// ---- found by tests/consent_props.rs ------------------------------------

fn consent_config(default: Choice) -> Config {
    let mut c = config();
    c.consent.default = crate::consent::DefaultConsent::All(default);
    c.batch.max_events = 50;
    c.identity.device_id_max_age_ms = 86_400_000;
    c
}

fn sent(c: &mut Client, now: Millis) -> Vec<serde_json::Value> {
    c.flush();
    let u = upload(c, now);
    let body: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    c.upload_finished(u.id, status(200), now, 0).unwrap();
    body["batch"].as_array().unwrap().clone()
}

#[test]
fn identify_while_denied_keeps_nothing_of_the_person() {
    let mut c = Client::new(consent_config(Choice::Denied), T0, rnd(1)).unwrap();
    c.identify(Some("u-1"), Some(r#"{"plan":"pro"}"#), Some(r#"{"email":"a@b.co"}"#), None, T0, rnd(2))
        .unwrap();
    let v = c.identity_view();
    assert!(v.user_id.is_none() && v.traits.is_empty() && v.ids.is_empty());
    assert_eq!(c.stats().dropped_consent, 1);
    // a later grant starts from nobody
    c.set_consent(r#"{"analytics":"granted"}"#, T0, rnd(3)).unwrap();
    c.track("E", None, T0, rnd(4)).unwrap();
    for e in sent(&mut c, T0) {
        assert!(e.get("userId").is_none() && e["context"].get("externalIds").is_none(), "{e}");
    }
}

#[test]
fn held_events_of_a_person_who_left_do_not_get_the_next_device_id() {
    let mut c = Client::new(consent_config(Choice::Pending), T0, rnd(1)).unwrap();
    let a = c.track("A", None, T0, rnd(2)).unwrap();
    c.reset(T0, rnd(3));
    let b = c.track("B", None, T0, rnd(4)).unwrap();
    c.set_consent(r#"{"analytics":"granted"}"#, T0, rnd(5)).unwrap();
    let device = c.identity().anonymous_id().unwrap().to_owned();
    let events = sent(&mut c, T0);
    let anon = |id: &str| {
        let e = events.iter().find(|e| e["messageId"] == id).unwrap();
        e["anonymousId"].as_str().unwrap().to_owned()
    };
    assert_eq!(anon(&b), device);
    assert_ne!(anon(&a), device, "the reset separates A's person from B's");
    assert_eq!(anon(&a).len(), 36);
}

#[test]
fn a_device_id_dropped_while_pending_takes_the_stored_records_with_it() {
    let mut c = Client::new(consent_config(Choice::Granted), T0, rnd(1)).unwrap();
    c.identify(Some("u-1"), None, Some(r#"{"email":"a@b.co"}"#), None, T0, rnd(2)).unwrap();
    let p = c.take_persist(T0, true);
    assert!(matches!((&p.identity, &p.queue), (Some(Store::Write(_)), Some(Store::Write(_)))));
    c.set_consent(r#"{"analytics":"pending"}"#, T0, rnd(3)).unwrap();
    c.take_persist(T0, true);
    // logout while pending: the device id goes, and so must what was
    // stored with it, or u-1 comes back at the next start
    c.reset(T0, rnd(4));
    let p = c.take_persist(T0, false);
    assert_eq!(
        (p.device, p.identity, p.queue),
        (Some(Store::Remove), Some(Store::Remove), Some(Store::Remove))
    );
    assert!(c.take_persist(T0, true).is_empty(), "nothing is stored without a device id");
}

#[test]
fn held_events_get_a_current_device_id_not_one_that_ran_out() {
    let mut c = Client::new(consent_config(Choice::Granted), T0, rnd(1)).unwrap();
    let old = c.identity().anonymous_id().unwrap().to_owned();
    c.set_consent(r#"{"analytics":"pending"}"#, T0, rnd(2)).unwrap();
    let held = c.track("E", None, T0, rnd(3)).unwrap();
    let later = T0 + 86_400_000 + 1;
    c.set_consent(r#"{"analytics":"granted"}"#, later, rnd(4)).unwrap();
    let now = c.identity().anonymous_id().unwrap().to_owned();
    assert_ne!(now, old, "the id ran out while pending");
    let e = sent(&mut c, later).into_iter().find(|e| e["messageId"] == held.as_str()).unwrap();
    assert_eq!(e["anonymousId"], now.as_str());
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).ok()?;
    e.finish().ok()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// Text that does not compress: each event's padding is different noise.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[(x >> 59) as usize % 36])
        })
        .collect()
}

/// Performs unload uploads as the browser glue does: until `None`, each
/// taken out of the keepalive budget; returns them with their bodies plain.
fn unload_all(c: &mut Client, now: Millis, mut budget: usize) -> Vec<Upload> {
    let mut out = Vec::new();
    while let Some(u) = c.next_unload(now, budget, &mut gzip) {
        assert!(u.body.len() <= budget, "{} > {budget}", u.body.len());
        budget -= u.body.len();
        let gz = u.headers.contains(&("Content-Encoding".into(), "gzip".into()));
        assert_eq!(gz, u.transport == Transport::Fetch, "{:?}", u.headers);
        out.push(Upload { body: if gz { gunzip(&u.body) } else { u.body.clone() }, ..u });
    }
    out
}

#[test]
fn a_tail_that_fits_goes_by_beacon() {
    let mut c = client();
    let sent: Vec<_> = (0..2).map(|i| c.track("E", None, T0, rnd(i)).unwrap()).collect();
    let ups = unload_all(&mut c, T0, 60_000);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].transport, Transport::Beacon);
    assert_eq!(ids_of(&ups[0]), sent);
}

#[test]
fn a_tail_too_big_for_the_budget_goes_gzipped_in_keepalive_requests() {
    let mut c = client();
    c.take_persist(T0, false);
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(c.track("Product Viewed", Some(r#"{"sku":"S1","price":12}"#), T0, rnd(i)).unwrap());
    }
    let plain: usize = c.snapshot().len();
    let budget = plain / 3;
    let ups = unload_all(&mut c, T0 + 1, budget);
    assert!(ups.iter().filter(|u| u.transport == Transport::Fetch).count() >= 5, "{}", ups.len());
    let mut got = Vec::new();
    for u in &ups {
        if u.transport == Transport::Fetch {
            assert!(u.headers.contains(&("Authorization".into(), "Basic d2s6".into())));
            assert!(u.events <= 3, "batch.maxEvents holds; the in-flight limit does not");
        }
        got.extend(ids_of(u));
    }
    assert_eq!(got, sent, "every event once, in order, within a third of its plain size");
    assert!(
        c.take_persist(T0 + 1, false).queue.is_some(),
        "the queue is stored at once: the page is leaving"
    );
    // A page that lives on gets its receipts like any upload.
    for u in &ups {
        let outcome = if u.transport == Transport::Fetch { status(200) } else { Outcome::Handoff };
        c.upload_finished(u.id, outcome, T0 + 2, 0).unwrap();
    }
    let s = c.stats();
    assert_eq!(s.queued, s.unconfirmed);
    assert_eq!(s.delivered + s.unconfirmed as u64, 30);
    assert!(s.delivered >= 15);
}

#[test]
fn a_tight_unload_budget_sends_fewer_events_and_never_too_many_bytes() {
    let mut cfg = config();
    cfg.batch.max_events = 100;
    let mut c = Client::new(cfg, T0, [9; 16]).unwrap();
    for i in 0..20 {
        c.track("E", Some(&format!(r#"{{"pad":"{}"}}"#, noise(u64::from(i), 500))), T0, rnd(i)).unwrap();
    }
    let u = c.next_unload(T0, 3_000, &mut gzip).unwrap();
    assert_eq!(u.transport, Transport::Fetch);
    assert!(u.body.len() <= 3_000, "{}", u.body.len());
    assert!((1..20).contains(&u.events), "{}", u.events);
    assert_eq!(c.stats().uploads, 1, "tries that did not fit are not counted");
    assert_eq!(c.stats().queued, 20);
    // A budget smaller than any one compressed event: nothing goes, nothing changes.
    assert_eq!(c.next_unload(T0, 100, &mut gzip), None);
    assert_eq!(c.stats().uploads, 1);
    assert_eq!(c.stats().queued, 20);
    let rest = c.next_beacon(T0, 1_000_000).unwrap();
    assert_eq!(rest.events, 20 - u.events, "the events of the failed tries are pending again");
}

#[test]
fn without_a_compressor_the_unload_path_falls_back_to_beacons() {
    let mut c = client();
    for i in 0..3 {
        c.track("E", Some(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(300))), T0, rnd(i)).unwrap();
    }
    let budget = c.snapshot().len() * 2 / 3;
    let u = c.next_unload(T0, budget, &mut |_: &[u8]| None).unwrap();
    assert_eq!(u.transport, Transport::Beacon);
    assert!((1..3).contains(&u.events), "what fits plain still goes: {}", u.events);
    assert!(u.body.len() <= budget);
    assert_eq!(c.stats().uploads, 1);
}

#[test]
fn retry_after_holds_on_the_unload_path_too() {
    let mut c = client();
    c.track("E", None, T0, rnd(1)).unwrap();
    c.flush();
    let u = upload(&mut c, T0);
    let busy = Outcome::Status { code: 429, retry_after: Some("60".into()) };
    c.upload_finished(u.id, busy, T0, 0).unwrap();
    assert_eq!(c.next_unload(T0 + 1_000, 60_000, &mut gzip), None);
    assert!(c.next_unload(T0 + 61_000, 60_000, &mut gzip).is_some());
}
