//! The person side of the collector: searching the identity graph, a person's devices and
//! timeline for the activity hub, and the served profile (`GET /v1/profile`).
//!
//! A served profile is never stored: it is rebuilt from the person's messages on each
//! request by replaying them through sdk-core's [`Profile::learn_message`], the same code
//! that counts them on the device, so both sides agree on what a counter means and an
//! erasure has no cached copy to forget.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension as _};
use sdk_core::decide::Engine;
use sdk_core::profile::{Profile, ProfileConfig};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::graph::{iso, person_of, sha256_hex};
use crate::store::StoreError;

/// Timeline entries shown when `?limit=` is absent.
pub const DEFAULT_TIMELINE_LIMIT: u32 = 500;

/// People returned by one search.
const MAX_SEARCH_RESULTS: usize = 50;

/// Why the rules artifact of the served profiles could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// `--rules-public-key` is not base64 of 32 bytes.
    #[error("--rules-public-key must be the base64 of a 32-byte Ed25519 public key")]
    BadPublicKey,
    /// The artifact or its signature could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `.sig` file is not base64.
    #[error("{path} is not a base64 signature")]
    BadSignature {
        /// The file.
        path: PathBuf,
    },
    /// sdk-core refused the artifact.
    #[error("rules artifact {path} refused: {source}")]
    Artifact {
        /// The file.
        path: PathBuf,
        /// Why.
        source: sdk_core::artifact::ArtifactError,
    },
}

/// The rules artifact the audiences of a served profile are evaluated with, re-read when
/// its modification time changes (a re-published artifact is picked up without a
/// restart; a broken one is reported and the previous one stays in use, as on devices).
#[derive(Debug)]
pub struct Rules {
    path: Option<PathBuf>,
    public_key: Option<Vec<u8>>,
    loaded: Mutex<Loaded>,
}

#[derive(Debug, Default)]
struct Loaded {
    modified: Option<SystemTime>,
    engine: Engine,
}

impl Rules {
    /// `path` is the artifact JSON; a signature is read from `<path>.sig` when present.
    /// With `public_key` (base64), only an artifact with a valid signature is used.
    pub fn new(path: Option<PathBuf>, public_key: Option<&str>) -> Result<Self, RulesError> {
        let public_key = match public_key {
            None => None,
            Some(text) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| RulesError::BadPublicKey)?;
                if bytes.len() != 32 {
                    return Err(RulesError::BadPublicKey);
                }
                Some(bytes)
            }
        };
        let rules = Self { path, public_key, loaded: Mutex::new(Loaded::default()) };
        // A configured artifact that cannot be loaded at start is a configuration error.
        if rules.path.is_some() {
            rules.refresh()?;
        }
        Ok(rules)
    }

    /// Re-reads the artifact if its modification time changed.
    fn refresh(&self) -> Result<(), RulesError> {
        let Some(path) = &self.path else { return Ok(()) };
        let read_error = |source| RulesError::Read { path: path.clone(), source };
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).map_err(read_error)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.modified == Some(modified) {
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        let mut sig_path = path.as_os_str().to_owned();
        sig_path.push(".sig");
        let sig_path = PathBuf::from(sig_path);
        let signature = match std::fs::read_to_string(&sig_path) {
            Ok(text) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| RulesError::BadSignature { path: sig_path.clone() })?,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(RulesError::Read { path: sig_path, source }),
        };
        if loaded.engine.artifact().is_none() {
            loaded.engine = Engine::new(Default::default(), self.public_key.clone());
        }
        loaded
            .engine
            .load(&bytes, signature.as_deref())
            .map_err(|source| RulesError::Artifact { path: path.clone(), source })?;
        loaded.modified = Some(modified);
        Ok(())
    }

    /// The audiences `profile` is in at `now` and the revision of the artifact used.
    pub fn evaluate(&self, profile: &Profile, now: u64) -> (Vec<String>, Option<String>) {
        if let Err(error) = self.refresh() {
            eprintln!("threadline-collector: {error}; keeping the previous rules");
        }
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let revision = loaded.engine.artifact().and_then(|a| a.revision.clone());
        (audiences(&loaded.engine, profile, now), revision)
    }
}

// --- The sdk-core calls, in one place: the collector counts exactly as devices do. ---

/// Bounds of a served profile: larger than a device's, the collector has the room.
fn profile_config() -> ProfileConfig {
    ProfileConfig { max_events: 1000, max_values: 10_000, ..ProfileConfig::default() }
}

fn learn(profile: &mut Profile, message: &Value, now: u64) {
    profile.learn_message(message, now);
}

fn audiences(engine: &Engine, profile: &Profile, now: u64) -> Vec<String> {
    engine.audiences(profile, now)
}

