//! SQLite storage of received messages.
//!
//! One row per distinct `messageId` (a unique column with `INSERT OR IGNORE` is the
//! de-duplication), written in one transaction per batch. The database runs in WAL mode
//! with two connections, one for writes and one for reads, so that `GET /events` during
//! a benchmark does not wait for inserts. SQLite calls block, so they run on tokio's
//! blocking pool, never on the async worker threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

/// How long a connection waits for the other one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages written before SQLite checkpoints them into the database file.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Page cache of the write connection, in KiB.
const CACHE_KIB: i64 = 64 * 1024;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// `rowid` is `AUTOINCREMENT` so ids are never reused, even after `/admin/reset`: a
/// reader paging with `?after=` never skips rows that arrive after a reset.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    event        TEXT,
    anonymous_id TEXT,
    user_id      TEXT,
    timestamp    TEXT,
    received_at  TEXT NOT NULL,
    json         TEXT NOT NULL
);
";

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the database could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// SQLite refused to open the file.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row is not the JSON object it was when it was written.
    #[error("stored message {id} is not a JSON object")]
    CorruptRow {
        /// Its row id.
        id: i64,
    },
    /// The blocking task running the statement panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A validated message ready to be stored; see [`crate::ingest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The client's `messageId`, the de-duplication key.
    pub message_id: String,
    /// `track`, `page`, `screen`, `identify`, `group` or `alias`.
    pub kind: String,
    /// The `event` name (set on `track` messages).
    pub event: Option<String>,
    /// The device's pseudonymous id.
    pub anonymous_id: Option<String>,
    /// The known user id, if identified.
    pub user_id: Option<String>,
    /// The client's timestamp, as sent.
    pub timestamp: Option<String>,
    /// The whole message, exactly as received.
    pub json: String,
}

/// What happened to a batch of messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Newly stored messages.
    pub accepted: u64,
    /// Messages whose `messageId` was already stored (or repeated within the batch).
    pub duplicates: u64,
}

