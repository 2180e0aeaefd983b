//! Profile sync: what the collector knows of the person from their other
//! devices, fetched so `decide` on this device sees it (the shopper who
//! bought the slacks in the app is not offered the slacks discount on the
//! site).
//!
//! Sans-I/O like the rules fetch: [`Sync::next_fetch`] says what to request,
//! the binding performs the GET and reports with [`Sync::fetched`]; the
//! merge itself is [`crate::profile::Profile::set_remote`]. The client asks
//! only while everything it needs holds: `personalization` granted, a
//! profile in use, a user id and a user token from `identify` (the site's or
//! app's own back end issues it; without one the collector answers 401 and
//! there is nothing to gain by asking). A refused token stops the asking
//! until the host identifies again with a new one; any other failure is
//! retried with doubling waits and jitter; success is refreshed on an
//! interval. Offline, the last answer stays in use (it is stored inside the
//! profile).

#[cfg(feature = "decide")]
use serde::{Deserialize, Serialize};

#[cfg(feature = "decide")]
use crate::profile::ProfileError;
#[cfg(feature = "decide")]
use crate::time::Millis;

/// The configuration's `profileSync` section.
#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConfig {
    /// Off: this device decides with its own history only.
    pub enabled: bool,
    /// Defaults to `<endpoint>/v1/profile`.
    pub url: Option<String>,
    /// How old the collector's part may get before it is fetched again.
    pub refresh_interval_ms: u64,
    /// First wait after a failed fetch; it doubles up to the refresh interval.
    pub retry_ms: u64,
}

#[cfg(feature = "decide")]
impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig { enabled: true, url: None, refresh_interval_ms: 10 * 60_000, retry_ms: 30_000 }
    }
}

#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("profileSync.url must be an absolute http(s) URL without spaces")]
    Url,
    #[error("the collector refused the user token (HTTP {0}); the device decides with its own history")]
    Unauthorized(u16),
    #[error("{0}")]
    Profile(#[from] ProfileError),
    #[error("no profile fetch {0} is in flight")]
    UnknownFetch(u64),
}

#[cfg(feature = "decide")]
impl SyncError {
    /// A stable code for hosts on every platform.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Url => "sync.url",
            SyncError::Unauthorized(_) => "sync.unauthorized",
            SyncError::Profile(e) => e.kind(),
            SyncError::UnknownFetch(_) => "sync.unknownFetch",
        }
    }
}

#[cfg(feature = "decide")]
impl SyncConfig {
    pub(crate) fn validate(&self) -> Result<(), SyncError> {
        if let Some(u) = &self.url {
            let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
            if rest.is_none_or(str::is_empty) || u.contains(char::is_whitespace) {
                return Err(SyncError::Url);
            }
        }
        Ok(())
    }
}

/// A request the binding must perform: a GET with
/// `Authorization: Bearer <token>`.
#[cfg(feature = "decide")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFetch {
    pub id: u64,
    pub url: String,
    pub token: String,
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileResponse<'a> {
    /// 200 with its body.
    Body { bytes: &'a [u8] },
    /// Network error (no status) or any other status; 401 and 403 mean the
    /// token was refused.
    Failed { status: Option<u16> },
}

/// The fetch schedule. What is fetched for whom is the client's: it builds
/// the URL and takes the answer.
#[cfg(feature = "decide")]
#[derive(Debug)]
pub(crate) struct Sync {
    config: SyncConfig,
    /// `(id, user id asked for)`.
    flight: Option<(u64, String)>,
    /// Ask at once although an answer is fresh (a new token, the host's refresh).
    asap: bool,
    /// Next try after a failure.
    retry_at: Option<Millis>,
    failures: u32,
    /// The token was refused: nothing more until a new one.
    refused: bool,
    next_id: u64,
}

#[cfg(feature = "decide")]
impl Sync {
    pub(crate) fn new(config: SyncConfig) -> Sync {
        Sync { config, flight: None, asap: false, retry_at: None, failures: 0, refused: false, next_id: 1 }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.config.enabled && !self.refused
    }

    /// A new user id or token: ask now, forget past failures and refusals.
    /// An answer in flight for someone else is ignored when it lands.
    pub(crate) fn restart(&mut self) {
        self.asap = true;
        self.retry_at = None;
        self.failures = 0;
        self.refused = false;
    }

    /// The host asked for fresh data.
    pub(crate) fn refresh(&mut self) {
        if self.flight.is_none() {
            self.asap = true;
            self.retry_at = None;
        }
    }

