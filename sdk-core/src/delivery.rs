//! Delivery policy: when a batch is due, what goes in it, and what an
//! upload's outcome means. The binding performs the HTTP request with its own
//! stack and reports back; this module never blocks and never guesses time.
//!
//! Rules (the same on every platform):
//! - a batch is due when the pending events reach `batch.maxEvents` or
//!   `batch.maxBytes`, when the oldest pending event is `batch.maxAgeMs` old,
//!   or after `flush`;
//! - 2xx delivers; 5xx (but 501/505), 408, 410, 429 and network errors retry
//!   with exponential backoff and jitter, honouring `Retry-After`;
//! - other 4xx, 501 and 505 drop the batch and count it; 413 first halves the
//!   batch size, since the collector may simply accept smaller bodies;
//! - server errors count against `retry.maxAttempts`, network errors and 429
//!   do not (being offline is not the event's fault), and every event expires
//!   after `retry.maxEventAgeMs`;
//! - an event in flight is never put in a second upload until the first one's
//!   outcome is known, and keeps its messageId across retries.

use crate::config::{BatchConfig, Config, RetryConfig, ENVELOPE_BYTES};
use crate::queue::{Queue, State};
use crate::snapshot::Backoff;
use crate::stats::Stats;
use crate::time::{iso8601, retry_after_ms, Millis};

/// How the binding sends an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A normal request (`fetch` with `keepalive`, URLSession, OkHttp): the
    /// outcome is reported with [`Outcome::Status`] or [`Outcome::NetworkError`].
    Fetch,
    /// `navigator.sendBeacon` while the page is going away: no headers, so
    /// the write key travels in the body; the outcome is [`Outcome::Handoff`]
    /// or [`Outcome::NotSent`].
    Beacon,
}

/// One HTTP request to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: u64,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub events: usize,
    pub transport: Transport,
}

/// Answer to [`crate::Client::next_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextUpload {
    Upload(Upload),
    /// Nothing is due before this time; ask again then.
    WaitUntil(Millis),
    /// Nothing to send until an event arrives or an upload finishes: no
    /// timer is needed.
    Idle,
}

/// What happened to an upload, as the binding observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered; `retry_after` is the raw `Retry-After` header.
    Status { code: u16, retry_after: Option<String> },
    /// No answer: offline, DNS, TLS, a dropped connection or a timeout.
    NetworkError,
    /// `sendBeacon` accepted the body (the browser will try to deliver it).
    Handoff,
    /// The request could not be started (`sendBeacon` returned false); the
    /// events go back to pending without counting an attempt.
    NotSent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("upload {0} is not in flight (already reported, or from before a restart)")]
    UnknownUpload(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Network,
    Server,
}

enum Verdict {
    Delivered,
    Retry { counts: bool, cause: Cause, retry_after: Option<u64> },
    Rejected,
    TooLarge,
    Handoff,
    NotSent,
}

fn classify(outcome: &Outcome, now: Millis) -> Verdict {
    let server = |counts, ra: &Option<String>| Verdict::Retry {
        counts,
        cause: Cause::Server,
        retry_after: ra.as_deref().and_then(|v| retry_after_ms(v, now)),
    };
    match outcome {
        Outcome::Handoff => Verdict::Handoff,
        Outcome::NotSent => Verdict::NotSent,
        Outcome::NetworkError => Verdict::Retry { counts: false, cause: Cause::Network, retry_after: None },
        Outcome::Status { code, retry_after } => match code {
            200..=299 => Verdict::Delivered,
            413 => Verdict::TooLarge,
            429 => server(false, retry_after),
            408 | 410 => server(true, retry_after),
            501 | 505 => Verdict::Rejected,
            400..=499 => Verdict::Rejected,
            500..=599 => server(true, retry_after),
            // 1xx/3xx reaching us means something in between misbehaves
            // (a captive portal, say): retry like a server error.
            _ => server(true, retry_after),
        },
    }
}

/// Exponential backoff with "equal jitter": half the exponential delay plus a
/// random part of the other half, never above `max_backoff_ms`. Jitter spreads
/// a fleet of clients that failed together so they do not retry together.
pub fn backoff_ms(failures: u32, random: u32, cfg: &RetryConfig) -> u64 {
    let shift = failures.saturating_sub(1).min(40);
    let exp = cfg.base_backoff_ms.saturating_mul(1u64 << shift).min(cfg.max_backoff_ms);
    let half = exp / 2;
    half + u64::from(random) % (exp - half + 1)
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    transport: Transport,
}