/// The body of `GET /v1/profile`.
pub fn remote_json(
    profile: &Profile,
    user_id: &str,
    at: u64,
    revision: Option<&str>,
    audiences: &[String],
) -> Vec<u8> {
    profile.to_remote_json(user_id, at, revision, audiences)
}

/// Email normalised as the SDK does before hashing; `None` if it is not an address.
pub(crate) fn normalize_email(raw: &str) -> Option<String> {
    sdk_core::identity::normalize_email(raw).ok()
}

/// Phone in E.164 as the SDK normalises it; `None` without a country code.
pub(crate) fn normalize_phone(raw: &str) -> Option<String> {
    sdk_core::identity::normalize_phone(raw, None).ok()
}

// --- Profiles ---

/// Whether a message may count into a served profile: only with personalization
/// consent granted on the message itself (no consent recorded means no).
fn personalization_granted(message: &Value) -> bool {
    message.pointer("/context/consent/personalization").and_then(Value::as_str) == Some("granted")
}

/// Replays the person's countable messages in timestamp order. Messages of `exclude`d
/// devices are not counted (the device counted them itself), but their identify traits
/// still apply: traits are not counters, so they cannot be counted twice.
pub(crate) fn build_profile(
    conn: &Connection,
    person: Option<&str>,
    exclude: &[String],
) -> Result<Profile, StoreError> {
    let mut profile = Profile::new(profile_config());
    let Some(person) = person else { return Ok(profile) };
    let mut statement = conn.prepare_cached(
        "SELECT id, json, ts_ms, anonymous_id, type FROM events WHERE person_id = ?1 ORDER BY ts_ms, id",
    )?;
    let mut rows = statement.query([person])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let kind: String = row.get(4)?;
        let anonymous_id: Option<String> = row.get(3)?;
        let excluded = anonymous_id.is_some_and(|device| exclude.contains(&device));
        if excluded && kind != "identify" {
            continue;
        }
        let json: String = row.get(1)?;
        let message: Value = serde_json::from_str(&json).map_err(|_| StoreError::CorruptRow { id })?;
        if !personalization_granted(&message) {
            continue;
        }
        let ts: Option<i64> = row.get(2)?;
        learn(&mut profile, &message, u64::try_from(ts.unwrap_or(0)).unwrap_or(0));
    }
    Ok(profile)
}

/// The person of a user id, if known.
pub(crate) fn person_of_user(conn: &Connection, user_id: &str) -> Result<Option<String>, StoreError> {
    Ok(person_of(conn, &format!("user:{user_id}"))?)
}

// --- Search ---

/// One search hit.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonSummary {
    id: String,
    user_ids: Vec<String>,
    devices: u64,
    last_seen: Option<String>,
}

/// People whose ids match `q` exactly: a person id, user id, device id, email or phone
/// (normalised and hashed as the SDK does), or a raw `email:`/`phone:` hash.
pub(crate) fn search(conn: &Connection, q: &str) -> Result<Vec<PersonSummary>, StoreError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let mut nodes = vec![format!("user:{q}"), format!("device:{q}")];
    if let Some(email) = normalize_email(q) {
        nodes.push(format!("email:{}", sha256_hex(&email)));
    }
    if let Some(phone) = normalize_phone(q) {
        nodes.push(format!("phone:{}", sha256_hex(&phone)));
    }
    let hex = q.to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        nodes.push(format!("email:{hex}"));
        nodes.push(format!("phone:{hex}"));
    }
    // `email:<hex>` and other namespaced nodes typed as they are stored.
    if q.contains(':') {
        nodes.push(q.to_owned());
    }
    let mut people: Vec<String> = Vec::new();
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM persons WHERE id = ?1)")?
        .query_row([q], |row| row.get(0))?;
    if exists {
        people.push(q.to_owned());
    }
    for node in &nodes {
        if let Some(person) = person_of(conn, node)? {
            if !people.contains(&person) {
                people.push(person);
            }
        }
    }
    people.truncate(MAX_SEARCH_RESULTS);
    people.into_iter().map(|id| summary(conn, id)).collect()
}

fn summary(conn: &Connection, id: String) -> Result<PersonSummary, StoreError> {
    let user_ids = user_ids(conn, &id)?;
    let devices = device_ids(conn, &id)?;
    let last_seen: Option<i64> = conn
        .prepare_cached("SELECT max(last_seen) FROM identities WHERE person_id = ?1")?
        .query_row([&id], |row| row.get(0))?;
    Ok(PersonSummary {
        id,
        user_ids,
        devices: u64::try_from(devices.len()).unwrap_or(0),
        last_seen: last_seen.map(iso),
    })
}

