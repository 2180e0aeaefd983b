//! Decoding of IAB TCF v2 TC strings (policy v2.2 and v2.3), the consent
//! signal a CMP on the page or in the app hands us.
//!
//! Strict about structure, lenient about policy: a malformed string is an
//! error, never a partial result, while whether a well-formed string is
//! acceptable (its policy version, a missing disclosed-vendors segment, a
//! service-specific scope) is left to the consent rules. Every read goes
//! through a bit reader that cannot index out of bounds, and every
//! allocation is bounded by the input length or by the 65 535 ids a 16-bit
//! vendor id can name.
//!
//! Reference: IAB Tech Lab, "Transparency and Consent String with Global
//! Vendor & CMP List Formats", TCF v2.3 (April 2025).

use std::fmt;

/// Real TC strings are a few KiB at most (they live in cookies and URLs);
/// refusing anything longer up front bounds the work a hostile one causes.
pub const MAX_TC_STRING_LEN: usize = 64 * 1024;

/// 2026-03-01T00:00:00Z. TCF v2.3 made the disclosed-vendors segment
/// mandatory for strings created after 28 February 2026, without changing
/// the format or the policy version (5, in use since July 2024): the
/// creation time is the only way to tell a v2.3 string from a v2.2 one.
pub const TCF_V2_3_MANDATORY_FROM_MS: u64 = 1_772_323_200_000;

/// Why a TC string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcfError {
    #[error("TC string is empty")]
    Empty,
    #[error("TC string is {len} bytes long; refusing anything over {max}")]
    TooLong { len: usize, max: usize },
    /// `segment` counts from 1 (the core segment).
    #[error("segment {segment} of the TC string is not websafe base64")]
    BadBase64 { segment: usize },
    #[error("TC string version {0} is not supported (only version 2; TCF v1 strings are obsolete)")]
    UnsupportedVersion(u8),
    #[error("TC string truncated while reading {section}.{field}")]
    Truncated { section: &'static str, field: &'static str },
    #[error("segment {segment} has unknown segment type {segment_type}")]
    UnknownSegmentType { segment: usize, segment_type: u8 },
    #[error("segment {segment} repeats segment type {segment_type}")]
    DuplicateSegment { segment: usize, segment_type: u8 },
    #[error("invalid {section}.{field} {value}: {reason}")]
    InvalidValue { section: &'static str, field: &'static str, value: u16, reason: &'static str },
}

/// A decoded TC string. Field names follow the IAB specification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcString {
    pub version: u8,
    /// The string stores deciseconds; kept here in milliseconds like every
    /// other time in the core.
    pub created_ms: u64,
    pub last_updated_ms: u64,
    pub cmp_id: u16,
    pub cmp_version: u16,
    pub consent_screen: u8,
    /// Two upper-case letters, e.g. "EN".
    pub consent_language: String,
    pub vendor_list_version: u16,
    /// 4 from TCF v2.2 (2023); 5 since GVL v62 (July 2024), v2.3 strings
    /// included.
    pub tcf_policy_version: u8,
    pub is_service_specific: bool,
    pub use_non_standard_texts: bool,
    /// Ids 1..=12.
    pub special_feature_opt_ins: IdSet,
    /// Ids 1..=24.
    pub purposes_consent: IdSet,
    /// Ids 1..=24.
    pub purposes_li_transparency: IdSet,
    pub purpose_one_treatment: bool,
    pub publisher_cc: String,
    pub vendor_consents: IdSet,
    pub vendor_legitimate_interests: IdSet,
    /// One entry per (purpose, restriction type), in order of first
    /// appearance; entries the string repeats are merged and entries that
    /// name no vendor are dropped, since they restrict nothing.
    pub publisher_restrictions: Vec<PublisherRestriction>,
    /// The disclosed-vendors segment (type 1), when present.
    pub disclosed_vendors: Option<IdSet>,
    /// The publisher TC segment (type 3), when present.
    pub publisher_tc: Option<PublisherTc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherRestriction {
    pub purpose_id: u8,
    pub restriction_type: RestrictionType,
    pub vendors: IdSet,
}

/// Ordered strictest first, so the minimum of several is the one to obey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RestrictionType {
    NotAllowed,
    RequireConsent,
    RequireLegitimateInterest,
    /// Code 3, reserved by the specification.
    Undefined,
}

impl RestrictionType {
    fn from_code(code: u64) -> RestrictionType {
        match code {
            0 => RestrictionType::NotAllowed,
            1 => RestrictionType::RequireConsent,
            2 => RestrictionType::RequireLegitimateInterest,
            _ => RestrictionType::Undefined,
        }
    }
}

/// The publisher's own purposes (segment type 3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherTc {
    pub purposes_consent: IdSet,
    pub purposes_li_transparency: IdSet,
    pub num_custom_purposes: u8,
    pub custom_purposes_consent: IdSet,
    pub custom_purposes_li_transparency: IdSet,
}

impl TcString {
    pub fn purpose_consent(&self, purpose: u8) -> bool {
        self.purposes_consent.contains(u16::from(purpose))
    }

    pub fn purpose_li_transparency(&self, purpose: u8) -> bool {
        self.purposes_li_transparency.contains(u16::from(purpose))
    }

    pub fn special_feature_opt_in(&self, feature: u8) -> bool {
        self.special_feature_opt_ins.contains(u16::from(feature))
    }

    pub fn vendor_consent(&self, vendor: u16) -> bool {
        self.vendor_consents.contains(vendor)
    }

    pub fn vendor_legitimate_interest(&self, vendor: u16) -> bool {
        self.vendor_legitimate_interests.contains(vendor)
    }

    /// None when the string has no disclosed-vendors segment.
    pub fn vendor_disclosed(&self, vendor: u16) -> Option<bool> {
        self.disclosed_vendors.as_ref().map(|d| d.contains(vendor))
    }

    /// The restriction the publisher set on this vendor for this purpose, if
    /// any. The policy allows one per purpose and vendor; should a string
    /// carry several, the strictest wins, because obeying a looser one could
    /// process data the publisher forbade.
    pub fn restriction(&self, purpose: u8, vendor: u16) -> Option<RestrictionType> {
        self.publisher_restrictions
            .iter()
            .filter(|r| r.purpose_id == purpose && r.vendors.contains(vendor))
            .map(|r| r.restriction_type)
            .min()
    }

