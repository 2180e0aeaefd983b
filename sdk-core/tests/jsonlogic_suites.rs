//! Runs the community JSON Logic suites (`../shared/testdata/jsonlogic`
//! beside the repository) against `sdk_core::logic` and prints
//! `<file>: <passed>/<total>` per file. Every file is claimed: one failing
//! case fails the test.
//!
//! `cargo test -p sdk-core --test jsonlogic_suites -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use sdk_core::logic::{Condition, Limits};
use serde_json::Value;

/// Every suite file with the number of cases it holds, in `index.json`
/// order. The counts catch a suite that was truncated or that the harness
/// stopped reading.
const CLAIMED: &[(&str, usize)] = &[
    ("compatible.json", 278),
    ("arithmetic/plus.json", 32),
    ("arithmetic/plus.extra.json", 3),
    ("arithmetic/multiply.json", 28),
    ("arithmetic/multiply.extra.json", 3),
    ("arithmetic/minus.json", 22),
    ("arithmetic/minus.extra.json", 3),
    ("arithmetic/divide.json", 31),
    ("arithmetic/divide.extra.json", 3),
    ("arithmetic/modulo.json", 31),
    ("arithmetic/modulo.extra.json", 2),
    ("comparison/greaterThan.json", 35),
    ("comparison/greaterThanEquals.json", 28),
    ("comparison/lessThan.json", 45),
    ("comparison/lessThanEquals.json", 20),
    ("comparison/softEquals.json", 35),
    ("comparison/softNotEquals.json", 34),
    ("comparison/strictEquals.json", 31),
    ("comparison/strictNotEquals.json", 30),
    ("control/and.json", 25),
    ("control/if.json", 44),
    ("control/or.json", 24),
    ("control/not.json", 23),
    ("control/doublebang.json", 23),
    ("string/in.json", 8),
    ("string/cat.json", 9),
    ("string/substr.json", 12),
    ("array/map.json", 14),
    ("array/filter.json", 12),
    ("array/reduce.json", 9),
    ("array/merge.json", 8),
    ("array/all.json", 12),
    ("array/some.json", 13),
    ("array/none.json", 13),
    ("truthiness.json", 13),
    ("additional.json", 4),
    ("coalesce.json", 15),
    ("chained.json", 7),
    ("iterators.extra.json", 34),
    ("exists.json", 8),
    ("scopes.json", 4),
    ("throw.json", 3),
    ("try.json", 18),
    ("try.extra.json", 1),
    ("val.json", 13),
    ("val.extra.json", 3),
    ("val-compat.json", 60),
    ("var.extra.json", 12),
];

fn suites_dir() -> PathBuf {
    // The repository root is the parent of sdk-core; CI checks ../shared out
    // beside the clone.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/jsonlogic")
}

/// Numbers compare by value (`2` and `2.0` are the same result); decimals
/// within rounding.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `None` when the case passes, else what went wrong.
fn run_case(case: &Value) -> Option<String> {
    let rule = &case["rule"];
    let data = case.get("data").unwrap_or(&Value::Null);
    let outcome = Condition::compile(rule, &Limits::default()).and_then(|c| c.eval(data, &()));
    match (case.get("result"), case.get("error"), outcome) {
        (Some(want), _, Ok(got)) if same(want, &got) => None,
        (_, Some(want), Err(e)) if want["type"].as_str() == Some(&*e.error_type()) => None,
        (want, want_err, got) => Some(format!(
            "rule {rule} data {data}: want {} got {got:?}",
            want.or(want_err).map(Value::to_string).unwrap_or_default()
        )),
    }
}

#[test]
fn every_suite_file_passes() {
    let dir = suites_dir();
    assert!(dir.is_dir(), "suites missing at {}: check out ../shared beside the repository", dir.display());
    assert!(!CLAIMED.is_empty());

    // Every file the suite index lists is claimed: a new file upstream makes
    // this test say so instead of being skipped silently.
    let index: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let claimed: Vec<&str> = CLAIMED.iter().map(|(f, _)| *f).collect();
    assert_eq!(index, claimed, "index.json lists other files than CLAIMED");

    let mut failures = Vec::new();
    let mut total_cases = 0;
    for (file, expected) in CLAIMED {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
        let cases: Vec<&Value> = cases.iter().filter(|c| c.is_object()).collect();
        assert_eq!(cases.len(), *expected, "{file}: case count changed");
        let mut passed = 0;
        for case in &cases {
            assert!(
                case.get("result").is_some() || case.get("error").is_some(),
                "{file}: case without outcome"
            );
            match run_case(case) {
                None => passed += 1,
                Some(why) => failures.push(format!("{file}: {why}")),
            }
        }
        total_cases += cases.len();
        println!("{file}: {passed}/{}", cases.len());
    }
    println!("all files: {}/{total_cases}", total_cases - failures.len());
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

/// The harness itself: a wrong expectation or a wrong error type must fail.
#[test]
fn harness_rejects_wrong_outcomes() {
    let case = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
    assert!(run_case(&case(r#"{"rule": {"+": [1, 2]}, "result": 3}"#)).is_none());
    assert!(run_case(&case(r#"{"rule": {"+": [1, 2]}, "result": 4}"#)).is_some());
    assert!(run_case(&case(r#"{"rule": {"+": [1, 2]}, "error": {"type": "NaN"}}"#)).is_some());
    assert!(run_case(&case(r#"{"rule": {"+": ["a"]}, "error": {"type": "NaN"}}"#)).is_none());
    assert!(run_case(&case(r#"{"rule": {"+": ["a"]}, "error": {"type": "Invalid Arguments"}}"#)).is_some());
    assert!(run_case(&case(r#"{"rule": {"+": ["a"]}, "result": 0}"#)).is_some());
}
