//! Fault injection for `POST /v1/batch`.
//!
//! The SDKs promise at-least-once delivery through 5xx answers, rate limiting, slow
//! networks and connections that die before the acknowledgement arrives. End-to-end
//! tests need a collector that misbehaves on demand and reproducibly, so every decision
//! comes from one seeded RNG and the settings can be changed while the server runs
//! (`/admin/faults`).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Longest latency that may be configured (10 minutes): longer would only hang clients.
pub const MAX_LATENCY_MS: u64 = 600_000;

/// Largest `Retry-After` that may be configured (one day).
pub const MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// Why fault settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// A rate is not a probability.
    #[error("{name} must be a number between 0 and 1, got {value}")]
    RateOutOfRange {
        /// JSON name of the setting.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A duration is beyond what makes sense for a test server.
    #[error("{name} must be at most {max}, got {value}")]
    TooLarge {
        /// JSON name of the setting.
        name: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },
}

/// When a dropped request loses its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DropPhase {
    /// Before the events are stored: the batch is lost and must be retried.
    Before,
    /// After the events are stored: the client never sees the acknowledgement of a
    /// stored batch, retries it, and the collector must de-duplicate.
    After,
    /// Either, with equal probability.
    #[default]
    Mixed,
}

/// The fault settings, as the command line and `/admin/faults` know them.
///
/// The rates share one random draw per request: `dropRate` is taken first, then
/// `failRate`, then `rateLimitRate`, so with rates summing to at most 1 each is exactly
/// the fraction of requests it affects; beyond 1 the later ones get what is left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSettings {
    /// Fraction of requests answered with a 5xx.
    pub fail_rate: f64,
    /// Fraction of requests answered with 429 and `Retry-After`.
    pub rate_limit_rate: f64,
    /// Seconds sent in `Retry-After`.
    pub retry_after_secs: u64,
    /// Delay before answering (or dropping) every batch request.
    pub latency_ms: u64,
    /// Random extra delay, uniform in `0..=latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    /// Fraction of requests whose connection is closed without a response.
    pub drop_rate: f64,
    /// When a dropped request loses its connection.
    pub drop_phase: DropPhase,
}

impl Default for FaultSettings {
    fn default() -> Self {
        Self {
            fail_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            latency_ms: 0,
            latency_jitter_ms: 0,
            drop_rate: 0.0,
            drop_phase: DropPhase::Mixed,
        }
    }
}

impl FaultSettings {
    /// Checks that rates are probabilities and durations are sane.
    pub fn validate(&self) -> Result<(), FaultError> {
        for (name, value) in [
            ("failRate", self.fail_rate),
            ("rateLimitRate", self.rate_limit_rate),
            ("dropRate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultError::RateOutOfRange { name, value });
            }
        }
        for (name, value, max) in [
            ("latencyMs", self.latency_ms, MAX_LATENCY_MS),
            ("latencyJitterMs", self.latency_jitter_ms, MAX_LATENCY_MS),
            ("retryAfterSecs", self.retry_after_secs, MAX_RETRY_AFTER_SECS),
        ] {
            if value > max {
                return Err(FaultError::TooLarge { name, value, max });
            }
        }
        Ok(())
    }

    /// Returns these settings with the fields present in `patch` replaced.
    fn patched(&self, patch: &FaultPatch) -> Self {
        Self {
            fail_rate: patch.fail_rate.unwrap_or(self.fail_rate),
            rate_limit_rate: patch.rate_limit_rate.unwrap_or(self.rate_limit_rate),
            retry_after_secs: patch.retry_after_secs.unwrap_or(self.retry_after_secs),
            latency_ms: patch.latency_ms.unwrap_or(self.latency_ms),
            latency_jitter_ms: patch.latency_jitter_ms.unwrap_or(self.latency_jitter_ms),
            drop_rate: patch.drop_rate.unwrap_or(self.drop_rate),
            drop_phase: patch.drop_phase.unwrap_or(self.drop_phase),
        }
    }
}

