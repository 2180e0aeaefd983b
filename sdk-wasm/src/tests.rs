//! Tests of the browser glue in headless Chromium (`wasm-bindgen-test`):
//! real localStorage, Web Locks and CompressionStream; `fetch` and
//! `sendBeacon` replaced by recording stubs so outcomes can be scripted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

use crate::browser::{RandomPool, Store};
use crate::{tabs, transport, Threadline};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
const calls = [];
let replies = [];
let failing = false;
export function setFailing(on) { failing = on; }
export function stubFetch() {
  calls.length = 0;
  replies = [];
  failing = false;
  window.fetch = async (url, init) => {
    const headers = {};
    new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
    let body = new Uint8Array(await new Response(init.body).arrayBuffer());
    if (headers['content-encoding'] === 'gzip') {
      const s = new Blob([body]).stream().pipeThrough(new DecompressionStream('gzip'));
      body = new Uint8Array(await new Response(s).arrayBuffer());
    }
    const text = new TextDecoder().decode(body);
    const r = failing ? { network: true } : (replies.shift() || { status: 200 });
    calls.push({ url, headers, keepalive: !!init.keepalive, text, ok: r.status === 200 });
    if (r.network) throw new TypeError('Failed to fetch');
    return new Response('{}', { status: r.status, headers: r.retryAfter ? { 'Retry-After': r.retryAfter } : {} });
  };
}
export function replyNext(status, retryAfter, network) { replies.push({ status, retryAfter, network }); }
export function fetchCalls() { return JSON.stringify(calls); }
const beacons = [];
export function stubBeacon(accept) {
  beacons.length = 0;
  Object.defineProperty(navigator, 'sendBeacon', { configurable: true, value: (url, blob) => {
    beacons.push({ url, type: blob.type, size: blob.size, blob });
    return accept;
  }});
}
export async function beaconTexts() {
  return JSON.stringify(await Promise.all(beacons.map(async (b) => ({ url: b.url, type: b.type, text: await b.blob.text() }))));
}
export function firePagehide() { window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false })); }
export function breakSetItem(on) {
  if (on) {
    window.__setItem = Storage.prototype.setItem;
    Storage.prototype.setItem = function () { throw new DOMException('full', 'QuotaExceededError'); };
  } else if (window.__setItem) {
    Storage.prototype.setItem = window.__setItem;
  }
}
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
export function errorClass(e) { return e && e.constructor ? e.constructor.name : typeof e; }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = stubFetch)]
    fn stub_fetch();
    #[wasm_bindgen(js_name = setFailing)]
    fn set_failing(on: bool);
    #[wasm_bindgen(js_name = replyNext)]
    fn reply_next(status: u16, retry_after: Option<String>, network: bool);
    #[wasm_bindgen(js_name = fetchCalls)]
    fn fetch_calls() -> String;
    #[wasm_bindgen(js_name = stubBeacon)]
    fn stub_beacon(accept: bool);
    #[wasm_bindgen(js_name = beaconTexts)]
    async fn beacon_texts() -> JsValue;
    #[wasm_bindgen(js_name = firePagehide)]
    fn fire_pagehide();
    #[wasm_bindgen(js_name = breakSetItem)]
    fn break_set_item(on: bool);
    async fn sleep(ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = errorClass)]
    fn error_class(e: &JsValue) -> String;
}

fn clear_storage() {
    let w = web_sys::window().unwrap();
    w.local_storage().unwrap().unwrap().clear().unwrap();
    w.session_storage().unwrap().unwrap().clear().unwrap();
}

fn config(prefix: &str, batch: &str) -> (String, String) {
    (
        format!(
            r#"{{"endpoint":"https://collector.test","writeKey":"wk","batch":{batch},"retry":{{"baseBackoffMs":50,"maxBackoffMs":200}}}}"#
        ),
        format!(r#"{{"storagePrefix":"{prefix}"}}"#),
    )
}

async fn client(prefix: &str, batch: &str) -> Threadline {
    let (c, w) = config(prefix, batch);
    Threadline::create(c, w).await.unwrap()
}

fn stats(t: &Threadline) -> serde_json::Value {
    serde_json::from_str(&t.stats()).unwrap()
}

fn calls() -> Vec<serde_json::Value> {
    serde_json::from_str::<Vec<serde_json::Value>>(&fetch_calls()).unwrap()
}

fn ids_in(text: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["batch"].as_array().unwrap().iter().map(|e| e["messageId"].as_str().unwrap().to_owned()).collect()
}

#[wasm_bindgen_test]
fn random_pool_gives_distinct_bytes_across_refills() {
    let mut p = RandomPool::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        assert!(seen.insert(p.bytes16()));
    }
    assert_eq!(p.hex_id().len(), 12);
}

