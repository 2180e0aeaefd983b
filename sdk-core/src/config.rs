//! Client configuration. Every binding hands the core the same JSON shape, so
//! a setting means the same thing on the web, on Android and on iOS.

use serde::{Deserialize, Serialize};

use crate::consent::ConsentConfig;
use crate::identity::IdentityConfig;
#[cfg(feature = "decide")]
use crate::profile::ProfileConfig;
#[cfg(feature = "decide")]
use crate::rules::RulesConfig;
#[cfg(feature = "decide")]
use crate::sync::SyncConfig;

/// Why a configuration was refused. Refusing early beats a client that
/// silently cannot deliver anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is not valid JSON for Threadline: {0}")]
    Json(String),
    #[error("endpoint must be an absolute http(s) URL, got \"{0}\"")]
    InvalidEndpoint(String),
    #[error("writeKey must not be empty")]
    EmptyWriteKey,
    #[error("{field} must be at least {min}, got {value}")]
    TooSmall { field: &'static str, min: u64, value: u64 },
    #[error("{field} lists TCF purpose {value}; TCF purposes are 1 to 24")]
    TcfPurpose { field: &'static str, value: u8 },
    #[error("{field} ({value}) must not exceed {limit_field} ({limit})")]
    Inconsistent { field: &'static str, value: u64, limit_field: &'static str, limit: u64 },
    #[error("{0}")]
    Rules(String),
    #[error("{0}")]
    Sync(String),
}

/// Name and version of the SDK build that collected an event
/// (`context.library`), so a collector can tell web from Android traffic and
/// spot a buggy release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Library {
    pub name: String,
    pub version: String,
}

impl Default for Library {
    fn default() -> Self {
        Library { name: "threadline-core".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// Limits on a single event. They exist so one bad call cannot produce a
/// message that the collector rejects and that takes a whole batch down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Characters in an event, page or screen name, or a user id.
    pub max_name_length: usize,
    /// Nesting depth of properties/traits; `{"a":1}` has depth 1.
    pub max_property_depth: usize,
    /// Bytes of one serialised event, context included (Segment's limit is 32 KB).
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_name_length: 200, max_property_depth: 10, max_event_bytes: 32 * 1024 }
    }
}

/// Bounds on what the client holds. When full, the oldest events are dropped
/// and counted: a page that tracks in a tight loop must not eat the heap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueConfig {
    pub max_events: usize,
    pub max_bytes: usize,
    /// Hard cap on the persisted snapshot. localStorage holds about 5 MB per
    /// origin shared with the host page, so we take a fraction of it.
    pub max_persist_bytes: usize,
    /// Delay between a change and writing the snapshot, so a burst of
    /// `track` calls costs one storage write, not one each.
    pub persist_debounce_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_events: 10_000,
            max_bytes: 4 * 1024 * 1024,
            max_persist_bytes: 1024 * 1024,
            persist_debounce_ms: 1_000,
        }
    }
}

/// When a batch leaves. The byte default keeps every batch under the 64 KiB
/// that browsers allow for `keepalive` fetches and `sendBeacon`, so any batch
/// can be sent while the page is being closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchConfig {
    pub max_events: usize,
    pub max_bytes: usize,
    pub max_age_ms: u64,
    /// Uploads allowed in flight at once; one keeps batches in order and
    /// avoids bursts against a struggling collector.
    pub max_in_flight: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_events: 100, max_bytes: 60_000, max_age_ms: 5_000, max_in_flight: 1 }
    }
}

