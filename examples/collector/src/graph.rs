//! The identity graph: which device ids, user ids and hashed emails or phones belong to
//! one person, kept in SQLite beside the `events` table and updated in the same
//! transaction as each stored message (rules: `docs/identity-resolution.md`).
//!
//! A node (`device:<anonymousId>`, `user:<userId>`, `email:<sha256>`, `phone:<sha256>`,
//! `<namespace>:<value>`) belongs to exactly one person. A message links the nodes it
//! carries to its person; when a node already belongs to another person the two persons
//! merge, unless both hold user ids: two signed-in accounts are never joined by a shared
//! device or email, that link is refused and kept as a conflict for a human to look at.
//! Every event row carries its person's id, so a timeline or an erasure is one indexed
//! query, and a merge rewrites the id of the merged person's rows.

use rusqlite::{params, Connection, OptionalExtension as _};
use serde_json::Value;

/// Tables of the graph; `IF NOT EXISTS` makes opening an existing database a no-op.
/// Times are Unix milliseconds (the message's timestamp, else the time received).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS persons (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    node       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    person_id  TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS identities_person ON identities(person_id);
CREATE TABLE IF NOT EXISTS devices (
    anonymous_id    TEXT PRIMARY KEY,
    library_name    TEXT,
    library_version TEXT,
    os              TEXT,
    consent         TEXT,
    consent_seen    INTEGER,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    events          INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS merges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id  TEXT NOT NULL,
    at         INTEGER NOT NULL,
    kept       TEXT NOT NULL,
    merged     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    message_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS merges_person ON merges(person_id);
CREATE TABLE IF NOT EXISTS conflicts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id       TEXT NOT NULL,
    other_person_id TEXT NOT NULL,
    node            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    at              INTEGER NOT NULL,
    occurrences     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (person_id, other_person_id, node)
);
";

/// Tables dropped by `--fresh`, children first.
pub(crate) const TABLES: [&str; 5] = ["conflicts", "merges", "devices", "identities", "persons"];

/// Columns the graph adds to `events` (an older database gets them with `ALTER TABLE`).
const EVENT_COLUMNS: [(&str, &str); 2] = [("person_id", "TEXT"), ("ts_ms", "INTEGER")];

/// Creates the graph tables and the person columns of `events`, then links the events
/// stored before the graph existed (in the order they were received), so that upgrading a
/// collector keeps its history.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    let mut present = Vec::new();
    {
        let mut info = conn.prepare("PRAGMA table_info(events)")?;
        let rows = info.query_map([], |row| row.get::<_, String>(1))?;
        for row in rows {
            present.push(row?);
        }
    }
    for (column, kind) in EVENT_COLUMNS {
        if !present.iter().any(|name| name == column) {
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {column} {kind};"))?;
        }
    }
    conn.execute_batch("CREATE INDEX IF NOT EXISTS events_person ON events(person_id, ts_ms, id);")?;

    let tx = conn.transaction()?;
    let pending: Vec<(i64, String, String, Option<i64>)> = {
        let mut statement = tx.prepare(
            "SELECT id, message_id, json, ts_ms FROM events
             WHERE person_id IS NULL AND (anonymous_id IS NOT NULL OR user_id IS NOT NULL) ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, message_id, json, ts_ms) in pending {
        // A row that no longer parses keeps no person; it is still served by /events.
        let Ok(message) = serde_json::from_str::<Value>(&json) else { continue };
        let ts = ts_ms.unwrap_or_else(|| message_time(&message).unwrap_or(0));
        let person = apply(&tx, &message, &message_id, ts)?;
        tx.execute("UPDATE events SET person_id = ?1, ts_ms = ?2 WHERE id = ?3", params![person, ts, id])?;
    }
    tx.commit()
}

/// The message's `timestamp` in Unix milliseconds, if it is an RFC 3339 time.
pub(crate) fn message_time(message: &Value) -> Option<i64> {
    let text = message.get("timestamp")?.as_str()?;
    parse_time(text)
}