#[wasm_bindgen_test]
fn store_degrades_when_set_item_throws() {
    clear_storage();
    let mut s = Store::local(true);
    assert!(s.available());
    assert!(s.set("tl-test.a", "1"));
    assert_eq!(s.get("tl-test.a").as_deref(), Some("1"));
    assert_eq!(s.keys_with_prefix("tl-test."), vec!["tl-test.a".to_owned()]);
    break_set_item(true);
    assert!(!s.set("tl-test.b", "2"));
    break_set_item(false);
    assert_eq!(s.failures, 1);
    s.remove("tl-test.a");
    assert_eq!(s.get("tl-test.a"), None);
    assert!(!Store::local(false).available());
}

#[wasm_bindgen_test]
async fn gzip_produces_a_gzip_stream() {
    let input = "threadline ".repeat(500);
    let gz = transport::gzip(input.as_bytes()).await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    assert!(gz.len() < input.len() / 10, "{} bytes", gz.len());
}

#[wasm_bindgen_test]
async fn web_locks_are_exclusive_until_released() {
    assert!(tabs::supported());
    use tabs::Wait;
    let first = tabs::acquire("tl-test.lock", Wait::IfAvailable).await.expect("free lock");
    assert!(tabs::acquire("tl-test.lock", Wait::IfAvailable).await.is_none());
    let t0 = js_sys::Date::now();
    assert!(tabs::acquire("tl-test.lock", Wait::Up(150)).await.is_none(), "gives up after the wait");
    assert!(js_sys::Date::now() - t0 >= 140.0);
    // released while another page waits: the waiter gets it
    wasm_bindgen_futures::spawn_local(async move {
        sleep(50).await;
        first.release();
    });
    let got = tabs::acquire("tl-test.lock", Wait::Up(2_000)).await;
    assert!(got.is_some(), "the lock passes to the waiting page");
}

