//! Who the events are about. A pseudonymous device id (`anonymousId` on the
//! wire) that exists only once `analytics` consent was granted on this
//! device; a session that ends after inactivity; and, once the host calls
//! `identify`, a user id, traits and namespaced ids (email, phone, CRM id).
//!
//! Two stored records, because they live in different places:
//! - the device record (id, creation, expiry, consent) goes in a first-party
//!   cookie on the registrable domain, so `shop.example.com` and
//!   `www.example.com` see one device, and is rewritten only when one of
//!   those fields changes;
//! - the identity record (user id, traits, ids, session) goes in per-origin
//!   storage and is written lazily, as the session advances.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::consent::Consent;
use crate::event::{message_id, Object};
use crate::snapshot::SnapshotError;
use crate::time::Millis;

const DAY_MS: u64 = 86_400_000;

/// Why an identity input was refused; the identity is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("ids must be a JSON object of namespace to string: {0}")]
    NotAnObject(String),
    #[error("id namespace \"{0}\" must start with a letter and hold only letters, digits, '_', '-' or '.' (at most 64)")]
    BadNamespace(String),
    #[error("the {namespace} id must be a non-empty string of at most 1024 bytes")]
    BadValue { namespace: String },
    #[error("\"{0}\" is not an email address (expected one '@' and a dotted domain)")]
    BadEmail(String),
    #[error("\"{0}\" is not a phone number: expected +<country code><number>, 7 to 15 digits")]
    BadPhone(String),
    #[error("\"{0}\" has no country code and identity.defaultCallingCode is not configured")]
    PhoneNeedsCountryCode(String),
}

impl IdentityError {
    /// The cross-platform name of the error (see [`crate::EventError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            IdentityError::NotAnObject(_) => "identity.notAnObject",
            IdentityError::BadNamespace(_) => "identity.badNamespace",
            IdentityError::BadValue { .. } => "identity.badValue",
            IdentityError::BadEmail(_) => "identity.badEmail",
            IdentityError::BadPhone(_) => "identity.badPhone",
            IdentityError::PhoneNeedsCountryCode(_) => "identity.phoneNeedsCountryCode",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityConfig {
    /// Lifetime of a device id. 395 days is the 13 months European
    /// regulators accept for audience-measurement identifiers.
    pub device_id_max_age_ms: u64,
    /// Extend the lifetime on use (at most one cookie write a day) instead
    /// of rotating the id when it runs out. Off by default: CNIL guidance
    /// is that the lifetime must not be extended on each visit.
    pub renew_device_id: bool,
    /// Inactivity after which the next event starts a new session.
    pub session_timeout_ms: u64,
    /// Longest a session may last, however active.
    pub session_max_ms: u64,
    /// Namespaces whose values are normalised and hashed (SHA-256, lower
    /// hex) before they leave the device.
    pub hash_ids: Vec<String>,
    /// Calling code (digits, e.g. "44") for phone numbers given without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_calling_code: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            device_id_max_age_ms: 395 * DAY_MS,
            renew_device_id: false,
            session_timeout_ms: 30 * 60_000,
            session_max_ms: 12 * 3_600_000,
            hash_ids: vec!["email".into(), "phone".into()],
            default_calling_code: None,
        }
    }
}

/// The device record, as kept in the cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    pub created: Millis,
    pub expires: Millis,
    #[serde(skip)]
    pub consent: Consent,
}

impl Device {
    pub fn new(random: [u8; 16], now: Millis, config: &IdentityConfig, consent: Consent) -> Device {
        Device {
            id: message_id(random),
            created: now,
            expires: now.saturating_add(config.device_id_max_age_ms),
            consent,
        }
    }

