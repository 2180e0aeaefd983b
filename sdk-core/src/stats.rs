//! Counters a host can show and a privacy or reliability review can audit.
//! Within one process lifetime they balance:
//! `accepted + restored = delivered + dropped* + handed_over + queued + held`.
//! Only a 2xx counts as delivered: a beacon gives no receipt, so beaconed
//! events stay queued (as `unconfirmed`) until confirmed otherwise.

use serde::Serialize;

use crate::time::Millis;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Events that passed validation and entered the queue.
    pub accepted: u64,
    /// Calls refused with an `EventError`.
    pub rejected: u64,
    /// Events restored from snapshots (this tab's or an adopted one).
    pub restored: u64,
    /// Events held now, in any state.
    pub queued: usize,
    pub queued_bytes: usize,
    pub in_flight: usize,
    /// Events acknowledged by a 2xx.
    pub delivered: u64,
    /// Events handed to `sendBeacon` (no receipt; see `RetryConfig::beacon_confirm_ms`).
    pub beaconed: u64,
    /// Beaconed events still held in case the beacon did not arrive.
    pub unconfirmed: usize,
    /// Beaconed events sent again because the page outlived the grace
    /// period without a receipt.
    pub beacons_requeued: u64,
    /// Uploads handed to the binding (fetch and beacon).
    pub uploads: u64,
    /// Uploads that failed and were scheduled again.
    pub retries: u64,
    /// Events held in memory while `analytics` consent is pending.
    pub held: usize,
    /// Dropped because `analytics` consent was denied (held, queued, or
    /// tracked while denied).
    pub dropped_consent: u64,
    /// Dropped from the held events, oldest first, when they outgrew
    /// `consent.maxHeldEvents` or `consent.maxHeldBytes`.
    pub dropped_held_full: u64,
    pub dropped_queue_full: u64,
    /// Dropped because the collector refused them for good (a 4xx).
    pub dropped_rejected: u64,
    pub dropped_max_attempts: u64,
    pub dropped_expired: u64,
    /// Given up because another tab adopted this page's stored queue.
    pub handed_over: u64,
    /// Events that did not fit in the last persisted snapshot.
    pub not_persisted: usize,
    pub last_status: Option<u16>,
    /// When the next upload may start, if the client is backing off.
    pub backoff_until: Option<Millis>,
}
