use super::*;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};

const T0: Millis = 1_795_512_600_000;
const MIN: Millis = 60_000;

fn artifact(rev: &str) -> String {
    format!(
        r#"{{"version":1,"revision":"{rev}","bucketing":"murmur3_x86_32/v1","placements":[{{"id":"home","default":{{"id":"d","content":null}}}}]}}"#
    )
}

fn config(key: Option<&SigningKey>) -> RulesConfig {
    RulesConfig {
        url: Some("https://cdn.example/rules.json".into()),
        public_key: key.map(|k| STANDARD.encode(k.verifying_key().to_bytes())),
        ..RulesConfig::default()
    }
}

fn sign(key: &SigningKey, body: &str) -> String {
    STANDARD.encode(key.sign(body.as_bytes()).to_bytes())
}

fn revision(r: &Rules) -> Option<&str> {
    r.engine().artifact().and_then(|a| a.revision.as_deref())
}

#[test]
fn fetches_at_start_revalidates_with_etag_and_refreshes_on_the_interval() {
    let mut r = Rules::new(config(None), Default::default(), T0).unwrap();
    assert_eq!(r.due(), Some(T0));
    let f = r.next_fetch(T0).unwrap();
    assert_eq!(
        (f.url.as_str(), f.etag.as_deref(), f.signature),
        ("https://cdn.example/rules.json", None, false)
    );
    assert_eq!(r.next_fetch(T0), None, "one fetch at a time");
    let body = artifact("r1");
    let next = r.fetched(f.id, RulesResponse::Body { bytes: body.as_bytes(), etag: Some("\"e1\"") }, T0, 0);
    assert_eq!(next, Ok(None));
    assert_eq!(revision(&r), Some("r1"));
    assert_eq!(r.take_events(), vec![RulesEvent::Loaded { revision: Some("r1".into()) }]);
    assert!(r.take_cache().is_some());
    assert_eq!(r.due(), Some(T0 + 5 * MIN));
    assert_eq!(r.next_fetch(T0 + 5 * MIN - 1), None);
    let f = r.next_fetch(T0 + 5 * MIN).unwrap();
    assert_eq!(f.etag.as_deref(), Some("\"e1\""));
    assert_eq!(r.fetched(f.id, RulesResponse::NotModified, T0 + 5 * MIN, 0), Ok(None));
    assert_eq!(revision(&r), Some("r1"));
    assert!(r.take_cache().is_some(), "the revalidation time is stored");
    assert_eq!(r.due(), Some(T0 + 10 * MIN));
    assert_eq!(r.fetched(99, RulesResponse::NotModified, T0, 0), Err(RulesError::UnknownFetch(99)));
}

#[test]
fn failures_back_off_doubling_up_to_the_interval_and_keep_the_last_good_artifact() {
    let mut r = Rules::new(config(None), Default::default(), T0).unwrap();
    let f = r.next_fetch(T0).unwrap();
    let body = artifact("good");
    r.fetched(f.id, RulesResponse::Body { bytes: body.as_bytes(), etag: None }, T0, 0).unwrap();
    let mut now = T0 + 5 * MIN;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let f = r.next_fetch(now).unwrap();
        r.fetched(f.id, RulesResponse::Failed { status: Some(503) }, now, 500).unwrap();
        let due = r.due().unwrap();
        waits.push(due - now);
        now = due;
    }
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
    assert!(waits[0] >= 8_750 && waits[0] <= 11_250, "{waits:?}");
    assert!(waits.iter().all(|&w| w <= 5 * MIN + 5 * MIN / 8), "{waits:?}");
    assert_eq!(revision(&r), Some("good"));

    // A broken deploy is refused, reported, and not retried before the next refresh.
    let f = r.next_fetch(now).unwrap();
    let bad = br#"{"version":1,"bucketing":"murmur3_x86_32/v1","placements":[],"offers":[{"id":"x"}]}"#;
    let e = r.fetched(f.id, RulesResponse::Body { bytes: bad, etag: Some("\"bad\"") }, now, 0).unwrap_err();
    assert_eq!(e.kind(), "rules.artifact");
    assert!(matches!(r.take_events().last(), Some(RulesEvent::Rejected { kind: "rules.artifact", .. })));
    assert_eq!(revision(&r), Some("good"));
    assert_eq!(r.due(), Some(now + 5 * MIN));
    let f = r.next_fetch(now + 5 * MIN).unwrap();
    assert_eq!(f.etag, None, "the refused artifact's etag is not kept");
}

