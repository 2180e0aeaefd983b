//! Any bytes as a rules artifact: loading must return a typed error or an
//! artifact, never panic; a loaded artifact must answer `decide` on every
//! placement, with and without personalization consent, with at least the
//! default offer and at most the slots asked for; a refused artifact must
//! leave the engine's last good one in use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdk_core::artifact::{Artifact, Limits};
use sdk_core::decide::{DecideOptions, Engine};
use sdk_core::profile::Profile;
use serde_json::json;

const GOOD: &[u8] = include_bytes!("../../tests/artifacts/minimal.json");
const NOW: u64 = 1_795_512_600_000;

fuzz_target!(|bytes: &[u8]| {
    let mut engine = Engine::default();
    engine.load(GOOD, None).expect("the minimal artifact loads");
    let mut profile = Profile::default();
    profile.record("Product Viewed", &json!({"productId": "slacks-01"}), NOW);
    let Ok(artifact) = Artifact::parse(bytes, &Limits::default()) else {
        assert!(engine.load(bytes, None).is_err());
        let first = Artifact::parse(GOOD, &Limits::default()).expect("parses");
        for placement in first.placement_ids() {
            assert!(engine.decide(placement, &options(true), &profile).is_ok(), "last good artifact kept");
        }
        return;
    };
    engine.load(bytes, None).expect("what parses also loads");
    for placement in artifact.placement_ids() {
        for personalization in [true, false] {
            let d = engine.decide(placement, &options(personalization), &profile).expect("decides");
            assert!(!d.is_empty() && d.len() <= 3, "{} decisions", d.len());
        }
    }
});

fn options(personalization: bool) -> DecideOptions<'static> {
    DecideOptions {
        max: 3,
        context: None,
        now: NOW,
        utc_offset_minutes: 60,
        device_id: Some("3f1c2b7e-8d4a-4c55-9a7e-0f6b2d1e9c44"),
        personalization,
        random: [7; 16],
    }
}
