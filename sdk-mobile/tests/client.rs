//! The UniFFI client driven through its exported API, as Kotlin or Swift
//! would, against a fake collector and a real temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdk_mobile::store::{FileStore, Slot};
use sdk_mobile::{Client, DeterministicSource, Notice, ThreadlineError, Upload, UploadPoll};
use serde_json::Value;

/// A fresh, empty directory per test.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("tl-mobile-{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

/// Files in `dir` (none if it does not exist).
fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Sends at once, retries within milliseconds, never gives up: tests run on
/// the real clock.
fn config(extra: &str) -> String {
    format!(
        r#"{{"endpoint":"https://collector.example.com","writeKey":"wk",
            "batch":{{"maxAgeMs":0}},
            "retry":{{"baseBackoffMs":1,"maxBackoffMs":5,"maxAttempts":100000}}{extra}}}"#
    )
}

fn client(dir: &Path, extra: &str) -> Arc<Client> {
    Client::new(config(extra), dir.to_string_lossy().into_owned()).unwrap()
}

fn stats(c: &Client) -> Value {
    serde_json::from_str(&c.stats()).unwrap()
}

/// A Segment-spec collector that remembers every messageId it accepted.
#[derive(Default)]
struct Server {
    acked: Mutex<BTreeMap<String, u32>>,
    requests: AtomicU64,
}

