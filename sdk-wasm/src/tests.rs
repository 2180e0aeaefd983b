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
    const wire = body.length;
    if (headers['content-encoding'] === 'gzip') {
      const s = new Blob([body]).stream().pipeThrough(new DecompressionStream('gzip'));
      body = new Uint8Array(await new Response(s).arrayBuffer());
    }
    const text = new TextDecoder().decode(body);
    const r = failing ? { network: true } : (replies.shift() || { status: 200 });
    calls.push({ url, headers, keepalive: !!init.keepalive, text, wire, ok: r.status === 200 });
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
export function firePageshow() { window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })); }
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
const cookieLines = [];
export function watchCookies() {
  if (!window.__cookieWatch) {
    window.__cookieWatch = true;
    const d = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
    Object.defineProperty(Document.prototype, 'cookie', {
      configurable: true,
      get() { return d.get.call(this); },
      set(v) { cookieLines.push(String(v)); d.set.call(this, v); },
    });
  }
  cookieLines.length = 0;
}
export function cookieWrites() { return JSON.stringify(cookieLines); }
export function clearCookies() {
  for (const c of document.cookie.split(';')) {
    const name = c.split('=')[0].trim();
    if (name) document.cookie = `${name}=; Max-Age=0; Path=/`;
  }
}
export function setCookie(line) { document.cookie = line; }
export function readCookies() { return document.cookie; }
const notices = [];
export function noticeSink() { notices.length = 0; return (kind, json) => notices.push([kind, JSON.parse(json)]); }
export function noticesSeen() { return JSON.stringify(notices); }
export function stubTcfApi(answers) {
  window.__tcfCalls = [];
  window.__tcfapi = (cmd, version, cb, arg) => {
    window.__tcfCalls.push(cmd);
    if (cmd === 'addEventListener') for (const a of JSON.parse(answers)) cb({ listenerId: 7, ...a }, true);
    else if (cmd === 'removeEventListener') cb(true);
  };
}
export function tcfCalls() { return JSON.stringify(window.__tcfCalls || []); }
export function removeTcfApi() { delete window.__tcfapi; }
export function setGpc(on) {
  if (on) Object.defineProperty(navigator, 'globalPrivacyControl', { configurable: true, get: () => true });
  else delete navigator.globalPrivacyControl;
}
export function dispatchStorage(key, oldValue, newValue) {
  window.dispatchEvent(new StorageEvent('storage', { key, oldValue, newValue, storageArea: localStorage }));
}
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
    #[wasm_bindgen(js_name = firePageshow)]
    fn fire_pageshow();
    #[wasm_bindgen(js_name = breakSetItem)]
    fn break_set_item(on: bool);
    async fn sleep(ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = errorClass)]
    fn error_class(e: &JsValue) -> String;
    #[wasm_bindgen(js_name = watchCookies)]
    fn watch_cookies();
    #[wasm_bindgen(js_name = cookieWrites)]
    fn cookie_writes() -> String;
    #[wasm_bindgen(js_name = clearCookies)]
    fn clear_cookies();
    #[wasm_bindgen(js_name = setCookie)]
    fn set_cookie(line: &str);
    #[wasm_bindgen(js_name = readCookies)]
    fn read_cookies() -> String;
    #[wasm_bindgen(js_name = noticeSink)]
    fn notice_sink() -> js_sys::Function;
    #[wasm_bindgen(js_name = noticesSeen)]
    fn notices_seen() -> String;
    #[wasm_bindgen(js_name = stubTcfApi)]
    fn stub_tcf_api(answers: &str);
    #[wasm_bindgen(js_name = tcfCalls)]
    fn tcf_calls() -> String;
    #[wasm_bindgen(js_name = removeTcfApi)]
    fn remove_tcf_api();
    #[wasm_bindgen(js_name = setGpc)]
    fn set_gpc(on: bool);
    #[wasm_bindgen(js_name = dispatchStorage)]
    fn dispatch_storage(key: &str, old_value: Option<String>, new_value: Option<String>);
}