#[test]
fn with_a_public_key_the_signature_is_fetched_and_checked() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let mut r = Rules::new(config(Some(&key)), Default::default(), T0).unwrap();
    let body = artifact("signed");
    let f = r.next_fetch(T0).unwrap();
    let sig_fetch = r.fetched(f.id, RulesResponse::Body { bytes: body.as_bytes(), etag: None }, T0, 0);
    let sig_fetch = sig_fetch.unwrap().unwrap();
    assert!(sig_fetch.signature);
    assert_eq!(sig_fetch.url, "https://cdn.example/rules.json.sig");
    assert!(!r.is_ready());
    let sig = format!("{}\n", sign(&key, &body));
    r.fetched(sig_fetch.id, RulesResponse::Body { bytes: sig.as_bytes(), etag: None }, T0, 0).unwrap();
    assert_eq!(revision(&r), Some("signed"));

    // A tampered artifact, and one signed by another key, are refused.
    for (tampered, signer) in
        [(artifact("evil"), key.clone()), (artifact("other"), SigningKey::from_bytes(&[8u8; 32]))]
    {
        r.refresh(T0 + 1);
        let f = r.next_fetch(T0 + 1).unwrap();
        let s = r.fetched(f.id, RulesResponse::Body { bytes: tampered.as_bytes(), etag: None }, T0 + 1, 0);
        let s = s.unwrap().unwrap();
        let wrong = if signer == key { sign(&key, &body) } else { sign(&signer, &tampered) };
        let e = r.fetched(s.id, RulesResponse::Body { bytes: wrong.as_bytes(), etag: None }, T0 + 1, 0);
        assert_eq!(e.unwrap_err().kind(), "rules.signature");
        assert_eq!(revision(&r), Some("signed"));
    }
    // Unsigned from the host: refused.
    let e = r.provide(&artifact("inline"), None, true, T0).unwrap_err();
    assert_eq!(e.kind(), "rules.signature");
    assert_eq!(
        r.provide(&artifact("inline"), Some("not base64!"), true, T0).unwrap_err().kind(),
        "rules.signature"
    );
}

#[test]
fn the_cache_restores_at_once_and_is_revalidated_when_old() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let mut r = Rules::new(config(Some(&key)), Default::default(), T0).unwrap();
    let body = artifact("cached");
    assert_eq!(r.provide(&body, Some(&sign(&key, &body)), false, T0), Ok(true));
    let cache = r.take_cache().unwrap();

    // A restart two minutes later: in use at once, revalidated three minutes on.
    let mut r2 = Rules::new(config(Some(&key)), Default::default(), T0 + 2 * MIN).unwrap();
    // Provided (not fetched): its age is unknown, so revalidate at once.
    r2.restore(&cache, T0 + 2 * MIN).unwrap();
    assert_eq!(revision(&r2), Some("cached"));
    assert_eq!(r2.due(), Some(T0 + 2 * MIN));
    assert_eq!(r2.take_cache(), None, "nothing new to store");

    // A fetched copy carries its time.
    let f = r2.next_fetch(T0 + 2 * MIN).unwrap();
    r2.fetched(f.id, RulesResponse::NotModified, T0 + 2 * MIN, 0).unwrap();
    let cache = r2.take_cache().unwrap();
    let mut r3 = Rules::new(config(Some(&key)), Default::default(), T0 + 3 * MIN).unwrap();
    r3.restore(&cache, T0 + 3 * MIN).unwrap();
    assert_eq!(r3.due(), Some(T0 + 7 * MIN));
    // A bundled copy does not replace it.
    let bundled = artifact("bundled");
    assert_eq!(r3.provide(&bundled, Some(&sign(&key, &bundled)), false, T0), Ok(false));
    assert_eq!(revision(&r3), Some("cached"));

    // A cache tampered with in storage is refused.
    let mut forged: serde_json::Value = serde_json::from_slice(&cache).unwrap();
    forged["body"] = artifact("forged").into();
    let mut r4 = Rules::new(config(Some(&key)), Default::default(), T0).unwrap();
    let e = r4.restore(&serde_json::to_vec(&forged).unwrap(), T0).unwrap_err();
    assert_eq!(e.kind(), "rules.signature");
    assert!(!r4.is_ready());
    assert_eq!(r4.restore(b"{not json", T0).unwrap_err().kind(), "rules.cache");
}

#[test]
fn bad_configuration_is_refused() {
    let bad = |c: RulesConfig| Rules::new(c, Default::default(), T0).unwrap_err().kind();
    let key = |k: &str| RulesConfig { public_key: Some(k.into()), ..RulesConfig::default() };
    assert_eq!(bad(key("!!")), "rules.publicKey");
    assert_eq!(bad(key(&STANDARD.encode([1u8; 31]))), "rules.publicKey");
    assert_eq!(bad(RulesConfig { url: Some("a b".into()), ..RulesConfig::default() }), "rules.url");
    // No URL: nothing is ever fetched.
    let mut r = Rules::new(RulesConfig::default(), Default::default(), T0).unwrap();
    assert_eq!((r.due(), r.next_fetch(T0)), (None, None));
}
