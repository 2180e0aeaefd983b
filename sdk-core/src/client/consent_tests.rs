//! Consent and identity rules of the client, one scenario per rule.

use super::*;

const T0: Millis = 1_795_512_600_000;
const DAY: Millis = 86_400_000;

fn config(default: &str) -> Config {
    let mut c = Config::new("https://collector.test", "wk");
    c.consent = serde_json::from_str(&format!(r#"{{"default":{default}}}"#)).unwrap();
    c.batch.max_events = 50;
    c
}

fn rnd(n: u8) -> [u8; 16] {
    [n; 16]
}

fn events(u: &Upload) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    v["batch"].as_array().unwrap().clone()
}

fn drain(c: &mut Client, now: Millis) -> Vec<serde_json::Value> {
    c.flush();
    let mut out = vec![];
    while let NextUpload::Upload(u) = c.next_upload(now) {
        out.extend(events(&u));
        c.upload_finished(u.id, Outcome::Status { code: 200, retry_after: None }, now, 0).unwrap();
    }
    out
}

#[test]
fn pending_holds_in_memory_creates_nothing_and_stores_nothing() {
    let mut c = Client::new(config(r#""pending""#), T0, rnd(1)).unwrap();
    let a = c.track("A", None, T0, rnd(2)).unwrap();
    let b = c.page(None, None, T0 + 1, rnd(3)).unwrap();
    c.identify(Some("u1"), None, Some(r#"{"email":"Jane@Example.com"}"#), None, T0 + 2, rnd(4)).unwrap();
    assert_eq!(c.identity_view().device_id, None, "no identifier before consent");
    assert_eq!(c.next_upload(T0 + 10_000), NextUpload::Idle);
    assert_eq!(c.next_beacon(T0 + 10_000, 65_536), None);
    assert!(c.take_persist(T0 + 10_000, true).is_empty(), "nothing is written while pending");
    assert_eq!(c.poll_timeout(T0 + 10_000), None, "no timer either");
    let s = c.stats();
    assert_eq!((s.held, s.queued, s.accepted), (3, 0, 3));

    // Granting releases every held event, in order, with the new device id,
    // and each still says it was collected under pending.
    let consent = c.set_consent(r#"{"analytics":"granted"}"#, T0 + 20, rnd(5)).unwrap();
    assert_eq!(consent.analytics, Choice::Granted);
    let device = c.identity_view().device_id.unwrap().to_owned();
    let sent = drain(&mut c, T0 + 20);
    let ids: Vec<_> = sent.iter().map(|e| e["messageId"].as_str().unwrap()).collect();
    assert_eq!(ids[..2], [a.as_str(), b.as_str()]);
    assert_eq!(sent.len(), 4, "three held events and the consent change");
    for e in &sent[..3] {
        assert_eq!(e["anonymousId"], device.as_str());
        assert_eq!(e["context"]["consent"]["analytics"], "pending");
    }
    let change = &sent[3];
    assert_eq!(change["event"], CONSENT_EVENT);
    assert_eq!(change["properties"]["analytics"], "granted");
    assert_eq!(change["properties"]["source"], "api");
    assert_eq!(change["context"]["consent"]["analytics"], "granted");
    let p = c.take_persist(T0 + 20, true);
    assert!(matches!(p.device, Some(Store::Write(_))) && matches!(p.identity, Some(Store::Write(_))));
}

#[test]
fn held_events_are_bounded_and_overflow_is_counted() {
    let mut cfg = config(r#""pending""#);
    cfg.consent.max_held_events = 3;
    let mut c = Client::new(cfg, T0, rnd(1)).unwrap();
    let ids: Vec<_> = (0..5).map(|i| c.track("E", None, T0, rnd(10 + i)).unwrap()).collect();
    assert_eq!((c.stats().held, c.stats().dropped_held_full), (3, 2));
    c.set_consent(r#"{"analytics":"granted"}"#, T0, rnd(2)).unwrap();
    let sent: Vec<_> =
        drain(&mut c, T0).iter().map(|e| e["messageId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sent[..3], ids[2..], "the newest three survive");
}

#[test]
fn denial_drops_everything_deletes_storage_and_sends_nothing_after() {
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    c.identify(Some("u1"), Some(r#"{"plan":"pro"}"#), Some(r#"{"crmId":"C1"}"#), None, T0, rnd(2)).unwrap();
    for i in 0..5 {
        c.track("E", None, T0, rnd(10 + i)).unwrap();
    }
    let in_flight = match c.next_upload(T0 + 10_000) {
        NextUpload::Upload(u) => u,
        other => panic!("{other:?}"),
    };
    c.take_persist(T0, true);
    c.set_consent(r#"{"analytics":"denied"}"#, T0 + 1, rnd(3)).unwrap();
    let p = c.take_persist(T0 + 1, false);
    assert!(p.wipe);
    assert_eq!(
        (p.queue, p.identity, p.device),
        (Some(Store::Remove), Some(Store::Remove), Some(Store::Remove))
    );
    let v = c.identity_view();
    assert!(v.device_id.is_none() && v.user_id.is_none() && v.ids.is_empty() && v.session.is_none());
    assert!(v.traits.is_empty());
    // The upload already out may finish; nothing is retried or sent again.
    c.upload_finished(in_flight.id, Outcome::Status { code: 503, retry_after: None }, T0 + 2, 0).unwrap();
    c.track("Later", None, T0 + 3, rnd(4)).unwrap();
    assert_eq!(c.next_upload(T0 + 100_000), NextUpload::Idle);
    assert_eq!(c.next_beacon(T0 + 100_000, 65_536), None);
    assert!(c.take_persist(T0 + 100_000, true).is_empty());
    let s = c.stats();
    assert_eq!(s.dropped_consent, 6 + 1, "5 tracks, the identify, and the one tracked after");
    assert_eq!(s.queued + s.held, 0);
    // A stored queue cannot come back while denied.
    let mut other = Client::new(config(r#""granted""#), T0, rnd(7)).unwrap();
    other.track("X", None, T0, rnd(8)).unwrap();
    assert_eq!(c.restore(&other.snapshot(), T0 + 5), Ok(0));
    assert_eq!(c.next_upload(T0 + 100_000), NextUpload::Idle);
}

#[test]
fn denial_can_send_one_anonymous_record_when_configured() {
    let mut cfg = config(r#""pending""#);
    cfg.consent.send_denial = true;
    let mut c = Client::new(cfg, T0, rnd(1)).unwrap();
    c.identify(Some("u1"), None, None, None, T0, rnd(2)).unwrap();
    c.set_consent(r#"{"analytics":"denied","advertising":"denied"}"#, T0, rnd(3)).unwrap();
    let sent = drain(&mut c, T0);
    assert_eq!(sent.len(), 1);
    let e = &sent[0];
    assert_eq!(e["event"], CONSENT_EVENT);
    assert_eq!(e["properties"]["analytics"], "denied");
    for field in ["anonymousId", "userId"] {
        assert!(e.get(field).is_none(), "{field} must not be sent: {e}");
    }
    assert!(e["context"].get("sessionId").is_none());
    assert!(c.take_persist(T0, true).queue.is_none_or(|q| q == Store::Remove), "never stored");
}

#[test]
fn every_event_carries_the_consent_it_was_collected_under() {
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    c.track("A", None, T0, rnd(2)).unwrap();
    c.set_consent(r#"{"personalization":"denied"}"#, T0, rnd(3)).unwrap();
    c.track("B", None, T0, rnd(4)).unwrap();
    let sent = drain(&mut c, T0);
    let by_name = |n: &str| sent.iter().find(|e| e["event"] == n).unwrap().clone();
    assert_eq!(by_name("A")["context"]["consent"]["personalization"], "granted");
    assert_eq!(by_name("B")["context"]["consent"]["personalization"], "denied");
    assert_eq!(by_name(CONSENT_EVENT)["properties"]["personalization"], "denied");
}

#[test]
fn a_change_event_only_when_the_state_really_changes() {
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    c.set_consent(r#"{"analytics":"granted"}"#, T0, rnd(2)).unwrap();
    c.set_consent("{}", T0, rnd(3)).unwrap();
    assert_eq!(c.stats().accepted, 0);
    assert!(c.take_notices().iter().all(|n| !matches!(n, Notice::ConsentChanged { .. })));
    // GPC is a browser signal, not a choice: its effect shows, no event.
    c.set_gpc(true, T0, rnd(4));
    assert_eq!(c.consent().sale, Choice::Denied);
    assert_eq!(c.stats().accepted, 0);
    assert!(matches!(c.take_notices()[..], [Notice::ConsentChanged { .. }]));
    // Granting sale under GPC changes nothing that is in force.
    c.set_consent(r#"{"sale":"granted"}"#, T0, rnd(5)).unwrap();
    assert_eq!(c.consent().sale, Choice::Denied);
    assert_eq!(c.stats().accepted, 0);
}

#[test]
fn bad_consent_input_is_refused_and_changes_nothing() {
    let mut c = Client::new(config(r#""pending""#), T0, rnd(1)).unwrap();
    for bad in [r#"{"analytics":"yes"}"#, r#"{"marketing":"granted"}"#, "[]", "", "{"] {
        assert!(matches!(c.set_consent(bad, T0, rnd(2)), Err(ConsentError::Invalid(_))), "{bad}");
    }
    assert!(matches!(c.set_consent_tcf("not a tc string", T0, rnd(3)), Err(ConsentError::Tcf(_))));
    assert_eq!(c.consent(), Consent::all(Choice::Pending));
    assert!(c.take_notices().is_empty());
}

#[test]
fn stored_device_record_carries_consent_across_restarts() {
    let mut c = Client::new(config(r#""pending""#), T0, rnd(1)).unwrap();
    c.set_consent(r#"{"analytics":"granted","sale":"denied"}"#, T0, rnd(2)).unwrap();
    let p = c.take_persist(T0, true);
    let Some(Store::Write(device)) = p.device else { panic!("device record written") };
    let id = c.identity_view().device_id.unwrap().to_owned();
    // Next page view: configured default is pending, the stored choice wins.
    let mut d = Client::new(config(r#""pending""#), T0 + 1_000, rnd(3)).unwrap();
    d.restore_device(&device, T0 + 1_000, rnd(4), false).unwrap();
    assert_eq!(d.identity_view().device_id, Some(id.as_str()));
    assert_eq!(d.consent().analytics, Choice::Granted);
    assert_eq!(d.consent().sale, Choice::Denied);
    assert!(d.take_persist(T0 + 1_000, false).device.is_none(), "nothing to write back");
    d.track("E", None, T0 + 1_000, rnd(5)).unwrap();
    assert!(d.take_persist(T0 + 5_000, false).device.is_none(), "no cookie write per event");
    // Restoring is not a choice: no event, no notice.
    assert_eq!(d.stats().accepted, 1);
}

#[test]
fn device_ids_expire_and_rotate_or_renew() {
    let mut cfg = config(r#""granted""#);
    cfg.identity.device_id_max_age_ms = 10 * DAY;
    let mut c = Client::new(cfg.clone(), T0, rnd(1)).unwrap();
    let first = c.identity_view().device_id.unwrap().to_owned();
    assert_eq!(c.identity_view().device_id_expires, Some(T0 + 10 * DAY));
    c.take_persist(T0, true);
    c.track("E", None, T0 + 9 * DAY, rnd(2)).unwrap();
    assert!(c.take_persist(T0 + 9 * DAY, true).device.is_none(), "fixed lifetime: no renewal");
    c.track("E", None, T0 + 10 * DAY, rnd(3)).unwrap();
    let second = c.identity_view().device_id.unwrap().to_owned();
    assert_ne!(first, second, "rotated at expiry");
    assert!(matches!(c.take_persist(T0 + 10 * DAY, true).device, Some(Store::Write(_))));

    cfg.identity.renew_device_id = true;
    let mut r = Client::new(cfg, T0, rnd(4)).unwrap();
    r.take_persist(T0, true);
    r.track("E", None, T0 + 1_000, rnd(5)).unwrap();
    assert!(r.take_persist(T0 + 1_000, true).device.is_none(), "at most one renewal a day");
    r.track("E", None, T0 + 2 * DAY, rnd(6)).unwrap();
    assert!(matches!(r.take_persist(T0 + 2 * DAY, true).device, Some(Store::Write(_))));
    assert_eq!(r.identity_view().device_id_expires, Some(T0 + 12 * DAY));
    r.track("E", None, T0 + 11 * DAY, rnd(7)).unwrap();
    assert_eq!(r.stats().accepted, 3);
}

#[test]
fn an_expired_stored_device_is_rotated_only_with_consent() {
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    let Some(Store::Write(device)) = c.take_persist(T0, true).device else { panic!() };
    let later = T0 + 400 * DAY;
    let mut d = Client::new(config(r#""pending""#), later, rnd(2)).unwrap();
    d.restore_device(&device, later, rnd(3), false).unwrap();
    let new_id = d.identity_view().device_id.unwrap().to_owned();
    assert_ne!(Some(new_id.as_str()), c.identity_view().device_id);
    assert_eq!(d.identity_view().device_id_created, Some(later));
    // Pending stored consent: the expired id goes and no new one is made.
    let mut p = Client::new(config(r#""pending""#), T0, rnd(4)).unwrap();
    p.set_consent(r#"{"analytics":"granted"}"#, T0, rnd(5)).unwrap();
    p.set_consent(r#"{"analytics":"pending"}"#, T0, rnd(6)).unwrap();
    let Some(Store::Write(pending_device)) = p.take_persist(T0, true).device else { panic!() };
    let mut q = Client::new(config(r#""pending""#), later, rnd(7)).unwrap();
    q.restore_device(&pending_device, later, rnd(8), false).unwrap();
    assert_eq!(q.identity_view().device_id, None);
    assert_eq!(q.take_persist(later, true).device, Some(Store::Remove));
}

#[test]
fn sessions_start_after_inactivity_and_are_observable() {
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    c.track("A", None, T0, rnd(2)).unwrap();
    c.track("B", None, T0 + 60_000, rnd(3)).unwrap();
    c.track("C", None, T0 + 60_000 + 31 * 60_000, rnd(4)).unwrap();
    let starts: Vec<_> = c
        .take_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::SessionStarted { id } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [T0, T0 + 60_000 + 31 * 60_000]);
    let sent = drain(&mut c, T0 + 10_000_000);
    assert_eq!(sent[0]["context"]["sessionId"], T0);
    assert_eq!(sent[0]["context"]["sessionStart"], true);
    assert_eq!(sent[1]["context"]["sessionId"], T0);
    assert!(sent[1]["context"].get("sessionStart").is_none());
    assert_eq!(sent[2]["context"]["sessionStart"], true);
    // The session survives a restart through the identity record.
    let p = c.take_persist(T0 + 10_000_000, true);
    let (Some(Store::Write(dev)), Some(Store::Write(idr))) = (p.device, p.identity) else { panic!() };
    let mut d = Client::new(config(r#""granted""#), T0, rnd(5)).unwrap();
    d.restore_device(&dev, T0 + 100, rnd(6), false).unwrap();
    d.restore_identity(&idr).unwrap();
    let t = T0 + 60_000 + 31 * 60_000 + 1_000;
    d.track("D", None, t, rnd(7)).unwrap();
    assert!(d.take_notices().iter().all(|n| !matches!(n, Notice::SessionStarted { .. })));
    assert_eq!(drain(&mut d, t)[0]["context"]["sessionId"], T0 + 60_000 + 31 * 60_000);
}

#[test]
fn identify_hashes_ids_and_reset_forgets_the_person() {
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    let first = c.identity_view().device_id.unwrap().to_owned();
    c.identify(
        Some("u-42"),
        Some(r#"{"plan":"gold"}"#),
        Some(r#"{"email":" Jane.Doe@Example.com ","phone":"+44 20 7946 0958","crmId":"C-7"}"#),
        None,
        T0,
        rnd(2),
    )
    .unwrap();
    c.alias("u-43", None, T0, rnd(3)).unwrap();
    let v = c.identity_view();
    assert_eq!(v.ids["email"], crate::identity::sha256_hex("jane.doe@example.com"));
    assert_eq!(v.ids["phone"], crate::identity::sha256_hex("+442079460958"));
    assert_eq!(v.ids["crmId"], "C-7");
    assert_eq!(v.user_id, Some("u-42"), "alias does not change the user id");
    let sent = drain(&mut c, T0);
    let body = serde_json::to_string(&sent).unwrap();
    assert!(!body.to_lowercase().contains("jane"), "no plain email leaves the device");
    let ext = sent[0]["context"]["externalIds"].as_array().unwrap();
    assert_eq!(ext.len(), 3);
    let email = ext.iter().find(|x| x["type"] == "email").unwrap();
    assert_eq!(email["encoding"], "sha256");
    assert_eq!(ext.iter().find(|x| x["type"] == "crmId").unwrap()["encoding"], "none");
    assert_eq!(sent[1]["type"], "alias");
    assert_eq!(sent[1]["previousId"], "u-42");
    assert_eq!(sent[1]["userId"], "u-43");

    c.reset(T0 + 1, rnd(4));
    let v = c.identity_view();
    assert!(v.user_id.is_none() && v.ids.is_empty() && v.traits.is_empty() && v.session.is_none());
    assert_ne!(v.device_id, Some(first.as_str()), "logout rotates the device id");
    assert!(v.device_id.is_some());
    let e = c.track("After", None, T0 + 2, rnd(5)).unwrap();
    let after = drain(&mut c, T0 + 2);
    assert_eq!(after[0]["messageId"], e.as_str());
    assert!(after[0].get("userId").is_none());

    // A bad id is a typed error and changes nothing.
    assert!(matches!(
        c.identify(Some("u-9"), None, Some(r#"{"email":"nope"}"#), None, T0, rnd(6)),
        Err(EventError::Identity(crate::identity::IdentityError::BadEmail(_)))
    ));
    assert!(c.identity_view().user_id.is_none());
    assert!(matches!(c.identify(None, None, None, None, T0, rnd(7)), Err(EventError::Empty { .. })));
}

#[test]
fn tcf_not_applicable_grants_the_mapped_purposes_only() {
    let mut c = Client::new(config(r#""pending""#), T0, rnd(1)).unwrap();
    let consent = c.set_tcf_not_applicable(T0, rnd(2));
    assert_eq!(consent.analytics, Choice::Granted);
    assert_eq!(consent.personalization, Choice::Granted);
    assert_eq!(consent.advertising, Choice::Granted);
    assert_eq!(consent.sale, Choice::Pending, "TCF does not speak for sale");
}

#[test]
fn a_tc_string_sets_the_mapped_purposes_and_is_recorded_once() {
    // The IAB specification's example: purposes 1, 3, 9 and 10 consented.
    const TC: &str =
        "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA";
    let mut cfg = config(r#""pending""#);
    cfg.consent.tcf.purposes.analytics = vec![1, 9, 10];
    let mut c = Client::new(cfg, T0, rnd(1)).unwrap();
    c.track("Before", None, T0, rnd(2)).unwrap();
    let consent = c.set_consent_tcf(TC, T0, rnd(3)).unwrap();
    assert_eq!(consent.analytics, Choice::Granted);
    assert_eq!(consent.personalization, Choice::Denied, "5 and 6 are not consented");
    assert_eq!(consent.advertising, Choice::Denied, "4 is not consented");
    assert_eq!(consent.sale, Choice::Pending, "TCF does not speak for sale");
    // The CMP repeats itself on every page: nothing new is recorded.
    c.set_consent_tcf(TC, T0, rnd(4)).unwrap();
    let sent = drain(&mut c, T0);
    assert_eq!(sent.len(), 2, "the held event and one change record");
    assert_eq!(sent[1]["properties"]["source"], "tcf");
    // A damaged string is refused whole.
    let before = c.consent();
    assert!(matches!(c.set_consent_tcf(&TC[..40], T0, rnd(5)), Err(ConsentError::Tcf(_))));
    assert_eq!(c.consent(), before);
}

#[test]
fn the_iab_mobile_keys_follow_gdpr_applies_then_the_tc_string() {
    const TC: &str =
        "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA";
    let mut cfg = config(r#""pending""#);
    cfg.consent.tcf.purposes.analytics = vec![1, 9, 10];
    let mut c = Client::new(cfg, T0, rnd(1)).unwrap();
    // Nothing stored by the CMP yet, or GDPR applies but no answer yet.
    for (applies, tc) in [(None, None), (Some(1), None), (Some(1), Some("  ")), (None, Some(""))] {
        assert_eq!(c.set_consent_iab(applies, tc, T0, rnd(2)).unwrap().analytics, Choice::Pending);
    }
    assert!(matches!(c.set_consent_iab(Some(2), Some(TC), T0, rnd(3)), Err(ConsentError::Invalid(_))));
    assert!(matches!(c.set_consent_iab(Some(1), Some("garbage"), T0, rnd(3)), Err(ConsentError::Tcf(_))));
    assert_eq!(c.consent().analytics, Choice::Pending, "refused input changes nothing");
    // A string while gdprApplies is unset is still the person's choice.
    let consent = c.set_consent_iab(None, Some(TC), T0, rnd(4)).unwrap();
    assert_eq!((consent.analytics, consent.advertising), (Choice::Granted, Choice::Denied));
    // GDPR does not apply: the configured not-applicable consent, whatever
    // string is left over.
    let consent = c.set_consent_iab(Some(0), Some(TC), T0, rnd(5)).unwrap();
    assert_eq!(consent.advertising, Choice::Granted);
}

#[test]
fn an_upload_makes_the_stored_queue_due_at_once() {
    // A crash between send and acknowledgement must lose nothing, even
    // within the persist debounce after the events were tracked.
    let mut c = Client::new(config(r#""granted""#), T0, rnd(1)).unwrap();
    c.take_persist(T0, false);
    let id = c.track("E", None, T0, rnd(2)).unwrap();
    assert!(c.take_persist(T0 + 10, false).queue.is_none(), "debounced while only queued");
    c.flush();
    assert!(matches!(c.next_upload(T0 + 10), NextUpload::Upload(_)));
    assert_eq!(c.poll_timeout(T0 + 10), Some(T0 + 10), "due now");
    let Some(Store::Write(snapshot)) = c.take_persist(T0 + 10, false).queue else {
        panic!("the queue is written when its events leave")
    };
    let mut after_crash = Client::new(config(r#""granted""#), T0 + 20, rnd(3)).unwrap();
    assert_eq!(after_crash.restore(&snapshot, T0 + 20), Ok(1));
    let sent = drain(&mut after_crash, T0 + 20);
    assert_eq!(sent[0]["messageId"], id.as_str());
}

#[test]
fn a_shared_device_record_that_vanished_is_a_denial_unless_it_ran_out() {
    let mut cfg = config(r#""granted""#);
    cfg.consent.send_denial = true;
    let mut c = Client::new(cfg.clone(), T0, rnd(1)).unwrap();
    let Some(Store::Write(record)) = c.take_persist(T0, true).device else { panic!() };
    // Gone before its expiry: denied here too, everything stored goes, and
    // no second denial record (the page that saw it sent one).
    assert!(c.device_record_lost(Some(&record), T0 + 1, rnd(2)));
    assert_eq!(c.consent().analytics, Choice::Denied);
    assert!(c.identity_view().device_id.is_none());
    assert!(c.take_persist(T0 + 1, false).wipe);
    assert_eq!(c.next_upload(T0 + 100_000), NextUpload::Idle);
    // Already denied: still a wipe, so a stale local copy cannot linger.
    assert!(c.device_record_lost(None, T0 + 2, rnd(3)));
    assert!(c.take_persist(T0 + 2, false).wipe);
    // Ran out: the browser dropped the cookie at its Max-Age; nothing to deny.
    let mut d = Client::new(cfg, T0, rnd(4)).unwrap();
    let expired = T0 + 396 * DAY;
    assert!(!d.device_record_lost(Some(&record), expired, rnd(5)));
    assert_eq!(d.consent().analytics, Choice::Granted);
}