/// Any subset of [`FaultSettings`], the body of `POST /admin/faults`.
///
/// Unknown fields are refused so that a typo (`"failrate"`) is an error rather than a
/// silently ignored setting that makes a test pass for the wrong reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultPatch {
    /// See [`FaultSettings::fail_rate`].
    pub fail_rate: Option<f64>,
    /// See [`FaultSettings::rate_limit_rate`].
    pub rate_limit_rate: Option<f64>,
    /// See [`FaultSettings::retry_after_secs`].
    pub retry_after_secs: Option<u64>,
    /// See [`FaultSettings::latency_ms`].
    pub latency_ms: Option<u64>,
    /// See [`FaultSettings::latency_jitter_ms`].
    pub latency_jitter_ms: Option<u64>,
    /// See [`FaultSettings::drop_rate`].
    pub drop_rate: Option<f64>,
    /// See [`FaultSettings::drop_phase`].
    pub drop_phase: Option<DropPhase>,
}

/// Where in the handling of a request its connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropPoint {
    /// Before the body is read and anything is stored.
    BeforeStore,
    /// After the events were stored, instead of sending the 200.
    AfterStore,
}

/// What to do with one batch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Handle the request normally.
    Proceed,
    /// Answer with this 5xx status.
    Fail(u16),
    /// Answer 429 with `Retry-After: retry_after_secs`.
    RateLimit {
        /// Value of the `Retry-After` header.
        retry_after_secs: u64,
    },
    /// Close the connection without any response.
    Drop(DropPoint),
}

/// The decision for one batch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultDecision {
    /// Wait this long before acting.
    pub delay: Duration,
    /// Then do this.
    pub action: FaultAction,
}

/// Settings plus the RNG, behind one lock so that a decision sees consistent settings.
#[derive(Debug)]
struct Inner {
    settings: FaultSettings,
    rng: SmallRng,
}

/// Decides, request by request, which fault to inject.
#[derive(Debug)]
pub struct FaultInjector {
    inner: Mutex<Inner>,
    seed: u64,
}

impl FaultInjector {
    /// Validates `settings` and seeds the RNG with `seed`, or with a random seed.
    pub fn new(settings: FaultSettings, seed: Option<u64>) -> Result<Self, FaultError> {
        settings.validate()?;
        let seed = seed.unwrap_or_else(random_seed);
        Ok(Self { inner: Mutex::new(Inner { settings, rng: SmallRng::seed_from_u64(seed) }), seed })
    }

    /// The seed in use, so that a failing run can be reproduced with `--seed`.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current settings.
    pub fn settings(&self) -> FaultSettings {
        self.lock().settings.clone()
    }

    /// Applies `patch` if the result is valid; returns the new settings.
    pub fn update(&self, patch: &FaultPatch) -> Result<FaultSettings, FaultError> {
        let mut inner = self.lock();
        let next = inner.settings.patched(patch);
        next.validate()?;
        inner.settings = next.clone();
        Ok(next)
    }

    /// Draws the fate of one batch request.
    pub fn decide(&self) -> FaultDecision {
        let mut guard = self.lock();
        let Inner { settings, rng } = &mut *guard;

        let mut delay_ms = settings.latency_ms;
        if settings.latency_jitter_ms > 0 {
            delay_ms = delay_ms.saturating_add(rng.random_range(0..=settings.latency_jitter_ms));
        }

        let draw: f64 = rng.random();
        let drop_until = settings.drop_rate;
        let fail_until = drop_until + settings.fail_rate;
        let rate_limit_until = fail_until + settings.rate_limit_rate;
        let action = if draw < drop_until {
            let after = match settings.drop_phase {
                DropPhase::Before => false,
                DropPhase::After => true,
                DropPhase::Mixed => rng.random_bool(0.5),
            };
            FaultAction::Drop(if after { DropPoint::AfterStore } else { DropPoint::BeforeStore })
        } else if draw < fail_until {
            FaultAction::Fail(pick_server_error(rng))
        } else if draw < rate_limit_until {
            FaultAction::RateLimit { retry_after_secs: settings.retry_after_secs }
        } else {
            FaultAction::Proceed
        };

        FaultDecision { delay: Duration::from_millis(delay_ms), action }
    }