/// An RFC 3339 time in Unix milliseconds.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let millis = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(millis).ok()
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds, as the API shows times.
pub(crate) fn iso(millis: i64) -> String {
    let millis = u64::try_from(millis).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Segment allows numeric ids; they are the same id as their decimal text.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Lower-case hex SHA-256, as the SDK hashes a namespaced id.
pub(crate) fn sha256_hex(text: &str) -> String {
    sdk_core::identity::sha256_hex(text)
}

/// The node of one `context.externalIds` entry: emails and phones are matched by their
/// SHA-256 (hashed here, the way the SDK does, when a client sent them in clear), any
/// other namespace by its value as sent.
fn external_node(entry: &Value) -> Option<(String, String)> {
    let kind = entry.get("type")?.as_str().filter(|kind| !kind.is_empty() && !kind.contains(':'))?;
    let id = id_text(entry.get("id"))?;
    let hashed = entry.get("encoding").and_then(Value::as_str) == Some("sha256");
    let value = match kind {
        "email" if hashed => id.to_ascii_lowercase(),
        "phone" if hashed => id.to_ascii_lowercase(),
        "email" => sha256_hex(&crate::people::normalize_email(&id)?),
        "phone" => sha256_hex(&crate::people::normalize_phone(&id)?),
        _ => id,
    };
    Some((kind.to_owned(), value))
}

/// Updates the graph and the device record for one newly stored message and returns the
/// id of the person it belongs to (`None` for a message with neither `anonymousId` nor
/// `userId`). `ts` is the message's time in Unix milliseconds.
pub(crate) fn apply(
    tx: &Connection,
    message: &Value,
    message_id: &str,
    ts: i64,
) -> rusqlite::Result<Option<String>> {
    let kind = message.get("type").and_then(Value::as_str).unwrap_or_default();
    let anonymous_id = id_text(message.get("anonymousId"));
    let user_id = id_text(message.get("userId"));
    if let Some(device) = &anonymous_id {
        record_device(tx, device, message, ts)?;
    }
    let reason = if kind == "identify" { "identify" } else { "event" };
    let link = Link { tx, message_id, ts };
    let device_node = anonymous_id.as_deref().map(|id| ("device", id));

    let mut person = match (&user_id, device_node) {
        (Some(user), _) => match link.touch(&node_name("user", user))? {
            Some(person) => person,
            None => {
                // A device seen anonymously takes its user in; a device that already
                // belongs to another user does not (the device link below records the
                // conflict).
                let device_person = match device_node {
                    Some((kind, id)) => person_of(tx, &node_name(kind, id))?,
                    None => None,
                };
                let person = match device_person {
                    Some(person) if !has_user(tx, &person)? => person,
                    _ => link.new_person(&node_name("user", user))?,
                };
                link.insert(("user", user), &person)?;
                person
            }
        },
        (None, Some((kind, id))) => match link.touch(&node_name(kind, id))? {
            Some(person) => person,
            None => {
                let person = link.new_person(&node_name(kind, id))?;
                link.insert((kind, id), &person)?;
                person
            }
        },
        (None, None) => return Ok(None),
    };
    if let (Some(_), Some(device)) = (&user_id, device_node) {
        person = link.join(device, person, reason)?;
    }

    if kind == "alias" {
        if let Some(previous) = id_text(message.get("previousId")) {
            // `previousId` is a user id or a device id; a known user id wins.
            let as_user = node_name("user", &previous);
            let node = if person_of(tx, &as_user)?.is_some() { "user" } else { "device" };
            person = link.join((node, &previous), person, "alias")?;
        }
    }
    if kind == "identify" {
        let entries = message.pointer("/context/externalIds").and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            if let Some((kind, value)) = external_node(entry) {
                person = link.join((&kind, &value), person, &format!("externalId:{kind}"))?;
            }
        }
    }
    Ok(Some(person))
}

fn node_name(kind: &str, value: &str) -> String {
    format!("{kind}:{value}")
}

/// The person a node belongs to.
pub(crate) fn person_of(conn: &Connection, node: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT person_id FROM identities WHERE node = ?1")?
        .query_row([node], |row| row.get(0))
        .optional()
}

