//! Thin, failure-tolerant access to the browser: the page context, storage
//! and random bytes. Every accessor returns an Option or a bool instead of
//! throwing, because a host page in a sandboxed iframe, Safari private mode
//! or with storage disabled must keep working (in memory) without us.

use js_sys::{Array, Object, Reflect};
use sdk_core::{Environment, Page};
use wasm_bindgen::{JsCast, JsValue};

pub fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

pub fn now_ms() -> u64 {
    let t = js_sys::Date::now();
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

/// The page as `location` and `document` describe it.
pub fn page() -> Option<Page> {
    let w = window()?;
    let loc = w.location();
    let doc = w.document();
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Some(Page {
        url: loc.href().ok().and_then(non_empty),
        path: loc.pathname().ok().and_then(non_empty),
        search: loc.search().ok().and_then(non_empty),
        referrer: doc.as_ref().map(|d| d.referrer()).and_then(non_empty),
        title: doc.as_ref().map(|d| d.title()).and_then(non_empty),
    })
}

pub fn environment() -> Environment {
    let nav = window().map(|w| w.navigator());
    let timezone = js_sys::Intl::DateTimeFormat::new(&Array::new(), &Object::new())
        .resolved_options()
        .dyn_into::<Object>()
        .ok()
        .and_then(|o| Reflect::get(&o, &JsValue::from_str("timeZone")).ok())
        .and_then(|v| v.as_string());
    Environment {
        locale: nav.as_ref().and_then(|n| n.language()),
        timezone,
        user_agent: nav.as_ref().and_then(|n| n.user_agent().ok()),
    }
}

/// The Global Privacy Control signal, `navigator.globalPrivacyControl`.
pub fn gpc() -> bool {
    window()
        .and_then(|w| Reflect::get(&w.navigator(), &JsValue::from_str("globalPrivacyControl")).ok())
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// `navigator.onLine`; unknown counts as online so we at least try.
pub fn online() -> bool {
    window().is_none_or(|w| w.navigator().on_line())
}

/// localStorage (or sessionStorage) with every failure caught and counted.
pub struct Store {
    inner: Option<web_sys::Storage>,
    pub failures: u32,
}

impl Store {
    pub fn local(enabled: bool) -> Store {
        let inner = if enabled { window().and_then(|w| w.local_storage().ok().flatten()) } else { None };
        Store { inner, failures: 0 }
    }

    pub fn session() -> Store {
        Store { inner: window().and_then(|w| w.session_storage().ok().flatten()), failures: 0 }
    }

    pub fn available(&self) -> bool {
        self.inner.is_some()
    }

    pub fn get(&mut self, key: &str) -> Option<String> {
        match self.inner.as_ref()?.get_item(key) {
            Ok(v) => v,
            Err(_) => {
                self.failures += 1;
                None
            }
        }
    }

    /// False when the write failed (quota exceeded, storage disabled): the
    /// caller goes on in memory.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        let ok = self.inner.as_ref().is_some_and(|s| s.set_item(key, value).is_ok());
        if !ok && self.inner.is_some() {
            self.failures += 1;
        }
        ok
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(s) = &self.inner {
            if s.remove_item(key).is_err() {
                self.failures += 1;
            }
        }
    }

    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let Some(s) = &self.inner else { return Vec::new() };
        let n = s.length().unwrap_or(0);
        (0..n).filter_map(|i| s.key(i).ok().flatten()).filter(|k| k.starts_with(prefix)).collect()
    }
}

/// Random bytes from `crypto.getRandomValues`, fetched in blocks so a
/// `track` call does not cross into JavaScript for its messageId.
pub struct RandomPool {
    buf: [u8; 512],
    pos: usize,
}

impl RandomPool {
    pub fn new() -> Self {
        let mut p = RandomPool { buf: [0; 512], pos: 0 };
        p.refill();
        p
    }

    fn refill(&mut self) {
        if getrandom::fill(&mut self.buf).is_err() {
            // No Web Crypto (very old engines): Math.random still gives
            // unique-enough ids; nothing security-relevant depends on them.
            for b in self.buf.iter_mut() {
                *b = (js_sys::Math::random() * 256.0) as u8;
            }
        }
        self.pos = 0;
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        if self.pos + 16 > self.buf.len() {
            self.refill();
        }
        let mut out = [0u8; 16];
        if let Some(src) = self.buf.get(self.pos..self.pos + 16) {
            out.copy_from_slice(src);
        }
        self.pos += 16;
        out
    }

    pub fn u32(&mut self) -> u32 {
        let b = self.bytes16();
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// A short random id for a tab, as hex.
    pub fn hex_id(&mut self) -> String {
        self.bytes16().iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

impl Default for RandomPool {
    fn default() -> Self {
        Self::new()
    }
}
