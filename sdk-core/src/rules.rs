//! Where the rules artifact comes from: the configured URL, fetched with
//! `If-None-Match` and refreshed on an interval; a copy cached on the device
//! so the first decision after a restart needs no network; or an artifact
//! the host hands over (inline in the page, bundled in the app).
//!
//! Sans-I/O like uploads: [`Rules::next_fetch`] says what to request,
//! the binding performs it and reports with [`Rules::fetched`]. The engine
//! keeps the last good artifact whatever goes wrong, so a bad deploy, a
//! captive portal or a tampered cache never takes decisions away.
//!
//! Signatures are detached (Ed25519 over the exact artifact bytes) and
//! served next to the artifact as `<url>.sig` (base64), as the
//! `threadline sign` CLI writes them; a static host or CDN needs no custom
//! headers. With a public key configured, the signature is fetched whenever
//! the artifact changed, and an artifact without a good one is refused.

#[cfg(feature = "decide")]
use base64::Engine as _;
#[cfg(feature = "decide")]
use serde::{Deserialize, Serialize};

#[cfg(feature = "decide")]
use crate::artifact::{self, ArtifactError};
#[cfg(feature = "decide")]
use crate::decide::Engine;
#[cfg(feature = "decide")]
use crate::time::Millis;

/// The configuration's `rules` section.
#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RulesConfig {
    /// Where the artifact is served; relative URLs are resolved by the
    /// binding (the page's URL on the web).
    pub url: Option<String>,
    /// Defaults to `<url>.sig`.
    pub signature_url: Option<String>,
    /// Ed25519 public key, base64 of 32 bytes (`threadline keygen` prints
    /// it). When set, only signed artifacts are used.
    pub public_key: Option<String>,
    /// How old a loaded artifact may get before it is revalidated.
    pub refresh_interval_ms: u64,
    /// First wait after a failed fetch; it doubles up to the refresh interval.
    pub retry_ms: u64,
}

#[cfg(feature = "decide")]
impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            url: None,
            signature_url: None,
            public_key: None,
            refresh_interval_ms: 5 * 60_000,
            retry_ms: 10_000,
        }
    }
}

#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    #[error("rules.publicKey must be base64 of a 32-byte Ed25519 key: {0}")]
    PublicKey(&'static str),
    #[error("rules.url must not be empty or contain spaces")]
    Url,
    #[error("{0}")]
    Artifact(#[from] ArtifactError),
    #[error("signature is not base64 of 64 bytes")]
    SignatureEncoding,
    #[error("stored rules are corrupt: {0}")]
    Cache(String),
    #[error("no rules fetch {0} is in flight")]
    UnknownFetch(u64),
}

#[cfg(feature = "decide")]
impl RulesError {
    /// A stable code for hosts on every platform.
    pub fn kind(&self) -> &'static str {
        match self {
            RulesError::PublicKey(_) => "rules.publicKey",
            RulesError::Url => "rules.url",
            RulesError::Artifact(ArtifactError::Signature(_)) | RulesError::SignatureEncoding => {
                "rules.signature"
            }
            RulesError::Artifact(_) => "rules.artifact",
            RulesError::Cache(_) => "rules.cache",
            RulesError::UnknownFetch(_) => "rules.unknownFetch",
        }
    }
}

#[cfg(feature = "decide")]
impl RulesConfig {
    pub(crate) fn validate(&self) -> Result<Option<Vec<u8>>, RulesError> {
        for u in [&self.url, &self.signature_url].into_iter().flatten() {
            if u.trim().is_empty() || u.contains(char::is_whitespace) {
                return Err(RulesError::Url);
            }
        }
        let Some(k) = &self.public_key else { return Ok(None) };
        let key = base64::engine::general_purpose::STANDARD
            .decode(k.trim())
            .map_err(|_| RulesError::PublicKey("not base64"))?;
        let arr: [u8; 32] = key.as_slice().try_into().map_err(|_| RulesError::PublicKey("not 32 bytes"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&arr)
            .map_err(|_| RulesError::PublicKey("not a valid key"))?;
        Ok(Some(key))
    }
}

/// A request the binding must perform: a plain GET, with `If-None-Match`
/// when `etag` is set.
#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFetch {
    pub id: u64,
    pub url: String,
    pub etag: Option<String>,
    /// The `.sig` of an artifact just received (no `If-None-Match`).
    pub signature: bool,
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesResponse<'a> {
    /// 304: the loaded artifact is still current.
    NotModified,
    /// 200 with its body; `etag` from the response headers.
    Body { bytes: &'a [u8], etag: Option<&'a str> },
    /// Network error or any other status.
    Failed { status: Option<u16> },
}