    /// True for a string that TCF v2.3 deems invalid: created on or after
    /// [`TCF_V2_3_MANDATORY_FROM_MS`] without a disclosed-vendors segment.
    /// Older strings without it stay valid, so this is not a decode error.
    pub fn lacks_mandatory_disclosed_vendors(&self) -> bool {
        self.disclosed_vendors.is_none() && self.created_ms >= TCF_V2_3_MANDATORY_FROM_MS
    }
}

/// A set of ids in 1..=65535.
///
/// Two representations keep memory proportional to what the string
/// actually encodes: a bitmap for purposes and vendor sections (at most
/// `max_id` bits, so 8 KiB even for a hostile "1-65535" range), and sorted
/// runs for publisher restrictions, which carry no maximum id and of which a
/// string may hold thousands.
#[derive(Clone)]
pub struct IdSet {
    max_id: u16,
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Bit `(id - 1) % 64` of word `(id - 1) / 64`.
    Bits(Vec<u64>),
    /// Inclusive, sorted, disjoint and non-adjacent.
    Runs(Vec<(u16, u16)>),
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet { max_id: 0, repr: Repr::Runs(Vec::new()) }
    }
}

impl IdSet {
    pub fn contains(&self, id: u16) -> bool {
        if id == 0 {
            return false;
        }
        match &self.repr {
            Repr::Bits(words) => bit_is_set(words, u32::from(id) - 1),
            Repr::Runs(runs) => {
                let i = runs.partition_point(|&(_, end)| end < id);
                runs.get(i).is_some_and(|&(start, _)| start <= id)
            }
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Bits(words) => words.iter().map(|w| w.count_ones() as usize).sum(),
            Repr::Runs(runs) => runs.iter().map(|&(s, e)| usize::from(e - s) + 1).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Bits(words) => words.iter().all(|&w| w == 0),
            Repr::Runs(runs) => runs.is_empty(),
        }
    }

    /// For vendor sections, the MaxVendorId the string encodes (ids above it
    /// were not represented at all); for fixed-width fields, their width;
    /// for publisher restrictions, which encode none, the largest id.
    pub fn max_id(&self) -> u16 {
        self.max_id
    }

    /// The ids, ascending.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: match &self.repr {
                Repr::Bits(words) => IterInner::Bits { words, word: 0, pending: words.first().copied() },
                Repr::Runs(runs) => IterInner::Runs { runs: runs.iter(), next: 1, end: 0 },
            },
        }
    }

    /// A set of the given ids, for tests that build a [`TcString`] by hand.
    #[cfg(test)]
    pub(crate) fn of(ids: &[u16]) -> IdSet {
        let max = ids.iter().copied().max().unwrap_or(0);
        let mut words = vec![0u64; usize::from(max).div_ceil(64)];
        for &id in ids.iter().filter(|&&id| id > 0) {
            words[usize::from(id - 1) / 64] |= 1 << ((id - 1) % 64);
        }
        IdSet::from_bits(max, words)
    }

    fn from_bits(max_id: u16, words: Vec<u64>) -> IdSet {
        IdSet { max_id, repr: Repr::Bits(words) }
    }

    /// Runs from a bitmap: one pass over the words, not over the ids.
    fn runs_from_bits(words: &[u64]) -> IdSet {
        let mut runs = Vec::new();
        let mut from = 0;
        while let Some(start) = find_bit(words, from, true) {
            let end = find_bit(words, start, false).unwrap_or(words.len() as u32 * 64);
            // Bit index b holds id b + 1; ids never exceed 65535 because the
            // bitmap is sized from 16-bit ids.
            runs.push((start as u16 + 1, end as u16));
            from = end;
        }
        let max_id = runs.last().map_or(0, |&(_, e)| e);
        IdSet { max_id, repr: Repr::Runs(runs) }
    }
}

impl PartialEq for IdSet {
    fn eq(&self, other: &Self) -> bool {
        self.max_id == other.max_id && self.iter().eq(other.iter())
    }
}

impl Eq for IdSet {}

impl fmt::Debug for IdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Runs, not ids: a vendor set can hold 65 535 of them.
        write!(f, "IdSet(max {})[", self.max_id)?;
        let mut ids = self.iter().peekable();
        let mut first = true;
        while let Some(start) = ids.next() {
            let mut end = start;
            while ids.next_if_eq(&(end.wrapping_add(1))).is_some() {
                end += 1;
            }
            let sep = if first { "" } else { ", " };
            first = false;
            if end == start {
                write!(f, "{sep}{start}")?;
            } else {
                write!(f, "{sep}{start}-{end}")?;
            }
        }
        f.write_str("]")
    }
}

impl<'a> IntoIterator for &'a IdSet {
    type Item = u16;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the ids of an [`IdSet`], ascending.
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

enum IterInner<'a> {
    Bits { words: &'a [u64], word: usize, pending: Option<u64> },
    Runs { runs: std::slice::Iter<'a, (u16, u16)>, next: u32, end: u32 },
}

impl Iterator for Iter<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        match &mut self.inner {
            IterInner::Bits { words, word, pending } => loop {
                let bits = (*pending)?;
                if bits != 0 {
                    *pending = Some(bits & (bits - 1));
                    return Some((*word * 64 + bits.trailing_zeros() as usize + 1) as u16);
                }
                *word += 1;
                *pending = words.get(*word).copied();
            },
            IterInner::Runs { runs, next, end } => loop {
                if *next <= *end {
                    let id = *next as u16;
                    *next += 1;
                    return Some(id);
                }
                let &(s, e) = runs.next()?;
                *next = u32::from(s);
                *end = u32::from(e);
            },
        }
    }
}

fn bit_is_set(words: &[u64], bit: u32) -> bool {
    words.get((bit / 64) as usize).is_some_and(|w| (w >> (bit % 64)) & 1 == 1)
}