#[derive(Debug)]
pub(crate) struct Delivery {
    batch: BatchConfig,
    retry: RetryConfig,
    url: String,
    authorization: String,
    write_key_json: String,
    next_id: u64,
    in_flight: Vec<InFlight>,
    failures: u32,
    backoff_until: Option<Millis>,
    cause: Cause,
    /// Set by a server's `Retry-After`; even a last-chance beacon respects it.
    retry_after_until: Option<Millis>,
    /// Events up to this sequence number go out without waiting for a
    /// full batch or the age trigger.
    flush_through: Option<u64>,
    /// Lowered after a 413 so the collector gets bodies it accepts.
    batch_events: usize,
}

impl Delivery {
    pub fn new(cfg: &Config) -> Self {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", cfg.write_key));
        Delivery {
            batch: cfg.batch.clone(),
            retry: cfg.retry.clone(),
            url: cfg.batch_url(),
            authorization: format!("Basic {basic}"),
            write_key_json: serde_json::to_string(&cfg.write_key).unwrap_or_default(),
            next_id: 1,
            in_flight: Vec::new(),
            failures: 0,
            backoff_until: None,
            cause: Cause::Server,
            retry_after_until: None,
            flush_through: None,
            batch_events: cfg.batch.max_events,
        }
    }

    pub fn backoff_until(&self) -> Option<Millis> {
        self.backoff_until
    }

    /// The retry wait in progress, for the snapshot.
    pub fn backoff(&self) -> Option<Backoff> {
        let until = self.backoff_until?;
        Some(Backoff { failures: self.failures, until, retry_after_until: self.retry_after_until })
    }

    /// Takes over a wait from a snapshot (a reload during an outage), keeping
    /// whichever is longer, so a new page does not retry at once and burn
    /// the events' attempts.
    pub fn merge_backoff(&mut self, b: Backoff) {
        self.failures = self.failures.max(b.failures);
        self.backoff_until = Some(self.backoff_until.map_or(b.until, |t| t.max(b.until)));
        if let Some(ra) = b.retry_after_until {
            self.retry_after_until = Some(self.retry_after_until.map_or(ra, |t| t.max(ra)));
        }
        // The wait's cause is unknown here; treating it as a server's keeps
        // "back online" from cutting it short.
        self.cause = Cause::Server;
    }

    pub fn flush(&mut self, queue: &Queue) {
        self.flush_through = queue.last_seq();
    }

    /// Back online: a wait caused by network errors is pointless now. A
    /// server's backoff or `Retry-After` still stands.
    pub fn network_available(&mut self) {
        if self.cause == Cause::Network {
            self.backoff_until = None;
        }
    }

    /// When the next fetch upload is due; `None` when nothing is pending or
    /// the in-flight limit is reached (an outcome will wake the binding).
    pub fn due(&self, queue: &Queue, now: Millis) -> Option<Millis> {
        if self.in_flight.len() >= self.batch.max_in_flight {
            return None;
        }
        let first = queue.first_pending()?;
        let ready = self.flush_through.is_some_and(|f| first.seq <= f)
            || queue.pending() >= self.batch_events
            || queue.pending_bytes() + queue.pending() + ENVELOPE_BYTES >= self.batch.max_bytes;
        let at = if ready { now } else { first.enqueued.saturating_add(self.batch.max_age_ms) };
        Some(match self.backoff_until {
            Some(b) => at.max(b),
            None => at,
        })
    }

    pub fn next_upload(&mut self, queue: &mut Queue, stats: &mut Stats, now: Millis) -> NextUpload {
        // A flush lasts until every event it covered is settled: one that
        // failed and went back to pending still goes without waiting for
        // the batch age.
        if self.flush_through.is_some_and(|f| !queue.unsettled_through(f)) {
            self.flush_through = None;
        }
        match self.due(queue, now) {
            None => NextUpload::Idle,
            Some(at) if at > now => NextUpload::WaitUntil(at),
            Some(_) => {
                self.backoff_until = None;
                let room = self.batch.max_bytes.saturating_sub(ENVELOPE_BYTES);
                NextUpload::Upload(self.build(queue, stats, Transport::Fetch, self.batch_events, room, now))
            }
        }
    }

    /// Last-chance upload while the page goes away: ignores the batch
    /// triggers and the normal backoff (there may be no later), but not a
    /// server's explicit `Retry-After`.
    pub fn next_beacon(
        &mut self,
        queue: &mut Queue,
        stats: &mut Stats,
        now: Millis,
        max_body_bytes: usize,
    ) -> Option<Upload> {
        if self.retry_after_until.is_some_and(|t| t > now) {
            return None;
        }
        let room = max_body_bytes
            .min(self.batch.max_bytes)
            .saturating_sub(ENVELOPE_BYTES + self.write_key_json.len());
        // The browser refuses a beacon over its budget: do not even try
        // when the next event alone would not fit.
        if queue.first_pending().is_none_or(|e| e.bytes() > room) {
            return None;
        }
        Some(self.build(queue, stats, Transport::Beacon, self.batch_events, room, now))
    }

