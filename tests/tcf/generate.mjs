// Random TC strings encoded by the IAB Tech Lab's own library, for the
// differential test of sdk-core's decoder (sdk-core/tests/tcf_differential.rs).
//
//   node tests/tcf/generate.mjs [seed] [count]      (or TCF_SEED / TCF_COUNT)
//
// Prints one JSON line per case: {"tc", "expected", "encodings"}. The
// expectation is what the IAB library decodes from the string it encoded, so
// the test compares two decoders of the same bits, not a decoder with our
// idea of what the encoder should have written (the encoder silently drops
// signals its GVL does not back, e.g. consent for a vendor without purposes).
//
// The cases cover both policy versions the library writes (tcfPolicyVersion 4
// of TCF v2.2 and 5, which v2.3 kept), with and without the disclosed-vendors
// segment v2.3 made mandatory, the publisher TC segment with custom purposes,
// the obsolete allowed-vendors segment, segment order, vendor sets sparse and
// dense (so the encoder picks both range and bit-field encodings), empty sets,
// and publisher restrictions.
import { GVL, TCModel, TCString, Segment, PurposeRestriction, VendorVectorEncoder } from '@iabtechlabtcf/core';

const seed = Number(process.argv[2] ?? process.env.TCF_SEED ?? 20260301) >>> 0;
const count = Number(process.argv[3] ?? process.env.TCF_COUNT ?? 1200);
process.stderr.write(`tcf/generate.mjs: seed ${seed}, ${count} cases\n`);

// mulberry32: tiny, seedable, good enough to pick test cases.
let state = seed;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive
const chance = (p) => rand() < p;
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const letters = () => String.fromCharCode(65 + int(0, 25), 65 + int(0, 25));
const subset = (lo, hi, p) => {
  const out = [];
  for (let i = lo; i <= hi; i++) if (chance(p)) out.push(i);
  return out;
};

// --- a local Global Vendor List --------------------------------------------
// Ids 1..GVL_MAX with gaps and deleted vendors, and varied declarations, so
// the encoder's GVL-based filtering and its restriction ranges that span
// ids missing from the GVL both occur.
const GVL_MAX = 4000;
const idMap = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [i + 1, { id: i + 1, name: `x${i + 1}`, description: '' }]));
const vendors = {};
for (let id = 1; id <= GVL_MAX; id++) {
  if (chance(0.08)) continue; // not on the GVL
  const purposes = subset(1, 11, 0.6).concat(chance(0.1) ? subset(12, 24, 0.3) : []);
  const legIntPurposes = subset(2, 11, 0.3).filter((p) => ![3, 4, 5, 6].includes(p) && !purposes.includes(p));
  const flexiblePurposes = purposes.concat(legIntPurposes).filter(() => chance(0.5));
  vendors[id] = {
    id, name: `Vendor ${id}`, purposes, legIntPurposes, flexiblePurposes,
    specialPurposes: chance(0.3) ? [1] : [], features: [], specialFeatures: chance(0.2) ? [1] : [],
    ...(chance(0.02) ? { deletedDate: '2024-01-01T00:00:00Z' } : {}),
  };
}
const gvl = new GVL({
  gvlSpecificationVersion: 3, vendorListVersion: 1, tcfPolicyVersion: 4, lastUpdated: '2026-01-01T00:00:00Z',
  purposes: idMap(24), specialPurposes: idMap(2), features: idMap(3), specialFeatures: idMap(2),
  stacks: {}, dataCategories: {}, vendors,
});
// The encoder clones the model, GVL included, before encoding: a deep copy of
// 4,000 vendors per string (and, for a language other than EN, an attempt to
// download its translations). It only reads the GVL, so share this one.
gvl.clone = () => gvl;

// --- random pieces ---------------------------------------------------------
const DAY = 86400000;
const V23 = Date.UTC(2026, 2, 1); // created from here on, v2.3 requires disclosed vendors
const MAX_DECI = 2 ** 36 - 1;

