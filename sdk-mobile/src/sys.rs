//! The clock and the random source, which the core never reads itself.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sdk_core::Millis;

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is set
/// before 1970; the core copes with a clock that jumps).
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 16 bytes from the OS random source. Should the OS refuse (it does not on
/// Android or iOS), std's per-process random hash keys, a counter and the
/// clock still give unique, unpredictable-enough ids rather than a failure.
pub fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let s = RandomState::new();
        let hi = s.hash_one((n, nanos, 1u8)).to_le_bytes();
        let lo = s.hash_one((n, nanos, 2u8)).to_le_bytes();
        for (o, v) in b.iter_mut().zip(hi.into_iter().chain(lo)) {
            *o = v;
        }
    }
    b
}

pub fn random_u32() -> u32 {
    let [a, b, c, d, ..] = random16();
    u32::from_le_bytes([a, b, c, d])
}