    /// `1.<id>.<created>.<expires>.<consent>`: only characters a cookie
    /// value allows, and short (about 70 bytes).
    pub fn encode(&self) -> Vec<u8> {
        format!("1.{}.{}.{}.{}", self.id, self.created, self.expires, self.consent.code()).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Device, SnapshotError> {
        let bad = |why: &str| SnapshotError::Corrupt(format!("device record: {why}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut parts = text.trim().split('.');
        match parts.next() {
            Some("1") => {}
            Some(v) => {
                return Err(match v.parse::<u64>() {
                    Ok(found) => SnapshotError::UnknownVersion { found },
                    Err(_) => bad("no version"),
                })
            }
            None => return Err(bad("empty")),
        }
        let (Some(id), Some(created), Some(expires), Some(consent), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected 5 fields"));
        };
        if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(bad("the id is not a UUID"));
        }
        Ok(Device {
            id: id.to_ascii_lowercase(),
            created: created.parse().map_err(|_| bad("bad creation time"))?,
            expires: expires.parse().map_err(|_| bad("bad expiry time"))?,
            consent: Consent::from_code(consent).ok_or_else(|| bad("bad consent code"))?,
        })
    }
}

/// A visit: ids are the start time in milliseconds (as Amplitude does), so
/// they sort, need no randomness and never repeat on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Session {
    pub id: u64,
    pub start: Millis,
    #[serde(rename = "lastActivity", alias = "last")]
    pub last: Millis,
}

impl Session {
    fn ended(&self, now: Millis, config: &IdentityConfig) -> bool {
        now.saturating_sub(self.last) > config.session_timeout_ms
            || now.saturating_sub(self.start) >= config.session_max_ms
            || now < self.start
    }
}

#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub device: Option<Device>,
    pub user_id: Option<String>,
    /// Traits as raw JSON values by key (they are only stored and merged).
    pub traits: Object,
    /// Namespace to value as sent: hashed where configured.
    pub ids: BTreeMap<String, String>,
    pub session: Option<Session>,
    /// From `identify(..., {userToken})`: the site's or app's back end vouches
    /// for the user id, so the collector serves the person's profile. Kept
    /// with the user id (a restarted app syncs without a new sign-in) and
    /// forgotten with it.
    pub user_token: Option<String>,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.device == other.device
            && self.user_id == other.user_id
            && self.ids == other.ids
            && self.session == other.session
            && self.user_token == other.user_token
            && self.traits.len() == other.traits.len()
            && self
                .traits
                .iter()
                .zip(&other.traits)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

/// The identity record in per-origin storage.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored<'a> {
    v: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traits: Option<std::borrow::Cow<'a, Object>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<std::borrow::Cow<'a, BTreeMap<String, String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<Session>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_token: Option<std::borrow::Cow<'a, str>>,
}

/// What [`Identity::touch`] did to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Started(u64),
    Continued,
}

impl Identity {
    pub fn anonymous_id(&self) -> Option<&str> {
        self.device.as_ref().map(|d| d.id.as_str())
    }

    /// Later traits overwrite earlier ones key by key, as in Segment's
    /// analytics.js, so `identify("u", {plan})` keeps a known `email`.
    pub fn merge_traits(&mut self, traits: Object) {
        self.traits.extend(traits);
    }

    /// Counts activity at `now`, starting a new session when the last one
    /// timed out or ran too long.
    pub fn touch(&mut self, now: Millis, config: &IdentityConfig) -> Touch {
        match &mut self.session {
            Some(s) if !s.ended(now, config) => {
                s.last = s.last.max(now);
                Touch::Continued
            }
            previous => {
                let id = previous.map_or(now, |p| now.max(p.id.saturating_add(1)));
                *previous = Some(Session { id, start: now, last: now });
                Touch::Started(id)
            }
        }
    }

    /// Everything about the person goes; the device record is the caller's
    /// to rotate or remove.
    pub fn forget_person(&mut self) {
        self.user_id = None;
        self.user_token = None;
        self.traits.clear();
        self.ids.clear();
        self.session = None;
    }

    pub fn encode(&self) -> Vec<u8> {
        let stored = Stored {
            v: 1,
            user_id: self.user_id.as_deref().map(Into::into),
            traits: (!self.traits.is_empty()).then_some(std::borrow::Cow::Borrowed(&self.traits)),
            ids: (!self.ids.is_empty()).then_some(std::borrow::Cow::Borrowed(&self.ids)),
            session: self.session,
            user_token: self.user_token.as_deref().map(Into::into),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// Reads an identity record; the device stays as it is.
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let text = std::str::from_utf8(bytes).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        let s: Stored<'_> = serde_json::from_str(text).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        if s.v != 1 {
            return Err(SnapshotError::UnknownVersion { found: s.v });
        }
        self.user_id = s.user_id.map(|u| u.into_owned());
        self.traits = s.traits.map(|t| t.into_owned()).unwrap_or_default();
        self.ids = s.ids.map(|t| t.into_owned()).unwrap_or_default();
        self.session = s.session;
        self.user_token = s.user_token.map(|t| t.into_owned());
        Ok(())
    }
}