fn clear_storage() {
    let w = web_sys::window().unwrap();
    w.local_storage().unwrap().unwrap().clear().unwrap();
    w.session_storage().unwrap().unwrap().clear().unwrap();
    clear_cookies();
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
    let e = t.identify(Some(String::new()), None, None, None).unwrap_err();
    assert_eq!(error_class(&e), "TypeError");
    let e = t.identify(None, None, Some(r#"{"email":"nope"}"#.into()), None).unwrap_err();
    assert_eq!(error_class(&e), "TypeError");
    let s = stats(&t);
    assert_eq!((s["rejected"].as_u64(), s["queued"].as_u64()), (Some(4), Some(0)));
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
async fn pagehide_sends_a_tail_too_big_for_beacons_gzipped_with_keepalive() {
    clear_storage();
    stub_fetch();
    stub_beacon(true);
    let t = client("tl-z", r#"{"maxAgeMs":60000}"#).await;
    let text = "Pleated wool slacks, charcoal, regular fit, size 32/34, free returns";
    let ids: Vec<_> = (0..400)
        .map(|i| t.track("Product Viewed", Some(format!(r#"{{"i":{i},"text":"{text}"}}"#))).unwrap())
        .collect();
    let plain = ids.len() * (text.len() + 300);
    assert!(plain > transport::KEEPALIVE_BUDGET, "the test needs a tail beacons cannot carry");
    fire_pagehide();
    // The requests started inside the handler; the stub records them as it reads them.
    for _ in 0..100 {
        if stats(&t)["delivered"].as_u64() == Some(400) {
            break;
        }
        sleep(20).await;
    }
    let calls = calls();
    assert!(calls.len() >= 4, "{} requests", calls.len());
    let mut wire = 0;
    let mut got = Vec::new();
    for c in &calls {
        assert_eq!(
            (c["keepalive"].as_bool(), c["headers"]["content-encoding"].as_str()),
            (Some(true), Some("gzip"))
        );
        assert_eq!(c["headers"]["authorization"], "Basic d2s6");
        wire += c["wire"].as_u64().unwrap() as usize;
        got.extend(ids_in(c["text"].as_str().unwrap()));
    }
    let beacons: Vec<serde_json::Value> =
        serde_json::from_str(&beacon_texts().await.as_string().unwrap()).unwrap();
    for b in &beacons {
        wire += b["text"].as_str().unwrap().len();
        got.extend(ids_in(b["text"].as_str().unwrap()));
    }
    assert!(wire <= transport::KEEPALIVE_BUDGET, "{wire} bytes on the wire");
    assert_eq!(got, ids, "every event once, in order");
    // The last events, once they fit as they are, went by beacon: handed
    // off, kept until confirmed.
    let s = stats(&t);
    let (delivered, unconfirmed) = (s["delivered"].as_u64().unwrap(), s["unconfirmed"].as_u64().unwrap());
    assert_eq!((delivered + unconfirmed, s["queued"].as_u64()), (400, Some(unconfirmed)));
    assert!(delivered >= 300, "{delivered} delivered by the gzip requests");
    t.close();
}

#[wasm_bindgen_test]
async fn an_upload_still_gzipping_at_pagehide_leaves_with_the_unload_path_once() {
    clear_storage();
    stub_fetch();
    stub_beacon(true);
    let t = client("tl-u", r#"{"maxAgeMs":60000}"#).await;
    let ids: Vec<_> = (0..150).map(|i| t.track("E", Some(format!(r#"{{"i":{i}}}"#))).unwrap()).collect();
    // A full batch is due: its upload is handed out and starts gzipping...
    crate::driver::drive(&t.shared);
    assert!(stats(&t)["inFlight"].as_u64().unwrap() > 0);
    // ... and the page is left before the gzip answers.
    fire_pagehide();
    for _ in 0..100 {
        let s = stats(&t);
        if s["delivered"].as_u64().unwrap() + s["unconfirmed"].as_u64().unwrap() == 150 {
            break;
        }
        sleep(20).await;
    }
    sleep(100).await;
    let mut got: Vec<String> = calls().iter().flat_map(|c| ids_in(c["text"].as_str().unwrap())).collect();
    let beacons: Vec<serde_json::Value> =
        serde_json::from_str(&beacon_texts().await.as_string().unwrap()).unwrap();
    got.extend(beacons.iter().flat_map(|b| ids_in(b["text"].as_str().unwrap())));
    assert_eq!(got, ids, "every event once, in order: the abandoned upload was not sent as well");
    t.close();
}

#[wasm_bindgen_test]
fn gzip_now_frames_deflate_with_the_standard_trailer() {
    // "123456789" is CRC-32's published check input: its CRC is 0xCBF43926.
    let z = transport::gzip_now(b"123456789").unwrap();
    assert_eq!(z[..4], [0x1f, 0x8b, 8, 0]);
    assert_eq!(miniz_oxide::inflate::decompress_to_vec(&z[10..z.len() - 8]).unwrap(), b"123456789");
    assert_eq!(z[z.len() - 8..], [0x26, 0x39, 0xf4, 0xcb, 9, 0, 0, 0]);
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

// ---- consent and identity ----------------------------------------------------

async fn client_with(prefix: &str, core_extra: &str, web_extra: &str) -> Threadline {
    let c = format!(
        r#"{{"endpoint":"https://collector.test","writeKey":"wk","batch":{{"maxAgeMs":60000}}{core_extra}}}"#
    );
    let w = format!(r#"{{"storagePrefix":"{prefix}"{web_extra}}}"#);
    Threadline::create(c, w).await.unwrap()
}

const PENDING: &str = r#","consent":{"default":"pending"}"#;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn cookie_lines() -> Vec<String> {
    serde_json::from_str(&cookie_writes()).unwrap()
}

fn device_cookie() -> Option<String> {
    read_cookies().split(';').find_map(|c| c.trim().strip_prefix("tl_did=").map(str::to_owned))
}

fn session_get(key: &str) -> Option<String> {
    Store::session().get(key)
}

/// A device record as another subdomain (or tab) would have stored it.
fn foreign_record(uuid: &str, consent: &str) -> String {
    let now = js_sys::Date::now() as u64;
    format!("1.{uuid}.{now}.{}.{consent}", now + 10 * 86_400_000)
}

#[wasm_bindgen_test]
async fn the_device_cookie_is_written_once_not_per_event() {
    clear_storage();
    stub_fetch();
    stub_beacon(true);
    watch_cookies();
    let t = client_with("tl-c", "", "").await;
    let id = json(&t.get_identity());
    let device = id["deviceId"].as_str().unwrap();
    let lines = cookie_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.starts_with(&format!("tl_did=1.{device}.")), "{line}");
    assert!(line.contains("; Path=/") && line.contains("; SameSite=Lax"), "{line}");
    assert!(!line.contains("Domain=") && !line.contains("Secure"), "host-only on http://127.0.0.1: {line}");
    let max_age: u64 = line.split("; ").find_map(|a| a.strip_prefix("Max-Age=")).unwrap().parse().unwrap();
    let expected = (id["deviceIdExpires"].as_u64().unwrap() - js_sys::Date::now() as u64) / 1000;
    assert!(max_age.abs_diff(expected) <= 5 && max_age > 390 * 86_400, "{max_age} vs {expected}");
    assert_eq!(
        Store::local(true).get("tl-c.did"),
        device_cookie().map(|c| format!("{c}|c")),
        "the local copy is the cookie, marked as held by the cookie"
    );
    for i in 0..50 {
        t.track("E", Some(format!(r#"{{"i":{i}}}"#))).unwrap();
    }
    JsFuture::from(t.flush()).await.unwrap();
    fire_pagehide();
    assert_eq!(cookie_lines().len(), 1, "no cookie write per event, flush or hide");
    assert!(Store::local(true).get("tl-c.id").is_some());
    t.close();
}

#[wasm_bindgen_test]
async fn pending_stores_nothing_and_a_grant_releases_and_stores() {
    clear_storage();
    stub_fetch();
    watch_cookies();
    let t = client_with("tl-p", PENDING, "").await;
    let held: Vec<_> = (0..3).map(|i| t.track("Held", Some(format!(r#"{{"i":{i}}}"#))).unwrap()).collect();
    JsFuture::from(t.flush()).await.unwrap();
    fire_pagehide();
    assert!(calls().is_empty(), "nothing is sent while pending");
    assert_eq!(json(&t.get_identity())["deviceId"], serde_json::Value::Null);
    assert!(Store::local(true).keys_with_prefix("tl-p.").is_empty());
    assert_eq!(session_get("tl-p.tab"), None, "not even the tab id");
    assert!(cookie_lines().is_empty());
    assert_eq!(stats(&t)["held"].as_u64(), Some(3));

    // A bad choice is a TypeError and changes nothing.
    for bad in [r#"{"analytics":"yes"}"#, r#"{"marketing":"granted"}"#, "[]"] {
        assert_eq!(error_class(&t.set_consent(bad).unwrap_err()), "TypeError", "{bad}");
    }
    assert_eq!(json(&t.get_consent())["analytics"], "pending");

    let consent = json(&t.set_consent(r#"{"analytics":"granted"}"#).unwrap());
    assert_eq!((consent["analytics"].as_str(), consent["gpc"].as_bool()), (Some("granted"), Some(false)));
    assert_eq!(cookie_lines().len(), 1, "the device record is stored at once");
    assert!(Store::local(true).get("tl-p.did").is_some() && Store::local(true).get("tl-p.id").is_some());
    JsFuture::from(t.flush()).await.unwrap();
    let sent: Vec<serde_json::Value> = calls()
        .iter()
        .flat_map(|c| json(c["text"].as_str().unwrap())["batch"].as_array().unwrap().clone())
        .collect();
    let ids: Vec<_> = sent.iter().map(|e| e["messageId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids[..3], held[..]);
    assert_eq!(sent[0]["context"]["consent"]["analytics"], "pending");
    assert_eq!(sent[3]["event"], "Consent Changed");
    t.close();
}

#[wasm_bindgen_test]
async fn denial_deletes_everything_stored_and_stops_sending() {
    clear_storage();
    stub_fetch();
    stub_beacon(true);
    let local = |k: &str, v: &str| assert!(Store::local(true).set(k, v));
    local("tl-w.q.0000aaaa0000", "{}"); // another tab's queue and heartbeat
    local("tl-w.t.0000aaaa0000", "1");
    local("other.key", "keep");
    let t = client_with("tl-w", "", "").await;
    for _ in 0..3 {
        t.track("E", None).unwrap();
    }
    fire_pagehide(); // stores the queue
    let tab = stats(&t)["tab"].as_str().unwrap().to_owned();
    let keys = Store::local(true).keys_with_prefix("tl-w.");
    for k in [format!("tl-w.q.{tab}"), "tl-w.id".into(), "tl-w.did".into()] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert!(device_cookie().is_some() && session_get("tl-w.tab").is_some());
    let beacons_before = json(&beacon_texts().await.as_string().unwrap()).as_array().unwrap().len();

    let consent = json(&t.set_consent(r#"{"analytics":"denied"}"#).unwrap());
    assert_eq!(consent["analytics"], "denied");
    assert_eq!(
        Store::local(true).keys_with_prefix("tl-w."),
        Vec::<String>::new(),
        "deleted in the same call"
    );
    assert_eq!(device_cookie(), None);
    assert_eq!(session_get("tl-w.tab"), None);
    assert_eq!(Store::local(true).get("other.key").as_deref(), Some("keep"));
    assert_eq!(json(&t.get_identity())["deviceId"], serde_json::Value::Null);

    t.track("After", None).unwrap();
    JsFuture::from(t.flush()).await.unwrap();
    fire_pagehide();
    sleep(50).await;
    assert!(calls().is_empty());
    assert_eq!(json(&beacon_texts().await.as_string().unwrap()).as_array().unwrap().len(), beacons_before);
    assert!(Store::local(true).keys_with_prefix("tl-w.").is_empty() && device_cookie().is_none());
    assert_eq!(stats(&t)["droppedConsent"].as_u64(), Some(4));
    t.close();
}

#[wasm_bindgen_test]
async fn the_cookie_wins_a_vanished_cookie_is_a_denial_and_a_blocked_one_falls_back() {
    clear_storage();
    let first = client_with("tl-k", "", "").await;
    let id1 = json(&first.get_identity())["deviceId"].as_str().unwrap().to_owned();
    first.close();
    // The cookie held the record and is gone before its expiry (a denial on
    // another subdomain, or the person deleted cookies): the local copy must
    // not bring the id back; it goes, and this page honours the denial.
    clear_cookies();
    let second = client_with("tl-k", "", "").await;
    assert_eq!(json(&second.get_identity())["deviceId"], serde_json::Value::Null);
    assert_eq!(json(&second.get_consent())["analytics"], "denied");
    assert!(Store::local(true).keys_with_prefix("tl-k.").is_empty());
    assert_eq!(device_cookie(), None);
    second.close();
    // A copy written where the cookie did not stick (cookies blocked) is the
    // record: it restores the id and the cookie is written back.
    let record = foreign_record(&id1, "gggg");
    let _ = Store::local(true).set("tl-k.did", &record);
    watch_cookies();
    let third = client_with("tl-k", "", "").await;
    assert_eq!(json(&third.get_identity())["deviceId"], id1.as_str());
    assert_eq!(cookie_lines().len(), 1);
    assert_eq!(Store::local(true).get("tl-k.did"), device_cookie().map(|c| format!("{c}|c")));
    third.close();
    // Another subdomain's cookie is the truth: its id and consent win and
    // the local copy follows.
    let record = foreign_record("11111111-2222-4333-8444-555555555555", "gdgg");
    set_cookie(&format!("tl_did={record}; Path=/"));
    let fourth = client_with("tl-k", PENDING, "").await;
    assert_eq!(json(&fourth.get_identity())["deviceId"], "11111111-2222-4333-8444-555555555555");
    let consent = json(&fourth.get_consent());
    assert_eq!(
        (consent["analytics"].as_str(), consent["personalization"].as_str()),
        (Some("granted"), Some("denied"))
    );
    assert_eq!(Store::local(true).get("tl-k.did"), Some(format!("{record}|c")));
    fourth.close();
}

#[wasm_bindgen_test]
async fn another_tabs_denial_and_grant_reach_this_tab() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-s", PENDING, "").await;
    t.track("Held", None).unwrap();
    // Another tab granted: its record becomes ours and the held event goes.
    let record = foreign_record("22222222-2222-4333-8444-555555555555", "gggg");
    Store::local(true).set("tl-s.did", &record);
    dispatch_storage("tl-s.did", None, Some(record.clone()));
    assert_eq!(json(&t.get_consent())["analytics"], "granted");
    assert_eq!(json(&t.get_identity())["deviceId"], "22222222-2222-4333-8444-555555555555");
    assert_eq!(stats(&t)["held"].as_u64(), Some(0));
    JsFuture::from(t.flush()).await.unwrap();
    assert_eq!(calls().len(), 1);
    // Another tab denied: it deleted the record; this tab stops too.
    Store::local(true).remove("tl-s.did");
    dispatch_storage("tl-s.did", Some(record), None);
    assert_eq!(json(&t.get_consent())["analytics"], "denied");
    assert!(Store::local(true).keys_with_prefix("tl-s.").is_empty());
    t.track("After", None).unwrap();
    JsFuture::from(t.flush()).await.unwrap();
    assert_eq!(calls().len(), 1);
    t.close();
}

#[wasm_bindgen_test]
async fn notices_arrive_after_the_call_that_caused_them() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-o", PENDING, "").await;
    t.on_notice(Some(notice_sink()));
    t.track("First", None).unwrap();
    t.set_consent(r#"{"analytics":"granted"}"#).unwrap();
    assert_eq!(notices_seen(), "[]", "not inside the call");
    sleep(0).await;
    let seen = json(&notices_seen());
    assert_eq!(seen[0][0], "sessionStart");
    assert!(seen[0][1]["sessionId"].as_u64().is_some());
    assert_eq!(seen[1][0], "consentChange");
    assert_eq!(seen[1][1]["analytics"], "granted");
    assert_eq!(seen.as_array().unwrap().len(), 2);
    t.close();
}

#[wasm_bindgen_test]
async fn a_tcf_cmp_is_heard_only_for_choices_and_released_on_close() {
    clear_storage();
    stub_fetch();
    // The dialogue shown (with a string that would be refused) is not a
    // choice; "GDPR does not apply" grants the TCF-mapped purposes.
    stub_tcf_api(
        r#"[{"eventStatus":"cmpuishown","gdprApplies":true,"tcString":"x"},
            {"eventStatus":"useractioncomplete","gdprApplies":false}]"#,
    );
    let t = client_with("tl-tcf", PENDING, "").await;
    let c = json(&t.get_consent());
    assert_eq!((c["analytics"].as_str(), c["sale"].as_str()), (Some("granted"), Some("pending")));
    assert_eq!(stats(&t)["tcfRefused"].as_u64(), Some(0));
    t.close();
    assert_eq!(tcf_calls(), r#"["addEventListener","removeEventListener"]"#);
    // A garbled string from the CMP is refused and changes nothing.
    stub_tcf_api(r#"[{"eventStatus":"tcloaded","gdprApplies":true,"tcString":"not a TC string"}]"#);
    clear_storage();
    let t = client_with("tl-tcf", PENDING, "").await;
    assert_eq!(json(&t.get_consent())["analytics"], "pending");
    assert_eq!(stats(&t)["tcfRefused"].as_u64(), Some(1));
    assert_eq!(error_class(&t.set_consent_tcf("not a TC string").unwrap_err()), "TypeError");
    t.close();
    // Switched off, the CMP is not asked.
    stub_tcf_api("[]");
    let t = client_with("tl-tcf", PENDING, r#","tcfApi":false"#).await;
    t.close();
    assert_eq!(tcf_calls(), "[]");
    remove_tcf_api();
}

#[wasm_bindgen_test]
async fn gpc_denies_sale_and_advertising() {
    clear_storage();
    set_gpc(true);
    let t = client_with("tl-g", "", "").await;
    set_gpc(false);
    let c = json(&t.set_consent(r#"{"sale":"granted","advertising":"granted"}"#).unwrap());
    assert_eq!(
        (c["sale"].as_str(), c["advertising"].as_str(), c["gpc"].as_bool()),
        (Some("denied"), Some("denied"), Some(true))
    );
    assert_eq!(json(&t.get_consent())["analytics"], "granted");
    t.close();
}

#[wasm_bindgen_test]
async fn identify_alias_reset_and_bad_browser_options() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-i", "", "").await;
    let before = json(&t.get_identity())["deviceId"].as_str().unwrap().to_owned();
    t.identify(
        Some("u-1".into()),
        Some(r#"{"plan":"pro"}"#.into()),
        Some(r#"{"email":"A@Example.com"}"#.into()),
        None,
    )
    .unwrap();
    t.alias("u-2", None).unwrap();
    let id = json(&t.get_identity());
    assert_eq!(id["userId"], "u-1");
    assert_eq!(id["traits"]["plan"], "pro");
    assert_eq!(id["ids"]["email"].as_str().unwrap().len(), 64, "hashed");
    assert!(Store::local(true).get("tl-i.id").unwrap().contains("u-1"), "stored at once");
    t.reset().unwrap();
    let id = json(&t.get_identity());
    assert_eq!(id["userId"], serde_json::Value::Null);
    assert_ne!(id["deviceId"], before.as_str());
    assert_eq!(device_cookie().unwrap().split('.').nth(1), id["deviceId"].as_str(), "rotated id stored");
    t.close();
    for bad in
        [r#","cookieName":"a b""#, r#","cookieDomain":"""#, r#","cookieDomain":"x;y""#, r#","cookies":true"#]
    {
        let r = Threadline::create(
            r#"{"endpoint":"https://collector.test","writeKey":"wk"}"#.into(),
            format!(r#"{{"storagePrefix":"tl-i"{bad}}}"#),
        )
        .await;
        assert_eq!(error_class(&r.err().unwrap()), "TypeError", "{bad}");
    }
}

#[wasm_bindgen_test]
async fn back_from_the_bfcache_the_stored_record_is_read_again() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-bf", "", "").await;
    // Another page of the site rotated the device (reset) meanwhile.
    let record = foreign_record("33333333-2222-4333-8444-555555555555", "gggg");
    set_cookie(&format!("tl_did={record}; Path=/"));
    fire_pageshow();
    assert_eq!(json(&t.get_identity())["deviceId"], "33333333-2222-4333-8444-555555555555");
    // Another page denied: it deleted the cookie and the local copy.
    clear_cookies();
    Store::local(true).remove("tl-bf.did");
    fire_pageshow();
    assert_eq!(json(&t.get_consent())["analytics"], "denied");
    assert!(Store::local(true).keys_with_prefix("tl-bf.").is_empty());
    t.close();
}

// ---- on-device decisions -------------------------------------------------------

#[wasm_bindgen(inline_js = r#"
const rulesCalls = [];
let rulesReplies = [];
export function stubRulesFetch(url) {
  rulesCalls.length = 0;
  rulesReplies = [];
  const collector = window.fetch;
  window.fetch = async (u, init) => {
    if (String(u) !== url) return collector(u, init);
    const headers = {};
    new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
    rulesCalls.push({ url: String(u), method: init.method, headers, cache: init.cache, credentials: init.credentials });
    const r = rulesReplies.shift() || { status: 503 };
    const h = r.etag ? { ETag: r.etag } : {};
    return new Response(r.status === 304 ? null : (r.body || ''), { status: r.status, headers: h });
  };
}
export function rulesReply(status, body, etag) { rulesReplies.push({ status, body, etag }); }
export function rulesCallsSeen() { return JSON.stringify(rulesCalls); }
export function errorKind(e) { return e && typeof e.kind === 'string' ? e.kind : null; }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = stubRulesFetch)]
    fn stub_rules_fetch(url: &str);
    #[wasm_bindgen(js_name = rulesReply)]
    fn rules_reply(status: u16, body: Option<String>, etag: Option<String>);
    #[wasm_bindgen(js_name = rulesCallsSeen)]
    fn rules_calls_seen() -> String;
    #[wasm_bindgen(js_name = errorKind)]
    fn error_kind(e: &JsValue) -> Option<String>;
}

const SHOP: &str = include_str!("../../tests/artifacts/shop.json");

/// The shop artifact as a JSON string value inside the browser options.
fn inline_shop() -> String {
    format!(r#","rules":{{"artifact":{}}}"#, serde_json::to_string(SHOP).unwrap())
}

async fn ready(t: &Threadline, timeout_ms: f64) -> bool {
    JsFuture::from(t.ready(Some(timeout_ms))).await.unwrap().as_bool().unwrap()
}

fn decide(t: &Threadline, placement: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&t.decide(placement, None, None).unwrap()).unwrap()
}

fn offer(t: &Threadline, placement: &str) -> String {
    let d = decide(t, placement);
    assert_eq!(d.len(), 1, "{d:?}");
    d[0]["offerId"].as_str().unwrap().to_owned()
}

#[wasm_bindgen_test]
async fn an_inline_artifact_tells_the_slacks_story_and_the_profile_is_stored() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-d", "", &inline_shop()).await;
    assert!(ready(&t, 0.0).await, "ready at once with an inline artifact");
    assert_eq!(t.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));
    let first = decide(&t, "home");
    assert_eq!(first[0]["offerId"], "home-welcome");
    assert_eq!(first[0]["isDefault"], true);
    assert_eq!(first[0]["content"]["title"], "Welcome to Northwind");
    assert_eq!(first[0]["placement"], "home");

    let viewed = r#"{"productId":"slacks-01"}"#;
    t.track("Product Viewed", Some(viewed.into())).unwrap();
    assert_eq!(offer(&t, "home"), "home-welcome", "one view is not enough");
    t.track("Product Viewed", Some(viewed.into())).unwrap();
    assert_eq!(offer(&t, "home"), "slacks-discount");

    fire_pagehide(); // stores everything now
    let stored = Store::local(true).get("tl-d.profile").expect("profile stored");
    assert!(stored.contains("slacks-01"), "{stored}");

    t.track("Order Completed", Some(r#"{"products":[{"productId":"slacks-01"}]}"#.into())).unwrap();
    let after = offer(&t, "home");
    assert_ne!(after, "slacks-discount");
    assert_eq!(after, "vip-shipping", "a recent buyer is a vip");

    t.set_consent(r#"{"personalization":"denied"}"#).unwrap();
    assert_eq!(Store::local(true).get("tl-d.profile"), None, "removed in the same call");
    let d = decide(&t, "home");
    assert_eq!((d[0]["offerId"].as_str(), d[0]["isDefault"].as_bool()), (Some("home-welcome"), Some(true)));
    t.close();
}

#[wasm_bindgen_test]
async fn without_personalization_consent_only_the_default_is_shown() {
    clear_storage();
    stub_fetch();
    let core = r#","consent":{"default":{"analytics":"granted","personalization":"denied"}}"#;
    let t = client_with("tl-n", core, &inline_shop()).await;
    assert!(ready(&t, 0.0).await);
    for _ in 0..3 {
        t.track("Product Viewed", Some(r#"{"productId":"slacks-01"}"#.into())).unwrap();
    }
    let d = decide(&t, "home");
    assert_eq!((d[0]["offerId"].as_str(), d[0]["isDefault"].as_bool()), (Some("home-welcome"), Some(true)));
    fire_pagehide();
    assert_eq!(Store::local(true).get("tl-n.profile"), None, "no history kept");
    t.close();
}

#[wasm_bindgen_test]
async fn decide_before_an_artifact_is_empty_and_bad_calls_carry_a_kind() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-e", "", "").await;
    assert!(!ready(&t, 20.0).await, "times out without an artifact");
    assert_eq!(t.decide("home", None, None).unwrap(), "[]");
    assert_eq!(t.rules_revision(), None);

    let broken = t.load_rules(r#"{"version":1,"placements":"#, None).unwrap_err();
    assert_eq!(error_class(&broken), "TypeError");
    assert_eq!(error_kind(&broken).as_deref(), Some("rules.artifact"));
    assert_eq!(t.decide("home", None, None).unwrap(), "[]");

    let waiting = JsFuture::from(t.ready(None));
    assert!(t.load_rules(SHOP, None).unwrap());
    assert_eq!(waiting.await.unwrap(), JsValue::TRUE, "a waiting ready() resolves on load");

    let e = t.decide("nowhere", None, None).unwrap_err();
    assert_eq!(
        (error_class(&e), error_kind(&e)),
        ("TypeError".into(), Some("decide.unknownPlacement".into()))
    );
    assert!(e.as_string().is_none() && format!("{e:?}").contains("nowhere"), "{e:?}");
    let e = t.decide("home", None, Some("[1]".into())).unwrap_err();
    assert_eq!((error_class(&e), error_kind(&e)), ("TypeError".into(), Some("decide.invalidContext".into())));

    // A refused replacement keeps the artifact in use.
    let e = t.load_rules("{}", None).unwrap_err();
    assert_eq!(error_kind(&e).as_deref(), Some("rules.artifact"));
    assert_eq!(t.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));
    assert_eq!(offer(&t, "home"), "home-welcome");

    let e = t.displayed("[]").unwrap_err();
    assert_eq!(error_class(&e), "TypeError");
    t.close();
}

const CAPPED: &str = r#"{"version":1,"revision":"capped","bucketing":"murmur3_x86_32/v1","placements":[{"id":"p","default":{"id":"p-default","content":{}}}],
 "offers":[{"id":"once","placement":"p","priority":1,"content":{"n":1},"cap":{"max":1,"per":"day"}}]}"#;

#[wasm_bindgen_test]
async fn feedback_is_recorded_once_per_decision_and_a_cap_stops_the_offer() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-c", "", "").await;
    assert!(t.load_rules(CAPPED, None).unwrap());
    let d = t.decide("p", None, Some(r#"{"cart":{"items":2}}"#.into())).unwrap();
    let first: Vec<serde_json::Value> = serde_json::from_str(&d).unwrap();
    assert_eq!(first[0]["offerId"], "once");
    let decision = serde_json::to_string(&first[0]).unwrap();

    let id = t.displayed(&decision).unwrap();
    assert!(id.is_some());
    assert_eq!(t.displayed(&decision).unwrap(), None, "the same decision counts once");
    assert!(t.clicked(&decision).unwrap().is_some());
    assert_eq!(t.clicked(&decision).unwrap(), None);
    assert_eq!(offer(&t, "p"), "p-default", "capped at one a day");

    JsFuture::from(t.flush()).await.unwrap();
    let sent: String = calls().iter().map(|c| c["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sent.matches("\"Offer Displayed\"").count(), 1, "{sent}");
    assert_eq!(sent.matches("\"Offer Clicked\"").count(), 1, "{sent}");
    t.close();
}

const RULES_URL: &str = "https://rules.test/shop.json";

#[wasm_bindgen_test]
async fn rules_are_fetched_revalidated_with_the_etag_and_cached_for_the_next_page() {
    clear_storage();
    stub_fetch();
    stub_rules_fetch(RULES_URL);
    let core = format!(r#","rules":{{"url":"{RULES_URL}","refreshIntervalMs":600000,"retryMs":600000}}"#);
    rules_reply(200, Some(SHOP.into()), Some("\"v1\"".into()));
    let t = client_with("tl-f", &core, "").await;
    t.on_notice(Some(notice_sink()));
    assert!(ready(&t, 2000.0).await, "the fetched artifact is in use");
    assert_eq!(t.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));

    rules_reply(304, None, None);
    t.refresh_rules();
    sleep(50).await;
    let broken = SHOP.replace("\"version\": 1", "\"version\": 99");
    rules_reply(200, Some(broken), Some("\"v2\"".into()));
    t.refresh_rules();
    sleep(50).await;

    let seen = json(&rules_calls_seen());
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for c in seen {
        assert_eq!((c["method"].as_str(), c["cache"].as_str()), (Some("GET"), Some("no-store")));
        assert_eq!(c["credentials"], "omit");
    }
    assert_eq!(seen[0]["headers"].get("if-none-match"), None);
    assert_eq!(seen[1]["headers"]["if-none-match"], "\"v1\"");
    assert_eq!(seen[2]["headers"]["if-none-match"], "\"v1\"", "a 304 keeps the ETag");
    assert_eq!(t.rules_revision().as_deref(), Some("demo-shop-2026-11-24"), "the broken one is refused");
    assert_eq!(offer(&t, "home"), "home-welcome");
    let notices = json(&notices_seen());
    let errors: Vec<_> = notices.as_array().unwrap().iter().filter(|n| n[0] == "rulesError").collect();
    assert_eq!(errors.len(), 1, "{notices}");
    assert_eq!(errors[0][1]["kind"], "rules.artifact");
    assert!(errors[0][1]["message"].as_str().unwrap().contains("version"), "{notices}");

    let cached = Store::local(true).get("tl-f.rules").expect("artifact cached");
    assert!(cached.contains("v1") && cached.contains("demo-shop-2026-11-24"), "{cached}");
    t.close();

    // The next page: the cached copy is in use before any fetch completes.
    stub_rules_fetch(RULES_URL);
    let next = client_with("tl-f", &core, "").await;
    assert!(ready(&next, 0.0).await);
    assert_eq!(next.rules_revision().as_deref(), Some("demo-shop-2026-11-24"));
    assert_eq!(offer(&next, "home"), "home-welcome");
    next.close();
}

#[wasm_bindgen_test]
async fn a_profile_written_by_another_tab_is_taken_here() {
    clear_storage();
    stub_fetch();
    let here = client_with("tl-x", "", &inline_shop()).await;
    let other = client_with("tl-x", "", &inline_shop()).await;
    other.track("Product Viewed", Some(r#"{"productId":"slacks-01"}"#.into())).unwrap();
    other.track("Product Viewed", Some(r#"{"productId":"slacks-01"}"#.into())).unwrap();
    other.close(); // stores its profile
    let written = Store::local(true).get("tl-x.profile").expect("stored by the other tab");
    assert_eq!(offer(&here, "home"), "home-welcome", "not yet heard");
    dispatch_storage("tl-x.profile", None, Some(written));
    assert_eq!(offer(&here, "home"), "slacks-discount");
    here.close();
}

#[wasm_bindgen_test]
async fn a_broken_inline_artifact_at_start_is_reported_to_the_first_listener() {
    clear_storage();
    stub_fetch();
    let broken = SHOP.replace("\"version\": 1", "\"version\": 99");
    let web = format!(r#","rules":{{"artifact":{}}}"#, serde_json::to_string(&broken).unwrap());
    let t = client_with("tl-n", "", &web).await;
    assert!(!ready(&t, 10.0).await);
    assert!(decide(&t, "home").is_empty());
    // The page could not listen during createClient; the outcome waits for it.
    t.on_notice(Some(notice_sink()));
    sleep(20).await;
    let notices = json(&notices_seen());
    let errors: Vec<_> = notices.as_array().unwrap().iter().filter(|n| n[0] == "rulesError").collect();
    assert_eq!(errors.len(), 1, "{notices}");
    assert_eq!(errors[0][1]["kind"], "rules.artifact");
    t.close();
}

#[wasm_bindgen_test]
async fn several_placements_are_decided_in_one_call() {
    clear_storage();
    stub_fetch();
    let t = client_with("tl-m", "", &inline_shop()).await;
    let viewed = r#"{"productId":"slacks-01"}"#;
    t.track("Product Viewed", Some(viewed.into())).unwrap();
    t.track("Product Viewed", Some(viewed.into())).unwrap();
    let places = vec!["home".to_owned(), "hero".to_owned()];
    let many: serde_json::Value = serde_json::from_str(&t.decide_many(places, None, None).unwrap()).unwrap();
    assert_eq!(many["home"][0]["offerId"], "slacks-discount");
    let hero = decide(&t, "hero");
    assert_eq!(many["hero"][0]["offerId"], hero[0]["offerId"]);
    assert_eq!(many["hero"][0]["variantId"], hero[0]["variantId"]);
    let err = t.decide_many(vec!["home".into(), "nowhere".into()], None, None).unwrap_err();
    assert_eq!(js_sys::Reflect::get(&err, &"kind".into()).unwrap(), "decide.unknownPlacement");
    t.close();
}

// ---- profile sync ----------------------------------------------------------------

#[wasm_bindgen(inline_js = r#"
const profileCalls = [];
let profileReplies = [];
export function stubProfileFetch(prefix) {
  profileCalls.length = 0;
  profileReplies = [];
  const collector = window.fetch;
  window.fetch = async (u, init) => {
    if (!String(u).startsWith(prefix)) return collector(u, init);
    const headers = {};
    new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
    profileCalls.push({ url: String(u), method: init.method, headers, cache: init.cache, credentials: init.credentials });
    const r = profileReplies.shift() || { status: 503 };
    if (r.network) throw new TypeError('Failed to fetch');
    return new Response(r.body || '{"error":"no"}', { status: r.status });
  };
}
export function profileReply(status, body, network) { profileReplies.push({ status, body, network }); }
export function profileCallsSeen() { return JSON.stringify(profileCalls); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = stubProfileFetch)]
    fn stub_profile_fetch(prefix: &str);
    #[wasm_bindgen(js_name = profileReply)]
    fn profile_reply(status: u16, body: Option<String>, network: bool);
    #[wasm_bindgen(js_name = profileCallsSeen)]
    fn profile_calls_seen() -> String;
}

const PROFILE_URL: &str = "https://collector.test/v1/profile";

/// What the collector would serve for u-ann: the app's two views of the
/// slacks and the order of them, an hour ago (counters in sdk-core's format).
fn ann_profile(user: &str) -> String {
    let t = js_sys::Date::now() as u64 - 3_600_000;
    let counter = |n: u32| format!("[{n},{t},{t},[[{},{n}]],[[{},{n}]]]", t / 3_600_000, t / 86_400_000);
    format!(
        r#"{{"v":1,"userId":"{user}","at":{t},"revision":"demo-shop-2026-11-24","traits":{{"plan":"silver"}},
        "events":{{"Product Viewed":{{"c":{v},"p":{{"productId":{{"slacks-01":{v}}}}}}},
                   "Order Completed":{{"c":{o},"p":{{"productId":{{"slacks-01":{o}}}}}}}}},
        "audiences":["recent-buyers"]}}"#,
        v = counter(2),
        o = counter(1)
    )
}

fn profile_calls() -> Vec<serde_json::Value> {
    json(&profile_calls_seen()).as_array().unwrap().clone()
}

fn notices_of(kind: &str) -> Vec<serde_json::Value> {
    json(&notices_seen()).as_array().unwrap().iter().filter(|n| n[0] == kind).map(|n| n[1].clone()).collect()
}

/// Polls (the fetch and its notice run in later tasks) until `kind` was heard.
async fn heard(kind: &str) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let seen = notices_of(kind);
        if !seen.is_empty() {
            return seen;
        }
        sleep(20).await;
    }
    panic!("no {kind} notice: {}", notices_seen());
}

const SLACKS: &str = r#"{"productId":"slacks-01"}"#;

#[wasm_bindgen_test]
async fn identify_with_a_token_fetches_the_profile_and_decide_uses_it() {
    clear_storage();
    stub_fetch();
    stub_profile_fetch(PROFILE_URL);
    let t = client_with("tl-s", "", &inline_shop()).await;
    t.on_notice(Some(notice_sink()));
    t.track("Product Viewed", Some(SLACKS.into())).unwrap();
    t.track("Product Viewed", Some(SLACKS.into())).unwrap();
    assert_eq!(offer(&t, "home"), "slacks-discount");
    sleep(30).await;
    assert!(profile_calls().is_empty(), "no user, no token: nothing asked");

    profile_reply(200, Some(ann_profile("u-ann")), false);
    t.identify(Some("u-ann".into()), None, None, Some("tok-1".into())).unwrap();
    let synced = heard("profileSync").await;
    assert_eq!(synced, vec![serde_json::json!({"audiences": ["recent-buyers"]})]);

    let calls = profile_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let device = json(&t.get_identity())["deviceId"].as_str().unwrap().to_owned();
    assert_eq!(calls[0]["url"], format!("{PROFILE_URL}?userId=u-ann&exclude={device}"));
    assert_eq!(calls[0]["method"], "GET");
    assert_eq!(calls[0]["headers"]["authorization"], "Bearer tok-1");
    assert_eq!(
        (calls[0]["cache"].as_str(), calls[0]["credentials"].as_str()),
        (Some("no-store"), Some("omit"))
    );
    assert_eq!(offer(&t, "home"), "vip-shipping", "bought in the app: no discount, a recent buyer");

    let sent: String = {
        JsFuture::from(t.flush()).await.unwrap();
        calls_text()
    };
    assert!(!sent.contains("tok-1"), "the token never goes out with events");
    fire_pagehide();
    let stored = Store::local(true).get("tl-s.profile").expect("profile stored");
    t.close();

    // The next page decides with the stored answer before (and without) any fetch.
    stub_profile_fetch(PROFILE_URL);
    let next = client_with("tl-s", "", &inline_shop()).await;
    assert_eq!(offer(&next, "home"), "vip-shipping", "{stored}");
    sleep(30).await;
    assert!(profile_calls().is_empty(), "fresh enough: not fetched again on the next page");

    // Another user: the collector's part of u-ann goes at once.
    next.identify(Some("u-bob".into()), None, None, None).unwrap();
    assert_eq!(offer(&next, "home"), "slacks-discount");
    next.close();
}

fn calls_text() -> String {
    calls().iter().map(|c| c["text"].as_str().unwrap().to_owned()).collect()
}

#[wasm_bindgen_test]
async fn a_refused_token_is_reported_and_the_device_keeps_its_own_history() {
    clear_storage();
    stub_fetch();
    stub_profile_fetch(PROFILE_URL);
    let core = r#","profileSync":{"retryMs":100}"#;
    let t = client_with("tl-r", core, &inline_shop()).await;
    t.on_notice(Some(notice_sink()));
    t.track("Product Viewed", Some(SLACKS.into())).unwrap();
    t.track("Product Viewed", Some(SLACKS.into())).unwrap();

    // A network error first: nothing thrown, retried after `retryMs`.
    profile_reply(0, None, true);
    profile_reply(401, Some(r#"{"error":"bad signature"}"#.into()), false);
    t.identify(Some("u-ann".into()), None, None, Some("forged".into())).unwrap();
    let refused = heard("profileSyncRefused").await;
    assert_eq!(refused, vec![serde_json::json!({"status": 401})]);
    assert_eq!(profile_calls().len(), 2, "one failure, one retry");
    assert!(notices_of("profileSync").is_empty());
    assert_eq!(offer(&t, "home"), "slacks-discount", "its own two views still count");

    t.refresh_profile();
    sleep(250).await;
    assert_eq!(profile_calls().len(), 2, "a refused token is not tried again");

    // A new token: asked at once.
    profile_reply(200, Some(ann_profile("u-ann")), false);
    t.identify(Some("u-ann".into()), None, None, Some("tok-2".into())).unwrap();
    heard("profileSync").await;
    let calls = profile_calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2]["headers"]["authorization"], "Bearer tok-2");
    assert_eq!(offer(&t, "home"), "vip-shipping");

    // refreshProfile asks again now; an answer about someone else is refused whole.
    profile_reply(200, Some(ann_profile("u-eve")), false);
    t.refresh_profile();
    for _ in 0..50 {
        if profile_calls().len() == 4 {
            break;
        }
        sleep(20).await;
    }
    sleep(30).await;
    assert!(profile_calls().len() >= 4);
    assert_eq!(offer(&t, "home"), "vip-shipping", "the good answer stays in use");
    t.close();
}

#[wasm_bindgen_test]
async fn without_personalization_no_profile_is_requested() {
    clear_storage();
    stub_fetch();
    stub_profile_fetch(PROFILE_URL);
    let core = r#","consent":{"default":{"analytics":"granted","personalization":"denied"}}"#;
    let t = client_with("tl-p", core, &inline_shop()).await;
    t.on_notice(Some(notice_sink()));
    profile_reply(200, Some(ann_profile("u-ann")), false);
    t.identify(Some("u-ann".into()), None, None, Some("tok-1".into())).unwrap();
    t.refresh_profile();
    sleep(100).await;
    assert!(profile_calls().is_empty(), "{:?}", profile_calls());
    let d = decide(&t, "home");
    assert_eq!((d[0]["offerId"].as_str(), d[0]["isDefault"].as_bool()), (Some("home-welcome"), Some(true)));

    // Granting it asks at once.
    t.set_consent(r#"{"personalization":"granted"}"#).unwrap();
    heard("profileSync").await;
    assert_eq!(profile_calls().len(), 1);
    assert_eq!(offer(&t, "home"), "vip-shipping");
    // Denying it again deletes the collector's part with the profile.
    t.set_consent(r#"{"personalization":"denied"}"#).unwrap();
    assert_eq!(Store::local(true).get("tl-p.profile"), None);
    t.set_consent(r#"{"personalization":"granted"}"#).unwrap();
    let d = decide(&t, "home");
    assert_eq!(d[0]["offerId"], "home-welcome", "nothing synced survives a denial: {d:?}");
    t.close();
}
