//! Events as the Segment spec defines them, validated before they can reach
//! the queue. An event is serialised exactly once, here; the queue and the
//! batches only copy bytes, which keeps `track` and batch encoding cheap.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::Limits;
use crate::time::{iso8601, Millis};

/// Why an event was refused. A refused event never enters the queue, so a
/// bad call cannot poison a batch that carries good events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} characters long; the limit limits.maxNameLength is {max}")]
    NameTooLong { what: &'static str, len: usize, max: usize },
    #[error("{what} must be a JSON object: {reason}")]
    NotAnObject { what: &'static str, reason: String },
    #[error("{what} nest {depth} levels deep; the limit limits.maxPropertyDepth is {max}")]
    TooDeep { what: &'static str, depth: usize, max: usize },
    #[error("the event is {bytes} bytes once serialised; the limit limits.maxEventBytes is {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

impl EventError {
    /// The stable name of this error across platforms (`event.tooLarge`,
    /// `identity.badEmail`, ...): bindings hand it to hosts and the shared
    /// scenario files compare it, while the message text may change.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::Empty { .. } => "event.empty",
            EventError::NameTooLong { .. } => "event.nameTooLong",
            EventError::NotAnObject { .. } => "event.notAnObject",
            EventError::TooDeep { .. } => "event.tooDeep",
            EventError::TooLarge { .. } => "event.tooLarge",
            EventError::Identity(e) => e.kind(),
        }
    }
}

/// What kind of call produced an event, with its kind-specific fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    Track { event: &'a str },
    Page { name: Option<&'a str> },
    Screen { name: &'a str },
    Identify,
    Alias { previous_id: &'a str },
}

impl Kind<'_> {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Track { .. } => "track",
            Kind::Page { .. } => "page",
            Kind::Screen { .. } => "screen",
            Kind::Identify => "identify",
            Kind::Alias { .. } => "alias",
        }
    }
}

/// A validated, serialised event ready for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub message_id: String,
    pub json: Box<str>,
}

/// UUID v4 from caller-supplied random bytes: the version and variant bits
/// are set here, so any 16 bytes give a valid, unique-enough id.
pub fn message_id(random: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(random).into_uuid().hyphenated().to_string()
}

/// Checks a name or id against the length limit, counting characters (not
/// bytes) so non-Latin names get the same allowance.
pub fn check_name(what: &'static str, name: &str, limits: &Limits) -> Result<(), EventError> {
    if name.trim().is_empty() {
        return Err(EventError::Empty { what });
    }
    let len = name.chars().count();
    if len > limits.max_name_length {
        return Err(EventError::NameTooLong { what, len, max: limits.max_name_length });
    }
    Ok(())
}

/// Parses an optional JSON object (properties or traits) without building a
/// tree: syntax is checked by serde_json, depth by a single byte scan.
pub fn check_object<'j>(
    what: &'static str,
    json: Option<&'j str>,
    limits: &Limits,
) -> Result<Option<&'j RawValue>, EventError> {
    let Some(json) = json else { return Ok(None) };
    let raw: &RawValue =
        serde_json::from_str(json).map_err(|e| EventError::NotAnObject { what, reason: e.to_string() })?;
    let text = raw.get();
    if !text.starts_with('{') {
        return Err(EventError::NotAnObject {
            what,
            reason: format!("got {}", text.chars().take(20).collect::<String>()),
        });
    }
    let depth = json_depth(text);
    if depth > limits.max_property_depth {
        return Err(EventError::TooDeep { what, depth, max: limits.max_property_depth });
    }
    Ok(Some(raw))
}

/// Maximum nesting of objects and arrays in valid JSON text.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    message_id: &'a str,
    timestamp: &'a str,
    context: &'a RawValue,
}

/// Everything an event is built from; the client fills it from its state.
pub struct Parts<'a> {
    pub kind: Kind<'a>,
    /// Already checked with [`check_object`].
    pub properties: Option<&'a RawValue>,
    pub traits: Option<&'a RawValue>,
    /// `None` while no device id may exist (consent pending): the id is
    /// spliced in when the event is released, see [`with_anonymous_id`].
    pub anonymous_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub context: &'a RawValue,
    /// `context.externalIds` as a JSON array, on identify and alias events.
    pub external_ids: Option<&'a str>,
    pub now: Millis,
    pub random: [u8; 16],
}

/// Serialises an event and enforces the byte limit on the result.
pub fn encode(parts: Parts<'_>, limits: &Limits) -> Result<Encoded, EventError> {
    let message_id = message_id(parts.random);
    let timestamp = iso8601(parts.now);
    let (event, name) = match parts.kind {
        Kind::Track { event } => (Some(event), None),
        Kind::Page { name } => (None, name),
        Kind::Screen { name } => (None, Some(name)),
        Kind::Identify | Kind::Alias { .. } => (None, None),
    };
    let previous_id = match parts.kind {
        Kind::Alias { previous_id } => Some(previous_id),
        _ => None,
    };
    let empty = empty_object();
    // Segment's spec requires `properties` on track/page/screen.
    let properties = match (parts.kind, parts.properties) {
        (Kind::Identify | Kind::Alias { .. }, p) => p,
        (_, Some(p)) => Some(p),
        (_, None) => Some(&*empty),
    };
    let spliced;
    let context = match parts.external_ids {
        Some(ids) => {
            let rest = parts.context.get().strip_prefix('{').unwrap_or("}");
            let sep = if rest.starts_with('}') { "" } else { "," };
            spliced = RawValue::from_string(format!("{{\"externalIds\":{ids}{sep}{rest}"))
                .map_err(|e| EventError::NotAnObject { what: "external ids", reason: e.to_string() })?;
            &*spliced
        }
        None => parts.context,
    };
    let wire = Wire {
        kind: parts.kind.type_name(),
        event,
        name,
        properties,
        traits: parts.traits,
        previous_id,
        anonymous_id: parts.anonymous_id,
        user_id: parts.user_id,
        message_id: &message_id,
        timestamp: &timestamp,
        context,
    };
    let json = serde_json::to_string(&wire)
        .map_err(|e| EventError::NotAnObject { what: "event", reason: e.to_string() })?;
    // Room for the device id of an event held until consent is granted.
    let reserve = if parts.anonymous_id.is_none() { ANONYMOUS_ID_FIELD_BYTES } else { 0 };
    if json.len() + reserve > limits.max_event_bytes {
        return Err(EventError::TooLarge { bytes: json.len() + reserve, max: limits.max_event_bytes });
    }
    Ok(Encoded { message_id, json: json.into_boxed_str() })
}