impl Server {
    fn accept(&self, u: &Upload) {
        assert!(u.url.ends_with("/v1/batch"), "{}", u.url);
        assert!(u.headers.iter().any(|h| h.name.eq_ignore_ascii_case("authorization")));
        let body: Value = serde_json::from_slice(&u.body).unwrap();
        let mut acked = self.acked.lock().unwrap();
        for e in body["batch"].as_array().unwrap() {
            *acked.entry(e["messageId"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }

    fn ids(&self) -> BTreeSet<String> {
        self.acked.lock().unwrap().keys().cloned().collect()
    }

    /// Performs every due upload; `fail(n)` decides the fate of request n:
    /// `None` is a 200, `Some(true)` a 503 after the server stored the
    /// batch (the answer was lost), `Some(false)` a 503 before.
    fn pump(&self, c: &Client, fail: impl Fn(u64) -> Option<bool>) -> usize {
        let mut n = 0;
        while let Some(u) = c.next_upload() {
            c.persist();
            let req = self.requests.fetch_add(1, Ordering::Relaxed);
            let status = match fail(req) {
                None => {
                    self.accept(&u);
                    200
                }
                Some(stored) => {
                    if stored {
                        self.accept(&u);
                    }
                    503
                }
            };
            c.upload_finished(u.id, Some(status), None, false).unwrap();
            c.persist();
            n += 1;
        }
        c.persist();
        n
    }

    /// Pumps (no failures) until nothing is queued.
    fn drain(&self, c: &Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while stats(c)["queued"] != 0 {
            assert!(Instant::now() < deadline, "queue never drained: {}", c.stats());
            if self.pump(c, |_| None) == 0 {
                std::thread::sleep(Duration::from_millis(c.poll_timeout_ms().unwrap_or(1).clamp(1, 5)));
            }
        }
    }
}

#[test]
fn track_upload_finish_loop() {
    let dir = temp_dir("loop");
    let c = client(&dir, "");
    let server = Server::default();
    let a = c.track("Product Viewed".into(), Some(r#"{"sku":"A1","price":12.5}"#.into())).unwrap();
    let b = c.screen("Cart".into(), None).unwrap();
    let i = c.identify(Some("u-1".into()), Some(r#"{"plan":"pro"}"#.into()), None, None).unwrap();
    c.flush();
    assert_eq!(c.poll_timeout_ms(), Some(0));
    server.drain(&c);
    assert_eq!(server.ids(), BTreeSet::from([a, b, i]));
    let s = stats(&c);
    assert_eq!(s["delivered"], 3);
    assert_eq!(s["storageAvailable"], true);
    assert_eq!(s["noticesPending"], 1, "{s}");
    assert_eq!(c.next_upload(), None);

    let identity: Value = serde_json::from_str(&c.get_identity()).unwrap();
    assert_eq!(identity["userId"], "u-1");
    assert!(identity["deviceId"].is_string());
    let consent: Value = serde_json::from_str(&c.get_consent()).unwrap();
    assert_eq!(consent["analytics"], "granted");
    assert!(c.take_notices().iter().any(|n| matches!(n, Notice::SessionStarted { .. })));
    assert!(c.take_notices().is_empty());

    // Errors come back typed, with the core's message.
    assert!(matches!(
        c.track(String::new(), None),
        Err(ThreadlineError::InvalidEvent { kind, detail }) if kind == "event.empty" && detail.contains("must not be empty")
    ));
    assert!(matches!(c.track("x".into(), Some("[1]".into())), Err(ThreadlineError::InvalidEvent { .. })));
    assert_eq!(
        c.upload_finished(999, Some(200), None, false),
        Err(ThreadlineError::UnknownUpload { id: 999 })
    );
    assert!(matches!(c.set_consent("nope".into()), Err(ThreadlineError::InvalidConsent { .. })));
    assert!(matches!(c.set_consent_tcf("!!".into()), Err(ThreadlineError::InvalidConsent { .. })));
    assert!(matches!(
        Client::new("{}".into(), dir.to_string_lossy().into_owned()),
        Err(ThreadlineError::InvalidConfig { .. })
    ));
    assert!(matches!(Client::new(config(""), " ".into()), Err(ThreadlineError::Storage { .. })));
    assert_eq!(stats(&c)["rejected"], 2);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn retries_after_server_and_network_errors() {
    let dir = temp_dir("retry");
    let c = client(&dir, "");
    let id = c.track("e".into(), None).unwrap();
    let u = c.next_upload().unwrap();
    c.upload_finished(u.id, Some(503), Some("0".into()), false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let u = loop {
        if let Some(u) = c.next_upload() {
            break u;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(c.poll_timeout_ms().unwrap().clamp(1, 5)));
    };
    c.upload_finished(u.id, None, None, true).unwrap();
    c.network_available();
    let server = Server::default();
    server.drain(&c);
    assert_eq!(server.ids(), BTreeSet::from([id]));
    assert_eq!(stats(&c)["retries"], 2);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn killed_process_loses_nothing_unacknowledged() {
    let dir = temp_dir("restart");
    // Every change written at once, so dropping the client is a kill.
    let extra = r#","queue":{"persistDebounceMs":0}"#;
    let c = client(&dir, extra);
    let device = serde_json::from_str::<Value>(&c.get_identity()).unwrap()["deviceId"].clone();
    let server = Server::default();
    let first: Vec<String> = (0..3).map(|n| c.track(format!("early {n}"), None).unwrap()).collect();
    server.drain(&c);
    let later: BTreeSet<String> = (0..5).map(|n| c.track(format!("late {n}"), None).unwrap()).collect();
    // One batch is on the wire when the process dies: never acknowledged.
    let in_flight = c.next_upload().unwrap();
    assert!(!in_flight.body.is_empty());
    c.persist(); // the host loop's step before it sends
    drop(c);
    assert!(files(&dir).contains("queue.tl"), "{:?}", files(&dir));

    let c = client(&dir, extra);
    let again = serde_json::from_str::<Value>(&c.get_identity()).unwrap()["deviceId"].clone();
    assert_eq!(again, device, "the device id survives the restart");
    assert_eq!(stats(&c)["restored"], 5);
    let fresh = Server::default();
    fresh.drain(&c);
    assert_eq!(fresh.ids(), later, "exactly the unacknowledged events, same messageIds");
    assert!(first.iter().all(|id| server.ids().contains(id)));
    // Everything acknowledged: the stored queue is gone.
    assert!(!files(&dir).contains("queue.tl"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn background_writes_everything_despite_debounce() {
    let dir = temp_dir("background");
    let c = client(&dir, r#","queue":{"persistDebounceMs":600000}"#);
    let ids: BTreeSet<String> = (0..4).map(|n| c.track(format!("e{n}"), None).unwrap()).collect();
    c.on_background();
    drop(c);
    let c = client(&dir, "");
    c.on_foreground();
    let server = Server::default();
    server.drain(&c);
    assert_eq!(server.ids(), ids);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_files_are_quarantined_and_reported() {
    let dir = temp_dir("corrupt");
    let extra = r#","queue":{"persistDebounceMs":0}"#;
    let c = client(&dir, extra);
    c.identify(Some("u-9".into()), None, None, None).unwrap();
    c.track("kept in the queue".into(), None).unwrap();
    c.persist();
    drop(c);
    // A flipped bit in the queue file, and an identity record with a good
    // checksum that the core cannot read.
    let queue = dir.join("queue.tl");
    let mut raw = fs::read(&queue).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x20;
    fs::write(&queue, raw).unwrap();
    FileStore::open(&dir).write(Slot::Identity, b"not an identity record");

    let c = client(&dir, extra);
    let s = stats(&c);
    assert_eq!(s["corruptFiles"], 2, "{s}");
    assert_eq!(s["restored"], 0);
    let names = files(&dir);
    assert!(names.contains("queue.corrupt") && names.contains("identity.corrupt"), "{names:?}");
    assert!(!names.contains("identity.tl"));
    // The device record was fine: same device, and the client carries on.
    assert!(names.contains("device.tl"));
    let id = c.track("after".into(), None).unwrap();
    let server = Server::default();
    server.drain(&c);
    assert_eq!(server.ids(), BTreeSet::from([id]));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_directory_degrades_to_memory() {
    let base = temp_dir("unwritable");
    fs::create_dir_all(&base).unwrap();
    // A path under a regular file can never be a directory (root ignores
    // permission bits, so chmod would not do).
    let blocker = base.join("file");
    fs::write(&blocker, b"x").unwrap();
    let dir = blocker.join("threadline");
    let c = client(&dir, r#","queue":{"persistDebounceMs":0}"#);
    let ids: BTreeSet<String> = (0..3).map(|n| c.track(format!("e{n}"), None).unwrap()).collect();
    c.on_background();
    let s = stats(&c);
    assert_eq!(s["storageAvailable"], false, "{s}");
    assert!(s["storageFailures"].as_u64().unwrap() >= 2, "{s}");
    assert!(s["lastStorageError"].is_string());
    let server = Server::default();
    server.drain(&c);
    assert_eq!(server.ids(), ids);

    // The directory becomes usable again: the next write recreates it.
    fs::remove_file(&blocker).unwrap();
    c.track("after recovery".into(), None).unwrap();
    c.on_background();
    let s = stats(&c);
    assert_eq!(s["storageAvailable"], true, "{s}");
    assert!(files(&dir).contains("queue.tl"), "{:?}", files(&dir));
    let _ = fs::remove_dir_all(&base);
}

#[test]
fn pending_consent_stores_nothing_and_denial_deletes_everything() {
    let dir = temp_dir("consent");
    let extra = r#","consent":{"default":"pending"},"queue":{"persistDebounceMs":0}"#;
    let c = client(&dir, extra);
    let held: BTreeSet<String> = (0..3).map(|n| c.track(format!("held {n}"), None).unwrap()).collect();
    c.identify(Some("u".into()), None, None, None).unwrap();
    c.on_background();
    assert_eq!(c.next_upload(), None, "nothing is sent while pending");
    assert_eq!(c.poll_timeout_ms(), None);
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    assert_eq!(stats(&c)["held"], 4);

    let consent: Value =
        serde_json::from_str(&c.set_consent(r#"{"analytics":"granted"}"#.into()).unwrap()).unwrap();
    assert_eq!(consent["analytics"], "granted");
    assert!(files(&dir).is_empty(), "app calls never write: {:?}", files(&dir));
    c.persist();
    assert!(c
        .take_notices()
        .iter()
        .any(|n| matches!(n, Notice::ConsentChanged { consent_json } if consent_json.contains("granted"))));
    let names = files(&dir);
    assert!(names.contains("device.tl") && names.contains("queue.tl"), "{names:?}");
    let server = Server::default();
    server.drain(&c);
    assert!(held.is_subset(&server.ids()));

    c.track("queued then denied".into(), None).unwrap();
    c.on_background();
    fs::write(dir.join("queue.corrupt"), b"old quarantined bytes").unwrap();
    assert!(files(&dir).contains("queue.tl"));
    c.set_consent(r#"{"analytics":"denied"}"#.into()).unwrap();
    assert_eq!(c.poll_timeout_ms(), Some(0), "the wipe is due at once");
    c.persist();
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    c.track("dropped".into(), None).unwrap();
    c.on_background();
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    let identity: Value = serde_json::from_str(&c.get_identity()).unwrap();
    assert!(identity["deviceId"].is_null() && identity["userId"].is_null(), "{identity}");

    // And a restart does not bring anything back.
    drop(c);
    let c = client(&dir, extra);
    assert!(serde_json::from_str::<Value>(&c.get_identity()).unwrap()["deviceId"].is_null());
    assert_eq!(stats(&c)["restored"], 0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn many_threads_track_while_uploads_fail_often() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 500;
    let dir = temp_dir("stress");
    let c = client(&dir, "");
    let server = Arc::new(Server::default());
    let done = Arc::new(AtomicBool::new(false));

    let pumper = {
        let (c, server, done) = (c.clone(), server.clone(), done.clone());
        std::thread::spawn(move || {
            // 30% of requests fail with a 503, half of those after the
            // server stored the batch (at-least-once: duplicates are fine).
            let fail = |n: u64| match n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54 {
                r if r < 307 => Some(r % 2 == 0),
                _ => None,
            };
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let finished = done.load(Ordering::Acquire);
                if server.pump(&c, fail) == 0 {
                    if finished && stats(&c)["queued"] == 0 {
                        break;
                    }
                    assert!(Instant::now() < deadline, "not drained: {}", c.stats());
                    let wait = c.poll_timeout_ms().unwrap_or(1).clamp(1, 5);
                    std::thread::sleep(Duration::from_millis(wait));
                }
            }
        })
    };
    let trackers: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|n| c.track(format!("t{t}"), Some(format!(r#"{{"n":{n}}}"#))).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut tracked = BTreeSet::new();
    for t in trackers {
        tracked.extend(t.join().unwrap());
    }
    c.flush();
    done.store(true, Ordering::Release);
    pumper.join().unwrap();

    assert_eq!(tracked.len(), THREADS * PER_THREAD, "messageIds are unique");
    assert_eq!(server.ids(), tracked, "every event reached the server, none invented");
    let s = stats(&c);
    assert_eq!(s["accepted"], THREADS * PER_THREAD);
    assert_eq!(s["delivered"], THREADS * PER_THREAD, "{s}");
    assert!(s["retries"].as_u64().unwrap() > 0, "{s}");
    eprintln!("stress stats: {s} requests={}", server.requests.load(Ordering::Relaxed));
    assert_eq!(s["droppedMaxAttempts"], 0);
    let duplicates = server.acked.lock().unwrap().values().filter(|&&n| n > 1).count();
    assert!(duplicates > 0, "some batches were stored but answered 503, and sent again");
    assert_eq!(s["storageFailures"], 0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn app_calls_never_touch_the_disk_only_persist_does() {
    let dir = temp_dir("offdisk");
    let c = client(&dir, r#","queue":{"persistDebounceMs":0}"#);
    c.identify(Some("u1".into()), Some(r#"{"plan":"pro"}"#.into()), None, None).unwrap();
    c.track("a".into(), None).unwrap();
    c.screen("Home".into(), None).unwrap();
    c.flush();
    c.set_gpc(true);
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    assert_eq!(c.poll_timeout_ms(), Some(0), "the writes are due: the loop must run");
    c.persist();
    let names = files(&dir);
    assert!(["device.tl", "identity.tl", "queue.tl"].iter().all(|f| names.contains(*f)), "{names:?}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn scripted_source_replays_the_scenario_draws_and_logs_storage() {
    let dir = temp_dir("scripted");
    let source = DeterministicSource::new("s".into(), 1_795_512_600_000);
    let cfg = r#"{"endpoint":"https://collector.example.com","writeKey":"wk","batch":{"maxEvents":2,"maxAgeMs":5000}}"#
        .to_owned();
    let c = Client::with_source(cfg.clone(), dir.to_string_lossy().into_owned(), source.clone()).unwrap();
    assert_eq!(source.draws(), 1, "creating the client draws once");
    // Draw 0 of seed "s" is the device id: the contract's example bytes.
    let identity: Value = serde_json::from_str(&c.get_identity()).unwrap();
    let device = identity["deviceId"].as_str().unwrap().replace('-', "");
    assert_eq!(&device[..12], "21d0725006cf", "{identity}");
    assert!(c.track(String::new(), None).is_err());
    assert_eq!(source.draws(), 2, "a refused call draws too");
    let a = c.track("A".into(), None).unwrap();
    assert_eq!(c.poll_upload(), UploadPoll::Wait { ms: 5000 });
    source.advance(5000);
    let UploadPoll::Due { upload } = c.poll_upload() else { panic!("due after maxAgeMs") };
    assert!(String::from_utf8_lossy(&upload.body).contains(&a));
    c.persist();
    assert_eq!(c.take_store_log(), ["write:queue", "write:identity", "write:device"]);
    source.set_jitter(0);
    c.upload_finished(upload.id, Some(200), None, false).unwrap();
    c.persist();
    assert_eq!(c.take_store_log(), ["remove:queue"]);
    assert_eq!(c.take_store_log(), Vec::<String>::new());

    // A restart continues the draws; restoring the device record draws once.
    drop(c);
    let before = source.draws();
    let c = Client::with_source(cfg, dir.to_string_lossy().into_owned(), source.clone()).unwrap();
    assert_eq!(source.draws(), before + 2);
    let again: Value = serde_json::from_str(&c.get_identity()).unwrap();
    assert_eq!(again["deviceId"], identity["deviceId"]);
    // A system-clock client keeps no log.
    let plain = client(&temp_dir("plainlog"), "");
    plain.on_background();
    assert!(plain.take_store_log().is_empty());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn handoff_at_background_is_kept_until_confirmed() {
    let dir = temp_dir("handoff");
    let source = DeterministicSource::new("h".into(), 1_795_512_600_000);
    let cfg =
        r#"{"endpoint":"https://collector.example.com","writeKey":"wk","retry":{"beaconConfirmMs":60000}}"#
            .to_owned();
    let c = Client::with_source(cfg.clone(), dir.to_string_lossy().into_owned(), source.clone()).unwrap();
    let ids: BTreeSet<String> = (0..3).map(|n| c.track(format!("e{n}"), None).unwrap()).collect();
    // Refused by the OS: back in the queue at no cost.
    let u = c.next_handoff(65536).unwrap();
    c.handoff_finished(u.id, false).unwrap();
    assert_eq!(stats(&c)["queued"], 3);
    let u = c.next_handoff(65536).unwrap();
    let body: Value = serde_json::from_slice(&u.body).unwrap();
    let sent: BTreeSet<String> = body["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ids);
    c.handoff_finished(u.id, true).unwrap();
    assert_eq!(c.next_handoff(65536), None);
    assert!(matches!(c.handoff_finished(u.id, true), Err(ThreadlineError::UnknownUpload { .. })));
    c.on_background();
    // Never confirmed: the next process sends them again after the wait.
    drop(c);
    source.advance(60_000);
    let c = Client::with_source(cfg, dir.to_string_lossy().into_owned(), source).unwrap();
    let server = Server::default();
    server.drain(&c);
    assert_eq!(server.ids(), ids);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn iab_tcf_keys_from_the_app_cmp() {
    let dir = temp_dir("iab");
    let c = client(&dir, r#","consent":{"default":"pending"}"#);
    // No CMP data yet: nothing changes.
    let v: Value = serde_json::from_str(&c.set_consent_iab(None, None).unwrap()).unwrap();
    assert_eq!(v["analytics"], "pending");
    let v: Value = serde_json::from_str(&c.set_consent_iab(Some(String::new()), Some(1)).unwrap()).unwrap();
    assert_eq!(v["analytics"], "pending");
    // A damaged string is refused with its kind and changes nothing.
    match c.set_consent_iab(Some("not a tc string".into()), Some(1)) {
        Err(ThreadlineError::InvalidConsent { kind, .. }) => assert_eq!(kind, "consent.tcf"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.set_consent_iab(None, Some(7)),
        Err(ThreadlineError::InvalidConsent { kind, .. }) if kind == "consent.invalid"
    ));
    assert_eq!(serde_json::from_str::<Value>(&c.get_consent()).unwrap()["analytics"], "pending");
    // gdprApplies = 0: the TCF mapping does not apply, the configured
    // not-applicable consent does.
    let v: Value = serde_json::from_str(&c.set_consent_iab(None, Some(0)).unwrap()).unwrap();
    assert_eq!(v["analytics"], "granted", "{v}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_device_record_that_failed_to_write_is_written_when_the_disk_recovers() {
    let base = temp_dir("rewrite");
    fs::create_dir_all(&base).unwrap();
    let blocker = base.join("file");
    fs::write(&blocker, b"x").unwrap();
    let dir = blocker.join("threadline");
    let c = client(&dir, r#","consent":{"default":"pending"}"#);
    c.set_consent(r#"{"analytics":"granted"}"#.into()).unwrap();
    let device = serde_json::from_str::<Value>(&c.get_identity()).unwrap()["deviceId"].clone();
    Server::default().drain(&c); // the consent record goes out; writes keep failing
    assert_eq!(stats(&c)["storageAvailable"], false);
    assert_eq!(c.poll_timeout_ms(), Some(5_000), "a retry of the failed writes is scheduled");
    // The core handed the record out once; the binding keeps it.
    fs::remove_file(&blocker).unwrap();
    c.persist();
    assert!(files(&dir).contains("device.tl"), "{:?}", files(&dir));
    assert_eq!(c.poll_timeout_ms(), None, "nothing left to retry");
    drop(c);
    let c = client(&dir, r#","consent":{"default":"pending"}"#);
    let again: Value = serde_json::from_str(&c.get_identity()).unwrap();
    assert_eq!(again["deviceId"], device, "same device and the granted consent came back");
    assert_eq!(serde_json::from_str::<Value>(&c.get_consent()).unwrap()["analytics"], "granted");
    let _ = fs::remove_dir_all(&base);
}