fn has_user(conn: &Connection, person: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM identities WHERE person_id = ?1 AND kind = 'user')")?
        .query_row([person], |row| row.get(0))
}

/// Remembers library, OS and consent as last seen (a late batch of older messages does
/// not overwrite newer values), the first and last time, and counts the message.
fn record_device(tx: &Connection, device: &str, message: &Value, ts: i64) -> rusqlite::Result<()> {
    let text = |pointer: &str| message.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let consent = message.pointer("/context/consent").filter(|c| c.is_object()).map(Value::to_string);
    tx.prepare_cached(
        "INSERT INTO devices (anonymous_id, library_name, library_version, os, consent, consent_seen,
                              first_seen, last_seen, events)
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?5 IS NULL THEN NULL ELSE ?6 END, ?6, ?6, 1)
         ON CONFLICT (anonymous_id) DO UPDATE SET
            library_name = CASE WHEN excluded.last_seen >= devices.last_seen
                                 AND excluded.library_name IS NOT NULL
                                THEN excluded.library_name ELSE devices.library_name END,
            library_version = CASE WHEN excluded.last_seen >= devices.last_seen
                                    AND excluded.library_name IS NOT NULL
                                   THEN excluded.library_version ELSE devices.library_version END,
            os = CASE WHEN excluded.last_seen >= devices.last_seen AND excluded.os IS NOT NULL
                      THEN excluded.os ELSE devices.os END,
            consent = CASE WHEN excluded.consent IS NOT NULL
                            AND excluded.consent_seen >= coalesce(devices.consent_seen, excluded.consent_seen)
                           THEN excluded.consent ELSE devices.consent END,
            consent_seen = CASE WHEN excluded.consent IS NOT NULL
                                 AND excluded.consent_seen >= coalesce(devices.consent_seen, excluded.consent_seen)
                                THEN excluded.consent_seen ELSE devices.consent_seen END,
            first_seen = min(devices.first_seen, excluded.first_seen),
            last_seen = max(devices.last_seen, excluded.last_seen),
            events = devices.events + 1",
    )?
    .execute(params![
        device,
        text("/context/library/name"),
        text("/context/library/version"),
        text("/context/os/name"),
        consent,
        ts
    ])?;
    Ok(())
}

/// The graph operations of one message.
struct Link<'a> {
    tx: &'a Connection,
    message_id: &'a str,
    ts: i64,
}