/// The first bit index at or after `from` whose value is `set`.
fn find_bit(words: &[u64], from: u32, set: bool) -> Option<u32> {
    let mut word = (from / 64) as usize;
    let first = words.get(word)?;
    let flip = |w: u64| if set { w } else { !w };
    let mut bits = flip(*first) & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(word as u32 * 64 + bits.trailing_zeros());
        }
        word += 1;
        bits = flip(*words.get(word)?);
    }
}

/// Sets bit indices `lo..=hi`, a word at a time, so that a range entry
/// costs at most 1024 word writes whatever it spans.
fn set_bits(words: &mut [u64], lo: u32, hi: u32) {
    let (first, last) = ((lo / 64) as usize, (hi / 64) as usize);
    for (i, w) in words.iter_mut().enumerate().take(last + 1).skip(first) {
        let mut mask = u64::MAX;
        if i == first {
            mask &= u64::MAX << (lo % 64);
        }
        if i == last {
            mask &= u64::MAX >> (63 - hi % 64);
        }
        *w |= mask;
    }
}

/// Decodes a TC string: the core segment, then any of the optional
/// segments in any order. Surrounding ASCII whitespace is ignored.
pub fn decode(tc: &str) -> Result<TcString, TcfError> {
    let tc = tc.trim_ascii();
    if tc.is_empty() {
        return Err(TcfError::Empty);
    }
    if tc.len() > MAX_TC_STRING_LEN {
        return Err(TcfError::TooLong { len: tc.len(), max: MAX_TC_STRING_LEN });
    }
    let mut segments = tc.split('.');
    let core = segments.next().unwrap_or_default();
    let mut out = decode_core(&mut BitReader::new(core, 1)?)?;

    // The core segment has no type field, but its first three bits (of
    // version 2) read as 0, so type 0 after it is a second core segment.
    let mut seen = [true, false, false, false];
    for (i, text) in segments.enumerate() {
        let segment = i + 2;
        let mut r = BitReader::new(text, segment)?;
        r.section = "segment";
        let segment_type = r.read(3, "segmentType") as u8;
        r.check()?;
        match seen.get_mut(usize::from(segment_type)) {
            None => return Err(TcfError::UnknownSegmentType { segment, segment_type }),
            Some(true) => return Err(TcfError::DuplicateSegment { segment, segment_type }),
            Some(s) => *s = true,
        }
        match segment_type {
            1 => {
                r.section = "disclosedVendors";
                out.disclosed_vendors = Some(vendor_section(&mut r));
            }
            // Allowed vendors served out-of-band signalling, deprecated with
            // the global scope; nothing reads it any more.
            2 => {}
            _ => out.publisher_tc = Some(publisher_tc(&mut r)),
        }
        r.check()?;
    }
    Ok(out)
}

fn decode_core(r: &mut BitReader) -> Result<TcString, TcfError> {
    r.section = "core";
    let version = r.read(6, "version") as u8;
    r.check()?;
    if version != 2 {
        return Err(TcfError::UnsupportedVersion(version));
    }
    // Fields are evaluated in the order written, which is the wire order.
    let tc = TcString {
        version,
        created_ms: r.read(36, "created") * 100,
        last_updated_ms: r.read(36, "lastUpdated") * 100,
        cmp_id: r.read(12, "cmpId") as u16,
        cmp_version: r.read(12, "cmpVersion") as u16,
        consent_screen: r.read(6, "consentScreen") as u8,
        consent_language: r.letters("consentLanguage"),
        vendor_list_version: r.read(12, "vendorListVersion") as u16,
        tcf_policy_version: r.read(6, "tcfPolicyVersion") as u8,
        is_service_specific: r.bit("isServiceSpecific"),
        use_non_standard_texts: r.bit("useNonStandardTexts"),
        special_feature_opt_ins: r.fixed_set(12, "specialFeatureOptIns"),
        purposes_consent: r.fixed_set(24, "purposesConsent"),
        purposes_li_transparency: r.fixed_set(24, "purposesLITransparency"),
        purpose_one_treatment: r.bit("purposeOneTreatment"),
        publisher_cc: r.letters("publisherCC"),
        vendor_consents: {
            r.section = "vendorConsents";
            vendor_section(r)
        },
        vendor_legitimate_interests: {
            r.section = "vendorLegitimateInterests";
            vendor_section(r)
        },
        publisher_restrictions: {
            r.section = "publisherRestrictions";
            publisher_restrictions(r)
        },
        disclosed_vendors: None,
        publisher_tc: None,
    };
    r.check()?;
    Ok(tc)
}

/// MaxVendorId, then either a bit field or range entries. Both land in a
/// bitmap of MaxVendorId bits, which is why a range reaching past it is an
/// error rather than silently widened.
fn vendor_section(r: &mut BitReader) -> IdSet {
    let max_id = r.read(16, "maxVendorId") as u16;
    if !r.bit("isRangeEncoding") {
        return r.fixed_set(max_id, "bitField");
    }
    let mut words = vec![0u64; usize::from(max_id).div_ceil(64)];
    for _ in 0..r.read(12, "numEntries") {
        let Some((start, end)) = r.range_entry() else { break };
        if end > max_id {
            r.invalid("endVendorId", end, "above maxVendorId");
            break;
        }
        set_bits(&mut words, u32::from(start) - 1, u32::from(end) - 1);
    }
    IdSet::from_bits(max_id, words)
}