    /// Locks the state; a poisoned lock still holds valid settings (every update is a
    /// single assignment), so it is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Mostly the statuses a load balancer or an overloaded origin returns: 500 (40%), 502
/// (30%), 503 (20%), 504 (10%).
fn pick_server_error(rng: &mut SmallRng) -> u16 {
    match rng.random_range(0..10u8) {
        0..=3 => 500,
        4..=6 => 502,
        7..=8 => 503,
        _ => 504,
    }
}

/// A seed from the OS-seeded SipHash keys of the standard library, which avoids a
/// dependency on an OS random source for something that need not be cryptographic.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rates_always_proceed() -> Result<(), FaultError> {
        let faults = FaultInjector::new(FaultSettings::default(), Some(7))?;
        for _ in 0..1000 {
            assert_eq!(faults.decide().action, FaultAction::Proceed);
        }
        Ok(())
    }

    #[test]
    fn rates_are_honoured_roughly_and_reproducibly() -> Result<(), FaultError> {
        let settings = FaultSettings {
            fail_rate: 0.3,
            rate_limit_rate: 0.1,
            drop_rate: 0.2,
            ..FaultSettings::default()
        };
        let run = |seed| -> Result<Vec<FaultAction>, FaultError> {
            let faults = FaultInjector::new(settings.clone(), Some(seed))?;
            Ok((0..10_000).map(|_| faults.decide().action).collect())
        };
        let actions = run(42)?;
        assert_eq!(actions, run(42)?, "same seed, same decisions");
        let count = |pred: fn(&FaultAction) -> bool| actions.iter().filter(|a| pred(a)).count();
        let failed = count(|a| matches!(a, FaultAction::Fail(_)));
        let limited = count(|a| matches!(a, FaultAction::RateLimit { .. }));
        let dropped = count(|a| matches!(a, FaultAction::Drop(_)));
        assert!((2700..3300).contains(&failed), "failed {failed}");
        assert!((800..1200).contains(&limited), "rate limited {limited}");
        assert!((1800..2200).contains(&dropped), "dropped {dropped}");
        assert!(actions.iter().all(|a| match a {
            FaultAction::Fail(status) => [500, 502, 503, 504].contains(status),
            _ => true,
        }));
        Ok(())
    }

    #[test]
    fn patch_changes_only_given_fields_and_validates() -> Result<(), Box<dyn std::error::Error>> {
        let faults = FaultInjector::new(FaultSettings::default(), Some(1))?;
        let patch: FaultPatch = serde_json::from_str(r#"{"failRate":1.0,"dropPhase":"after"}"#)?;
        let updated = faults.update(&patch)?;
        assert_eq!(updated.fail_rate, 1.0);
        assert_eq!(updated.drop_phase, DropPhase::After);
        assert_eq!(updated.retry_after_secs, 1);
        assert!(matches!(faults.decide().action, FaultAction::Fail(_)));

        let bad = FaultPatch { drop_rate: Some(1.5), ..FaultPatch::default() };
        assert!(faults.update(&bad).is_err());
        assert_eq!(faults.settings(), updated, "a refused patch changes nothing");
        assert!(serde_json::from_str::<FaultPatch>(r#"{"failrate":1}"#).is_err());
        Ok(())
    }

    #[test]
    fn nan_rate_is_refused() {
        let settings = FaultSettings { fail_rate: f64::NAN, ..FaultSettings::default() };
        assert!(settings.validate().is_err());
    }
}
