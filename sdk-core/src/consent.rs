//! Consent: what the person allows, per purpose, and how the inputs (the
//! host's own calls, IAB TCF strings, the Global Privacy Control signal)
//! combine into one state. The client asks this module before it stores,
//! creates an identifier or sends anything, so the rules are the same on
//! every platform.

use serde::{Deserialize, Serialize};

use crate::tcf::{self, RestrictionType, TcString, TcfError};

/// Why a consent input was refused. A refused input leaves consent exactly
/// as it was: a garbled CMP answer must never grant anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("consent must be a JSON object of purposes (analytics, personalization, advertising, sale) to \"pending\", \"granted\" or \"denied\": {0}")]
    Invalid(String),
    #[error("the TC string was refused: {0}")]
    Tcf(#[from] TcfError),
}

impl ConsentError {
    /// The cross-platform name of the error (see [`crate::EventError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            ConsentError::Invalid(_) => "consent.invalid",
            ConsentError::Tcf(_) => "consent.tcf",
        }
    }
}

/// One purpose's state. `Pending` is "not asked yet or not answered".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Pending,
    Granted,
    Denied,
}

impl Choice {
    fn code(self) -> char {
        match self {
            Choice::Pending => 'p',
            Choice::Granted => 'g',
            Choice::Denied => 'd',
        }
    }

    fn from_code(c: char) -> Option<Choice> {
        match c {
            'p' => Some(Choice::Pending),
            'g' => Some(Choice::Granted),
            'd' => Some(Choice::Denied),
            _ => None,
        }
    }
}

/// The purposes Threadline knows. `analytics` gates collection itself;
/// the others are carried on every event and exposed to the host (and
/// `personalization` gates on-device decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consent {
    pub analytics: Choice,
    pub personalization: Choice,
    pub advertising: Choice,
    pub sale: Choice,
}

impl Consent {
    pub const fn all(choice: Choice) -> Consent {
        Consent { analytics: choice, personalization: choice, advertising: choice, sale: choice }
    }

    /// Four letters (`g`, `d`, `p`) in purpose order: the compact form kept in
    /// the device cookie.
    pub fn code(&self) -> String {
        [self.analytics, self.personalization, self.advertising, self.sale].iter().map(|c| c.code()).collect()
    }

    pub fn from_code(code: &str) -> Option<Consent> {
        let mut it = code.chars().map(Choice::from_code);
        let c = Consent {
            analytics: it.next()??,
            personalization: it.next()??,
            advertising: it.next()??,
            sale: it.next()??,
        };
        it.next().is_none().then_some(c)
    }

    fn apply(&mut self, u: &ConsentUpdate) {
        let pairs = [
            (&mut self.analytics, u.analytics),
            (&mut self.personalization, u.personalization),
            (&mut self.advertising, u.advertising),
            (&mut self.sale, u.sale),
        ];
        for (slot, new) in pairs {
            if let Some(new) = new {
                *slot = new;
            }
        }
    }
}

/// A change to some purposes; the ones left out keep their state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personalization: Option<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertising: Option<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale: Option<Choice>,
}

impl ConsentUpdate {
    /// Parses `{"analytics":"granted", ...}` (any subset of purposes).
    pub fn from_json(json: &str) -> Result<ConsentUpdate, ConsentError> {
        // serde would also take a JSON array for a struct; only an object is meant.
        if !json.trim_start().starts_with('{') {
            return Err(ConsentError::Invalid("expected a JSON object".into()));
        }
        serde_json::from_str(json).map_err(|e| ConsentError::Invalid(e.to_string()))
    }
}

/// The configured starting state: one choice for every purpose, or a choice
/// per purpose. In the per-purpose form a purpose left out starts
/// `pending`: whoever lists purposes is managing consent, and a purpose they
/// forgot must wait for a choice rather than be granted by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DefaultConsent {
    All(Choice),
    PerPurpose(ConsentUpdate),
}

/// By hand rather than `#[serde(untagged)]`, which buffers the input in
/// serde's generic `Content` tree: that code costs several KiB of wasm for
/// a field read once at start.
impl<'de> Deserialize<'de> for DefaultConsent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DefaultConsent;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"pending\", \"granted\", \"denied\" or an object of purposes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DefaultConsent, E> {
                Choice::deserialize(serde::de::value::StrDeserializer::<E>::new(v)).map(DefaultConsent::All)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<DefaultConsent, A::Error> {
                ConsentUpdate::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(DefaultConsent::PerPurpose)
            }
        }
        d.deserialize_any(V)
    }
}

