//! Time as the caller gives it: milliseconds since the Unix epoch. The core
//! never reads a clock, so every conversion lives here and is pure.

use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as `Date.now()` and
/// `System.currentTimeMillis()` return them.
pub type Millis = u64;

/// 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write.
pub const MAX_RFC3339_MS: Millis = 253_402_300_799_999;

/// ISO-8601 / RFC 3339 in UTC with milliseconds, the form Segment-spec
/// collectors parse (`2026-11-24T09:30:00.123Z`).
pub fn iso8601(ms: Millis) -> String {
    // RFC 3339 has four-digit years; clamp so a bogus clock cannot make the
    // formatter fail (humantime reports an error past 9999-12-31).
    let ms = ms.min(MAX_RFC3339_MS);
    // `UNIX_EPOCH + d` only adds durations: it never reads the system clock,
    // so this is safe on wasm32-unknown-unknown where `SystemTime::now` panics.
    let t = UNIX_EPOCH.checked_add(Duration::from_millis(ms)).unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an HTTP `Retry-After` value (delay in seconds or an HTTP date)
/// into a delay from `now`. Unparseable values yield `None` so the normal
/// backoff applies instead.
pub fn retry_after_ms(value: &str, now: Millis) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at_ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    let at_ms = u64::try_from(at_ms).ok()?;
    Some(at_ms.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_iso_with_millis() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_512_600_123), "2026-11-24T09:30:00.123Z");
        // Far future values must not panic.
        assert_eq!(iso8601(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        assert_eq!(retry_after_ms("120", 0), Some(120_000));
        assert_eq!(retry_after_ms(" 0 ", 5), Some(0));
        let now = 1_795_512_600_000; // 2026-11-24T09:30:00Z
        assert_eq!(retry_after_ms("Tue, 24 Nov 2026 09:30:30 GMT", now), Some(30_000));
        // A date in the past means "now".
        assert_eq!(retry_after_ms("Tue, 24 Nov 2026 09:00:00 GMT", now), Some(0));
        assert_eq!(retry_after_ms("soon", now), None);
        assert_eq!(retry_after_ms("-5", now), None);
    }
}
