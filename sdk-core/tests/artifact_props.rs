//! Robustness of artifact loading: whatever bytes arrive (a truncated
//! download, a corrupted cache entry, a hand-edited file), loading returns
//! an artifact or a typed error and never panics, and an artifact that
//! loads can be decided on without panicking. The last good artifact stays
//! in use when a bad one arrives.
//!
//! `cargo test -p sdk-core --test artifact_props` (a few seconds).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use sdk_core::artifact::{Artifact, Limits};
use sdk_core::decide::{DecideOptions, Engine};
use sdk_core::profile::Profile;
use serde_json::{json, Value};

const SHOP: &[u8] = include_bytes!("../../tests/artifacts/shop.json");

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Set(usize, u8),
    Insert(usize, &'static str),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "1e999",
        "-1",
        "\"x\"",
        "{\"var\":\"a\"}",
        "\\u0000",
        "\u{e9}",
        "[[[[[[[[",
        "{\"count\":[\"e\",\"9d\"]}",
        "{\"inAudience\":\"nope\"}",
        "\"mon\"",
        "0.5",
    ];
    prop_oneof![
        (0..SHOP.len()).prop_map(Mutation::Truncate),
        (0..SHOP.len(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (0..SHOP.len(), prop::sample::select(tokens)).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (0..SHOP.len(), 1..40usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::Truncate(i) => bytes.truncate(i.min(len)),
        Mutation::Set(i, b) if i < len => bytes[i] = b,
        Mutation::Insert(i, t) => {
            let i = i.min(len);
            bytes.splice(i..i, t.bytes());
        }
        Mutation::Remove(i, n) if i < len => {
            bytes.drain(i..(i + n).min(len));
        }
        _ => {}
    }
}

/// Decides on every placement with and without consent; must not panic.
fn exercise(a: &Artifact, bytes: &[u8]) {
    let mut e = Engine::default();
    e.load(bytes, None).unwrap();
    let mut p = Profile::default();
    p.record("Product Viewed", &json!({"productId": "slacks-01"}), 1_795_512_600_000);
    for placement in a.placement_ids() {
        for personalization in [true, false] {
            let o = DecideOptions {
                max: 3,
                context: None,
                now: 1_795_512_600_000,
                utc_offset_minutes: -300,
                device_id: Some("d"),
                personalization,
                random: [0; 16],
            };
            let d = e.decide(placement, &o, &p).unwrap();
            assert!(!d.is_empty() && d.len() <= 3);
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "home",
            "day",
            "hour",
            "mon",
            "24:00",
            "09:00",
            "2026-11-24T00:00:00Z",
            "slacks-01",
            "7d",
            "x"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            (
                prop::sample::select(vec![
                    "var",
                    "count",
                    "inAudience",
                    "and",
                    "or",
                    "!",
                    ">",
                    "==",
                    "max",
                    "per",
                    "from",
                    "to",
                    "start",
                    "id",
                    "weight",
                    "offer",
                    "unknownOp",
                    "lastSeen",
                    "daysSince",
                ]),
                inner
            )
                .prop_map(|(k, v)| json!({ k: v })),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn corrupted_bytes_never_panic(muts in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = SHOP.to_vec();
        for m in &muts {
            apply(&mut bytes, m);
        }
        if let Ok(a) = Artifact::parse(&bytes, &Limits::default()) {
            exercise(&a, &bytes);
        }
        // A bad artifact leaves the engine's last good one in place.
        let mut e = Engine::default();
        e.load(SHOP, None).unwrap();
        let loaded = e.load(&bytes, None);
        prop_assert!(e.artifact().is_some());
        if loaded.is_err() {
            prop_assert_eq!(e.artifact().unwrap().revision.as_deref(), Some("demo-shop-2026-11-24"));
        }
    }

    #[test]
    fn random_fields_never_panic(v in json_value(), slot in 0usize..9) {
        let mut doc: Value = serde_json::from_slice(SHOP).unwrap();
        let target = match slot {
            0 => &mut doc["offers"][0]["condition"],
            1 => &mut doc["offers"][1]["suppress"],
            2 => &mut doc["offers"][2]["schedule"],
            3 => &mut doc["offers"][0]["cap"],
            4 => &mut doc["audiences"][0]["condition"],
            5 => &mut doc["experiments"][0]["variants"],
            6 => &mut doc["experiments"][0]["variants"][0]["content"],
            7 => &mut doc["placements"][0]["default"],
            _ => &mut doc["offers"][3]["content"],
        };
        *target = v;
        let bytes = doc.to_string().into_bytes();
        if let Ok(a) = Artifact::parse(&bytes, &Limits::default()) {
            exercise(&a, &bytes);
        }
    }
}
