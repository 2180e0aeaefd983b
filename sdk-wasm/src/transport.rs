//! Performing the uploads the core hands out, with the browser's own stack:
//! `fetch` (gzip by `CompressionStream` where available, `keepalive` while
//! the body fits the browser's 64 KiB keepalive budget) and `sendBeacon`.
//! Only outcomes come back; what they mean is decided in sdk-core.

use js_sys::{Array, Reflect, Uint8Array};
use sdk_core::{Outcome, ProfileResponse, RulesResponse};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, ReadableWritablePair, RequestCredentials, RequestInit, RequestMode, Response,
};

use crate::browser::window;

/// Browsers cap the bodies of all keepalive requests (and beacons) in flight
/// at 64 KiB per page; stay a little under it.
pub const KEEPALIVE_BUDGET: usize = 63 * 1024;

#[wasm_bindgen]
extern "C" {
    /// `CompressionStream` is behind `web_sys_unstable_apis`; this one
    /// constructor is all we need.
    #[wasm_bindgen(js_name = CompressionStream)]
    type GzipStream;

    #[wasm_bindgen(constructor, catch, js_class = "CompressionStream")]
    fn new(format: &str) -> Result<GzipStream, JsValue>;
}

fn blob(bytes: &[u8], content_type: &str) -> Result<Blob, JsValue> {
    let parts = Array::of1(&Uint8Array::from(bytes));
    let bag = BlobPropertyBag::new();
    bag.set_type(content_type);
    Blob::new_with_u8_array_sequence_and_options(&parts, &bag)
}

/// Gzips `bytes` off the main thread. Fails where `CompressionStream` is
/// missing (Safari before 16.4); the caller then sends the body as is.
pub async fn gzip(bytes: &[u8]) -> Result<Vec<u8>, JsValue> {
    let stream = GzipStream::new("gzip")?;
    let piped = blob(bytes, "application/octet-stream")?
        .stream()
        .pipe_through(stream.unchecked_ref::<ReadableWritablePair>());
    let response = Response::new_with_opt_readable_stream(Some(&piped))?;
    let buf = JsFuture::from(response.array_buffer()?).await?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// Gzips on the spot, for the last uploads of a page being left: the page
/// may be gone before `CompressionStream` answers. Level 1, the fast path:
/// event JSON still shrinks about tenfold. Table-free CRC-32 (a 1 KiB table
/// would cost more wasm than the time it saves here).
pub fn gzip_now(bytes: &[u8]) -> Option<Vec<u8>> {
    const CRC32: crc::Crc<u32, crc::NoTable> = crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);
    // Magic, deflate, no flags, no mtime, no extra flags, unknown OS.
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let size = u32::try_from(bytes.len()).ok()?;
    let deflated = miniz_oxide::deflate::compress_to_vec(bytes, 1);
    let mut out = Vec::with_capacity(HEADER.len() + deflated.len() + 8);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&CRC32.checksum(bytes).to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    Some(out)
}

/// A POST under way: its timeout runs until the answer is read.
pub struct Started {
    promise: js_sys::Promise,
    timer: gloo_timers::callback::Timeout,
}

/// Starts one POST now, in the caller's task: a page being left may not get
/// another. `Err` when the browser refused to start it.
pub fn start(
    url: &str,
    headers: &[(String, String)],
    gzipped: bool,
    body: &[u8],
    keepalive: bool,
    timeout_ms: u32,
) -> Result<Started, JsValue> {
    let w = window().ok_or(JsValue::NULL)?;
    let h = web_sys::Headers::new()?;
    for (k, v) in headers {
        h.append(k, v)?;
    }
    if gzipped {
        h.append("Content-Encoding", "gzip")?;
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers_headers(&h);
    init.set_body(&Uint8Array::from(body));
    init.set_mode(RequestMode::Cors);
    init.set_credentials(RequestCredentials::Omit);
    if keepalive {
        // keepalive lets the request finish if the page goes away meanwhile.
        Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE)?;
    }
    let abort = web_sys::AbortController::new()?;
    init.set_signal(Some(&abort.signal()));
    let timer = gloo_timers::callback::Timeout::new(timeout_ms, move || abort.abort());
    let promise = w.fetch_with_str_and_init(url, &init);
    Ok(Started { promise, timer })
}

