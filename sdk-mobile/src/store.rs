//! The native file store: one file per storage slot of the core (queue,
//! identity, device, profile, rules) in the directory the host gives (the app's private
//! files directory, `Context.filesDir` / `Application Support`).
//!
//! Each file is `MAGIC | payload length (u32 LE) | CRC32 of payload (u32 LE)
//! | payload`. Writes go to `<slot>.tmp` in the same directory, are fsynced
//! and then renamed over `<slot>.tl`, so a crash leaves either the old or the
//! new record, never half of one. A file whose header or checksum does not
//! match (or that the core refuses) is renamed to `<slot>.corrupt`, counted
//! and otherwise ignored. Any I/O failure is counted and the SDK carries on
//! from memory: storage problems never reach the host as a panic or an error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

const MAGIC: &[u8; 4] = b"TLs1";
const HEADER: usize = 12;
/// A record larger than this is not ours (the core caps its snapshots far
/// below); refuse it rather than allocate it.
const MAX_RECORD: u64 = 64 * 1024 * 1024;

/// The core's storage slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Queue,
    Identity,
    Device,
    /// The on-device interest profile (personalization only).
    Profile,
    /// The cached rules artifact, so decisions work offline at the next start.
    Rules,
}

impl Slot {
    pub const ALL: [Slot; 5] = [Slot::Queue, Slot::Identity, Slot::Device, Slot::Profile, Slot::Rules];

    pub fn stem(self) -> &'static str {
        match self {
            Slot::Queue => "queue",
            Slot::Identity => "identity",
            Slot::Device => "device",
            Slot::Profile => "profile",
            Slot::Rules => "rules",
        }
    }
}

/// Counters of the file store, reported next to the core's in `stats()`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// False once a directory could not be created or a write failed (the
    /// SDK then runs from memory); true again after a successful write.
    pub storage_available: bool,
    /// Reads, writes, renames or removals that failed.
    pub storage_failures: u64,
    /// Stored files that were unreadable (bad header or checksum, or refused
    /// by the core) and were moved aside as `*.corrupt`.
    pub corrupt_files: u64,
    /// Records written to disk.
    pub writes: u64,
    /// The last storage error, for diagnostics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_storage_error: Option<String>,
}

#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    pub stats: StoreStats,
}

impl FileStore {
    /// Opens (creating it if needed) the directory. Never fails: an unusable
    /// directory leaves the store in memory-only mode, counted.
    pub fn open(dir: &Path) -> FileStore {
        let mut s = FileStore { dir: dir.to_path_buf(), stats: StoreStats::default() };
        match fs::create_dir_all(dir) {
            Ok(()) if dir.is_dir() => s.stats.storage_available = true,
            Ok(()) => s.fail(io::Error::other("storage path is not a directory")),
            Err(e) => s.fail(e),
        }
        s
    }

