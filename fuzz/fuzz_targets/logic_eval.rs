//! Any bytes as a decision artifact's condition and the data it runs on
//! (`<condition JSON> NUL <data JSON>`): parsing and compiling must return a
//! typed error or a condition, never panic; a condition must evaluate
//! without panicking, give the same answer twice, and `matches` must agree
//! with the value `eval` returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdk_core::logic::{Condition, Context, Limits, PropertyFilter, Window};
use sdk_core::Millis;
use serde_json::Value;

/// A history whose answers depend on the question, so every branch of the
/// history operators sees varied values.
struct Echo;

impl Context for Echo {
    fn now(&self) -> Millis {
        1_772_445_600_000
    }
    fn count(&self, event: &str, window: Window, filter: Option<PropertyFilter<'_>>) -> u64 {
        event.len() as u64 + window.millis().unwrap_or(3) % 5 + u64::from(filter.is_some())
    }
    fn first_seen(&self, event: &str, _: Option<PropertyFilter<'_>>) -> Option<Millis> {
        event.starts_with('a').then_some(1_700_000_000_000)
    }
    fn last_seen(&self, event: &str, filter: Option<PropertyFilter<'_>>) -> Option<Millis> {
        filter.map(|f| f.property.len() as Millis * 86_400_000).or(Some(event.len() as Millis))
    }
    fn in_audience(&self, audience: &str) -> bool {
        audience.len() % 2 == 1
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fuzz_target!(|input: &[u8]| {
    let (rule, data) = match input.iter().position(|b| *b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(rule) else { return };
    // Small limits as well as the defaults: the limit checks are the
    // interesting edges.
    for limits in [Limits::default(), Limits { max_depth: 4, max_nodes: 16, max_steps: 64 }] {
        let Ok(cond) = Condition::parse(text, &limits) else { continue };
        assert!(cond.node_count() <= limits.max_nodes);
        let data: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
        let first = cond.eval(&data, &Echo);
        assert_eq!(first, cond.eval(&data, &Echo), "evaluation is not deterministic");
        match (&first, cond.matches(&data, &Echo)) {
            (Ok(v), Ok(m)) => assert_eq!(truthy(v), m),
            (Err(a), Err(b)) => assert_eq!(a, &b),
            (a, b) => panic!("eval {a:?} but matches {b:?}"),
        }
        let _ = cond.eval(&data, &());
    }
});