/// Entries are read first and each (purpose, type) is then built in one
/// scratch bitmap, so that a string repeating a key thousands of times costs
/// one pass per distinct key (at most 63 * 4) instead of a merge per entry.
fn publisher_restrictions(r: &mut BitReader) -> Vec<PublisherRestriction> {
    let mut keys: Vec<(u8, RestrictionType)> = Vec::new();
    // (index into keys, first id, last id)
    let mut entries: Vec<(usize, u16, u16)> = Vec::new();
    for _ in 0..r.read(12, "numPubRestrictions") {
        let purpose_id = r.read(6, "purposeId") as u8;
        if purpose_id == 0 {
            r.invalid("purposeId", 0, "purpose ids start at 1");
        }
        let key = (purpose_id, RestrictionType::from_code(r.read(2, "restrictionType")));
        let slot = keys.iter().position(|k| *k == key).unwrap_or(keys.len());
        if slot == keys.len() {
            keys.push(key);
        }
        for _ in 0..r.read(12, "numEntries") {
            let Some((start, end)) = r.range_entry() else { break };
            entries.push((slot, start, end));
        }
        if r.error.is_some() {
            return Vec::new();
        }
    }
    let max = entries.iter().map(|&(_, _, e)| e).max().unwrap_or(0);
    let mut scratch = vec![0u64; usize::from(max).div_ceil(64)];
    let mut out = Vec::with_capacity(keys.len());
    for (slot, &(purpose_id, restriction_type)) in keys.iter().enumerate() {
        scratch.fill(0);
        let mut any = false;
        for &(_, start, end) in entries.iter().filter(|e| e.0 == slot) {
            set_bits(&mut scratch, u32::from(start) - 1, u32::from(end) - 1);
            any = true;
        }
        if any {
            out.push(PublisherRestriction {
                purpose_id,
                restriction_type,
                vendors: IdSet::runs_from_bits(&scratch),
            });
        }
    }
    out
}

fn publisher_tc(r: &mut BitReader) -> PublisherTc {
    r.section = "publisherTC";
    let purposes_consent = r.fixed_set(24, "pubPurposesConsent");
    let purposes_li_transparency = r.fixed_set(24, "pubPurposesLITransparency");
    let num_custom_purposes = r.read(6, "numCustomPurposes") as u8;
    let n = u16::from(num_custom_purposes);
    PublisherTc {
        purposes_consent,
        purposes_li_transparency,
        num_custom_purposes,
        custom_purposes_consent: r.fixed_set(n, "customPurposesConsent"),
        custom_purposes_li_transparency: r.fixed_set(n, "customPurposesLITransparency"),
    }
}

/// Reads big-endian bit fields from one segment. Holds the 6-bit values of
/// the base64 characters rather than bytes: no padding arithmetic, and a
/// segment of any length (CMPs do not all pad to whole bytes) reads the same.
struct BitReader {
    sextets: Vec<u8>,
    pos: usize,
    /// Named in errors, with the field, so a message says where it failed.
    section: &'static str,
    /// The first failure. Reads after it yield zeros, which end every loop
    /// at once, and the decoder looks here once per segment: one branch per
    /// segment instead of one per field keeps the wasm small.
    error: Option<TcfError>,
}