/// What happened to the artifact in use, for the host (`ready()`, errors).
#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesEvent {
    Loaded { revision: Option<String> },
    Rejected { kind: &'static str, message: String },
}

#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cached {
    v: u64,
    /// When it was fetched (or revalidated).
    at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
    /// The artifact's exact text, so its signature can be checked again.
    body: String,
}

#[cfg(feature = "decide")]
const CACHE_VERSION: u64 = 1;

#[cfg(feature = "decide")]
#[derive(Debug)]
struct Current {
    body: String,
    sig: Option<String>,
    etag: Option<String>,
    at: Millis,
}

#[cfg(feature = "decide")]
#[derive(Debug)]
enum Flight {
    Artifact(u64),
    /// The artifact arrived; its signature is being fetched.
    Signature(u64, String, Option<String>),
}

#[cfg(feature = "decide")]
#[derive(Debug)]
pub struct Rules {
    config: RulesConfig,
    engine: Engine,
    current: Option<Current>,
    next_fetch: Option<Millis>,
    flight: Option<Flight>,
    failures: u32,
    next_id: u64,
    cache_dirty: bool,
    events: Vec<RulesEvent>,
}

#[cfg(feature = "decide")]
impl Rules {
    pub fn new(config: RulesConfig, limits: artifact::Limits, now: Millis) -> Result<Rules, RulesError> {
        let key = config.validate()?;
        let next_fetch = config.url.as_ref().map(|_| now);
        Ok(Rules {
            config,
            engine: Engine::new(limits, key),
            current: None,
            next_fetch,
            flight: None,
            failures: 0,
            next_id: 1,
            cache_dirty: false,
            events: Vec::new(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn is_ready(&self) -> bool {
        self.engine.artifact().is_some()
    }

    pub fn take_events(&mut self) -> Vec<RulesEvent> {
        std::mem::take(&mut self.events)
    }

    fn load(
        &mut self,
        body: String,
        sig: Option<String>,
        etag: Option<String>,
        now: Millis,
    ) -> Result<(), RulesError> {
        let raw_sig = sig.as_deref().map(decode_signature).transpose();
        let r = raw_sig.and_then(|s| Ok(self.engine.load(body.as_bytes(), s.as_deref())?));
        match r {
            Ok(()) => {
                let revision = self.engine.artifact().and_then(|a| a.revision.clone());
                self.current = Some(Current { body, sig, etag, at: now });
                self.cache_dirty = true;
                self.events.push(RulesEvent::Loaded { revision });
                Ok(())
            }
            Err(e) => {
                self.events.push(RulesEvent::Rejected { kind: e.kind(), message: e.to_string() });
                Err(e)
            }
        }
    }

    /// An artifact from the host. Unless `replace`, it is only taken while
    /// none is loaded: a bundled copy must not override a newer cached or
    /// fetched one. Returns whether it is now in use.
    pub fn provide(
        &mut self,
        body: &str,
        signature: Option<&str>,
        replace: bool,
        now: Millis,
    ) -> Result<bool, RulesError> {
        if !replace && self.is_ready() {
            return Ok(false);
        }
        // Not fetched: its age is unknown, so the next refresh stays as planned.
        self.load(body.to_owned(), signature.map(str::to_owned), None, now)?;
        if let Some(c) = &mut self.current {
            c.at = 0;
        }
        Ok(true)
    }

    /// The cached copy from the previous run: used at once, revalidated when
    /// older than the refresh interval. A copy that no longer loads (bad
    /// signature after a key rotation, older SDK) is an error and changes nothing.
    pub fn restore(&mut self, bytes: &[u8], now: Millis) -> Result<(), RulesError> {
        let c: Cached = serde_json::from_slice(bytes).map_err(|e| RulesError::Cache(e.to_string()))?;
        if c.v != CACHE_VERSION {
            return Err(RulesError::Cache(format!("version {}", c.v)));
        }
        if self.is_ready() && self.current.as_ref().is_some_and(|cur| cur.at >= c.at) {
            return Ok(());
        }
        let at = c.at.min(now);
        self.load(c.body, c.sig, c.etag, now)?;
        if let Some(cur) = &mut self.current {
            cur.at = at;
        }
        // It is what is stored already.
        self.cache_dirty = false;
        if self.flight.is_none() && self.config.url.is_some() {
            self.next_fetch = Some(at.saturating_add(self.config.refresh_interval_ms).max(now));
        }
        Ok(())
    }

    /// The cache record to store, when it changed.
    pub fn take_cache(&mut self) -> Option<Vec<u8>> {
        if !std::mem::take(&mut self.cache_dirty) {
            return None;
        }
        let c = self.current.as_ref()?;
        let rec = Cached {
            v: CACHE_VERSION,
            at: c.at,
            etag: c.etag.clone(),
            sig: c.sig.clone(),
            body: c.body.clone(),
        };
        serde_json::to_vec(&rec).ok()
    }

    pub fn cache_pending(&self) -> bool {
        self.cache_dirty && self.current.is_some()
    }

    /// Storage came back into use (consent): the cache must be written again.
    pub fn mark_cache_dirty(&mut self) {
        self.cache_dirty = self.current.is_some();
    }

    /// When [`Rules::next_fetch`] has something to do.
    pub fn due(&self) -> Option<Millis> {
        if self.flight.is_some() {
            return None;
        }
        self.next_fetch
    }

    pub fn next_fetch(&mut self, now: Millis) -> Option<RulesFetch> {
        let url = self.config.url.clone()?;
        if self.flight.is_some() || self.next_fetch.is_none_or(|t| t > now) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.flight = Some(Flight::Artifact(id));
        self.next_fetch = None;
        let etag = self.current.as_ref().and_then(|c| c.etag.clone());
        Some(RulesFetch { id, url, etag, signature: false })
    }

    fn signature_url(&self) -> Option<String> {
        self.config.signature_url.clone().or_else(|| self.config.url.as_ref().map(|u| format!("{u}.sig")))
    }

    /// Reports a fetch. `random` spreads retries of many devices after an outage.
    pub fn fetched(
        &mut self,
        id: u64,
        response: RulesResponse<'_>,
        now: Millis,
        random: u32,
    ) -> Result<Option<RulesFetch>, RulesError> {
        let flight = match &self.flight {
            Some(Flight::Artifact(i) | Flight::Signature(i, ..)) if *i == id => self.flight.take(),
            _ => return Err(RulesError::UnknownFetch(id)),
        };
        let interval = self.config.refresh_interval_ms;
        let result = match (flight, response) {
            (Some(Flight::Artifact(_)), RulesResponse::NotModified) if self.current.is_some() => {
                if let Some(c) = &mut self.current {
                    c.at = now;
                }
                self.cache_dirty = true;
                Ok(None)
            }
            (Some(Flight::Artifact(_)), RulesResponse::Body { bytes, etag }) => {
                let body = String::from_utf8_lossy(bytes).into_owned();
                let etag = etag.map(str::to_owned);
                if self.engine_needs_signature() {
                    let url = self.signature_url().unwrap_or_default();
                    let id = self.next_id;
                    self.next_id += 1;
                    self.flight = Some(Flight::Signature(id, body, etag));
                    return Ok(Some(RulesFetch { id, url, etag: None, signature: true }));
                }
                self.load(body, None, etag, now).map(|()| None)
            }
            (Some(Flight::Signature(_, body, etag)), RulesResponse::Body { bytes, .. }) => {
                let sig = String::from_utf8_lossy(bytes).trim().to_owned();
                self.load(body, Some(sig), etag, now).map(|()| None)
            }
            (_, RulesResponse::Failed { .. }) | (_, RulesResponse::NotModified) | (None, _) => {
                // Retry sooner than a refresh, doubling, with jitter.
                self.failures = self.failures.saturating_add(1);
                let base =
                    self.config.retry_ms.saturating_mul(1u64 << self.failures.min(16).saturating_sub(1));
                let wait = base.min(interval.max(self.config.retry_ms));
                let jitter = wait / 4 * u64::from(random % 1000) / 1000;
                self.next_fetch = Some(now.saturating_add(wait - wait / 8 + jitter));
                return Ok(None);
            }
        };
        match result {
            Ok(next) => {
                self.failures = 0;
                self.next_fetch = Some(now.saturating_add(interval));
                Ok(next)
            }
            Err(e) => {
                // A bad artifact is not retried before the next refresh: the
                // server will serve the same bytes until someone fixes them.
                self.failures = 0;
                self.next_fetch = Some(now.saturating_add(interval));
                Err(e)
            }
        }
    }

    fn engine_needs_signature(&self) -> bool {
        self.config.public_key.is_some()
    }

    /// Asks for a fetch now (the host's `refreshRules()`), unless one is in flight.
    pub fn refresh(&mut self, now: Millis) {
        if self.config.url.is_some() && self.flight.is_none() {
            self.next_fetch = Some(now);
        }
    }
}

#[cfg(feature = "decide")]
fn decode_signature(s: &str) -> Result<Vec<u8>, RulesError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| RulesError::SignatureEncoding)?;
    if raw.len() != 64 {
        return Err(RulesError::SignatureEncoding);
    }
    Ok(raw)
}

#[cfg(feature = "decide")]
#[cfg(test)]
mod tests;