impl DefaultConsent {
    pub fn consent(&self) -> Consent {
        match self {
            DefaultConsent::All(c) => Consent::all(*c),
            DefaultConsent::PerPurpose(u) => {
                let mut c = Consent::all(Choice::Pending);
                c.apply(u);
                c
            }
        }
    }
}

/// Which TCF purposes each Threadline purpose needs. The defaults follow the
/// TCF v2.2 purpose texts: analytics stores an identifier (1) and measures
/// content performance (8); personalisation builds and uses a content
/// profile (5, 6); advertising builds and uses an ad profile (3, 4). `sale`
/// is a US notion that TCF does not express, so TCF leaves it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TcfPurposes {
    pub analytics: Vec<u8>,
    pub personalization: Vec<u8>,
    pub advertising: Vec<u8>,
    pub sale: Vec<u8>,
}

impl Default for TcfPurposes {
    fn default() -> Self {
        TcfPurposes {
            analytics: vec![1, 8],
            personalization: vec![1, 5, 6],
            advertising: vec![1, 3, 4],
            sale: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TcfConfig {
    /// Your IAB Global Vendor List id, if you have one: then the person must
    /// also have consented to you as a vendor, and you must be among the
    /// disclosed vendors (mandatory in strings created from March 2026,
    /// TCF v2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<u16>,
    pub purposes: TcfPurposes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentConfig {
    pub default: DefaultConsent,
    pub tcf: TcfConfig,
    /// Events held in memory while `analytics` is pending; the oldest go
    /// first (and are counted) when either bound is reached.
    pub max_held_events: usize,
    pub max_held_bytes: usize,
    /// On denial, send one `Consent Changed` record without any identifier,
    /// so the collector can count refusals. Off by default.
    pub send_denial: bool,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            // Nothing configured: granted, as Adobe's Web SDK with
            // `defaultConsent: "in"`. A consent-first site sets "pending".
            default: DefaultConsent::All(Choice::Granted),
            tcf: TcfConfig::default(),
            max_held_events: 1_000,
            max_held_bytes: 1024 * 1024,
            send_denial: false,
        }
    }
}

impl ConsentConfig {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, u8)> {
        let p = &self.tcf.purposes;
        for (field, ids) in [
            ("consent.tcf.purposes.analytics", &p.analytics),
            ("consent.tcf.purposes.personalization", &p.personalization),
            ("consent.tcf.purposes.advertising", &p.advertising),
            ("consent.tcf.purposes.sale", &p.sale),
        ] {
            if let Some(bad) = ids.iter().find(|id| !(1..=24).contains(*id)) {
                return Err((field, *bad));
            }
        }
        Ok(())
    }

    /// What a TC string grants. A mapped purpose is granted only when every
    /// TCF purpose it maps to has consent and, with a vendor id configured,
    /// the vendor has consent, was disclosed (policy v2.3 strings) and is
    /// not barred by a publisher restriction. Consent, not legitimate
    /// interest, is required: Threadline stores an identifier on the device,
    /// which TCF purpose 1 allows only with consent.
    pub fn tcf_update(&self, tc: &TcString) -> ConsentUpdate {
        let vendor_ok = |purposes: &[u8]| match self.tcf.vendor_id {
            None => true,
            Some(v) => {
                tc.vendor_consent(v)
                    && tc.vendor_disclosed(v) != Some(false)
                    // TCF v2.3: strings created from March 2026 must list
                    // the disclosed vendors; one without cannot show we were.
                    && !tc.lacks_mandatory_disclosed_vendors()
                    && purposes.iter().all(|p| tc.restriction(*p, v) != Some(RestrictionType::NotAllowed))
            }
        };
        let grant = |purposes: &[u8]| -> Option<Choice> {
            if purposes.is_empty() {
                return None;
            }
            // Purpose one treatment: the publisher's country does not ask
            // for purpose 1 to be disclosed, so its missing bit means nothing.
            let ok = purposes.iter().all(|p| tc.purpose_consent(*p) || (*p == 1 && tc.purpose_one_treatment))
                && vendor_ok(purposes);
            Some(if ok { Choice::Granted } else { Choice::Denied })
        };
        self.per_mapping(grant)
    }

    /// When a CMP says GDPR does not apply to this person, it sends no TC
    /// string and the TCF purposes need no consent: the mapped purposes are
    /// granted (unmapped ones keep their state).
    pub fn tcf_not_applicable(&self) -> ConsentUpdate {
        self.per_mapping(|ids| (!ids.is_empty()).then_some(Choice::Granted))
    }

    /// An update with `choose` applied to each purpose's TCF mapping.
    fn per_mapping(&self, choose: impl Fn(&[u8]) -> Option<Choice>) -> ConsentUpdate {
        let p = &self.tcf.purposes;
        ConsentUpdate {
            analytics: choose(&p.analytics),
            personalization: choose(&p.personalization),
            advertising: choose(&p.advertising),
            sale: choose(&p.sale),
        }
    }
}

/// Where a consent state came from; carried on `Consent Changed` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Api,
    Tcf,
}

