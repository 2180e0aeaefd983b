//! The clock and the random source, which the core never reads itself.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sdk_core::Millis;
use sha2::{Digest, Sha256};

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is set
/// before 1970; the core copes with a clock that jumps).
fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 16 bytes from the OS random source. Should the OS refuse (it does not on
/// Android or iOS), std's per-process random hash keys, a counter and the
/// clock still give unique, unpredictable-enough ids rather than a failure.
fn random16() -> [u8; 16] {
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

fn random_u32() -> u32 {
    let [a, b, c, d, ..] = random16();
    u32::from_le_bytes([a, b, c, d])
}

/// Where a client's time and randomness come from: the system, or a
/// [`DeterministicSource`] that a test or the shared scenario runner steps.
#[derive(Clone)]
pub(crate) enum Source {
    System,
    Scripted(Arc<DeterministicSource>),
}

impl Source {
    pub fn now(&self) -> Millis {
        match self {
            Source::System => now_ms(),
            Source::Scripted(s) => s.now_ms(),
        }
    }

    pub fn random16(&self) -> [u8; 16] {
        match self {
            Source::System => random16(),
            Source::Scripted(s) => s.draw(),
        }
    }

    pub fn random_u32(&self) -> u32 {
        match self {
            Source::System => random_u32(),
            Source::Scripted(s) => s.lock().jitter,
        }
    }
}

struct Scripted {
    now: Millis,
    draws: u64,
    jitter: u32,
}

/// A scripted clock and random source, for tests and for the shared scenario
/// suite (`tests/scenarios/README.md`): time moves only with [`advance`],
/// draw `n` is the first 16 bytes of SHA-256("<seed>:<n>") as on every other
/// platform, and the backoff jitter is whatever was last set. One source can
/// outlive a client, so a restarted client continues the same draws. Never
/// use it in an app: every device would get the same ids.
///
/// [`advance`]: DeterministicSource::advance
#[derive(uniffi::Object)]
pub struct DeterministicSource {
    seed: String,
    state: Mutex<Scripted>,
}

impl DeterministicSource {
    fn lock(&self) -> MutexGuard<'_, Scripted> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn draw(&self) -> [u8; 16] {
        let n = {
            let mut s = self.lock();
            let n = s.draws;
            s.draws += 1;
            n
        };
        let digest = Sha256::digest(format!("{}:{n}", self.seed).as_bytes());
        let mut out = [0u8; 16];
        for (o, d) in out.iter_mut().zip(digest) {
            *o = d;
        }
        out
    }
}

#[uniffi::export]
impl DeterministicSource {
    #[uniffi::constructor]
    pub fn new(seed: String, start_ms: u64) -> Arc<Self> {
        Arc::new(DeterministicSource {
            seed,
            state: Mutex::new(Scripted { now: start_ms, draws: 0, jitter: 0 }),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        let mut s = self.lock();
        s.now = s.now.saturating_add(ms);
    }

    pub fn now_ms(&self) -> u64 {
        self.lock().now
    }

    /// The 32-bit random used by the next `upload_finished` (backoff jitter).
    pub fn set_jitter(&self, jitter: u32) {
        self.lock().jitter = jitter;
    }

    /// How many 16-byte draws were made so far.
    pub fn draws(&self) -> u64 {
        self.lock().draws
    }
}
