//! Who the events are about: a pseudonymous device id (`anonymousId`), and
//! once the host calls `identify`, a known user id and traits. Stored apart
//! from the queue because it is shared by every tab and outlives the events.

use serde::{Deserialize, Serialize};

use crate::event::{message_id, Object};
use crate::snapshot::SnapshotError;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub anonymous_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Traits as raw JSON values by key (they are only stored and merged).
    #[serde(skip_serializing_if = "Object::is_empty")]
    pub traits: Object,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.anonymous_id == other.anonymous_id
            && self.user_id == other.user_id
            && self.traits.len() == other.traits.len()
            && self
                .traits
                .iter()
                .zip(&other.traits)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

/// The stored form: the identity plus a format version.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored<'a> {
    v: u64,
    anonymous_id: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traits: Option<std::borrow::Cow<'a, Object>>,
}

impl Identity {
    pub fn new(random: [u8; 16]) -> Self {
        Identity { anonymous_id: message_id(random), user_id: None, traits: Object::new() }
    }

    /// Later traits overwrite earlier ones key by key, as in Segment's
    /// analytics.js, so `identify("u", {plan})` keeps a known `email`.
    pub fn merge_traits(&mut self, traits: Object) {
        self.traits.extend(traits);
    }

    pub fn encode(&self) -> Vec<u8> {
        let stored = Stored {
            v: 1,
            anonymous_id: self.anonymous_id.as_str().into(),
            user_id: self.user_id.as_deref().map(Into::into),
            traits: (!self.traits.is_empty()).then_some(std::borrow::Cow::Borrowed(&self.traits)),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Identity, SnapshotError> {
        let text = std::str::from_utf8(bytes).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        let s: Stored<'_> = serde_json::from_str(text).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        if s.v != 1 {
            return Err(SnapshotError::UnknownVersion { found: s.v });
        }
        if s.anonymous_id.is_empty() || s.anonymous_id.len() > 64 {
            return Err(SnapshotError::Corrupt("anonymousId is empty or too long".into()));
        }
        Ok(Identity {
            anonymous_id: s.anonymous_id.into_owned(),
            user_id: s.user_id.map(|u| u.into_owned()),
            traits: s.traits.map(|t| t.into_owned()).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges() {
        let mut id = Identity::new([3; 16]);
        id.user_id = Some("u-1".into());
        id.merge_traits(crate::event::parse_object(r#"{"email":"a@b.c","plan":"free"}"#));
        id.merge_traits(crate::event::parse_object(r#"{"plan":"pro"}"#));
        assert_eq!(id.traits["plan"].get(), r#""pro""#);
        assert_eq!(id.traits["email"].get(), r#""a@b.c""#);
        assert_eq!(Identity::decode(&id.encode()).unwrap(), id);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(Identity::decode(b"{").is_err());
        assert!(matches!(
            Identity::decode(br#"{"v":9,"anonymousId":"a"}"#),
            Err(SnapshotError::UnknownVersion { found: 9 })
        ));
        assert!(Identity::decode(br#"{"v":1,"anonymousId":""}"#).is_err());
    }
}
