//! Differential test of the TC string decoder against the IAB Tech Lab's
//! reference implementation (`@iabtechlabtcf/core`, pinned in
//! tests/package.json): tests/tcf/generate.mjs encodes random consent models
//! with it and records what it decodes from each string; every field we
//! decode from the same string must agree.
//!
//! `TCF_CASES=<file>` reads recorded cases instead of running node;
//! `TCF_SEED` and `TCF_COUNT` pass through to the generator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sdk_core::tcf::{self, IdSet, PublisherRestriction, PublisherTc, RestrictionType, TcString};
use serde_json::{json, Value};

const MIN_CASES: usize = 1000;

fn cases() -> String {
    if let Ok(path) = std::env::var("TCF_CASES") {
        return std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading TCF_CASES={path}: {e}"));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tests = root.join("tests");
    let package = tests.join("node_modules/@iabtechlabtcf/core/package.json");
    if !package.exists() {
        panic!(
            "the IAB reference encoder is not installed ({} is missing): run scripts/setup.sh, \
             which runs `npm ci` in tests/",
            package.display()
        );
    }
    let out = Command::new("node").arg(tests.join("tcf/generate.mjs")).current_dir(&tests).output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("cannot run node ({e}): install Node.js 20+ and run scripts/setup.sh"),
    };
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        panic!("tests/tcf/generate.mjs failed ({}); see its output above", out.status);
    }
    String::from_utf8(out.stdout).expect("generator output is UTF-8")
}

fn ids(set: &IdSet) -> Value {
    json!(set.iter().collect::<Vec<_>>())
}

fn restriction_code(t: RestrictionType) -> u8 {
    match t {
        RestrictionType::NotAllowed => 0,
        RestrictionType::RequireConsent => 1,
        RestrictionType::RequireLegitimateInterest => 2,
        RestrictionType::Undefined => 3,
    }
}

/// Our decoding in the generator's shape. Destructured without `..`, so a
/// field added to `TcString` fails to compile here until it is compared.
fn to_json(tc: &TcString) -> Value {
    let TcString {
        version,
        created_ms,
        last_updated_ms,
        cmp_id,
        cmp_version,
        consent_screen,
        consent_language,
        vendor_list_version,
        tcf_policy_version,
        is_service_specific,
        use_non_standard_texts,
        special_feature_opt_ins,
        purposes_consent,
        purposes_li_transparency,
        purpose_one_treatment,
        publisher_cc,
        vendor_consents,
        vendor_legitimate_interests,
        publisher_restrictions,
        disclosed_vendors,
        publisher_tc,
    } = tc;
    let restrictions: Vec<Value> = publisher_restrictions
        .iter()
        .map(|PublisherRestriction { purpose_id, restriction_type, vendors }| {
            json!({"purpose": purpose_id, "type": restriction_code(*restriction_type), "vendors": ids(vendors)})
        })
        .collect();
    let publisher_tc = publisher_tc.as_ref().map(
        |PublisherTc {
             purposes_consent,
             purposes_li_transparency,
             num_custom_purposes,
             custom_purposes_consent,
             custom_purposes_li_transparency,
         }| {
            json!({
                "purposes_consent": ids(purposes_consent),
                "purposes_li_transparency": ids(purposes_li_transparency),
                "num_custom_purposes": num_custom_purposes,
                "custom_purposes_consent": ids(custom_purposes_consent),
                "custom_purposes_li_transparency": ids(custom_purposes_li_transparency),
            })
        },
    );
    json!({
        "version": version,
        "created_ms": created_ms,
        "last_updated_ms": last_updated_ms,
        "cmp_id": cmp_id,
        "cmp_version": cmp_version,
        "consent_screen": consent_screen,
        "consent_language": consent_language,
        "vendor_list_version": vendor_list_version,
        "tcf_policy_version": tcf_policy_version,
        "is_service_specific": is_service_specific,
        "use_non_standard_texts": use_non_standard_texts,
        "special_feature_opt_ins": ids(special_feature_opt_ins),
        "purposes_consent": ids(purposes_consent),
        "purposes_li_transparency": ids(purposes_li_transparency),
        "purpose_one_treatment": purpose_one_treatment,
        "publisher_cc": publisher_cc,
        "vendor_consents": ids(vendor_consents),
        "vendor_consents_max_id": vendor_consents.max_id(),
        "vendor_legitimate_interests": ids(vendor_legitimate_interests),
        "vendor_legitimate_interests_max_id": vendor_legitimate_interests.max_id(),
        "publisher_restrictions": restrictions,
        "disclosed_vendors": disclosed_vendors.as_ref().map(ids),
        "disclosed_vendors_max_id": disclosed_vendors.as_ref().map(IdSet::max_id),
        "publisher_tc": publisher_tc,
    })
}