/// Checks and normalises `{"email": "...", "crmId": "..."}` into the values
/// to send: hashed namespaces are normalised, then SHA-256 (lower hex).
pub fn parse_ids(json: &str, config: &IdentityConfig) -> Result<BTreeMap<String, String>, IdentityError> {
    let raw: BTreeMap<String, String> =
        serde_json::from_str(json).map_err(|e| IdentityError::NotAnObject(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (ns, value) in raw {
        let ok_ns = ns.len() <= 64
            && ns.starts_with(|c: char| c.is_ascii_alphabetic())
            && ns.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok_ns {
            return Err(IdentityError::BadNamespace(ns));
        }
        let value = value.trim();
        if value.is_empty() || value.len() > 1024 {
            return Err(IdentityError::BadValue { namespace: ns });
        }
        let hashed = config.hash_ids.iter().any(|h| h == &ns);
        let v = if hashed && is_sha256_hex(value) {
            value.to_ascii_lowercase()
        } else {
            let normal = match ns.as_str() {
                "email" => normalize_email(value)?,
                "phone" => normalize_phone(value, config.default_calling_code.as_deref())?,
                _ => value.to_owned(),
            };
            if hashed {
                sha256_hex(&normal)
            } else {
                normal
            }
        };
        out.insert(ns, v);
    }
    Ok(out)
}

fn is_sha256_hex(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn sha256_hex(text: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Trim, lower-case; for Gmail addresses also drop the dots of the local
/// part, which Gmail ignores (the rule Google's and Meta's matching use).
pub fn normalize_email(raw: &str) -> Result<String, IdentityError> {
    let s = raw.trim().to_lowercase();
    let bad = || IdentityError::BadEmail(raw.to_owned());
    let (local, domain) = s.split_once('@').ok_or_else(bad)?;
    let valid_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || !valid_domain || s.contains(char::is_whitespace) {
        return Err(bad());
    }
    if domain == "gmail.com" || domain == "googlemail.com" {
        return Ok(format!("{}@{domain}", local.replace('.', "")));
    }
    Ok(s)
}

/// E.164: `+`, country code, number, digits only. Spaces, dashes, dots,
/// slashes and brackets go; a leading `00` is the international prefix;
/// a number without one gets `default_calling_code` after its trunk `0`.
pub fn normalize_phone(raw: &str, default_calling_code: Option<&str>) -> Result<String, IdentityError> {
    let s: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\t')).collect();
    let bad = || IdentityError::BadPhone(raw.to_owned());
    let digits = if let Some(rest) = s.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = s.strip_prefix("00") {
        rest.to_owned()
    } else {
        let cc = default_calling_code
            .map(|c| c.trim_start_matches('+'))
            .filter(|c| !c.is_empty() && c.len() <= 3 && c.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| IdentityError::PhoneNeedsCountryCode(raw.to_owned()))?;
        format!("{cc}{}", s.strip_prefix('0').unwrap_or(&s))
    };
    if !(7..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(bad());
    }
    Ok(format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Choice;

    #[test]
    fn device_records_round_trip_and_refuse_garbage() {
        let d = Device::new([9; 16], 1_000, &IdentityConfig::default(), Consent::all(Choice::Granted));
        assert_eq!(d.expires, 1_000 + 395 * DAY_MS);
        let bytes = d.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("1.") && text.ends_with(".gggg"), "{text}");
        assert!(!text.contains([';', ',', ' ', '"']));
        assert_eq!(Device::decode(&bytes).unwrap(), d);
        for bad in ["", "1", "1.x.1.2.gggg", "1.00000000-0000-4000-8000-000000000000.a.2.gggg", "x.y"] {
            assert!(Device::decode(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(matches!(
            Device::decode(b"7.00000000-0000-4000-8000-000000000000.1.2.gggg"),
            Err(SnapshotError::UnknownVersion { found: 7 })
        ));
    }

    #[test]
    fn identity_records_round_trip() {
        let cfg = IdentityConfig::default();
        let mut id = Identity { user_id: Some("u-1".into()), ..Identity::default() };
        id.merge_traits(crate::event::parse_object(r#"{"email":"a@b.c","plan":"free"}"#));
        id.merge_traits(crate::event::parse_object(r#"{"plan":"pro"}"#));
        id.ids = parse_ids(r#"{"crmId":"C-9"}"#, &cfg).unwrap();
        id.touch(5_000, &cfg);
        assert_eq!(id.traits["plan"].get(), r#""pro""#);
        let mut back = Identity::default();
        back.decode_into(&id.encode()).unwrap();
        assert_eq!(back, id);
        assert!(back.decode_into(b"{").is_err());
        assert!(matches!(back.decode_into(br#"{"v":9}"#), Err(SnapshotError::UnknownVersion { found: 9 })));
        assert_eq!(back, id, "a refused record changes nothing");
    }

    #[test]
    fn sessions_time_out_and_are_capped() {
        let cfg =
            IdentityConfig { session_timeout_ms: 100, session_max_ms: 1_000, ..IdentityConfig::default() };
        let mut id = Identity::default();
        assert_eq!(id.touch(10, &cfg), Touch::Started(10));
        assert_eq!(id.touch(110, &cfg), Touch::Continued);
        assert_eq!(id.touch(211, &cfg), Touch::Started(211));
        for t in (300..=1_300).step_by(90) {
            id.touch(t, &cfg);
        }
        // capped: the first event 1 s after 211 starts a new one, though
        // the person was never idle for 100 ms
        assert_eq!(id.session.unwrap().start, 1_290);
        // a clock that went backwards starts a new session with a larger id
        assert_eq!(id.touch(50, &cfg), Touch::Started(1_291));
    }

    #[test]
    fn emails_are_normalised_then_hashed() {
        assert_eq!(normalize_email("  Jane.Doe@Example.COM ").unwrap(), "jane.doe@example.com");
        assert_eq!(normalize_email("Jane.Doe+shop@GoogleMail.com").unwrap(), "janedoe+shop@googlemail.com");
        for bad in
            ["", "jane", "@example.com", "jane@", "jane@localhost", "ja ne@x.com", "a@b@c.com", "a@.x.com"]
        {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        let cfg = IdentityConfig::default();
        let ids = parse_ids(r#"{"email":" Jane@Example.com"}"#, &cfg).unwrap();
        // sha256("jane@example.com")
        assert_eq!(ids["email"], sha256_hex("jane@example.com"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "FIPS 180-2 test vector"
        );
        // already hashed values are taken as they are
        let h = sha256_hex("x@y.com").to_uppercase();
        assert_eq!(parse_ids(&format!(r#"{{"email":"{h}"}}"#), &cfg).unwrap()["email"], h.to_lowercase());
        // unhashed namespaces pass through, trimmed
        assert_eq!(parse_ids(r#"{"crmId":" C-1 "}"#, &cfg).unwrap()["crmId"], "C-1");
        // hashing can be switched off: then the normalised form is sent
        let plain = IdentityConfig { hash_ids: vec![], ..IdentityConfig::default() };
        assert_eq!(parse_ids(r#"{"email":"A@B.co"}"#, &plain).unwrap()["email"], "a@b.co");
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            normalize_phone("+44 (0)20-7946 0958".replace("(0)", "").as_str(), None).unwrap(),
            "+442079460958"
        );
        assert_eq!(normalize_phone("0049 30 123456", None).unwrap(), "+4930123456");
        assert_eq!(normalize_phone("020 7946 0958", Some("44")).unwrap(), "+442079460958");
        assert_eq!(normalize_phone("(415) 555-2671", Some("+1")).unwrap(), "+14155552671");
        assert!(matches!(
            normalize_phone("020 7946 0958", None),
            Err(IdentityError::PhoneNeedsCountryCode(_))
        ));
        for bad in ["+12", "+1234567890123456", "+44 20 abc", "+0123456789"] {
            assert!(matches!(normalize_phone(bad, None), Err(IdentityError::BadPhone(_))), "{bad}");
        }
    }

    #[test]
    fn bad_ids_are_refused() {
        let cfg = IdentityConfig::default();
        assert!(matches!(parse_ids("[]", &cfg), Err(IdentityError::NotAnObject(_))));
        assert!(matches!(parse_ids(r#"{"email":1}"#, &cfg), Err(IdentityError::NotAnObject(_))));
        assert!(matches!(parse_ids(r#"{"1x":"a"}"#, &cfg), Err(IdentityError::BadNamespace(_))));
        assert!(matches!(parse_ids(r#"{"crm":" "}"#, &cfg), Err(IdentityError::BadValue { .. })));
        assert!(matches!(parse_ids(r#"{"email":"nope"}"#, &cfg), Err(IdentityError::BadEmail(_))));
    }
}