    /// When a fetch is due, given when the last answer arrived (device clock).
    pub(crate) fn due(&self, synced: Option<Millis>) -> Option<Millis> {
        if !self.enabled() || self.flight.is_some() {
            return None;
        }
        if let Some(t) = self.retry_at {
            return Some(t);
        }
        match synced {
            Some(s) if !self.asap => Some(s.saturating_add(self.config.refresh_interval_ms)),
            _ => Some(0),
        }
    }

    pub(crate) fn start(&mut self, user_id: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.flight = Some((id, user_id.to_owned()));
        self.asap = false;
        self.retry_at = None;
        id
    }

    /// Ends fetch `id`; returns the user id it asked for.
    pub(crate) fn finish(&mut self, id: u64) -> Result<String, SyncError> {
        match self.flight.take() {
            Some((i, user)) if i == id => Ok(user),
            other => {
                self.flight = other;
                Err(SyncError::UnknownFetch(id))
            }
        }
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    pub(crate) fn refuse(&mut self) {
        self.refused = true;
        self.retry_at = None;
    }

    /// Retry sooner than a refresh, doubling, with jitter (`random` spreads
    /// the devices of an outage).
    pub(crate) fn failed(&mut self, now: Millis, random: u32) {
        self.failures = self.failures.saturating_add(1);
        let interval = self.config.refresh_interval_ms;
        let base = self.config.retry_ms.saturating_mul(1u64 << self.failures.min(16).saturating_sub(1));
        let wait = base.min(interval.max(self.config.retry_ms));
        let jitter = wait / 4 * u64::from(random % 1000) / 1000;
        self.retry_at = Some(now.saturating_add(wait - wait / 8 + jitter));
    }

    /// `<url>?userId=…&exclude=…`.
    pub(crate) fn url(&self, endpoint: &str, user_id: &str, exclude: &[&str]) -> String {
        let base = match &self.config.url {
            Some(u) => u.trim().to_owned(),
            None => format!("{}/v1/profile", endpoint.trim().trim_end_matches('/')),
        };
        let mut url = base;
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("userId=");
        percent_encode(user_id, &mut url);
        for d in exclude {
            url.push_str("&exclude=");
            percent_encode(d, &mut url);
        }
        url
    }
}

/// Query-component encoding: everything but RFC 3986's unreserved
/// characters, byte by byte of the UTF-8.
#[cfg(feature = "decide")]
fn percent_encode(text: &str, out: &mut String) {
    let hex = |n: u8| char::from_digit(u32::from(n), 16).map_or('0', |c| c.to_ascii_uppercase());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 15));
        }
    }
}

#[cfg(feature = "decide")]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encodes_the_user_and_the_devices() {
        let s = Sync::new(SyncConfig::default());
        assert_eq!(
            s.url("https://c.test/", "ann@x.de/ü", &["d-1", "d 2"]),
            "https://c.test/v1/profile?userId=ann%40x.de%2F%C3%BC&exclude=d-1&exclude=d%202"
        );
        let s = Sync::new(SyncConfig { url: Some("https://p.test/me?src=web".into()), ..Default::default() });
        assert_eq!(s.url("https://c.test", "u", &[]), "https://p.test/me?src=web&userId=u");
    }

    #[test]
    fn schedule_refreshes_retries_and_stops_on_refusal() {
        let cfg = SyncConfig { refresh_interval_ms: 60_000, retry_ms: 1_000, ..Default::default() };
        let mut s = Sync::new(cfg);
        assert_eq!(s.due(None), Some(0));
        let id = s.start("u");
        assert_eq!(s.due(None), None, "nothing while in flight");
        assert!(matches!(s.finish(id + 1), Err(SyncError::UnknownFetch(_))));
        assert_eq!(s.finish(id).unwrap(), "u");
        s.failed(10_000, 0);
        assert_eq!(s.due(None), Some(10_000 + 875));
        let id = s.start("u");
        s.finish(id).unwrap();
        s.failed(20_000, 999);
        assert_eq!(s.due(None), Some(20_000 + 1_750 + 499));
        let id = s.start("u");
        s.finish(id).unwrap();
        s.succeeded();
        assert_eq!(s.due(Some(30_000)), Some(90_000));
        s.refresh();
        assert_eq!(s.due(Some(30_000)), Some(0));
        s.refuse();
        assert_eq!(s.due(Some(30_000)), None);
        s.restart();
        assert_eq!(s.due(Some(30_000)), Some(0));
        assert!(SyncConfig { url: Some("ftp://x".into()), ..Default::default() }.validate().is_err());
    }
}