impl BitReader {
    fn new(text: &str, segment: usize) -> Result<BitReader, TcfError> {
        let text = text.trim_end_matches('=');
        let mut sextets = Vec::with_capacity(text.len());
        for b in text.bytes() {
            sextets.push(match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return Err(TcfError::BadBase64 { segment }),
            });
        }
        Ok(BitReader { sextets, pos: 0, section: "core", error: None })
    }

    fn check(&mut self) -> Result<(), TcfError> {
        self.error.take().map_or(Ok(()), Err)
    }

    fn fail(&mut self, e: TcfError) {
        self.error.get_or_insert(e);
    }

    fn invalid(&mut self, field: &'static str, value: u16, reason: &'static str) {
        self.fail(TcfError::InvalidValue { section: self.section, field, value, reason });
    }

    /// Whether `bits` more can be read; records the failure when not.
    fn take(&mut self, bits: usize, field: &'static str) -> bool {
        if self.error.is_some() {
            return false;
        }
        if (self.sextets.len() * 6).saturating_sub(self.pos) < bits {
            self.fail(TcfError::Truncated { section: self.section, field });
            return false;
        }
        true
    }

    /// Up to 64 bits as an unsigned integer; 0 once anything failed.
    fn read(&mut self, bits: u32, field: &'static str) -> u64 {
        let mut v = 0u64;
        if self.take(bits as usize, field) {
            for _ in 0..bits {
                v = (v << 1) | u64::from(self.next_bit());
            }
        }
        v
    }

    fn bit(&mut self, field: &'static str) -> bool {
        self.read(1, field) == 1
    }

    /// Callers have checked with `take`; past the end it reads 0.
    fn next_bit(&mut self) -> u8 {
        let s = self.sextets.get(self.pos / 6).copied().unwrap_or(0);
        let bit = (s >> (5 - self.pos % 6)) & 1;
        self.pos += 1;
        bit
    }

    /// `width` bits where bit i (from the left) stands for id i + 1.
    fn fixed_set(&mut self, width: u16, field: &'static str) -> IdSet {
        let mut words = vec![0u64; usize::from(width).div_ceil(64)];
        if self.take(usize::from(width), field) {
            for i in 0..usize::from(width) {
                if self.next_bit() == 1 {
                    if let Some(word) = words.get_mut(i / 64) {
                        *word |= 1 << (i % 64);
                    }
                }
            }
        }
        IdSet::from_bits(width, words)
    }

    /// Two letters of 6 bits each, A = 0 .. Z = 25.
    fn letters(&mut self, field: &'static str) -> String {
        let mut s = String::with_capacity(2);
        for _ in 0..2 {
            let v = self.read(6, field) as u8;
            if v > 25 {
                self.invalid(field, v.into(), "letters run from 0 (A) to 25 (Z)");
            }
            s.push(char::from(b'A' + v.min(25)));
        }
        s
    }

    /// IsARange, StartOrOnlyVendorId and, for a range, EndVendorId; None
    /// once anything failed.
    fn range_entry(&mut self) -> Option<(u16, u16)> {
        let is_range = self.bit("isARange");
        let start = self.read(16, "startOrOnlyVendorId") as u16;
        let end = if is_range { self.read(16, "endVendorId") as u16 } else { start };
        if start == 0 {
            self.invalid("startOrOnlyVendorId", 0, "vendor ids start at 1");
        } else if end < start {
            self.invalid("endVendorId", end, "a range must not end before its start");
        }
        self.error.is_none().then_some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal encoder, so tests can state exactly which bits a string
    /// holds instead of trusting opaque fixtures.
    #[derive(Default, Clone)]
    struct W(Vec<bool>);

    impl W {
        fn int(&mut self, v: u64, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.0.push((v >> i) & 1 == 1);
            }
            self
        }
        fn bit(&mut self, b: bool) -> &mut Self {
            self.0.push(b);
            self
        }
        fn letters(&mut self, s: &str) -> &mut Self {
            for c in s.bytes() {
                self.int(u64::from(c - b'A'), 6);
            }
            self
        }
        fn fixed(&mut self, ids: &[u16], width: u16) -> &mut Self {
            for id in 1..=width {
                self.bit(ids.contains(&id));
            }
            self
        }
        fn vendor_bits(&mut self, max: u16, ids: &[u16]) -> &mut Self {
            self.int(max.into(), 16).bit(false).fixed(ids, max)
        }
        fn vendor_ranges(&mut self, max: u16, ranges: &[(u16, u16)]) -> &mut Self {
            self.int(max.into(), 16).bit(true).int(ranges.len() as u64, 12);
            for &(s, e) in ranges {
                self.entry(s, e);
            }
            self
        }
        fn entry(&mut self, s: u16, e: u16) -> &mut Self {
            self.bit(s != e).int(s.into(), 16);
            if s != e {
                self.int(e.into(), 16);
            }
            self
        }
        fn restriction(&mut self, purpose: u8, kind: u8, ranges: &[(u16, u16)]) -> &mut Self {
            self.int(purpose.into(), 6).int(kind.into(), 2).int(ranges.len() as u64, 12);
            for &(s, e) in ranges {
                self.entry(s, e);
            }
            self
        }
        /// Base64url of the first `bits` bits, zero-filled to a whole character.
        fn text(&self, bits: usize) -> String {
            const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in self.0[..bits].chunks(6) {
                let mut v = 0usize;
                for i in 0..6 {
                    v = (v << 1) | usize::from(chunk.get(i).copied().unwrap_or(false));
                }
                out.push(char::from(ALPHABET[v]));
            }
            out
        }
        fn finish(&self) -> String {
            self.text(self.0.len())
        }
    }

    /// The core fields up to and including PublisherCC.
    fn core_head(policy: u8) -> W {
        let mut w = W::default();
        w.int(2, 6)
            .int(16_000_000_000, 36) // created, deciseconds
            .int(16_000_000_123, 36)
            .int(300, 12)
            .int(7, 12)
            .int(3, 6)
            .letters("FR")
            .int(150, 12)
            .int(policy.into(), 6)
            .bit(true)
            .bit(false)
            .fixed(&[1, 2, 12], 12)
            .fixed(&[1, 3, 24], 24)
            .fixed(&[2, 7], 24)
            .bit(true)
            .letters("DE");
        w
    }

    /// A core segment exercising every field, plus a range-encoded
    /// disclosed-vendors segment and a publisher TC segment.
    fn full() -> (W, W, W) {
        let mut core = core_head(5);
        core.vendor_bits(10, &[1, 5, 10])
            .vendor_ranges(900, &[(3, 3), (100, 200), (900, 900)])
            .int(2, 12)
            .restriction(2, 1, &[(8, 8), (20, 25)])
            .restriction(7, 0, &[(1, 65535)]);
        let mut dv = W::default();
        dv.int(1, 3).vendor_ranges(1000, &[(1, 1000)]);
        let mut ptc = W::default();
        ptc.int(3, 3).fixed(&[1, 24], 24).fixed(&[2], 24).int(3, 6).fixed(&[1, 3], 3).fixed(&[2], 3);
        (core, dv, ptc)
    }

    fn ids(set: &IdSet) -> Vec<u16> {
        set.iter().collect()
    }

    #[test]
    fn decodes_every_core_field() {
        let (core, dv, ptc) = full();
        let tc = decode(&format!("{}.{}.{}", core.finish(), dv.finish(), ptc.finish())).unwrap();
        assert_eq!(tc.version, 2);
        assert_eq!(tc.created_ms, 1_600_000_000_000);
        assert_eq!(tc.last_updated_ms, 1_600_000_012_300);
        assert_eq!((tc.cmp_id, tc.cmp_version, tc.consent_screen), (300, 7, 3));
        assert_eq!(tc.consent_language, "FR");
        assert_eq!(tc.vendor_list_version, 150);
        assert_eq!(tc.tcf_policy_version, 5);
        assert!(tc.is_service_specific && !tc.use_non_standard_texts && tc.purpose_one_treatment);
        assert_eq!(ids(&tc.special_feature_opt_ins), [1, 2, 12]);
        assert_eq!(tc.special_feature_opt_ins.max_id(), 12);
        assert_eq!(ids(&tc.purposes_consent), [1, 3, 24]);
        assert_eq!(ids(&tc.purposes_li_transparency), [2, 7]);
        assert_eq!(tc.publisher_cc, "DE");
        assert_eq!(ids(&tc.vendor_consents), [1, 5, 10]);
        assert_eq!(tc.vendor_consents.max_id(), 10);
        let li: Vec<u16> = [3].into_iter().chain(100..=200).chain([900]).collect();
        assert_eq!(ids(&tc.vendor_legitimate_interests), li);
        assert_eq!(tc.vendor_legitimate_interests.max_id(), 900);
        assert_eq!(tc.vendor_legitimate_interests.len(), 103);
        assert_eq!(tc.publisher_restrictions.len(), 2);
        let r = &tc.publisher_restrictions[0];
        assert_eq!((r.purpose_id, r.restriction_type), (2, RestrictionType::RequireConsent));
        assert_eq!(ids(&r.vendors), [8, 20, 21, 22, 23, 24, 25]);
        let r = &tc.publisher_restrictions[1];
        assert_eq!(
            (r.purpose_id, r.restriction_type, r.vendors.len()),
            (7, RestrictionType::NotAllowed, 65535)
        );
        let dv = tc.disclosed_vendors.as_ref().unwrap();
        assert_eq!((dv.len(), dv.max_id()), (1000, 1000));
        let p = tc.publisher_tc.as_ref().unwrap();
        assert_eq!(ids(&p.purposes_consent), [1, 24]);
        assert_eq!(ids(&p.purposes_li_transparency), [2]);
        assert_eq!(p.num_custom_purposes, 3);
        assert_eq!(ids(&p.custom_purposes_consent), [1, 3]);
        assert_eq!(ids(&p.custom_purposes_li_transparency), [2]);

        assert!(tc.purpose_consent(3) && !tc.purpose_consent(2) && !tc.purpose_consent(0));
        assert!(tc.vendor_consent(5) && !tc.vendor_consent(6) && !tc.vendor_consent(11));
        assert!(tc.vendor_legitimate_interest(150) && !tc.vendor_legitimate_interest(201));
        assert_eq!(tc.vendor_disclosed(1000), Some(true));
        assert_eq!(tc.vendor_disclosed(1001), Some(false));
        assert_eq!(tc.restriction(2, 22), Some(RestrictionType::RequireConsent));
        assert_eq!(tc.restriction(2, 26), None);
        assert_eq!(tc.restriction(7, 65535), Some(RestrictionType::NotAllowed));
        assert_eq!(tc.restriction(3, 8), None);
    }

    /// The examples of the IAB specification; expected values are what
    /// the IAB Tech Lab's own decoder (@iabtechlabtcf/core 1.5.21) reads.
    #[test]
    fn decodes_the_iab_examples() {
        let tc = decode(
            "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA",
        )
        .unwrap();
        assert_eq!((tc.created_ms, tc.last_updated_ms), (1_228_644_257_700, 1_326_215_413_400));
        assert_eq!((tc.cmp_id, tc.cmp_version, tc.consent_screen), (21, 7, 2));
        assert_eq!(
            (tc.consent_language.as_str(), tc.vendor_list_version, tc.tcf_policy_version),
            ("EN", 23, 2)
        );
        assert!(tc.is_service_specific && !tc.use_non_standard_texts && !tc.purpose_one_treatment);
        assert_eq!(ids(&tc.special_feature_opt_ins), [2]);
        assert_eq!(ids(&tc.purposes_consent), [1, 3, 9, 10]);
        assert_eq!(ids(&tc.purposes_li_transparency), [3, 4, 5, 8, 9, 10]);
        assert_eq!(tc.publisher_cc, "KM");
        assert_eq!(
            ids(&tc.vendor_consents),
            [
                2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31, 34, 35, 37, 38, 39, 42, 43, 49,
                52, 54, 55, 56, 57, 59, 60, 63, 64, 65, 66, 67, 68, 69, 73, 74, 76, 78, 83, 86, 87, 89, 90,
                92, 96, 99, 100, 106, 109, 110, 114, 115
            ]
        );
        assert_eq!(tc.vendor_consents.max_id(), 115);
        assert_eq!(ids(&tc.vendor_legitimate_interests), [1, 9, 26, 27, 30, 36, 37, 43, 86, 97, 110, 113]);
        assert!(tc.publisher_restrictions.is_empty());
        assert_eq!(tc.disclosed_vendors, None);
        let p = tc.publisher_tc.unwrap();
        assert_eq!(ids(&p.purposes_consent), [2, 4, 6, 8, 9, 10]);
        assert_eq!(ids(&p.purposes_li_transparency), [2, 4, 5, 7, 10]);
        assert_eq!(p.num_custom_purposes, 0);
        assert!(p.custom_purposes_consent.is_empty());

        let tc = decode("COxSKBCOxSKCCBcABCENAgCMAPzAAEPAAAqIDaQBQAMgAgABqAR0A2gDaQAwAMgAgANoAAA").unwrap();
        assert_eq!((tc.created_ms, tc.cmp_id, tc.vendor_list_version), (1_585_922_873_800, 92, 32));
        assert_eq!(ids(&tc.purposes_consent), [1, 2, 3, 4, 5, 6, 9, 10]);
        assert_eq!(tc.publisher_cc, "FR");
        assert_eq!(ids(&tc.vendor_consents), [25, 32, 53, 285, 436]);
        assert_eq!(tc.vendor_consents.max_id(), 436);
        assert_eq!(ids(&tc.vendor_legitimate_interests), [25, 32, 436]);

        // The illustrative v1-era string of the specification's segment
        // overview is refused for its version.
        assert_eq!(
            decode("BObdrPUOevsguAfDqFENCNAAAAAmeAAA.PVAfDObdrA.DqFENCAmeAENCDA.OevsguAfDq"),
            Err(TcfError::UnsupportedVersion(1))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let (core, dv, ptc) = full();
        let (c, d, p) = (core.finish(), dv.finish(), ptc.finish());
        // Cut anywhere: never a panic. The zero fill of the last character
        // may read as a bad value (vendor id 0, version 0) or even complete
        // a shorter valid string (a zero count), so only whole-character
        // cuts, which read true prefixes, must say Truncated.
        let cases = [(0, &core), (1, &dv), (2, &ptc)];
        for (seg, w) in cases {
            for bits in 0..w.0.len() {
                let text = w.text(bits);
                let s = match seg {
                    0 => format!("{text}.{d}.{p}"),
                    1 => format!("{c}.{text}.{p}"),
                    _ => format!("{c}.{d}.{text}"),
                };
                let got = decode(&s);
                if bits % 6 == 0 && bits > 0 {
                    assert!(
                        matches!(got, Err(TcfError::Truncated { .. })),
                        "segment {seg} cut at {bits}: {got:?}"
                    );
                }
            }
        }
        // Every character prefix of a real string, too.
        let real = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA";
        for n in 0..40 {
            assert!(decode(&real[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(
            decode(&real[..20]),
            Err(TcfError::Truncated { section: "core", field: "vendorListVersion" })
        );
    }

    #[test]
    fn tolerates_padding_whitespace_and_skips_allowed_vendors() {
        let (core, dv, ptc) = full();
        let plain = format!("{}.{}.{}", core.finish(), dv.finish(), ptc.finish());
        let expected = decode(&plain).unwrap();
        let padded = format!("  {}==.{}=.{}==\n", core.finish(), dv.finish(), ptc.finish());
        assert_eq!(decode(&padded).unwrap(), expected);
        // Order of the optional segments does not matter; type 2 is skipped.
        let mut allowed = W::default();
        allowed.int(2, 3).vendor_ranges(5, &[(1, 5)]);
        let reordered = format!("{}.{}.{}.{}", core.finish(), ptc.finish(), allowed.finish(), dv.finish());
        assert_eq!(decode(&reordered).unwrap(), expected);
        // A string published as a v2.3 example: its second segment is of
        // type 2, not 1, and malformed (the IAB decoder throws on it); being
        // skipped, it costs nothing, and the string reads as the IAB decoder
        // reads it without that segment.
        let tc =
            decode("COsbk4AOSbk4AnWAAAENAwCgAAAAAAAAAAYgACPAAAAA.TDKO4AAqAKAGQAyqAAA.YAAAAAAAAAA").unwrap();
        assert_eq!((tc.cmp_id, tc.vendor_list_version, tc.publisher_cc.as_str()), (2518, 48, "DE"));
        assert_eq!(ids(&tc.vendor_consents), [1, 2, 3, 4]);
        assert_eq!(tc.disclosed_vendors, None);
        assert!(tc.publisher_tc.is_some());
    }

    #[test]
    fn refuses_malformed_input() {
        let (core, dv, ptc) = full();
        let (c, d, p) = (core.finish(), dv.finish(), ptc.finish());
        assert_eq!(decode(""), Err(TcfError::Empty));
        assert_eq!(decode(" \n"), Err(TcfError::Empty));
        let long = "A".repeat(MAX_TC_STRING_LEN + 1);
        assert_eq!(
            decode(&long),
            Err(TcfError::TooLong { len: MAX_TC_STRING_LEN + 1, max: MAX_TC_STRING_LEN })
        );
        assert_eq!(decode(&format!("{c}.{d}+")), Err(TcfError::BadBase64 { segment: 2 }));
        assert_eq!(decode("CO/x"), Err(TcfError::BadBase64 { segment: 1 }));
        assert_eq!(decode("CO=x"), Err(TcfError::BadBase64 { segment: 1 }));
        assert_eq!(decode("CÖx"), Err(TcfError::BadBase64 { segment: 1 }));
        assert_eq!(decode("DAAA"), Err(TcfError::UnsupportedVersion(3)));
        assert_eq!(decode("AAAA"), Err(TcfError::UnsupportedVersion(0)));
        assert_eq!(
            decode(&format!("{c}.{d}.{d}")),
            Err(TcfError::DuplicateSegment { segment: 3, segment_type: 1 })
        );
        assert_eq!(
            decode(&format!("{c}.{p}.{p}")),
            Err(TcfError::DuplicateSegment { segment: 3, segment_type: 3 })
        );
        assert_eq!(
            decode(&format!("{c}.{c}")),
            Err(TcfError::DuplicateSegment { segment: 2, segment_type: 0 })
        );
        for t in 4..8u64 {
            let mut w = W::default();
            w.int(t, 3).int(0, 21);
            let got = decode(&format!("{c}.{}", w.finish()));
            assert_eq!(got, Err(TcfError::UnknownSegmentType { segment: 2, segment_type: t as u8 }));
        }
        assert_eq!(
            decode(&format!("{c}..{p}")),
            Err(TcfError::Truncated { section: "segment", field: "segmentType" })
        );

        let invalid = |w: &W| match decode(&w.finish()) {
            Err(TcfError::InvalidValue { section, field, .. }) => (section, field),
            other => panic!("{other:?}"),
        };
        let mut w = core_head(4);
        w.vendor_ranges(10, &[(0, 3)]);
        assert_eq!(invalid(&w), ("vendorConsents", "startOrOnlyVendorId"));
        let mut w = core_head(4);
        w.vendor_bits(0, &[]).vendor_ranges(10, &[(5, 4)]);
        assert_eq!(invalid(&w), ("vendorLegitimateInterests", "endVendorId"));
        let mut w = core_head(4);
        w.vendor_ranges(10, &[(5, 11)]);
        assert_eq!(invalid(&w), ("vendorConsents", "endVendorId"));
        let mut w = core_head(4);
        w.vendor_bits(0, &[]).vendor_bits(0, &[]).int(1, 12).restriction(0, 0, &[(1, 1)]);
        assert_eq!(invalid(&w), ("publisherRestrictions", "purposeId"));
        let mut w = core_head(4);
        w.vendor_bits(0, &[]).vendor_bits(0, &[]).int(1, 12).restriction(1, 0, &[(9, 2)]);
        assert_eq!(invalid(&w), ("publisherRestrictions", "endVendorId"));
        let mut w = W::default();
        w.int(2, 6).int(0, 36).int(0, 36).int(0, 30).int(26, 6);
        assert_eq!(invalid(&w), ("core", "consentLanguage"));
        let err = decode(&w.finish()).unwrap_err().to_string();
        assert_eq!(err, "invalid core.consentLanguage 26: letters run from 0 (A) to 25 (Z)");
        let mut w = core_head(4);
        let cc = w.0.len() - 12;
        w.0.truncate(cc);
        w.letters("A").int(63, 6);
        assert_eq!(invalid(&w), ("core", "publisherCC"));
    }

    #[test]
    fn messages_name_the_problem() {
        let e = decode("CPz").unwrap_err();
        assert_eq!(e.to_string(), "TC string truncated while reading core.created");
        assert_eq!(
            decode("BAAA").unwrap_err().to_string(),
            "TC string version 1 is not supported (only version 2; TCF v1 strings are obsolete)"
        );
        let (core, _, _) = full();
        assert_eq!(
            decode(&format!("{}.x!", core.finish())).unwrap_err().to_string(),
            "segment 2 of the TC string is not websafe base64"
        );
        let mut w = core_head(4);
        w.vendor_bits(0, &[]).vendor_ranges(10, &[(7, 3)]);
        assert_eq!(
            decode(&w.finish()).unwrap_err().to_string(),
            "invalid vendorLegitimateInterests.endVendorId 3: a range must not end before its start"
        );
        let mut w = core_head(4);
        w.vendor_ranges(10, &[(1, 1), (0, 0)]);
        assert_eq!(
            decode(&w.finish()).unwrap_err().to_string(),
            "invalid vendorConsents.startOrOnlyVendorId 0: vendor ids start at 1"
        );
        let mut w = core_head(4);
        w.vendor_ranges(10, &[(9, 12)]);
        assert_eq!(
            decode(&w.finish()).unwrap_err().to_string(),
            "invalid vendorConsents.endVendorId 12: above maxVendorId"
        );
    }

    #[test]
    fn restrictions_merge_repeats_drop_empties_and_pick_the_strictest() {
        let mut w = core_head(4);
        w.vendor_bits(0, &[])
            .vendor_bits(0, &[])
            .int(5, 12)
            .restriction(3, 2, &[(50, 60), (1, 2)])
            .restriction(3, 3, &[])
            .restriction(3, 0, &[(55, 55)])
            .restriction(3, 2, &[(59, 70), (10, 10)])
            .restriction(4, 3, &[(1, 1)]);
        let tc = decode(&w.finish()).unwrap();
        let got: Vec<_> = tc
            .publisher_restrictions
            .iter()
            .map(|r| (r.purpose_id, r.restriction_type, ids(&r.vendors)))
            .collect();
        let li: Vec<u16> = [1, 2, 10].into_iter().chain(50..=70).collect();
        assert_eq!(
            got,
            [
                (3, RestrictionType::RequireLegitimateInterest, li),
                (3, RestrictionType::NotAllowed, vec![55]),
                (4, RestrictionType::Undefined, vec![1]),
            ]
        );
        assert_eq!(tc.publisher_restrictions[0].vendors.max_id(), 70);
        assert_eq!(tc.restriction(3, 55), Some(RestrictionType::NotAllowed));
        assert_eq!(tc.restriction(3, 56), Some(RestrictionType::RequireLegitimateInterest));
        assert_eq!(tc.restriction(4, 1), Some(RestrictionType::Undefined));
    }

    #[test]
    fn hostile_ranges_stay_bounded() {
        // One entry claims every vendor id: an 8 KiB bitmap, no more.
        let mut w = core_head(4);
        w.vendor_ranges(65535, &[(1, 65535)]).vendor_ranges(65535, &[(65535, 65535)]).int(0, 12);
        let tc = decode(&w.finish()).unwrap();
        assert_eq!(tc.vendor_consents.len(), 65535);
        assert!(tc.vendor_consents.contains(65535) && tc.vendor_consents.contains(1));
        assert_eq!(ids(&tc.vendor_legitimate_interests), [65535]);

        // The most restrictions a string can hold, each over every id and
        // alternating ids, under the length cap: decodes fast, merged.
        let mut w = core_head(4);
        w.vendor_bits(0, &[]).vendor_bits(0, &[]).int(4095, 12);
        for i in 0..4095u16 {
            let purpose = (i % 63) as u8 + 1;
            w.restriction(purpose, (i % 4) as u8, &[(1, 65535), (i * 16 + 1, i * 16 + 1)]);
        }
        let s = w.finish();
        assert!(s.len() <= MAX_TC_STRING_LEN);
        let start = std::time::Instant::now();
        let tc = decode(&s).unwrap();
        assert_eq!(tc.publisher_restrictions.len(), 252);
        assert!(tc.publisher_restrictions.iter().all(|r| r.vendors.len() == 65535));
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());

        // Sparse alternating ids across many restrictions stay as runs.
        let mut w = core_head(4);
        w.vendor_bits(0, &[]).vendor_bits(0, &[]).int(1, 12);
        let ranges: Vec<(u16, u16)> = (0..4095u16).rev().map(|i| (i * 16 + 1, i * 16 + 1)).collect();
        w.restriction(1, 0, &ranges);
        let tc = decode(&w.finish()).unwrap();
        let v = &tc.publisher_restrictions[0].vendors;
        assert_eq!(v.len(), 4095);
        assert_eq!(ids(v), (0..4095u16).map(|i| i * 16 + 1).collect::<Vec<_>>());
        assert!(v.contains(65505) && !v.contains(65506) && !v.contains(2) && v.contains(1));
    }

    #[test]
    fn id_sets_behave_as_sets() {
        let empty = IdSet::default();
        assert!(
            empty.is_empty() && empty.len().eq(&0) && empty.iter().next().is_none() && !empty.contains(0)
        );
        let runs = IdSet::runs_from_bits(&[0b1011, 0, 1 << 63, 1]);
        assert_eq!(ids(&runs), [1, 2, 4, 192, 193]);
        assert_eq!(runs.max_id(), 193);
        assert!(!runs.contains(0) && !runs.contains(3) && runs.contains(192) && !runs.contains(194));
        let bits = IdSet::from_bits(193, vec![0b1011, 0, 1 << 63, 1]);
        assert_eq!(bits, runs);
        assert_ne!(IdSet::from_bits(194, vec![0b1011, 0, 1 << 63, 1]), runs);
        assert_eq!(format!("{runs:?}"), "IdSet(max 193)[1-2, 4, 192-193]");
        assert_eq!(format!("{empty:?}"), "IdSet(max 0)[]");
        assert_eq!((&bits).into_iter().count(), 5);
        let mut words = vec![0u64; 3];
        set_bits(&mut words, 63, 64);
        set_bits(&mut words, 130, 130);
        assert_eq!(words, [1 << 63, 1, 1 << 2]);
    }

    #[test]
    fn v2_3_requires_disclosed_vendors_only_for_new_strings() {
        let (core, dv, _) = full();
        let old = decode(&core.finish()).unwrap();
        assert!(!old.lacks_mandatory_disclosed_vendors());
        assert_eq!(old.vendor_disclosed(1), None);
        let mut w = W::default();
        w.int(2, 6).int(TCF_V2_3_MANDATORY_FROM_MS / 100, 36);
        let mut new = core.clone();
        new.0.splice(0..42, w.0);
        let tc = decode(&new.finish()).unwrap();
        assert!(tc.lacks_mandatory_disclosed_vendors());
        let tc = decode(&format!("{}.{}", new.finish(), dv.finish())).unwrap();
        assert!(!tc.lacks_mandatory_disclosed_vendors());
    }
}