    /// Last-chance uploads while the page goes away, within `max_wire_bytes`,
    /// the browser's remaining keepalive budget. While what is pending fits
    /// the budget as it is, a beacon ([`Self::next_beacon`]): no preflight,
    /// the most dependable request a dying page can make. Beyond that, for a
    /// binding that can compress on the spot, a keepalive request (a real
    /// one, with headers and an outcome if the page lives on) whose gzip body
    /// fits: compressed, the budget holds about ten times the events, which
    /// is the difference between losing most of a busy page's tail and losing
    /// none. `gzip` runs synchronously, since the page may be gone before any
    /// asynchronous work finishes. `None` when nothing fits, a server's
    /// `Retry-After` holds, or `gzip` fails (the rest goes by beacon).
    pub fn next_unload(
        &mut self,
        queue: &mut Queue,
        stats: &mut Stats,
        now: Millis,
        max_wire_bytes: usize,
        gzip: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Upload> {
        if self.retry_after_until.is_some_and(|t| t > now) {
            return None;
        }
        let plain = queue.pending_bytes() + queue.pending() + ENVELOPE_BYTES + self.write_key_json.len();
        if plain <= max_wire_bytes {
            return self.next_beacon(queue, stats, now, max_wire_bytes);
        }
        let mut room = self.batch.max_bytes.saturating_sub(ENVELOPE_BYTES);
        loop {
            if queue.first_pending().is_none_or(|e| e.bytes() > room) {
                return None;
            }
            let mut upload = self.build(queue, stats, Transport::Fetch, self.batch_events, room, now);
            let raw = upload.body.len();
            let packed = gzip(&upload.body);
            match packed {
                Some(z) if z.len() <= max_wire_bytes => {
                    upload.body = z;
                    upload.headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
                    return Some(upload);
                }
                _ => {
                    self.unbuild(queue, stats, upload.id);
                    let Some(z) = packed.map(|z| z.len().max(1)) else {
                        return self.next_beacon(queue, stats, now, max_wire_bytes);
                    };
                    // Fewer events, in proportion and with a margin: the
                    // ratio varies little within one page's events. Always
                    // smaller than this try, so the loop ends.
                    let scaled = (raw as u128 * max_wire_bytes as u128 * 9 / 10 / z as u128) as usize;
                    room = scaled.min(raw.saturating_sub(ENVELOPE_BYTES + 1));
                }
            }
        }
    }

    /// Undoes a [`Self::build`] whose body was never sent: its events are
    /// pending again, in their place, and no upload is counted.
    fn unbuild(&mut self, queue: &mut Queue, stats: &mut Stats, id: u64) {
        self.in_flight.retain(|u| u.id != id);
        queue.set_state_of(id, State::Pending);
        stats.uploads = stats.uploads.saturating_sub(1);
    }

    fn build(
        &mut self,
        queue: &mut Queue,
        stats: &mut Stats,
        transport: Transport,
        max_events: usize,
        room: usize,
        now: Millis,
    ) -> Upload {
        let id = self.next_id;
        self.next_id += 1;
        let events = queue.take(id, max_events, room);
        let n = events.len();
        let mut body =
            String::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + ENVELOPE_BYTES);
        body.push_str("{\"batch\":[");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(e);
        }
        body.push_str("],\"sentAt\":\"");
        body.push_str(&iso8601(now));
        body.push('"');
        let mut headers = Vec::with_capacity(2);
        match transport {
            Transport::Fetch => {
                headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
                headers.push(("Authorization".to_owned(), self.authorization.clone()));
            }
            Transport::Beacon => {
                body.push_str(",\"writeKey\":");
                body.push_str(&self.write_key_json);
                // text/plain keeps a cross-origin beacon free of a CORS preflight.
                headers.push(("Content-Type".to_owned(), "text/plain;charset=UTF-8".to_owned()));
            }
        }
        body.push('}');
        self.in_flight.push(InFlight { id, transport });
        stats.uploads += 1;
        Upload { id, url: self.url.clone(), headers, body: body.into_bytes(), events: n, transport }
    }

    pub fn in_flight_uploads(&self) -> usize {
        self.in_flight.len()
    }

    pub fn finished(
        &mut self,
        queue: &mut Queue,
        stats: &mut Stats,
        id: u64,
        outcome: &Outcome,
        now: Millis,
        random: u32,
    ) -> Result<(), DeliveryError> {
        let pos = self.in_flight.iter().position(|u| u.id == id).ok_or(DeliveryError::UnknownUpload(id))?;
        let upload = self.in_flight.swap_remove(pos);
        if let Outcome::Status { code, .. } = outcome {
            stats.last_status = Some(*code);
        }
        let in_upload = |e: &crate::queue::Entry| e.state == State::InFlight(id);
        match classify(outcome, now) {
            Verdict::Delivered => {
                stats.delivered += queue.remove_where(in_upload).len() as u64;
                self.failures = 0;
                self.backoff_until = None;
                self.retry_after_until = None;
                self.batch_events = self.batch.max_events;
            }
            Verdict::Handoff => {
                let until = now.saturating_add(self.retry.beacon_confirm_ms);
                stats.beaconed += queue.set_state_of(id, State::Unconfirmed { until }) as u64;
            }
            Verdict::NotSent => {
                queue.set_state_of(id, State::Pending);
            }
            Verdict::Rejected => {
                stats.dropped_rejected += queue.remove_where(in_upload).len() as u64;
            }
            Verdict::TooLarge => {
                let n = queue.iter().filter(|e| in_upload(e)).count();
                if n > 1 {
                    self.batch_events = (n / 2).max(1);
                    queue.set_state_of(id, State::Pending);
                } else {
                    stats.dropped_rejected += queue.remove_where(in_upload).len() as u64;
                }
            }
            Verdict::Retry { counts, cause, retry_after } => {
                if counts {
                    let max = self.retry.max_attempts;
                    queue.for_upload(id, |e| e.attempts = e.attempts.saturating_add(1));
                    stats.dropped_max_attempts +=
                        queue.remove_where(|e| in_upload(e) && e.attempts >= max).len() as u64;
                }
                queue.set_state_of(id, State::Pending);
                stats.retries += 1;
                // A beacon's failure is not observed, so it never lands here;
                // only fetch failures drive the backoff.
                if upload.transport == Transport::Fetch {
                    self.failures = self.failures.saturating_add(1);
                    let mut delay = backoff_ms(self.failures, random, &self.retry);
                    if let Some(ra) = retry_after {
                        let ra = ra.min(self.retry.max_retry_after_ms);
                        delay = delay.max(ra);
                        self.retry_after_until = Some(now.saturating_add(ra));
                    }
                    self.cause = cause;
                    self.backoff_until = Some(now.saturating_add(delay));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_jitters_and_stays_under_the_cap() {
        let cfg = RetryConfig { base_backoff_ms: 1000, max_backoff_ms: 30_000, ..RetryConfig::default() };
        assert_eq!(backoff_ms(1, 0, &cfg), 500);
        assert_eq!(backoff_ms(1, 500, &cfg), 1000);
        assert_eq!(backoff_ms(1, 501, &cfg), 500);
        assert_eq!(backoff_ms(3, 0, &cfg), 2000);
        for f in 0..100 {
            for r in [0, 1, 7777, u32::MAX] {
                assert!(backoff_ms(f, r, &cfg) <= 30_000);
            }
        }
        assert_eq!(backoff_ms(100, 0, &cfg), 15_000);
    }

    #[test]
    fn classifies_statuses_as_the_spec_says() {
        let st = |code| Outcome::Status { code, retry_after: None };
        let kind = |o: &Outcome| match classify(o, 0) {
            Verdict::Delivered => "ok",
            Verdict::Retry { counts: true, .. } => "retry",
            Verdict::Retry { counts: false, .. } => "retry-free",
            Verdict::Rejected => "drop",
            Verdict::TooLarge => "shrink",
            Verdict::Handoff => "handoff",
            Verdict::NotSent => "notsent",
        };
        for (code, want) in [
            (200, "ok"),
            (204, "ok"),
            (400, "drop"),
            (401, "drop"),
            (404, "drop"),
            (408, "retry"),
            (410, "retry"),
            (413, "shrink"),
            (429, "retry-free"),
            (500, "retry"),
            (501, "drop"),
            (502, "retry"),
            (503, "retry"),
            (505, "drop"),
            (511, "retry"),
            (302, "retry"),
        ] {
            assert_eq!(kind(&st(code)), want, "status {code}");
        }
        assert_eq!(kind(&Outcome::NetworkError), "retry-free");
        assert_eq!(kind(&Outcome::Handoff), "handoff");
        assert_eq!(kind(&Outcome::NotSent), "notsent");
        let ra = Outcome::Status { code: 429, retry_after: Some("7".into()) };
        assert!(matches!(classify(&ra, 0), Verdict::Retry { retry_after: Some(7000), .. }));
    }
}
