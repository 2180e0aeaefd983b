//! Bucketing against an independent MurmurHash3 (tests/bucket/vectors.mjs,
//! `murmurhash3js-revisited` pinned in tests/package.json): the hash and the
//! bucket of every vector, non-ASCII ids included, must agree, or a person
//! would get different variants on web and mobile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

use sdk_core::bucket::{self, Scheme};
use serde_json::Value;

#[test]
fn hash_and_bucket_match_an_independent_implementation() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    assert!(
        tests.join("node_modules/murmurhash3js-revisited/package.json").exists(),
        "murmurhash3js-revisited is not installed: run scripts/setup.sh (npm ci in tests/)"
    );
    let out = Command::new("node")
        .arg(tests.join("bucket/vectors.mjs"))
        .current_dir(&tests)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js 20+"));
    assert!(out.status.success(), "vectors.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut n = 0;
    let mut non_ascii = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (exp, dev) = (v["experiment"].as_str().unwrap(), v["device"].as_str().unwrap());
        assert_eq!(u64::from(bucket::hash(exp, dev)), v["hash"].as_u64().unwrap(), "hash of {exp:?}.{dev:?}");
        assert_eq!(
            u64::from(bucket::bucket(Scheme::Murmur3V1, exp, dev)),
            v["bucket"].as_u64().unwrap(),
            "bucket of {exp:?}.{dev:?}"
        );
        n += 1;
        non_ascii += usize::from(!exp.is_ascii() || !dev.is_ascii());
    }
    assert!(n >= 2000, "only {n} vectors");
    assert!(non_ascii >= 500, "only {non_ascii} non-ASCII vectors");
    eprintln!("bucketing: {n} vectors agree ({non_ascii} non-ASCII)");
}
