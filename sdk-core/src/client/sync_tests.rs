//! Profile sync through the client: who is asked for, with what, and what
//! happens to an answer that arrives for someone else.

use super::*;
use crate::rules::RulesConfig;

const T0: Millis = 1_795_512_600_000;

fn client() -> Client {
    let mut c = Config::new("https://collector.test", "wk");
    c.consent = serde_json::from_str(r#"{"default":"granted"}"#).unwrap();
    c.rules = Some(RulesConfig::default());
    Client::new(c, T0, [1; 16]).unwrap()
}

fn body(user: &str, orders: u64) -> Vec<u8> {
    let mut p = Profile::default();
    for i in 0..orders {
        p.record("Order Completed", &serde_json::Value::Null, T0 - 1000 - i);
    }
    p.to_remote_json(user, T0, None, &[])
}

fn orders(c: &Client) -> u64 {
    c.profile().count("Order Completed", crate::logic::Window::Lifetime, None, T0 + 10)
}

#[test]
fn asks_for_the_identified_user_with_this_device_excluded() {
    let mut c = client();
    assert_eq!(c.next_profile_fetch(T0), None, "no user, no token");
    c.identify(Some("u1"), None, None, None, T0, [2; 16]).unwrap();
    assert_eq!(c.next_profile_fetch(T0), None, "no token");
    assert_eq!(c.sync_due(), None, "no timer for it either");
    c.identify(Some("u1"), None, None, Some("tok-1"), T0, [3; 16]).unwrap();
    assert_eq!(c.sync_due(), Some(0));
    let device = c.identity_view().device_id.unwrap().to_owned();
    let f = c.next_profile_fetch(T0).unwrap();
    assert_eq!(f.url, format!("https://collector.test/v1/profile?userId=u1&exclude={device}"));
    assert_eq!(f.token, "tok-1");
    assert_eq!(c.next_profile_fetch(T0), None, "one at a time");
    assert_eq!(c.sync_due(), None, "no timer while in flight");
    c.profile_fetched(f.id, ProfileResponse::Body { bytes: &body("u1", 2) }, T0, 0).unwrap();
    assert_eq!(orders(&c), 2);
    assert!(matches!(c.take_notices().last(), Some(Notice::ProfileSynced { .. })));
    assert_eq!(c.sync_due(), Some(T0 + 600_000), "refreshed on the interval");
    assert!(matches!(
        c.profile_fetched(f.id, ProfileResponse::Body { bytes: &body("u1", 2) }, T0, 0),
        Err(SyncError::UnknownFetch(_))
    ));
}

#[test]
fn an_answer_for_someone_who_left_is_never_used() {
    let mut c = client();
    c.identify(Some("u1"), None, None, Some("tok-1"), T0, [2; 16]).unwrap();
    let first = c.next_profile_fetch(T0).unwrap();
    c.identify(Some("u2"), None, None, Some("tok-2"), T0 + 1, [3; 16]).unwrap();
    // u1's answer lands after u2 signed in: dropped unread.
    c.profile_fetched(first.id, ProfileResponse::Body { bytes: &body("u1", 5) }, T0 + 2, 0).unwrap();
    assert_eq!(orders(&c), 0);
    let second = c.next_profile_fetch(T0 + 2).unwrap();
    assert!(second.url.contains("userId=u2") && second.token == "tok-2");
    // A server answering about someone else is refused whole.
    let r = c.profile_fetched(second.id, ProfileResponse::Body { bytes: &body("u1", 5) }, T0 + 3, 0);
    assert_eq!(r.unwrap_err().kind(), "profile.wrongUser");
    assert_eq!(orders(&c), 0);
    // After a sync, another user without a token drops it at once.
    let f = c.next_profile_fetch(T0 + 600_000).expect("a retry is due");
    c.profile_fetched(f.id, ProfileResponse::Body { bytes: &body("u2", 1) }, T0 + 600_000, 0).unwrap();
    assert_eq!(orders(&c), 1);
    c.identify(Some("u3"), None, None, None, T0 + 600_001, [4; 16]).unwrap();
    assert_eq!(orders(&c), 0);
    assert_eq!(c.next_profile_fetch(T0 + 600_001), None);
}

#[test]
fn a_token_needs_a_user_and_survives_a_restart_until_refused() {
    let mut c = client();
    let before = c.stats().rejected;
    let e = c.identify(None, Some(r#"{"a":1}"#), None, Some("tok"), T0, [2; 16]).unwrap_err();
    assert_eq!(e.kind(), "event.empty");
    assert_eq!(c.stats().rejected, before + 1);
    assert_eq!(c.identity().user_token, None);
    c.identify(Some("u1"), None, None, Some("tok-1"), T0, [3; 16]).unwrap();
    let p = c.take_persist(T0, true);
    let Some(Store::Write(identity)) = p.identity else { panic!("identity written") };
    let Some(Store::Write(device)) = p.device else { panic!("device written") };
    let mut d = client();
    d.restore_device(&device, T0 + 5, [4; 16], false).unwrap();
    d.restore_identity(&identity).unwrap();
    let f = d.next_profile_fetch(T0 + 5).unwrap();
    assert_eq!(f.token, "tok-1");
    let e = d.profile_fetched(f.id, ProfileResponse::Failed { status: Some(401) }, T0 + 6, 0).unwrap_err();
    assert_eq!(e.kind(), "sync.unauthorized");
    assert_eq!(d.identity().user_token, None, "a refused token is forgotten");
    assert_eq!(d.next_profile_fetch(T0 + 10_000_000), None);
    let p = d.take_persist(T0 + 7, true);
    let Some(Store::Write(identity)) = p.identity else { panic!("identity rewritten") };
    assert!(!String::from_utf8(identity).unwrap().contains("tok-1"));
}

#[test]
fn nothing_is_asked_while_analytics_is_denied_at_identify() {
    let mut c = client();
    c.set_consent(r#"{"analytics":"denied"}"#, T0, [2; 16]).unwrap();
    let _ = c.identify(Some("u1"), None, None, Some("tok"), T0, [3; 16]);
    assert_eq!(c.identity().user_token, None);
    assert_eq!(c.next_profile_fetch(T0), None);
}