fn user_ids(conn: &Connection, person: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT value FROM identities WHERE person_id = ?1 AND kind = 'user' ORDER BY first_seen, value",
    )?;
    let rows = statement.query_map([person], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The person's devices: its device nodes, plus devices its messages came from that
/// belong to someone else (a second account signed in on a shared device).
fn device_ids(conn: &Connection, person: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT value FROM identities WHERE person_id = ?1 AND kind = 'device'
         UNION
         SELECT DISTINCT anonymous_id FROM events WHERE person_id = ?1 AND anonymous_id IS NOT NULL",
    )?;
    let rows = statement.query_map([person], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// --- A person for the activity hub ---

/// `GET /admin/api/people/<id>`, without the audiences (added by the caller, which holds
/// the rules).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonView {
    id: String,
    user_ids: Vec<String>,
    identities: Vec<IdentityView>,
    devices: Vec<DeviceView>,
    traits: Map<String, Value>,
    /// Filled in by the caller.
    pub audiences: Vec<String>,
    /// Filled in by the caller.
    pub revision: Option<String>,
    merges: Vec<MergeView>,
    conflicts: Vec<ConflictView>,
    timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityView {
    kind: String,
    value: String,
    first_seen: String,
    last_seen: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceView {
    anonymous_id: String,
    platform: &'static str,
    library: Option<Value>,
    os: Option<String>,
    consent: Option<Value>,
    consent_seen: Option<String>,
    first_seen: Option<String>,
    last_seen: Option<String>,
    events: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MergeView {
    at: String,
    kept: String,
    merged: String,
    reason: String,
    message_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConflictView {
    at: String,
    other_person: String,
    node: String,
    reason: String,
    message_id: String,
    occurrences: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineEntry {
    message_id: String,
    #[serde(rename = "type")]
    kind: String,
    event: Option<String>,
    name: Option<String>,
    timestamp: Option<String>,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    platform: &'static str,
    offer: Option<Value>,
    properties: Value,
}

/// Platform of a device, from its library name, else its OS name.
pub(crate) fn platform(library: Option<&str>, os: Option<&str>) -> &'static str {
    let library = library.unwrap_or_default().to_ascii_lowercase();
    if library == "threadline-web" {
        return "web";
    }
    if library.contains("android") || library.contains("kotlin") {
        return "android";
    }
    if library.contains("ios") || library.contains("swift") {
        return "ios";
    }
    match os.unwrap_or_default().to_ascii_lowercase().as_str() {
        "android" => "android",
        "ios" | "ipados" => "ios",
        _ => "other",
    }
}

/// The person with everything the hub shows; `None` if unknown. The timeline holds the
/// newest `limit` messages, oldest first.
pub(crate) fn person_view(conn: &Connection, id: &str, limit: u32) -> Result<Option<PersonView>, StoreError> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM persons WHERE id = ?1)")?
        .query_row([id], |row| row.get(0))?;
    if !exists {
        return Ok(None);
    }
    let identities = {
        let mut statement = conn.prepare_cached(
            "SELECT kind, value, first_seen, last_seen FROM identities
             WHERE person_id = ?1 AND kind != 'device' ORDER BY first_seen, node",
        )?;
        let rows = statement.query_map([id], |row| {
            Ok(IdentityView {
                kind: row.get(0)?,
                value: row.get(1)?,
                first_seen: iso(row.get(2)?),
                last_seen: iso(row.get(3)?),
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let mut devices = Vec::new();
    for device in device_ids(conn, id)? {
        devices.push(device_view(conn, device)?);
    }
    devices.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
    let merges = {
        let mut statement = conn.prepare_cached(
            "SELECT at, kept, merged, reason, message_id FROM merges WHERE person_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([id], |row| {
            Ok(MergeView {
                at: iso(row.get(0)?),
                kept: row.get(1)?,
                merged: row.get(2)?,
                reason: row.get(3)?,
                message_id: row.get(4)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let conflicts = {
        let mut statement = conn.prepare_cached(
            "SELECT at, CASE WHEN person_id = ?1 THEN other_person_id ELSE person_id END,
                    node, reason, message_id, occurrences
             FROM conflicts WHERE person_id = ?1 OR other_person_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([id], |row| {
            Ok(ConflictView {
                at: iso(row.get(0)?),
                other_person: row.get(1)?,
                node: row.get(2)?,
                reason: row.get(3)?,
                message_id: row.get(4)?,
                occurrences: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let platforms: Vec<(String, &'static str)> =
        devices.iter().map(|d| (d.anonymous_id.clone(), d.platform)).collect();
    let timeline = timeline(conn, id, limit, &platforms)?;
    let traits = latest_traits(conn, id)?;
    Ok(Some(PersonView {
        id: id.to_owned(),
        user_ids: user_ids(conn, id)?,
        identities,
        devices,
        traits,
        audiences: Vec::new(),
        revision: None,
        merges,
        conflicts,
        timeline,
    }))
}

fn device_view(conn: &Connection, anonymous_id: String) -> Result<DeviceView, StoreError> {
    type Row = (Option<String>, Option<String>, Option<String>, Option<String>, Option<i64>, i64, i64, i64);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT library_name, library_version, os, consent, consent_seen, first_seen, last_seen, events
             FROM devices WHERE anonymous_id = ?1",
        )?
        .query_row([&anonymous_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ))
        })
        .optional()?;
    let Some((name, version, os, consent, consent_seen, first, last, events)) = row else {
        return Ok(DeviceView {
            anonymous_id,
            platform: "other",
            library: None,
            os: None,
            consent: None,
            consent_seen: None,
            first_seen: None,
            last_seen: None,
            events: 0,
        });
    };
    Ok(DeviceView {
        anonymous_id,
        platform: platform(name.as_deref(), os.as_deref()),
        library: name.map(|name| serde_json::json!({ "name": name, "version": version })),
        os,
        consent: consent.and_then(|text| serde_json::from_str(&text).ok()),
        consent_seen: consent_seen.map(iso),
        first_seen: Some(iso(first)),
        last_seen: Some(iso(last)),
        events: u64::try_from(events).unwrap_or(0),
    })
}

fn timeline(
    conn: &Connection,
    id: &str,
    limit: u32,
    platforms: &[(String, &'static str)],
) -> Result<Vec<TimelineEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, json, ts_ms FROM (
             SELECT id, json, ts_ms FROM events WHERE person_id = ?1 ORDER BY ts_ms DESC, id DESC LIMIT ?2)
         ORDER BY ts_ms, id",
    )?;
    let rows = statement.query_map(params![id, limit], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get(2)?))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (row_id, json, ts): (i64, String, Option<i64>) = row?;
        let message: Value =
            serde_json::from_str(&json).map_err(|_| StoreError::CorruptRow { id: row_id })?;
        let text = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_owned);
        let id_text = |key: &str| match message.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let anonymous_id = id_text("anonymousId");
        let platform = anonymous_id
            .as_ref()
            .and_then(|device| platforms.iter().find(|(known, _)| known == device))
            .map_or("other", |(_, platform)| *platform);
        let properties = message.get("properties").cloned().unwrap_or(Value::Object(Map::new()));
        let event = text("event");
        let action = match event.as_deref() {
            Some(sdk_core::decide::DISPLAYED_EVENT) => Some("displayed"),
            Some(sdk_core::decide::CLICKED_EVENT) => Some("clicked"),
            _ => None,
        };
        let offer = action.map(|action| {
            serde_json::json!({
                "offerId": properties.get("offerId"),
                "placement": properties.get("placement"),
                "action": action,
            })
        });
        entries.push(TimelineEntry {
            message_id: text("messageId").unwrap_or_default(),
            kind: text("type").unwrap_or_default(),
            event,
            name: text("name"),
            timestamp: ts.map(iso),
            anonymous_id,
            user_id: id_text("userId"),
            platform,
            offer,
            properties,
        });
    }
    Ok(entries)
}

/// Traits of all the person's identify messages, later timestamps winning per key.
fn latest_traits(conn: &Connection, id: &str) -> Result<Map<String, Value>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, json FROM events WHERE person_id = ?1 AND type = 'identify' ORDER BY ts_ms, id",
    )?;
    let rows = statement.query_map([id], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
    let mut traits = Map::new();
    for row in rows {
        let (row_id, json) = row?;
        let message: Value =
            serde_json::from_str(&json).map_err(|_| StoreError::CorruptRow { id: row_id })?;
        if let Some(Value::Object(more)) = message.get("traits") {
            traits.extend(more.clone());
        }
    }
    Ok(traits)
}

#[cfg(test)]
mod tests {
    use super::platform;

    #[test]
    fn platforms_from_library_then_os() {
        assert_eq!(platform(Some("threadline-web"), Some("Android")), "web");
        assert_eq!(platform(Some("threadline-android"), None), "android");
        assert_eq!(platform(Some("threadline-kotlin"), None), "android");
        assert_eq!(platform(Some("threadline-swift"), None), "ios");
        assert_eq!(platform(Some("other-lib"), Some("iOS")), "ios");
        assert_eq!(platform(None, Some("Android")), "android");
        assert_eq!(platform(Some("analytics.js"), Some("Mac OS X")), "other");
    }
}