/** Vendor ids in shapes that push the encoder to either encoding. */
function vendorIds(max) {
  switch (int(0, 6)) {
    case 0: return [];
    case 1: return subset(1, int(1, 45), 0.5); // max <= 45: always a bit field
    case 2: { // a handful of sparse ids: ranges
      const out = new Set();
      for (let n = int(1, 12); n > 0; n--) out.add(int(1, max));
      return [...out];
    }
    case 3: return subset(1, int(46, max), pick([0.3, 0.5, 0.9])); // dense: bit field
    case 4: { // a few long runs: ranges
      const out = [];
      for (let n = int(1, 5); n > 0; n--) {
        const start = int(1, max);
        for (let id = start; id <= Math.min(max, start + int(0, 400)); id++) out.push(id);
      }
      return out;
    }
    case 5: return Array.from({ length: int(1, max) }, (_, i) => i + 1); // everything up to n
    default: return subset(1, int(46, max), 0.03); // sparse over a wide span
  }
}

const setOf = (vector) => [...vector.values()].sort((a, b) => a - b);
const encoding = (vector) => (VendorVectorEncoder.encode(vector)[16] === '1' ? 'range' : 'bitfield');

function makeCase(i) {
  const profile = pick(['v2.2', 'v2.2-policy5', 'v2.3', 'v2.3', 'edge']);
  let created;
  let policy;
  let withDisclosed;
  if (profile === 'v2.2') {
    policy = 4;
    created = Date.UTC(2023, 8, 1) + int(0, 300) * DAY + int(0, DAY);
    withDisclosed = chance(0.5);
  } else if (profile === 'v2.2-policy5') {
    policy = 5;
    created = Date.UTC(2024, 6, 15) + int(0, 560) * DAY + int(0, DAY);
    withDisclosed = chance(0.5);
  } else if (profile === 'v2.3') {
    policy = 5;
    created = V23 + int(0, 1000) * DAY + int(0, DAY);
    withDisclosed = true;
  } else {
    policy = pick([2, 4, 5, int(0, 63)]);
    created = pick([0, 100, MAX_DECI * 100, V23 - 100, V23, int(0, MAX_DECI) * 100]);
    withDisclosed = chance(0.5);
  }
  const lastUpdated = Math.min(MAX_DECI * 100, created + pick([0, int(0, 100 * DAY)]));

  gvl.tcfPolicyVersion = policy;
  gvl.vendorListVersion = int(1, 4095);
  gvl.lang_ = letters(); // the encoder takes consentLanguage from the GVL's language

  const m = new TCModel(gvl);
  m.cmpId = int(2, 4095);
  m.cmpVersion = int(0, 4095);
  m.consentScreen = int(0, 63);
  m.created = new Date(created);
  m.lastUpdated = new Date(lastUpdated);
  m.isServiceSpecific = chance(0.6);
  m.useNonStandardTexts = chance(0.3);
  m.purposeOneTreatment = chance(0.3);
  m.publisherCountryCode = letters();
  m.specialFeatureOptins.set(subset(1, 12, 0.4));
  m.purposeConsents.set(subset(1, 24, pick([0, 0.3, 0.7, 1])));
  m.purposeLegitimateInterests.set(subset(1, 24, pick([0, 0.3, 0.7])));
  const max = pick([50, 300, 1000, GVL_MAX]);
  m.vendorConsents.set(vendorIds(max));
  m.vendorLegitimateInterests.set(vendorIds(max));
  for (let n = pick([0, 0, 1, 2, 4]); n > 0; n--) {
    const restriction = new PurposeRestriction(int(1, 24), int(0, 2));
    for (const id of vendorIds(pick([100, GVL_MAX]))) m.publisherRestrictions.add(id, restriction);
  }
  const segments = [Segment.CORE];
  const optional = [];
  if (withDisclosed) {
    // Disclosure is not filtered by the GVL, so ids may run past it.
    m.vendorsDisclosed.set(chance(0.05) ? [int(1, 65535)] : vendorIds(pick([100, GVL_MAX, 8000])));
    optional.push(Segment.VENDORS_DISCLOSED);
  }
  if (chance(0.05)) {
    m.vendorsAllowed.set(vendorIds(200));
    optional.push(Segment.VENDORS_ALLOWED);
  }
  const withPublisher = chance(0.4);
  if (withPublisher) {
    m.publisherConsents.set(subset(1, 24, 0.5));
    m.publisherLegitimateInterests.set(subset(1, 24, 0.3));
    const n = pick([0, int(1, 8), int(1, 63)]);
    m.numCustomPurposes = n;
    if (n > 0) {
      m.publisherCustomConsents.set(subset(1, n, 0.5));
      m.publisherCustomLegitimateInterests.set(subset(1, n, 0.3));
    }
    optional.push(Segment.PUBLISHER_TC);
  }
  // v2.3 wants disclosed vendors right after the core; decoders must not care.
  if (chance(0.15)) optional.reverse();
  segments.push(...optional);

  const tc = TCString.encode(m, { segments });
  const d = TCString.decode(tc);
  const restrictions = [];
  d.publisherRestrictions.map.forEach((ids, hash) => {
    const r = PurposeRestriction.unHash(hash);
    restrictions.push({ purpose: r.purposeId, type: r.restrictionType, vendors: [...ids].sort((a, b) => a - b) });
  });
  return {
    tc,
    profile,
    expected: {
      version: d.version,
      created_ms: d.created.getTime(),
      last_updated_ms: d.lastUpdated.getTime(),
      cmp_id: d.cmpId,
      cmp_version: d.cmpVersion,
      consent_screen: d.consentScreen,
      consent_language: d.consentLanguage,
      vendor_list_version: d.vendorListVersion,
      tcf_policy_version: d.policyVersion,
      is_service_specific: d.isServiceSpecific,
      use_non_standard_texts: d.useNonStandardTexts,
      special_feature_opt_ins: setOf(d.specialFeatureOptins),
      purposes_consent: setOf(d.purposeConsents),
      purposes_li_transparency: setOf(d.purposeLegitimateInterests),
      purpose_one_treatment: d.purposeOneTreatment,
      publisher_cc: d.publisherCountryCode,
      vendor_consents: setOf(d.vendorConsents),
      vendor_consents_max_id: d.vendorConsents.maxId,
      vendor_legitimate_interests: setOf(d.vendorLegitimateInterests),
      vendor_legitimate_interests_max_id: d.vendorLegitimateInterests.maxId,
      publisher_restrictions: restrictions,
      disclosed_vendors: withDisclosed ? setOf(d.vendorsDisclosed) : null,
      disclosed_vendors_max_id: withDisclosed ? d.vendorsDisclosed.maxId : null,
      publisher_tc: withPublisher
        ? {
          purposes_consent: setOf(d.publisherConsents),
          purposes_li_transparency: setOf(d.publisherLegitimateInterests),
          num_custom_purposes: d.numCustomPurposes,
          custom_purposes_consent: setOf(d.publisherCustomConsents),
          custom_purposes_li_transparency: setOf(d.publisherCustomLegitimateInterests),
        }
        : null,
    },
    // Which encoding the IAB encoder chose for each vendor section; it is
    // deterministic, so re-encoding the decoded vector tells.
    encodings: {
      vendor_consents: encoding(d.vendorConsents),
      vendor_legitimate_interests: encoding(d.vendorLegitimateInterests),
      ...(withDisclosed ? { disclosed_vendors: encoding(d.vendorsDisclosed) } : {}),
    },
  };
}

const out = [];
for (let i = 0; i < count; i++) {
  out.push(JSON.stringify(makeCase(i)));
  if (out.length === 100) process.stdout.write(out.splice(0).join('\n') + '\n');
}
if (out.length) process.stdout.write(out.join('\n') + '\n');
