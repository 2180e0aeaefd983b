//! Property tests of `sdk_core::logic` on random rules: compiling never
//! panics, whatever JSON an artifact holds; a compiled rule evaluates
//! without panicking on random data, gives the same answer twice, and
//! `matches` agrees with `{"!!": rule}`.
//!
//! `cargo test -p sdk-core --test logic_props` (1024 cases per property by
//! default; `PROPTEST_CASES` asks for more).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use sdk_core::logic::{Condition, Context, Limits, PropertyFilter, Window};
use sdk_core::Millis;
use serde_json::{json, Map, Value};

/// Every operator, custom ones and a few that do not exist, so random rules
/// reach the compiler's and evaluator's branches instead of stopping at
/// "unknown operator".
const OPS: &[&str] = &[
    "var",
    "val",
    "exists",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    ">",
    ">=",
    "<",
    "<=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "map",
    "filter",
    "reduce",
    "all",
    "none",
    "some",
    "merge",
    "in",
    "cat",
    "substr",
    "log",
    "??",
    "try",
    "throw",
    "preserve",
    "count",
    "firstSeen",
    "lastSeen",
    "inAudience",
    "now",
    "daysSince",
    "hoursSince",
    "bogus",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..20).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "",
            "a",
            "a.b",
            "0",
            "1.5",
            "x",
            "current",
            "accumulator",
            "index",
            "type"
        ])
        .prop_map(Value::from),
        prop::sample::select(vec!["1h", "24h", "7d", "30d", "lifetime", "2d", "2026-03-01T00:00:00Z"])
            .prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            (prop::sample::select(OPS), inner.clone()).prop_map(|(op, args)| json!({ op: args })),
            (prop::sample::select(OPS), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(op, args)| json!({ op: args })),
            prop::collection::btree_map("[a-c]{0,2}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (1usize..12, 1usize..64, 1u64..500).prop_map(|(max_depth, max_nodes, max_steps)| Limits {
            max_depth,
            max_nodes,
            max_steps
        }),
    ]
}

/// A history that answers from the event name, so every answer varies.
struct Echo;

impl Context for Echo {
    fn now(&self) -> Millis {
        1_772_445_600_000
    }
    fn count(&self, event: &str, window: Window, filter: Option<PropertyFilter<'_>>) -> u64 {
        event.len() as u64 + window.millis().unwrap_or(1) % 7 + u64::from(filter.is_some())
    }
    fn first_seen(&self, event: &str, _: Option<PropertyFilter<'_>>) -> Option<Millis> {
        event.contains(['a', 'e']).then_some(1_700_000_000_000)
    }
    fn last_seen(&self, event: &str, _: Option<PropertyFilter<'_>>) -> Option<Millis> {
        (!event.starts_with('x')).then_some(1_772_000_000_000)
    }
    fn in_audience(&self, audience: &str) -> bool {
        audience.starts_with('a')
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn compile_and_eval_never_panic(rule in json_value(), data in json_value(), limits in limits()) {
        if let Ok(c) = Condition::compile(&rule, &limits) {
            prop_assert!(c.node_count() <= limits.max_nodes);
            let first = c.eval(&data, &Echo);
            let again = c.eval(&data, &Echo);
            prop_assert_eq!(&first, &again);
            let _ = c.eval(&data, &());

            // `matches` is `!!` without the copy.
            let wrapped = Limits {
                max_depth: limits.max_depth + 2,
                max_nodes: limits.max_nodes + 1,
                max_steps: limits.max_steps + 1,
            };
            let bang = Condition::compile(&json!({"!!": [rule]}), &wrapped).unwrap();
            match (c.matches(&data, &Echo), bang.eval(&data, &Echo)) {
                (Ok(m), Ok(b)) => prop_assert_eq!(Value::Bool(m), b),
                // The limits differ by the wrapper, so compare kinds only.
                (Err(m), Err(b)) => prop_assert_eq!(m.error_type(), b.error_type()),
                (m, b) => prop_assert!(false, "matches {:?} but !! gives {:?}", m, b),
            }
        }
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,40}", rule in json_value()) {
        let _ = Condition::parse(&text, &Limits::default());
        let text = rule.to_string();
        // Error details may differ in a float's last digit (serde_json's
        // default parser does not round-trip), so compare kinds.
        let parsed = Condition::parse(&text, &Limits::default())
            .map(|c| c.node_count())
            .map_err(|e| e.error_type().into_owned());
        let compiled = Condition::compile(&rule, &Limits::default())
            .map(|c| c.node_count())
            .map_err(|e| e.error_type().into_owned());
        prop_assert_eq!(parsed, compiled);
    }
}

/// The properties above only mean something if random rules get past the
/// compiler and evaluate: check the generator reaches both.
#[test]
fn random_rules_compile_and_evaluate_often_enough() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut compiled, mut evaluated, mut operators) = (0, 0, 0);
    for _ in 0..2000 {
        let rule = json_value().new_tree(&mut runner).unwrap().current();
        let data = json_value().new_tree(&mut runner).unwrap().current();
        if let Ok(c) = Condition::compile(&rule, &Limits::default()) {
            compiled += 1;
            operators += usize::from(rule.is_object() && rule.as_object().is_some_and(|m| m.len() == 1));
            evaluated += usize::from(c.eval(&data, &Echo).is_ok());
        }
    }
    println!("of 2000 random rules: {compiled} compiled ({operators} operators), {evaluated} evaluated");
    assert!(compiled >= 400, "{compiled}");
    assert!(operators >= 100, "{operators}");
    assert!(evaluated >= 200, "{evaluated}");
}