/// Filters of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only messages of this `type`.
    pub kind: Option<String>,
    /// Only messages with this event name.
    pub event: Option<String>,
    /// Only messages of this device.
    pub anonymous_id: Option<String>,
    /// Only rows with an id greater than this (paging).
    pub after: i64,
    /// At most this many rows.
    pub limit: u32,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`; `fresh` drops existing data.
    pub async fn open(path: PathBuf, fresh: bool) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, fresh)).await?
    }

    fn open_blocking(path: &Path, fresh: bool) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::CreateDir { path: parent.to_path_buf(), source })?;
        }
        let open = |path: &Path| -> Result<Connection, StoreError> {
            let conn = Connection::open(path)
                .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            Ok(conn)
        };

        let writer = open(path)?;
        // WAL lets the reader connection see committed rows while the writer writes;
        // `synchronous = NORMAL` is durable across application crashes in WAL mode and
        // avoids an fsync per batch.
        let _mode: String = writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        // Every stored message runs about twenty distinct statements (the identity graph);
        // rusqlite's default cache of 16 would re-prepare them all the time.
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // The graph's lookups land on random pages of several indexes; a larger page
        // cache than SQLite's 2 MB default keeps them in memory (negative = KiB).
        writer.pragma_update(None, "cache_size", -CACHE_KIB)?;
        // Checkpoint every ~40 MB of WAL rather than 4 MB: the graph rewrites the same
        // device and identity pages batch after batch, and a later checkpoint copies each
        // page once (+30% ingest in threadline-loadgen).
        writer.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        if fresh {
            // Dropping (rather than deleting rows) also discards a schema left by an
            // older version of the collector.
            writer.execute_batch("DROP TABLE IF EXISTS events;")?;
            for table in crate::graph::TABLES {
                writer.execute_batch(&format!("DROP TABLE IF EXISTS {table};"))?;
            }
        }
        let mut writer = writer;
        writer.execute_batch(SCHEMA)?;
        crate::graph::migrate(&mut writer)?;

        let reader = open(path)?;
        reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { writer: Arc::new(Mutex::new(writer)), reader: Arc::new(Mutex::new(reader)) })
    }

    /// Stores `messages` in one transaction, skipping already stored `messageId`s, and
    /// links each newly stored one into the identity graph (see [`crate::graph`]) in the
    /// same transaction: a duplicate changes nothing, a failure leaves nothing half done.
    pub async fn insert_batch(&self, messages: Vec<NewMessage>) -> Result<InsertOutcome, StoreError> {
        if messages.is_empty() {
            return Ok(InsertOutcome::default());
        }
        run(&self.writer, move |conn| {
            let tx = conn.transaction()?;
            let (received_at, received_ms): (String, i64) = tx.query_row(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                        CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let mut outcome = InsertOutcome::default();
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO events
                        (message_id, type, event, anonymous_id, user_id, timestamp, received_at, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                let mut set_person =
                    tx.prepare_cached("UPDATE events SET person_id = ?1, ts_ms = ?2 WHERE id = ?3")?;
                for message in &messages {
                    let inserted = insert.execute(params![
                        message.message_id,
                        message.kind,
                        message.event,
                        message.anonymous_id,
                        message.user_id,
                        message.timestamp,
                        received_at,
                        message.json,
                    ])?;
                    if inserted == 0 {
                        outcome.duplicates += 1;
                        continue;
                    }
                    outcome.accepted += 1;
                    let row = tx.last_insert_rowid();
                    // Validated as a JSON object by ingest; a failure here is a bug, not bad input.
                    let value: Value = serde_json::from_str(&message.json)
                        .map_err(|_| StoreError::CorruptRow { id: row })?;
                    let ts = crate::graph::message_time(&value).unwrap_or(received_ms);
                    let person = crate::graph::apply(&tx, &value, &message.message_id, ts)?;
                    set_person.execute(params![person, ts, row])?;
                }
            }
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    /// Stored messages in receive order, each the original JSON object plus
    /// `receivedAt` (server time, RFC 3339 UTC) and `rowid` (for `?after=` paging).
    pub async fn events(&self, query: EventQuery) -> Result<Vec<Value>, StoreError> {
        run(&self.reader, move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, received_at, json FROM events
                 WHERE id > ?1
                   AND (?2 IS NULL OR type = ?2)
                   AND (?3 IS NULL OR event = ?3)
                   AND (?4 IS NULL OR anonymous_id = ?4)
                 ORDER BY id
                 LIMIT ?5",
            )?;
            let rows = statement.query_map(
                params![query.after, query.kind, query.event, query.anonymous_id, query.limit],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
            )?;
            let mut events = Vec::new();
            for row in rows {
                let (id, received_at, json) = row?;
                let mut object: Map<String, Value> =
                    serde_json::from_str(&json).map_err(|_| StoreError::CorruptRow { id })?;
                object.insert("receivedAt".to_owned(), Value::String(received_at));
                object.insert("rowid".to_owned(), Value::from(id));
                events.push(Value::Object(object));
            }
            Ok(events)
        })
        .await
    }

    /// Number of distinct stored messages.
    pub async fn count(&self) -> Result<u64, StoreError> {
        run(&self.reader, |conn| {
            let count: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }

    /// Deletes every stored message and the identity graph.
    pub async fn clear(&self) -> Result<(), StoreError> {
        run(&self.writer, |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM events", [])?;
            for table in crate::graph::TABLES {
                tx.execute(&format!("DELETE FROM {table}"), [])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Runs `f` on the read connection, on the blocking pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run(&self.reader, f).await
    }

    /// Runs `f` on the write connection, on the blocking pool.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run(&self.writer, f).await
    }
}

/// Runs `f` with the connection behind `conn` on the blocking pool.
async fn run<T, F>(conn: &Arc<Mutex<Connection>>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        // A panic while the lock was held cannot leave a half-done transaction behind:
        // rusqlite rolls back a transaction when it is dropped.
        let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    })
    .await?
}