/// The accessors must agree with the fields they read.
fn check_accessors(tc: &TcString, problems: &mut Vec<String>) {
    for p in 0..=25u8 {
        if tc.purpose_consent(p) != tc.purposes_consent.iter().any(|id| id == u16::from(p)) {
            problems.push(format!("purpose_consent({p})"));
        }
    }
    let top = tc.vendor_consents.max_id().max(tc.vendor_legitimate_interests.max_id()).saturating_add(2);
    let consents: Vec<u16> = tc.vendor_consents.iter().collect();
    let disclosed: Option<Vec<u16>> = tc.disclosed_vendors.as_ref().map(|d| d.iter().collect());
    for v in 0..=top {
        if tc.vendor_consent(v) != consents.binary_search(&v).is_ok() {
            problems.push(format!("vendor_consent({v})"));
        }
        if tc.vendor_disclosed(v) != disclosed.as_ref().map(|d| d.binary_search(&v).is_ok()) {
            problems.push(format!("vendor_disclosed({v})"));
        }
    }
    for r in &tc.publisher_restrictions {
        for v in r.vendors.iter().take(50) {
            let got = tc.restriction(r.purpose_id, v);
            if got.is_none_or(|g| g > r.restriction_type) {
                problems.push(format!("restriction({}, {v}) = {got:?}", r.purpose_id));
            }
        }
    }
    let v2_3 = tc.created_ms >= tcf::TCF_V2_3_MANDATORY_FROM_MS;
    if tc.lacks_mandatory_disclosed_vendors() != (v2_3 && tc.disclosed_vendors.is_none()) {
        problems.push("lacks_mandatory_disclosed_vendors".into());
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        format!("{}… ({} chars)", &s[..400], s.len())
    } else {
        s
    }
}

#[test]
fn decodes_what_the_iab_reference_encoder_writes() {
    let started = std::time::Instant::now();
    let text = cases();
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut encodings: BTreeMap<String, usize> = BTreeMap::new();
    let mut profiles: BTreeMap<String, usize> = BTreeMap::new();
    let (mut with_disclosed, mut with_publisher_tc, mut restrictions) = (0, 0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("a JSON case");
        let tc_str = case["tc"].as_str().expect("a tc string");
        let expected = &case["expected"];
        compared += 1;
        if let Some(enc) = case["encodings"].as_object() {
            for (section, kind) in enc {
                *encodings.entry(format!("{section} {}", kind.as_str().unwrap_or("?"))).or_default() += 1;
            }
        }
        *profiles.entry(case["profile"].as_str().unwrap_or("?").to_string()).or_default() += 1;
        let tc = match tcf::decode(tc_str) {
            Ok(tc) => tc,
            Err(e) => {
                failures.push(format!("{tc_str}\n  decode error: {e}"));
                continue;
            }
        };
        with_disclosed += usize::from(tc.disclosed_vendors.is_some());
        with_publisher_tc += usize::from(tc.publisher_tc.is_some());
        restrictions += tc.publisher_restrictions.len();
        let got = to_json(&tc);
        let (want, have) = (expected.as_object().unwrap(), got.as_object().unwrap());
        let mut fields: Vec<&String> = want.keys().chain(have.keys()).collect();
        fields.sort();
        fields.dedup();
        let mut problems = Vec::new();
        for field in fields {
            let (w, h) = (want.get(field), have.get(field));
            if w != h {
                let show = |v: Option<&Value>| v.map_or("(absent)".into(), short);
                problems.push(format!("field {field}: expected {} got {}", show(w), show(h)));
            }
        }
        check_accessors(&tc, &mut problems);
        if !problems.is_empty() {
            failures.push(format!("{tc_str}\n  {}", problems.join("\n  ")));
        }
    }
    eprintln!(
        "tcf differential: {compared} cases in {:.1?}; {with_disclosed} with disclosed vendors, \
         {with_publisher_tc} with publisher TC, {restrictions} publisher restrictions",
        started.elapsed()
    );
    eprintln!("  profiles: {profiles:?}");
    eprintln!("  encodings chosen by the IAB encoder: {encodings:?}");
    if !failures.is_empty() {
        for f in failures.iter().take(10) {
            eprintln!("MISMATCH {f}");
        }
        panic!("{} of {compared} TC strings decoded differently from the IAB reference", failures.len());
    }
    assert!(compared >= MIN_CASES, "only {compared} cases compared; expected at least {MIN_CASES}");
    for section in ["vendor_consents", "vendor_legitimate_interests", "disclosed_vendors"] {
        for kind in ["bitfield", "range"] {
            let n = encodings.get(&format!("{section} {kind}")).copied().unwrap_or(0);
            assert!(n > 0, "no case had a {kind}-encoded {section} section");
        }
    }
}