/// The live state: the last choices of the host and the CMP, with the
/// Global Privacy Control signal on top (it cannot be overridden).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    base: Consent,
    gpc: bool,
}

impl ConsentState {
    pub fn new(config: &ConsentConfig) -> Self {
        ConsentState { base: config.default.consent(), gpc: false }
    }

    /// The state every decision uses.
    pub fn effective(&self) -> Consent {
        let mut c = self.base;
        if self.gpc {
            c.sale = Choice::Denied;
            c.advertising = Choice::Denied;
        }
        c
    }

    /// The choices made, without GPC: what is remembered on the device.
    pub fn base(&self) -> Consent {
        self.base
    }

    pub fn gpc(&self) -> bool {
        self.gpc
    }

    pub fn set_gpc(&mut self, on: bool) {
        self.gpc = on;
    }

    pub fn apply(&mut self, update: &ConsentUpdate) {
        self.base.apply(update);
    }

    pub fn replace_base(&mut self, base: Consent) {
        self.base = base;
    }
}

/// Decodes a TC string and maps it, or refuses it whole.
pub fn tcf_update(config: &ConsentConfig, tc_string: &str) -> Result<ConsentUpdate, ConsentError> {
    let tc = tcf::decode(tc_string.trim())?;
    Ok(config.tcf_update(&tc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_forms() {
        let all: ConsentConfig = serde_json::from_str(r#"{"default":"pending"}"#).unwrap();
        assert_eq!(all.default.consent(), Consent::all(Choice::Pending));
        let per: ConsentConfig =
            serde_json::from_str(r#"{"default":{"analytics":"granted","sale":"denied"}}"#).unwrap();
        let c = per.default.consent();
        assert_eq!(c.analytics, Choice::Granted);
        assert_eq!(c.sale, Choice::Denied);
        assert_eq!(c.personalization, Choice::Pending);
        assert_eq!(ConsentConfig::default().default.consent(), Consent::all(Choice::Granted));
        assert!(serde_json::from_str::<ConsentConfig>(r#"{"default":"maybe"}"#).is_err());
        assert!(serde_json::from_str::<ConsentConfig>(r#"{"default":{"marketing":"granted"}}"#).is_err());
    }

    #[test]
    fn updates_are_partial_and_checked() {
        let u = ConsentUpdate::from_json(r#"{"personalization":"denied"}"#).unwrap();
        let mut s = ConsentState::new(&ConsentConfig::default());
        s.apply(&u);
        assert_eq!(s.effective().personalization, Choice::Denied);
        assert_eq!(s.effective().analytics, Choice::Granted);
        assert!(matches!(ConsentUpdate::from_json(r#"{"analytics":"yes"}"#), Err(ConsentError::Invalid(_))));
        assert!(matches!(ConsentUpdate::from_json(r#"{"ads":"granted"}"#), Err(ConsentError::Invalid(_))));
        assert!(matches!(ConsentUpdate::from_json("[]"), Err(ConsentError::Invalid(_))));
    }

    #[test]
    fn gpc_denies_sale_and_advertising_whatever_else_says() {
        let mut s = ConsentState::new(&ConsentConfig::default());
        s.set_gpc(true);
        s.apply(&ConsentUpdate { sale: Some(Choice::Granted), ..ConsentUpdate::default() });
        let e = s.effective();
        assert_eq!((e.sale, e.advertising, e.analytics), (Choice::Denied, Choice::Denied, Choice::Granted));
        // The remembered choice is the person's own; GPC is read afresh.
        assert_eq!(s.base().sale, Choice::Granted);
    }

    #[test]
    fn codes_round_trip() {
        let c = Consent {
            analytics: Choice::Granted,
            personalization: Choice::Denied,
            advertising: Choice::Pending,
            sale: Choice::Granted,
        };
        assert_eq!(c.code(), "gdpg");
        assert_eq!(Consent::from_code("gdpg"), Some(c));
        assert_eq!(Consent::from_code("gdp"), None);
        assert_eq!(Consent::from_code("gdpgg"), None);
        assert_eq!(Consent::from_code("gdpx"), None);
    }

    fn tc(purposes: &[u16], vendors: &[u16]) -> TcString {
        TcString {
            tcf_policy_version: 5,
            created_ms: 1_790_000_000_000, // after March 2026: v2.3 rules
            purposes_consent: tcf::IdSet::of(purposes),
            vendor_consents: tcf::IdSet::of(vendors),
            disclosed_vendors: Some(tcf::IdSet::of(vendors)),
            ..TcString::default()
        }
    }

    #[test]
    fn tcf_purposes_map_to_threadline_purposes() {
        let cfg = ConsentConfig::default();
        let u = cfg.tcf_update(&tc(&[1, 8, 5], &[]));
        assert_eq!(u.analytics, Some(Choice::Granted));
        assert_eq!(u.personalization, Some(Choice::Denied), "6 is missing");
        assert_eq!(u.advertising, Some(Choice::Denied));
        assert_eq!(u.sale, None, "TCF leaves sale alone");
        // Without purpose 1 nothing that stores an id is allowed...
        assert_eq!(cfg.tcf_update(&tc(&[8], &[])).analytics, Some(Choice::Denied));
        // ...unless the publisher's country does not disclose purpose 1.
        let mut p1 = tc(&[8], &[]);
        p1.purpose_one_treatment = true;
        assert_eq!(cfg.tcf_update(&p1).analytics, Some(Choice::Granted));
    }

    #[test]
    fn a_configured_vendor_needs_consent_disclosure_and_no_restriction() {
        let mut cfg = ConsentConfig::default();
        cfg.tcf.vendor_id = Some(755);
        assert_eq!(cfg.tcf_update(&tc(&[1, 8], &[755])).analytics, Some(Choice::Granted));
        assert_eq!(cfg.tcf_update(&tc(&[1, 8], &[12])).analytics, Some(Choice::Denied));
        let mut undisclosed = tc(&[1, 8], &[755]);
        undisclosed.disclosed_vendors = Some(tcf::IdSet::of(&[12]));
        assert_eq!(cfg.tcf_update(&undisclosed).analytics, Some(Choice::Denied));
        // v2.3 makes the disclosed-vendors segment mandatory for new strings;
        // an older v2.2 string without it is still fine.
        let mut missing = tc(&[1, 8], &[755]);
        missing.disclosed_vendors = None;
        assert_eq!(cfg.tcf_update(&missing).analytics, Some(Choice::Denied));
        missing.created_ms = 1_740_000_000_000; // February 2025
        assert_eq!(cfg.tcf_update(&missing).analytics, Some(Choice::Granted));
        let mut restricted = tc(&[1, 8], &[755]);
        restricted.publisher_restrictions = vec![tcf::PublisherRestriction {
            purpose_id: 8,
            restriction_type: RestrictionType::NotAllowed,
            vendors: tcf::IdSet::of(&[755]),
        }];
        assert_eq!(cfg.tcf_update(&restricted).analytics, Some(Choice::Denied));
    }

    #[test]
    fn config_refuses_unknown_tcf_purposes() {
        let mut c = ConsentConfig::default();
        c.tcf.purposes.analytics = vec![1, 25];
        assert_eq!(c.validate(), Err(("consent.tcf.purposes.analytics", 25)));
    }
}