#[wasm_bindgen_test]
async fn bad_arguments_raise_typed_errors_and_queue_nothing() {
    clear_storage();
    stub_fetch();
    let bad = Threadline::create(r#"{"endpoint":"ftp://x","writeKey":"k"}"#.into(), String::new()).await;
    assert_eq!(error_class(&bad.err().unwrap()), "TypeError");
    let bad = Threadline::create(
        r#"{"endpoint":"http://x","writeKey":"k","batch":{"size":1}}"#.into(),
        String::new(),
    )
    .await;
    assert_eq!(error_class(&bad.err().unwrap()), "TypeError");
    let t = client("tl-e", "{}").await;
    let e = t.track(&"n".repeat(300), None).unwrap_err();
    assert_eq!(error_class(&e), "RangeError");
    let e = t.track("E", Some("[1,2]".into())).unwrap_err();
    assert_eq!(error_class(&e), "TypeError");
    let e = t.identify("", None).unwrap_err();
    assert_eq!(error_class(&e), "TypeError");
    let s = stats(&t);
    assert_eq!((s["rejected"].as_u64(), s["queued"].as_u64()), (Some(3), Some(0)));
    t.close();
}

#[wasm_bindgen_test]
async fn flush_sends_one_gzipped_authorised_batch() {
    clear_storage();
    stub_fetch();
    let t = client("tl-f", r#"{"maxAgeMs":60000}"#).await;
    let mut ids = vec![];
    for i in 0..20 {
        ids.push(t.track("Product Viewed", Some(format!(r#"{{"i":{i},"name":"Slacks"}}"#))).unwrap());
    }
    assert!(calls().is_empty(), "nothing is sent before a trigger");
    JsFuture::from(t.flush()).await.unwrap();
    let calls = calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c["url"], "https://collector.test/v1/batch");
    assert_eq!(c["headers"]["authorization"], "Basic d2s6");
    assert_eq!(c["headers"]["content-encoding"], "gzip");
    assert_eq!(c["keepalive"], true);
    assert_eq!(ids_in(c["text"].as_str().unwrap()), ids);
    let s = stats(&t);
    assert_eq!(
        (s["delivered"].as_u64(), s["queued"].as_u64(), s["gzipUploads"].as_u64()),
        (Some(20), Some(0), Some(1))
    );
    t.close();
}

#[wasm_bindgen_test]
async fn failures_are_retried_with_the_same_ids() {
    clear_storage();
    stub_fetch();
    reply_next(503, Some("0".into()), false);
    reply_next(0, None, true);
    let t = client("tl-r", r#"{"maxAgeMs":60000}"#).await;
    let id = t.track("E", None).unwrap();
    JsFuture::from(t.flush()).await.unwrap();
    for _ in 0..100 {
        if stats(&t)["delivered"].as_u64() == Some(1) {
            break;
        }
        sleep(20).await;
    }
    let calls = calls();
    assert_eq!(calls.len(), 3, "503, network error, then 200");
    for c in &calls {
        assert_eq!(ids_in(c["text"].as_str().unwrap()), vec![id.clone()]);
    }
    let s = stats(&t);
    assert_eq!((s["delivered"].as_u64(), s["retries"].as_u64()), (Some(1), Some(2)));
    t.close();
}

#[wasm_bindgen_test]
async fn pagehide_beacons_the_queue_and_stores_it_for_the_next_page() {
    clear_storage();
    stub_fetch();
    stub_beacon(true);
    let t = client("tl-b", r#"{"maxAgeMs":60000}"#).await;
    let ids: Vec<_> = (0..3).map(|_| t.track("Bye", None).unwrap()).collect();
    fire_pagehide();
    let beacons: Vec<serde_json::Value> =
        serde_json::from_str(&beacon_texts().await.as_string().unwrap()).unwrap();
    assert_eq!(beacons.len(), 1);
    assert_eq!(beacons[0]["type"], "text/plain;charset=utf-8");
    let text = beacons[0]["text"].as_str().unwrap();
    assert_eq!(ids_in(text), ids);
    assert!(text.contains(r#""writeKey":"wk""#));
    // The hand-off stays stored until confirmed, under this tab's key.
    let tab = stats(&t)["tab"].as_str().unwrap().to_owned();
    let stored = Store::local(true).get(&format!("tl-b.q.{tab}")).expect("queue stored");
    for id in &ids {
        assert!(stored.contains(id.as_str()));
    }
    assert!(Store::local(true).get("tl-b.id").is_some(), "identity stored");
    t.close();
}

#[wasm_bindgen_test]
async fn a_refused_beacon_keeps_the_events_for_later() {
    clear_storage();
    stub_fetch();
    stub_beacon(false);
    let t = client("tl-n", r#"{"maxAgeMs":60000}"#).await;
    t.track("E", None).unwrap();
    fire_pagehide();
    let s = stats(&t);
    assert_eq!(
        (s["queued"].as_u64(), s["beaconsRefused"].as_u64(), s["unconfirmed"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    t.close();
}

#[wasm_bindgen_test]
async fn a_live_tab_keeps_its_queue_and_a_closed_tab_is_adopted() {
    clear_storage();
    stub_fetch();
    set_failing(true);
    let first = client("tl-t", r#"{"maxAgeMs":60000}"#).await;
    let ids: Vec<_> = (0..4).map(|_| first.track("Mine", None).unwrap()).collect();
    first.close(); // stores the queue and releases the tab lock
                   // The same tab again (a reload): it reuses the free tab id and restores
                   // the queue as its own; sending fails (the network is down).
    let second = client("tl-t", r#"{"maxAgeMs":60000}"#).await;
    assert_eq!(stats(&second)["restored"].as_u64(), Some(4));
    // Another tab while the second is alive: the id is locked, so it takes a
    // new one and must not touch the second's queue.
    let third = client("tl-t", r#"{"maxAgeMs":60000}"#).await;
    let s3 = stats(&third);
    assert_ne!(s3["tab"], stats(&second)["tab"]);
    assert_eq!(
        (s3["restored"].as_u64(), s3["adoptedQueues"].as_u64(), s3["queued"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    // The second tab closes with its events unsent; the third adopts them
    // when it next looks (on becoming visible).
    second.close();
    // Releasing a Web Lock completes asynchronously: look until it is free.
    for _ in 0..50 {
        crate::driver::adopt_orphans(&third.shared).await;
        if stats(&third)["adoptedQueues"].as_u64() == Some(1) {
            break;
        }
        sleep(20).await;
    }
    let s3 = stats(&third);
    assert_eq!((s3["adoptedQueues"].as_u64(), s3["queued"].as_u64()), (Some(1), Some(4)));
    let prefix_keys = Store::local(true).keys_with_prefix("tl-t.q.");
    assert_eq!(
        prefix_keys,
        vec![format!("tl-t.q.{}", s3["tab"].as_str().unwrap())],
        "the orphan key is gone"
    );
    set_failing(false);
    // The adopted snapshot carries the failing tab's backoff: wait it out.
    JsFuture::from(third.flush()).await.unwrap();
    for _ in 0..100 {
        if stats(&third)["delivered"].as_u64() == Some(4) {
            break;
        }
        sleep(20).await;
    }
    let delivered: Vec<String> = calls()
        .iter()
        .filter(|c| c["ok"] == true)
        .flat_map(|c| ids_in(c["text"].as_str().unwrap()))
        .collect();
    assert_eq!(delivered, ids, "each event delivered exactly once, by the adopting tab");
    third.close();
}

#[wasm_bindgen_test]
async fn storage_failure_degrades_to_memory() {
    clear_storage();
    stub_fetch();
    stub_beacon(false);
    break_set_item(true);
    let t = client("tl-q", r#"{"maxAgeMs":60000}"#).await;
    t.track("E", None).unwrap();
    fire_pagehide();
    JsFuture::from(t.flush()).await.unwrap();
    break_set_item(false);
    let s = stats(&t);
    assert!(s["storageFailures"].as_u64().unwrap() > 0);
    assert_eq!(s["delivered"].as_u64(), Some(1));
    t.close();
}

#[wasm_bindgen_test]
fn page_context_is_read_from_the_document() {
    let p = crate::browser::page().unwrap();
    assert!(p.url.unwrap().starts_with("http://127.0.0.1"));
    let env = crate::browser::environment();
    assert!(env.user_agent.unwrap().contains("Chrome"));
    assert!(env.timezone.is_some());
}
