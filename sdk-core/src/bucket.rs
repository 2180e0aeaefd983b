//! Experiment bucketing: which of 10,000 buckets a device falls in for an
//! experiment, identical on web, Android and iOS so that one person sees one
//! variant everywhere (the device id is the cross-platform key once the
//! profile is stitched).
//!
//! Scheme `murmur3_x86_32/v1`, named in every rules artifact so it can never
//! change silently: MurmurHash3 x86 32-bit with seed 0 over the UTF-8 bytes
//! of `"<experimentId>.<deviceId>"`, then `bucket = hash × 10,000 / 2³²`
//! (rounded down). Scaling rather than `hash % 10,000` keeps every bucket
//! the same size to within one preimage in 429,497, and is what Optimizely
//! and Adobe Target's on-device decisioning do, so allocations can be
//! compared with theirs. The hash comes from the `murmur3` crate; the tests
//! check it against an independent JavaScript implementation
//! (`tests/bucket/vectors.mjs`).

use serde::{Deserialize, Serialize};

/// Buckets per experiment: a traffic fraction or weight resolves to 0.01 %.
pub const BUCKETS: u32 = 10_000;

/// The bucketing schemes an artifact may name. Only one exists; a new one
/// would be a new variant, never a change to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    #[serde(rename = "murmur3_x86_32/v1")]
    Murmur3V1,
}

/// MurmurHash3 x86 32-bit, seed 0, of `"<experiment_id>.<device_id>"`.
pub fn hash(experiment_id: &str, device_id: &str) -> u32 {
    let key = format!("{experiment_id}.{device_id}");
    // Reading from a byte slice cannot fail; 0 keeps the function total.
    murmur3::murmur3_32(&mut key.as_bytes(), 0).unwrap_or(0)
}

/// The bucket, `0..BUCKETS`, of a device in an experiment.
pub fn bucket(scheme: Scheme, experiment_id: &str, device_id: &str) -> u32 {
    match scheme {
        Scheme::Murmur3V1 => scale(hash(experiment_id, device_id)),
    }
}

fn scale(hash: u32) -> u32 {
    // < BUCKETS since hash < 2^32; the conversion cannot fail.
    u32::try_from((u64::from(hash) * u64::from(BUCKETS)) >> 32).unwrap_or(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // Published MurmurHash3_x86_32 values (seed 0).
        assert_eq!(murmur3::murmur3_32(&mut &b""[..], 0).unwrap(), 0);
        assert_eq!(murmur3::murmur3_32(&mut &b"hello"[..], 0).unwrap(), 0x248b_fa47);
        assert_eq!(murmur3::murmur3_32(&mut &b"Hello, world!"[..], 0).unwrap(), 0xc036_3e43);
        assert_eq!(hash("hero", "d1"), murmur3::murmur3_32(&mut &b"hero.d1"[..], 0).unwrap());
    }

    #[test]
    fn buckets_cover_the_range_evenly_at_the_edges() {
        assert_eq!(scale(0), 0);
        assert_eq!(scale(u32::MAX), BUCKETS - 1);
        assert_eq!(scale(1 << 31), BUCKETS / 2);
        let scheme: Scheme = serde_json::from_str("\"murmur3_x86_32/v1\"").unwrap();
        assert_eq!(scheme, Scheme::Murmur3V1);
        assert!(serde_json::from_str::<Scheme>("\"fnv/v1\"").is_err());
    }
}
