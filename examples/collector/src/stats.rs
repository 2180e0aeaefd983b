//! Counters behind `GET /stats`.
//!
//! Tests and benchmarks compare what the SDK sent with what arrived: how many requests
//! (faulted ones included), how many messages, how many duplicates the retries caused,
//! how many bytes crossed the wire. The counters live for the process lifetime only;
//! `distinct` comes from the database at read time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// A fault injected into a batch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answered with a 5xx.
    Failed,
    /// Answered with 429.
    RateLimited,
    /// Connection closed without a response.
    Dropped,
}

/// Live counters; all updates are independent relaxed increments.
#[derive(Debug, Default)]
pub struct Stats {
    received: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
    gzip_requests: AtomicU64,
    beacon_requests: AtomicU64,
    failed: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
    status_counts: Mutex<BTreeMap<u16, u64>>,
}

/// The JSON of `GET /stats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Messages in processed batches: accepted + duplicates + rejected.
    pub received: u64,
    /// Distinct messages in the database.
    pub distinct: u64,
    /// Messages newly stored by this process.
    pub accepted: u64,
    /// Messages whose `messageId` was already stored.
    pub duplicates: u64,
    /// Messages refused individually.
    pub rejected: u64,
    /// `POST /v1/batch` requests, faulted ones included.
    pub requests: u64,
    /// Request body bytes as received on the wire (compressed size for gzip).
    pub bytes: u64,
    /// Requests with `Content-Encoding: gzip`.
    pub gzip_requests: u64,
    /// Requests authenticated by the body's `writeKey` (`navigator.sendBeacon`).
    pub beacon_requests: u64,
    /// Injected faults.
    pub faults: FaultCounts,
    /// Batch responses by status code (dropped requests have none).
    pub status_counts: BTreeMap<u16, u64>,
}

/// Injected faults by kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCounts {
    /// Answered with a 5xx.
    pub failed: u64,
    /// Answered with 429.
    pub rate_limited: u64,
    /// Closed without a response.
    pub dropped: u64,
}

impl Stats {
    /// Counts a batch request as it arrives.
    pub fn record_request(&self) {
        bump(&self.requests, 1);
    }

    /// Counts body bytes read from the wire.
    pub fn record_bytes(&self, bytes: u64) {
        bump(&self.bytes, bytes);
    }

    /// Counts a gzip request.
    pub fn record_gzip(&self) {
        bump(&self.gzip_requests, 1);
    }

    /// Counts a request authenticated by the body's `writeKey`.
    pub fn record_beacon(&self) {
        bump(&self.beacon_requests, 1);
    }

    /// Counts the messages of a processed batch.
    pub fn record_messages(&self, received: u64, accepted: u64, duplicates: u64, rejected: u64) {
        bump(&self.received, received);
        bump(&self.accepted, accepted);
        bump(&self.duplicates, duplicates);
        bump(&self.rejected, rejected);
    }

    /// Counts an injected fault.
    pub fn record_fault(&self, kind: FaultKind) {
        let counter = match kind {
            FaultKind::Failed => &self.failed,
            FaultKind::RateLimited => &self.rate_limited,
            FaultKind::Dropped => &self.dropped,
        };
        bump(counter, 1);
    }

    /// Counts the status of a batch response.
    pub fn record_status(&self, status: u16) {
        let mut counts = self.status_counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(status).or_insert(0) += 1;
    }

    /// The current values; `distinct` is supplied by the caller from the database.
    pub fn snapshot(&self, distinct: u64) -> StatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            received: load(&self.received),
            distinct,
            accepted: load(&self.accepted),
            duplicates: load(&self.duplicates),
            rejected: load(&self.rejected),
            requests: load(&self.requests),
            bytes: load(&self.bytes),
            gzip_requests: load(&self.gzip_requests),
            beacon_requests: load(&self.beacon_requests),
            faults: FaultCounts {
                failed: load(&self.failed),
                rate_limited: load(&self.rate_limited),
                dropped: load(&self.dropped),
            },
            status_counts: self.status_counts.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }

    /// Zeroes every counter (`POST /admin/reset`).
    pub fn reset(&self) {
        for counter in [
            &self.received,
            &self.accepted,
            &self.duplicates,
            &self.rejected,
            &self.requests,
            &self.bytes,
            &self.gzip_requests,
            &self.beacon_requests,
            &self.failed,
            &self.rate_limited,
            &self.dropped,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.status_counts.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}