/// `"anonymousId":"<uuid>",` (a device id is a 36-character UUID).
const ANONYMOUS_ID_FIELD_BYTES: usize = 52;

/// Adds the device id to an event encoded without one. Events are our own
/// JSON objects, so the field can go right after the opening brace.
pub fn with_anonymous_id(json: &str, anonymous_id: &str) -> Box<str> {
    let rest = json.strip_prefix('{').unwrap_or(json);
    let id = serde_json::to_string(anonymous_id).unwrap_or_default();
    format!("{{\"anonymousId\":{id},{rest}").into_boxed_str()
}

/// A JSON object whose values stay unparsed: enough to merge traits or
/// properties key by key without building (and shipping code for) a full
/// `serde_json::Value` tree.
pub type Object = std::collections::BTreeMap<String, Box<RawValue>>;

/// Parses a JSON object (already checked by [`check_object`]).
pub fn parse_object(json: &str) -> Object {
    serde_json::from_str(json).unwrap_or_default()
}

/// Serialises an object back to raw JSON.
pub fn object_json(object: &Object) -> Box<RawValue> {
    serde_json::to_string(object)
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .unwrap_or_else(empty_object)
}

pub(crate) fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn message_ids_are_v4_uuids() {
        let id = message_id([0xff; 16]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(message_id([0; 16]), message_id([1; 16]));
    }

    #[test]
    fn depth_counts_nesting_and_ignores_strings() {
        assert_eq!(json_depth("{}"), 1);
        assert_eq!(json_depth(r#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(json_depth(r#"{"a":"{[{[\"{"}"#), 1);
    }

    #[test]
    fn names_are_checked() {
        let l = Limits { max_name_length: 5, ..limits() };
        assert_eq!(check_name("event name", "  ", &l), Err(EventError::Empty { what: "event name" }));
        assert_eq!(check_name("event name", "ééééé", &l), Ok(()));
        assert_eq!(
            check_name("event name", "abcdef", &l),
            Err(EventError::NameTooLong { what: "event name", len: 6, max: 5 })
        );
    }

    #[test]
    fn objects_are_checked() {
        let l = Limits { max_property_depth: 2, ..limits() };
        assert!(check_object("properties", Some(r#"{"a":{"b":1}}"#), &l).unwrap().is_some());
        assert!(check_object("properties", None, &l).unwrap().is_none());
        assert!(matches!(
            check_object("properties", Some(r#"{"a":{"b":[1]}}"#), &l),
            Err(EventError::TooDeep { depth: 3, max: 2, .. })
        ));
        assert!(matches!(
            check_object("traits", Some("[1]"), &l),
            Err(EventError::NotAnObject { what: "traits", .. })
        ));
        assert!(matches!(check_object("properties", Some("{"), &l), Err(EventError::NotAnObject { .. })));
        assert!(matches!(check_object("properties", Some("{} x"), &l), Err(EventError::NotAnObject { .. })));
    }

    #[test]
    fn encodes_segment_messages() {
        let ctx = empty_object();
        let props = check_object("properties", Some(r#"{"sku":"S-1","price":49.5}"#), &limits()).unwrap();
        let e = encode(
            Parts {
                kind: Kind::Track { event: "Product Viewed" },
                properties: props,
                traits: None,
                anonymous_id: Some("anon"),
                external_ids: None,
                user_id: Some("u1"),
                context: &ctx,
                now: 1_795_512_600_123,
                random: [7; 16],
            },
            &limits(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["type"], "track");
        assert_eq!(v["event"], "Product Viewed");
        assert_eq!(v["properties"]["price"], 49.5);
        assert_eq!(v["anonymousId"], "anon");
        assert_eq!(v["userId"], "u1");
        assert_eq!(v["messageId"], e.message_id.as_str());
        assert_eq!(v["timestamp"], "2026-11-24T09:30:00.123Z");
        // track without properties still carries an empty object
        let e = encode(
            Parts {
                kind: Kind::Screen { name: "Home" },
                properties: None,
                traits: None,
                anonymous_id: Some("a"),
                external_ids: None,
                user_id: None,
                context: &ctx,
                now: 0,
                random: [1; 16],
            },
            &limits(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["properties"], serde_json::json!({}));
        assert_eq!(v["name"], "Home");
        assert!(v.get("userId").is_none());
    }

    #[test]
    fn refuses_events_over_the_byte_limit() {
        let ctx = empty_object();
        let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2000));
        let l = Limits { max_event_bytes: 1000, ..limits() };
        let props = check_object("properties", Some(&big), &l).unwrap();
        let r = encode(
            Parts {
                kind: Kind::Track { event: "Big" },
                properties: props,
                traits: None,
                anonymous_id: Some("a"),
                external_ids: None,
                user_id: None,
                context: &ctx,
                now: 0,
                random: [1; 16],
            },
            &l,
        );
        assert!(matches!(r, Err(EventError::TooLarge { max: 1000, .. })));
    }
}