impl Link<'_> {
    /// A new person; its id is derived from the node and message that created it, which
    /// are unique, so no random source is needed.
    fn new_person(&self, node: &str) -> rusqlite::Result<String> {
        let digest = sha256_hex(&format!("{node}\u{0}{}", self.message_id));
        let id = format!("p-{}", digest.get(..20).unwrap_or(&digest));
        self.tx
            .prepare_cached("INSERT INTO persons (id, created_at) VALUES (?1, ?2)")?
            .execute(params![id, self.ts])?;
        Ok(id)
    }

    fn insert(&self, (kind, value): (&str, &str), person: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO identities (node, kind, value, person_id, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![node_name(kind, value), kind, value, person, self.ts])?;
        Ok(())
    }

    /// Widens the node's first/last seen to the message's time and returns its person
    /// (`None` if the node does not exist): one statement for the lookup every message
    /// makes.
    fn touch(&self, node: &str) -> rusqlite::Result<Option<String>> {
        self.tx
            .prepare_cached(
                "UPDATE identities SET first_seen = min(first_seen, ?2), last_seen = max(last_seen, ?2)
                 WHERE node = ?1 RETURNING person_id",
            )?
            .query_row(params![node, self.ts], |row| row.get(0))
            .optional()
    }

    /// Links `node` to `person`; returns the person the message belongs to afterwards
    /// (the kept one when two persons merged).
    fn join(&self, (kind, value): (&str, &str), person: String, reason: &str) -> rusqlite::Result<String> {
        let node = node_name(kind, value);
        match self.touch(&node)? {
            None => {
                self.insert((kind, value), &person)?;
                Ok(person)
            }
            Some(owner) if owner == person => Ok(person),
            Some(other) => {
                let person_has_user = has_user(self.tx, &person)?;
                let other_has_user = has_user(self.tx, &other)?;
                if person_has_user && other_has_user {
                    self.conflict(&person, &other, &node, reason)?;
                    return Ok(person);
                }
                let keep_other = if person_has_user != other_has_user {
                    other_has_user
                } else {
                    self.older(&other, &person)?
                };
                let (kept, merged) = if keep_other { (other, person) } else { (person, other) };
                self.merge(&kept, &merged, reason)?;
                Ok(kept)
            }
        }
    }

    /// Whether `a` was created before `b`: the older person keeps its id.
    fn older(&self, a: &str, b: &str) -> rusqlite::Result<bool> {
        let seq = |id: &str| -> rusqlite::Result<i64> {
            self.tx.prepare_cached("SELECT seq FROM persons WHERE id = ?1")?.query_row([id], |row| row.get(0))
        };
        Ok(seq(a)? < seq(b)?)
    }

    fn merge(&self, kept: &str, merged: &str, reason: &str) -> rusqlite::Result<()> {
        for statement in [
            "UPDATE identities SET person_id = ?1 WHERE person_id = ?2",
            "UPDATE events SET person_id = ?1 WHERE person_id = ?2",
            "UPDATE merges SET person_id = ?1 WHERE person_id = ?2",
            "UPDATE conflicts SET person_id = ?1 WHERE person_id = ?2",
            "UPDATE conflicts SET other_person_id = ?1 WHERE other_person_id = ?2",
        ] {
            self.tx.prepare_cached(statement)?.execute(params![kept, merged])?;
        }
        self.tx.prepare_cached("DELETE FROM persons WHERE id = ?1")?.execute([merged])?;
        self.tx
            .prepare_cached(
                "INSERT INTO merges (person_id, at, kept, merged, reason, message_id)
                 VALUES (?1, ?2, ?1, ?3, ?4, ?5)",
            )?
            .execute(params![kept, self.ts, merged, reason, self.message_id])?;
        Ok(())
    }

    /// A refused link between two persons holding user ids; repeated ones are counted.
    fn conflict(&self, person: &str, other: &str, node: &str, reason: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO conflicts (person_id, other_person_id, node, reason, message_id, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (person_id, other_person_id, node)
                 DO UPDATE SET occurrences = occurrences + 1",
            )?
            .execute(params![person, other, node, reason, self.message_id, self.ts])?;
        Ok(())
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// Stored messages.
    pub events: u64,
    /// Graph nodes other than devices (user ids, emails, phones, other namespaces).
    pub identities: u64,
    /// Devices (their graph node and their record).
    pub devices: u64,
    /// Recorded merges.
    pub merges: u64,
}

/// Deletes everything of `person` in one transaction; `None` if there is no such person.
pub(crate) fn erase(conn: &mut Connection, person: &str) -> rusqlite::Result<Option<Removed>> {
    let tx = conn.transaction()?;
    let exists: bool =
        tx.query_row("SELECT EXISTS (SELECT 1 FROM persons WHERE id = ?1)", [person], |row| row.get(0))?;
    if !exists {
        return Ok(None);
    }
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    tx.execute(
        "DELETE FROM devices WHERE anonymous_id IN
            (SELECT value FROM identities WHERE person_id = ?1 AND kind = 'device')",
        [person],
    )?;
    let removed = Removed {
        events: count(tx.execute("DELETE FROM events WHERE person_id = ?1", [person])?),
        identities: count(
            tx.execute("DELETE FROM identities WHERE person_id = ?1 AND kind != 'device'", [person])?,
        ),
        devices: count(
            tx.execute("DELETE FROM identities WHERE person_id = ?1 AND kind = 'device'", [person])?,
        ),
        merges: count(tx.execute("DELETE FROM merges WHERE person_id = ?1", [person])?),
    };
    tx.execute("DELETE FROM conflicts WHERE person_id = ?1 OR other_person_id = ?1", [person])?;
    tx.execute("DELETE FROM persons WHERE id = ?1", [person])?;
    tx.commit()?;
    Ok(Some(removed))
}