    pub fn path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("{}.tl", slot.stem()))
    }

    fn tmp_path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("{}.tmp", slot.stem()))
    }

    pub fn corrupt_path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("{}.corrupt", slot.stem()))
    }

    fn fail(&mut self, e: io::Error) {
        self.stats.storage_failures += 1;
        self.stats.storage_available = false;
        self.stats.last_storage_error = Some(e.to_string());
    }

    /// The stored record of `slot`, if there is a valid one. A corrupt file
    /// is quarantined and reads as absent.
    pub fn read(&mut self, slot: Slot) -> Option<Vec<u8>> {
        let path = self.path(slot);
        let raw = match read_limited(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                self.quarantine(slot);
                return None;
            }
            Err(e) => {
                self.fail(e);
                return None;
            }
        };
        match decode(&raw) {
            Some(payload) => Some(payload.to_vec()),
            None => {
                self.quarantine(slot);
                None
            }
        }
    }

    /// Moves the file of `slot` aside as `<slot>.corrupt` (replacing an
    /// older one) and counts it.
    pub fn quarantine(&mut self, slot: Slot) {
        self.stats.corrupt_files += 1;
        if let Err(e) = fs::rename(self.path(slot), self.corrupt_path(slot)) {
            if e.kind() != io::ErrorKind::NotFound {
                self.fail(e);
                // Do not read the same bad file at every start.
                let _ = fs::remove_file(self.path(slot));
            }
        }
    }

    /// Atomically replaces the record of `slot`; false if it failed
    /// (counted).
    pub fn write(&mut self, slot: Slot, payload: &[u8]) -> bool {
        match self.try_write(slot, payload) {
            Ok(()) => {
                self.stats.writes += 1;
                self.stats.storage_available = true;
                true
            }
            Err(e) => {
                let _ = fs::remove_file(self.tmp_path(slot));
                self.fail(e);
                false
            }
        }
    }

    fn try_write(&self, slot: Slot, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("record too large"))?;
        let mut buf = Vec::with_capacity(HEADER + payload.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        buf.extend_from_slice(payload);
        if !self.stats.storage_available {
            // The directory may have been missing or deleted (app data
            // cleared while running): try to bring it back.
            fs::create_dir_all(&self.dir)?;
        }
        let tmp = self.tmp_path(slot);
        {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.path(slot))?;
        self.sync_dir();
        Ok(())
    }

    /// Makes a rename or removal durable. Best effort: not every platform
    /// lets a directory be opened and synced.
    fn sync_dir(&self) {
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }

    pub fn remove(&mut self, slot: Slot) {
        self.remove_path(&self.path(slot));
    }

    fn remove_path(&mut self, path: &Path) {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.fail(e),
        }
    }

    /// `analytics` was denied: every file this SDK keeps goes, quarantined
    /// and temporary ones included (they may hold identifiers). The device
    /// record goes last, so personal data is gone first if the process dies
    /// half-way.
    pub fn wipe(&mut self) {
        for slot in [Slot::Queue, Slot::Identity, Slot::Profile, Slot::Rules, Slot::Device] {
            let paths = [self.tmp_path(slot), self.corrupt_path(slot), self.path(slot)];
            for p in paths {
                self.remove_path(&p);
            }
        }
        self.sync_dir();
    }
}

fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_RECORD {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "stored record too large"));
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(MAX_RECORD).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The payload of a stored record, or `None` if the header or checksum is
/// wrong.
fn decode(raw: &[u8]) -> Option<&[u8]> {
    let (magic, rest) = raw.split_first_chunk::<4>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let (crc, payload) = rest.split_first_chunk::<4>()?;
    if magic != MAGIC || usize::try_from(u32::from_le_bytes(*len)).ok()? != payload.len() {
        return None;
    }
    (crc32fast::hash(payload) == u32::from_le_bytes(*crc)).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("tl-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut s = FileStore::open(&dir);
        assert!(s.stats.storage_available);
        assert_eq!(s.read(Slot::Queue), None);
        s.write(Slot::Queue, b"hello");
        assert_eq!(s.read(Slot::Queue).as_deref(), Some(&b"hello"[..]));
        // Flip one payload byte: the checksum catches it.
        let mut raw = fs::read(s.path(Slot::Queue)).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        fs::write(s.path(Slot::Queue), &raw).unwrap();
        assert_eq!(s.read(Slot::Queue), None);
        assert_eq!(s.stats.corrupt_files, 1);
        assert!(s.corrupt_path(Slot::Queue).exists());
        assert!(!s.path(Slot::Queue).exists());
        // Truncated header.
        fs::write(s.path(Slot::Device), b"TLs").unwrap();
        assert_eq!(s.read(Slot::Device), None);
        assert_eq!(s.stats.corrupt_files, 2);
        s.write(Slot::Identity, b"x");
        s.write(Slot::Profile, b"p");
        s.write(Slot::Rules, b"r");
        s.wipe();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn decode_rejects_length_mismatch() {
        let mut raw = Vec::new();
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&5u32.to_le_bytes());
        raw.extend_from_slice(&crc32fast::hash(b"abc").to_le_bytes());
        raw.extend_from_slice(b"abc");
        assert_eq!(decode(&raw), None);
    }
}