impl Started {
    /// Any failure to get an HTTP answer is a network error.
    pub async fn outcome(self) -> Outcome {
        let attempt = async {
            let result = JsFuture::from(self.promise).await;
            drop(self.timer);
            let response: Response = result?.dyn_into()?;
            // An opaque or failed response has status 0: treat as no answer.
            let code = response.status();
            if code == 0 {
                return Ok(Outcome::NetworkError);
            }
            let retry_after = response.headers().get("Retry-After").ok().flatten();
            // Drain the body so the connection can be reused; its content is unused.
            if let Ok(p) = response.text() {
                let _ = JsFuture::from(p).await;
            }
            Ok(Outcome::Status { code, retry_after })
        };
        let result: Result<Outcome, JsValue> = attempt.await;
        result.unwrap_or(Outcome::NetworkError)
    }
}

/// One POST; any failure to get an HTTP answer is a network error.
pub async fn fetch(
    url: &str,
    headers: &[(String, String)],
    gzipped: bool,
    body: &[u8],
    keepalive: bool,
    timeout_ms: u32,
) -> Outcome {
    match start(url, headers, gzipped, body, keepalive, timeout_ms) {
        Ok(s) => s.outcome().await,
        Err(_) => Outcome::NetworkError,
    }
}

/// `navigator.sendBeacon` with a text/plain body (no CORS preflight, which
/// a beacon could not wait for). `false` when the browser refused it.
pub fn beacon(url: &str, body: &[u8]) -> bool {
    let Some(w) = window() else { return false };
    let Ok(b) = blob(body, "text/plain;charset=UTF-8") else { return false };
    w.navigator().send_beacon_with_opt_blob(url, Some(&b)).unwrap_or(false)
}

/// What a GET (rules or profile) brought back, owned so it outlives the response.
pub enum Got {
    NotModified,
    Body(Vec<u8>, Option<String>),
    Failed(Option<u16>),
}

impl Got {
    pub fn response(&self) -> RulesResponse<'_> {
        match self {
            Got::NotModified => RulesResponse::NotModified,
            Got::Body(bytes, etag) => RulesResponse::Body { bytes, etag: etag.as_deref() },
            Got::Failed(status) => RulesResponse::Failed { status: *status },
        }
    }

    /// The profile request sends no `If-None-Match`, so a 304 is just
    /// another status the core treats as a failure.
    pub fn profile(&self) -> ProfileResponse<'_> {
        match self {
            Got::NotModified => ProfileResponse::Failed { status: Some(304) },
            Got::Body(bytes, _) => ProfileResponse::Body { bytes },
            Got::Failed(status) => ProfileResponse::Failed { status: *status },
        }
    }
}

/// One GET of the rules artifact (or its signature), with `If-None-Match`
/// as `header`, or of the person's profile, with `Authorization`. The HTTP
/// cache is bypassed: the core revalidates the artifact itself and keeps
/// the copy it trusts, and a profile is personal data no shared cache may
/// keep. No cookies go either way: the collector is another site and the
/// token is the authorisation. A relative URL resolves against the page, as
/// `fetch` does. A cross-origin artifact server must send
/// `Access-Control-Expose-Headers: ETag`, or the ETag stays invisible here
/// and every refresh downloads the whole artifact again.
pub async fn get(url: &str, header: Option<(&str, &str)>, timeout_ms: u32) -> Got {
    let attempt = async {
        let w = window().ok_or(JsValue::NULL)?;
        let init = RequestInit::new();
        init.set_method("GET");
        if let Some((name, value)) = header {
            let h = web_sys::Headers::new()?;
            h.append(name, value)?;
            init.set_headers_headers(&h);
        }
        init.set_credentials(RequestCredentials::Omit);
        // `RequestCache` would need one more web-sys feature for one string.
        Reflect::set(&init, &JsValue::from_str("cache"), &JsValue::from_str("no-store"))?;
        let abort = web_sys::AbortController::new()?;
        init.set_signal(Some(&abort.signal()));
        let timer = gloo_timers::callback::Timeout::new(timeout_ms, move || abort.abort());
        let response: Response = JsFuture::from(w.fetch_with_str_and_init(url, &init)).await?.dyn_into()?;
        let got = match response.status() {
            304 => Got::NotModified,
            200 => {
                let tag = response.headers().get("ETag").ok().flatten();
                let text = JsFuture::from(response.text()?).await?;
                Got::Body(text.as_string().unwrap_or_default().into_bytes(), tag)
            }
            0 => Got::Failed(None),
            code => Got::Failed(Some(code)),
        };
        drop(timer);
        Ok::<Got, JsValue>(got)
    };
    attempt.await.unwrap_or(Got::Failed(None))
}
