//! Any bytes, as the (lossy) text a CMP or a cookie could hand us, into the
//! TC string decoder: it must return, never panic, and what it returns must
//! hold together.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdk_core::tcf::{self, IdSet};

/// Ascending without repeats, as many as `len` says, each one `contains`.
fn check(set: &IdSet, bound: Option<u16>) {
    let mut last = 0u16;
    let mut n = 0usize;
    for id in set.iter() {
        assert!(id > last, "ids out of order: {last} then {id}");
        assert!(set.contains(id));
        if let Some(max) = bound {
            assert!(id <= max, "id {id} above max_id {max}");
        }
        last = id;
        n += 1;
    }
    assert_eq!(n, set.len());
    assert_eq!(set.is_empty(), n == 0);
    assert!(!set.contains(0));
    assert!(bound.is_none_or(|max| max == u16::MAX || !set.contains(max + 1)));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(tc) = tcf::decode(&text) else { return };
    assert_eq!(tc.version, 2);
    assert_eq!(tc.consent_language.len(), 2);
    assert_eq!(tc.publisher_cc.len(), 2);
    check(&tc.special_feature_opt_ins, Some(12));
    check(&tc.purposes_consent, Some(24));
    check(&tc.purposes_li_transparency, Some(24));
    check(&tc.vendor_consents, Some(tc.vendor_consents.max_id()));
    check(&tc.vendor_legitimate_interests, Some(tc.vendor_legitimate_interests.max_id()));
    if let Some(d) = &tc.disclosed_vendors {
        check(d, Some(d.max_id()));
    }
    if let Some(p) = &tc.publisher_tc {
        check(&p.purposes_consent, Some(24));
        check(&p.purposes_li_transparency, Some(24));
        check(&p.custom_purposes_consent, Some(u16::from(p.num_custom_purposes)));
        check(&p.custom_purposes_li_transparency, Some(u16::from(p.num_custom_purposes)));
    }
    for r in &tc.publisher_restrictions {
        assert!(!r.vendors.is_empty() && r.purpose_id > 0);
        check(&r.vendors, None);
        for v in r.vendors.iter().take(8) {
            assert!(tc.restriction(r.purpose_id, v).is_some_and(|t| t <= r.restriction_type));
        }
    }
    // Decoding is a pure function of the text.
    assert_eq!(tcf::decode(&text).as_ref(), Ok(&tc));
});