/// Retry policy. Server errors count towards `max_attempts`; network errors
/// and 429s do not (an offline phone must not burn its attempts), but every
/// event is bounded by `max_event_age_ms`, so nothing retries forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryConfig {
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Upper bound on a server's `Retry-After`; a misconfigured server asking
    /// for a week must not silence the SDK for a week.
    pub max_retry_after_ms: u64,
    pub max_attempts: u32,
    pub max_event_age_ms: u64,
    /// How long events handed to `sendBeacon` stay in the persisted snapshot.
    /// The browser gives no receipt; if the page dies within this window the
    /// next page load sends them again (the collector de-duplicates).
    pub beacon_confirm_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            max_retry_after_ms: 10 * 60_000,
            max_attempts: 10,
            max_event_age_ms: 7 * 24 * 3_600_000,
            beacon_confirm_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Collector base URL; batches go to `<endpoint>/v1/batch`.
    pub endpoint: String,
    pub write_key: String,
    #[serde(default)]
    pub library: Library,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub consent: ConsentConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    /// On-device decisions: where the rules artifact comes from. Without
    /// this section no profile is kept (nothing would read it), unless the
    /// host hands over an artifact.
    #[cfg(feature = "decide")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesConfig>,
    /// Bounds of the on-device history that decisions read.
    #[cfg(feature = "decide")]
    #[serde(default)]
    pub profile: ProfileConfig,
    /// Fetching the person's profile from the collector after `identify`
    /// with a user token (see [`crate::sync`]).
    #[cfg(feature = "decide")]
    #[serde(default)]
    pub profile_sync: SyncConfig,
}

/// Room reserved in a batch for `{"batch":[`, `],"sentAt":"…"`, and a beacon's
/// `"writeKey":"…"` (the key itself is added on top).
pub(crate) const ENVELOPE_BYTES: usize = 96;

impl Config {
    pub fn new(endpoint: impl Into<String>, write_key: impl Into<String>) -> Self {
        Config {
            endpoint: endpoint.into(),
            write_key: write_key.into(),
            library: Library::default(),
            limits: Limits::default(),
            queue: QueueConfig::default(),
            batch: BatchConfig::default(),
            retry: RetryConfig::default(),
            consent: ConsentConfig::default(),
            identity: IdentityConfig::default(),
            #[cfg(feature = "decide")]
            rules: None,
            #[cfg(feature = "decide")]
            profile: ProfileConfig::default(),
            #[cfg(feature = "decide")]
            profile_sync: SyncConfig::default(),
        }
    }

    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let cfg: Config = serde_json::from_str(json).map_err(|e| ConfigError::Json(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the limits fit inside each other, so that every accepted
    /// event can always be batched, queued and persisted.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ep = self.endpoint.trim();
        let rest = ep.strip_prefix("https://").or_else(|| ep.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') && !ep.contains(char::is_whitespace) => {
            }
            _ => return Err(ConfigError::InvalidEndpoint(self.endpoint.clone())),
        }
        if self.write_key.is_empty() {
            return Err(ConfigError::EmptyWriteKey);
        }
        let min = |field, value: u64, min: u64| {
            if value < min {
                Err(ConfigError::TooSmall { field, min, value })
            } else {
                Ok(())
            }
        };
        min("limits.maxNameLength", self.limits.max_name_length as u64, 1)?;
        min("limits.maxPropertyDepth", self.limits.max_property_depth as u64, 1)?;
        min("limits.maxEventBytes", self.limits.max_event_bytes as u64, 512)?;
        min("batch.maxEvents", self.batch.max_events as u64, 1)?;
        min("batch.maxInFlight", self.batch.max_in_flight as u64, 1)?;
        min("queue.maxEvents", self.queue.max_events as u64, 1)?;
        min("retry.maxAttempts", u64::from(self.retry.max_attempts), 1)?;
        min("retry.baseBackoffMs", self.retry.base_backoff_ms, 1)?;
        min("consent.maxHeldEvents", self.consent.max_held_events as u64, 1)?;
        min("identity.deviceIdMaxAgeMs", self.identity.device_id_max_age_ms, 86_400_000)?;
        min("identity.sessionTimeoutMs", self.identity.session_timeout_ms, 1_000)?;
        min("identity.sessionMaxMs", self.identity.session_max_ms, 60_000)?;
        #[cfg(feature = "decide")]
        if let Some(r) = &self.rules {
            r.validate().map_err(|e| ConfigError::Rules(e.to_string()))?;
            min("rules.refreshIntervalMs", r.refresh_interval_ms, 1_000)?;
            min("rules.retryMs", r.retry_ms, 100)?;
        }
        #[cfg(feature = "decide")]
        self.profile_sync.validate().map_err(|e| ConfigError::Sync(e.to_string()))?;
        #[cfg(feature = "decide")]
        min("profileSync.refreshIntervalMs", self.profile_sync.refresh_interval_ms, 1_000)?;
        #[cfg(feature = "decide")]
        min("profileSync.retryMs", self.profile_sync.retry_ms, 100)?;
        if let Err((field, value)) = self.consent.validate() {
            return Err(ConfigError::TcfPurpose { field, value });
        }
        let within = |field, value: u64, limit_field, limit: u64| {
            if value > limit {
                Err(ConfigError::Inconsistent { field, value, limit_field, limit })
            } else {
                Ok(())
            }
        };
        let batch_room = self.batch.max_bytes.saturating_sub(ENVELOPE_BYTES + self.write_key.len());
        within(
            "limits.maxEventBytes",
            self.limits.max_event_bytes as u64,
            "batch.maxBytes (less the batch envelope and write key)",
            batch_room as u64,
        )?;
        within("batch.maxBytes", self.batch.max_bytes as u64, "queue.maxBytes", self.queue.max_bytes as u64)?;
        within(
            "batch.maxEvents",
            self.batch.max_events as u64,
            "queue.maxEvents",
            self.queue.max_events as u64,
        )?;
        within(
            "limits.maxEventBytes",
            self.limits.max_event_bytes as u64,
            "queue.maxPersistBytes",
            self.queue.max_persist_bytes as u64,
        )?;
        within(
            "limits.maxEventBytes",
            self.limits.max_event_bytes as u64,
            "consent.maxHeldBytes",
            self.consent.max_held_bytes as u64,
        )?;
        within(
            "retry.baseBackoffMs",
            self.retry.base_backoff_ms,
            "retry.maxBackoffMs",
            self.retry.max_backoff_ms,
        )?;
        Ok(())
    }

