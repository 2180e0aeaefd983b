//! Versioned snapshots of the queue, so a binding can save it (localStorage,
//! a file) and a later process can send what this one could not. A snapshot
//! we cannot read is refused whole with a typed error: half-trusting a corrupt
//! one could put a broken event into a batch and lose the good ones with it.
//!
//! Format v1 (JSON): `{"v":1,"backoff":{...},"events":[{"id":"<messageId>",
//! "t":<created ms>,"a":<attempts>,"e":<the event JSON>}, ...]}`, oldest
//! first. `backoff` (optional) carries a running retry wait to the next
//! process, so a page reload during an outage does not retry at once.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::time::Millis;

pub const VERSION: u32 = 1;

/// Larger input is refused before parsing; no configuration persists this much.
pub const MAX_SNAPSHOT_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is corrupt and was discarded: {0}")]
    Corrupt(String),
    #[error("snapshot has version {found}, this SDK reads version {VERSION}; it was discarded")]
    UnknownVersion { found: u64 },
    #[error("snapshot is {bytes} bytes, over the {MAX_SNAPSHOT_BYTES}-byte limit; it was discarded")]
    TooLarge { bytes: usize },
}

/// An event as the queue holds it; `e` is JSON the core wrote itself, so it
/// is copied into the snapshot without being parsed again.
pub(crate) struct EventOut<'a> {
    pub id: &'a str,
    pub t: Millis,
    pub a: u32,
    pub e: &'a str,
}

impl EventOut<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        // A messageId is a UUID, but escape it anyway: a snapshot is input later.
        out.extend_from_slice(serde_json::to_string(self.id).unwrap_or_default().as_bytes());
        out.extend_from_slice(format!(",\"t\":{},\"a\":{},\"e\":", self.t, self.a).as_bytes());
        out.extend_from_slice(self.e.as_bytes());
        out.push(b'}');
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventIn<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    pub t: Millis,
    #[serde(default)]
    pub a: u32,
    #[serde(borrow)]
    pub e: &'a RawValue,
}

/// A retry wait in progress, as delivery keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Backoff {
    pub failures: u32,
    pub until: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_until: Option<Millis>,
}

/// A decoded snapshot.
pub(crate) struct Decoded<'a> {
    pub backoff: Option<Backoff>,
    pub events: Vec<EventIn<'a>>,
}

#[derive(Deserialize)]
struct Probe {
    v: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V1<'a> {
    v: u64,
    #[serde(default)]
    backoff: Option<Backoff>,
    #[serde(borrow)]
    events: Vec<EventIn<'a>>,
}

/// Writes a snapshot of `events`, oldest first, stopping before `max_bytes`
/// would be exceeded; returns the bytes and how many events did not fit.
pub(crate) fn encode<'a>(
    backoff: Option<Backoff>,
    events: impl Iterator<Item = EventOut<'a>>,
    max_bytes: usize,
) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"v\":1,");
    if let Some(b) = backoff.and_then(|b| serde_json::to_vec(&b).ok()) {
        out.extend_from_slice(b"\"backoff\":");
        out.extend_from_slice(&b);
        out.push(b',');
    }
    out.extend_from_slice(b"\"events\":[");
    let mut left_out = 0;
    let mut first = true;
    for ev in events {
        if left_out > 0 {
            left_out += 1;
            continue;
        }
        let mut item = Vec::with_capacity(ev.e.len() + 80);
        ev.write(&mut item);
        if out.len() + item.len() + 3 > max_bytes {
            left_out += 1;
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&item);
    }
    out.extend_from_slice(b"]}");
    (out, left_out)
}

/// Parses a snapshot and checks every event in it: an object with a
/// non-empty id no longer than a UUID string form allows.
pub(crate) fn decode(text: &str) -> Result<Decoded<'_>, SnapshotError> {
    if text.len() > MAX_SNAPSHOT_BYTES {
        return Err(SnapshotError::TooLarge { bytes: text.len() });
    }
    // Parse once; only when that fails, look at the version to say why.
    let snap: V1<'_> = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            return Err(match serde_json::from_str::<Probe>(text) {
                Ok(p) if p.v != u64::from(VERSION) => SnapshotError::UnknownVersion { found: p.v },
                _ => SnapshotError::Corrupt(e.to_string()),
            })
        }
    };
    if snap.v != u64::from(VERSION) {
        return Err(SnapshotError::UnknownVersion { found: snap.v });
    }
    for (i, ev) in snap.events.iter().enumerate() {
        if ev.id.is_empty() || ev.id.len() > 64 {
            return Err(SnapshotError::Corrupt(format!("event {i} has an invalid id")));
        }
        if !ev.e.get().starts_with('{') {
            return Err(SnapshotError::Corrupt(format!("event {i} is not a JSON object")));
        }
    }
    Ok(Decoded { backoff: snap.backoff, events: snap.events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_caps() {
        let e1 = r#"{"type":"track","event":"A"}"#;
        let e2 = r#"{"type":"track","event":"B"}"#;
        let evs = || {
            vec![EventOut { id: "1", t: 5, a: 0, e: e1 }, EventOut { id: "2", t: 6, a: 3, e: e2 }].into_iter()
        };
        let (bytes, left) = encode(None, evs(), 1 << 20);
        assert_eq!(left, 0);
        let back = decode(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(back.backoff, None);
        let back = back.events;
        assert_eq!(back.len(), 2);
        assert_eq!((&*back[1].id, back[1].t, back[1].a, back[1].e.get()), ("2", 6, 3, e2));
        let (small, left) = encode(None, evs(), 80);
        assert_eq!(left, 1);
        assert_eq!(decode(std::str::from_utf8(&small).unwrap()).unwrap().events.len(), 1);
        let (empty, left) = encode(None, evs(), 10);
        assert_eq!(left, 2);
        assert_eq!(decode(std::str::from_utf8(&empty).unwrap()).unwrap().events.len(), 0);
        let b = Backoff { failures: 3, until: 99, retry_after_until: Some(50) };
        let (with, _) = encode(Some(b), evs(), 1 << 20);
        let back = decode(std::str::from_utf8(&with).unwrap()).unwrap();
        assert_eq!((back.backoff, back.events.len()), (Some(b), 2));
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        assert!(matches!(decode(""), Err(SnapshotError::Corrupt(_))));
        assert!(matches!(decode("{\"v\":1,\"events\":[{\"id\":\"x\""), Err(SnapshotError::Corrupt(_))));
        assert_eq!(decode(r#"{"v":2,"events":[]}"#).err(), Some(SnapshotError::UnknownVersion { found: 2 }));
        assert!(matches!(
            decode(r#"{"v":1,"events":[{"id":"","t":1,"e":{}}]}"#),
            Err(SnapshotError::Corrupt(_))
        ));
        assert!(matches!(
            decode(r#"{"v":1,"events":[{"id":"a","t":1,"e":[1]}]}"#),
            Err(SnapshotError::Corrupt(_))
        ));
        assert!(matches!(
            decode(r#"{"v":1,"events":[{"id":"a","t":-1,"e":{}}]}"#),
            Err(SnapshotError::Corrupt(_))
        ));
        assert!(matches!(decode(r#"{"v":1,"events":[],"x":1}"#), Err(SnapshotError::Corrupt(_))));
        assert!(matches!(decode(&" ".repeat(MAX_SNAPSHOT_BYTES + 1)), Err(SnapshotError::TooLarge { .. })));
        assert!(decode(r#"{"v":1,"events":[{"id":"a","t":1,"e":{"type":"track"}}]}"#).is_ok());
    }
}