    pub(crate) fn batch_url(&self) -> String {
        format!("{}/v1/batch", self.endpoint.trim().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_json_round_trips() {
        let cfg = Config::new("https://c.example.com/", "key");
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(cfg.batch_url(), "https://c.example.com/v1/batch");
        let json = serde_json::to_string(&cfg).unwrap_or_default();
        assert_eq!(Config::from_json(&json), Ok(cfg));
    }

    #[test]
    fn minimal_json_takes_defaults() {
        let cfg = Config::from_json(
            r#"{"endpoint":"http://127.0.0.1:8787","writeKey":"k","batch":{"maxEvents":5}}"#,
        );
        let cfg = cfg.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.batch.max_events, 5);
        assert_eq!(cfg.batch.max_bytes, BatchConfig::default().max_bytes);
    }

    #[test]
    fn refuses_bad_endpoints_keys_and_typos() {
        for ep in ["", "ftp://x", "http://", "https:///path", "127.0.0.1:80", "http://a b"] {
            assert_eq!(Config::new(ep, "k").validate(), Err(ConfigError::InvalidEndpoint(ep.into())), "{ep}");
        }
        assert_eq!(Config::new("http://x", "").validate(), Err(ConfigError::EmptyWriteKey));
        let typo = Config::from_json(r#"{"endpoint":"http://x","writeKey":"k","batch":{"size":5}}"#);
        assert!(matches!(typo, Err(ConfigError::Json(m)) if m.contains("size")));
    }

    #[test]
    fn refuses_limits_that_do_not_nest() {
        let mut cfg = Config::new("http://x", "k");
        cfg.limits.max_event_bytes = 100_000;
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::Inconsistent { field: "limits.maxEventBytes", .. })
        ));
        let mut cfg = Config::new("http://x", "k");
        cfg.batch.max_events = 0;
        assert_eq!(cfg.validate(), Err(ConfigError::TooSmall { field: "batch.maxEvents", min: 1, value: 0 }));
    }
}
