//! The `threadline` binary end to end: keys, signing, and every gate of
//! `check`, run as a user would run it.
//!
//! `cargo test -p threadline-cli`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_threadline");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory per test: tests run in parallel and must not share files.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("threadline-cli-{}-{name}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn copy_shop(&self) -> PathBuf {
        let dst = self.path("shop.json");
        fs::copy(root().join("tests/artifacts/shop.json"), &dst).unwrap();
        dst
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

#[track_caller]
fn assert_fails(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
    let err = stderr(o);
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    assert!(err.lines().all(|l| l.starts_with("error: ")), "stderr:\n{err}");
}

/// Makes a key in `dir` and returns (key file, public key base64).
fn keygen(dir: &TempDir, name: &str) -> (PathBuf, String) {
    let key = dir.path(name);
    let o = run(&["keygen", "--out", s(&key)]);
    assert_ok(&o);
    let public = stdout(&o).trim().to_owned();
    (key, public)
}

fn write_json(dir: &TempDir, name: &str, v: &Value) -> PathBuf {
    let p = dir.path(name);
    fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

fn minimal() -> Value {
    json!({
        "version": 1,
        "bucketing": "murmur3_x86_32/v1",
        "placements": [{"id": "home", "default": {"id": "home-default", "content": null}}]
    })
}

#[test]
fn keygen_sign_check_round_trip() {
    let dir = TempDir::new("roundtrip");
    let (key, public) = keygen(&dir, "signing.key");
    assert_eq!(base64_len(&public), 32, "public key {public:?}");

    let text = fs::read_to_string(&key).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(base64_len(text.trim()), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let o = run(&["pubkey", "--key", s(&key)]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), public);

    let artifact = dir.copy_shop();
    assert_ok(&run(&["sign", "--key", s(&key), s(&artifact)]));
    let sig = dir.path("shop.json.sig");
    let sig_text = fs::read_to_string(&sig).unwrap();
    assert!(sig_text.ends_with('\n'));
    assert_eq!(base64_len(sig_text.trim()), 64);

    let o = run(&["check", s(&artifact), "--public-key", &public]);
    assert_ok(&o);
    let out = stdout(&o);
    for line in [
        "revision: demo-shop-2026-11-24",
        "placements (2): home, hero",
        "offers (5): slacks-discount @home p100",
        "audiences (3): slacks-browsers, recent-buyers, vip",
        "experiments (1): hero-banner-test @hero traffic 1 holdout 0.05 [control 50 (50.0%), sale-banner 50 (50.0%) -> hero-sale]",
        "signature: valid",
    ] {
        assert!(out.contains(line), "summary lacks {line:?}:\n{out}");
    }

    // Whitespace around the key and the signature is accepted; --out and --signature are honoured.
    let other_sig = dir.path("elsewhere.sig");
    assert_ok(&run(&["sign", "--key", s(&key), s(&artifact), "--out", s(&other_sig)]));
    fs::write(&other_sig, format!("  \n{}\r\n\n", fs::read_to_string(&other_sig).unwrap().trim())).unwrap();
    let spaced_key = format!(" {public}\n");
    let o = run(&["check", s(&artifact), "--signature", s(&other_sig), "--public-key", &spaced_key]);
    assert_ok(&o);
}

fn base64_len(text: &str) -> usize {
    // Standard padded base64: 4 characters per 3 bytes.
    assert!(text.len() % 4 == 0, "{text:?}");
    text.len() / 4 * 3 - text.bytes().rev().take_while(|&b| b == b'=').count()
}

#[test]
fn a_changed_byte_breaks_the_signature() {
    let dir = TempDir::new("tamper");
    let (key, public) = keygen(&dir, "k");
    let artifact = dir.copy_shop();
    assert_ok(&run(&["sign", "--key", s(&key), s(&artifact)]));

    let mut bytes = fs::read(&artifact).unwrap();
    let i = bytes.windows(3).position(|w| w == b"100").unwrap();
    bytes[i] = b'2'; // priority 100 -> 200: still a valid artifact
    fs::write(&artifact, &bytes).unwrap();

    assert_ok(&run(&["check", s(&artifact)]));
    let o = run(&["check", s(&artifact), "--public-key", &public]);
    assert_fails(&o, "signature does not match");
}

#[test]
fn a_wrong_key_fails() {
    let dir = TempDir::new("wrongkey");
    let (key, _) = keygen(&dir, "a");
    let (_, other_public) = keygen(&dir, "b");
    let artifact = dir.copy_shop();
    assert_ok(&run(&["sign", "--key", s(&key), s(&artifact)]));
    assert_fails(&run(&["check", s(&artifact), "--public-key", &other_public]), "signature does not match");
}

#[test]
fn a_missing_signature_fails_when_a_key_is_given() {
    let dir = TempDir::new("nosig");
    let (_, public) = keygen(&dir, "k");
    let artifact = dir.copy_shop();
    assert_ok(&run(&["check", s(&artifact)]));
    let o = run(&["check", s(&artifact), "--public-key", &public]);
    assert_fails(&o, "shop.json.sig: file not found");
}

#[test]
fn keys_and_signatures_of_the_wrong_length_are_named() {
    let dir = TempDir::new("lengths");
    let (key, public) = keygen(&dir, "k");
    let artifact = dir.copy_shop();
    assert_ok(&run(&["sign", "--key", s(&key), s(&artifact)]));

    let short_key = &public[..36]; // still valid base64: 27 bytes
    let o = run(&["check", s(&artifact), "--public-key", short_key]);
    assert_fails(&o, "public key is 27 bytes; an Ed25519 public key is 32 bytes");
    assert_fails(
        &run(&["check", s(&artifact), "--public-key", "not base64!"]),
        "public key is not valid base64",
    );

    let sig = dir.path("shop.json.sig");
    fs::write(&sig, "AAAA\n").unwrap();
    assert_fails(
        &run(&["check", s(&artifact), "--public-key", &public]),
        "is 3 bytes; an Ed25519 signature is 64 bytes",
    );

    fs::write(&key, "AAAA\n").unwrap();
    assert_fails(&run(&["pubkey", "--key", s(&key)]), "an Ed25519 private key seed is 32 bytes");
    assert_fails(&run(&["sign", "--key", s(&key), s(&artifact)]), "is 3 bytes");
}

#[test]
fn schema_errors_name_the_pointer() {
    let dir = TempDir::new("schema");
    let mut doc = minimal();
    doc["offers"] = json!([
        {"id": "ok", "placement": "home", "content": 1},
        {"id": "no-content", "placement": "home"}
    ]);
    doc["experiments"] =
        json!([{"id": "e", "placement": "home", "variants": [{"id": "holdout", "weight": 1}]}]);
    let p = write_json(&dir, "a.json", &doc);
    let o = run(&["check", s(&p)]);
    assert_fails(&o, "schema: /offers/1: \"content\" is a required property");
    // Every schema error is reported, not just the first.
    assert_fails(&o, "schema: /experiments/0/variants/0/id");
    // And the loader's own verdict follows.
    assert_fails(
        &o,
        "artifact rejected by the SDK loader: artifact does not match format v1: missing field `content`",
    );
}

#[test]
fn loader_errors_the_schema_cannot_see_are_named() {
    let dir = TempDir::new("parse");

    let mut doc = minimal();
    doc["offers"] =
        json!([{"id": "odd", "placement": "home", "content": 1, "condition": {"frobnicate": [1]}}]);
    let p = write_json(&dir, "op.json", &doc);
    let o = run(&["check", s(&p)]);
    assert_fails(&o, "offer `odd` condition uses unknown operator `frobnicate`");
    assert!(!stderr(&o).contains("schema:"), "{}", stderr(&o));

    let mut doc = minimal();
    doc["offers"] = json!([{"id": "lost", "placement": "basement", "content": 1}]);
    let p = write_json(&dir, "placement.json", &doc);
    assert_fails(&run(&["check", s(&p)]), "offer `lost` refers to unknown placement `basement`");

    let mut doc = minimal();
    doc["offers"] = json!([{"id": "x", "placement": "home", "content": 1}, {"id": "x", "placement": "home", "content": 2}]);
    let p = write_json(&dir, "dup.json", &doc);
    assert_fails(&run(&["check", s(&p)]), "duplicate offer id `x`");

    let p = dir.path("broken.json");
    fs::write(&p, "{\"version\": 1,").unwrap();
    assert_fails(&run(&["check", s(&p)]), "artifact is not valid JSON");
}

#[test]
fn sign_refuses_an_invalid_artifact() {
    let dir = TempDir::new("refuse");
    let (key, _) = keygen(&dir, "k");
    let mut doc = minimal();
    doc["offers"] =
        json!([{"id": "odd", "placement": "home", "content": 1, "condition": {"frobnicate": [1]}}]);
    let p = write_json(&dir, "bad.json", &doc);
    let o = run(&["sign", "--key", s(&key), s(&p)]);
    assert_fails(&o, "unknown operator `frobnicate`");
    assert_fails(&o, "failed the check; not signing it");
    assert!(!dir.path("bad.json.sig").exists());
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = TempDir::new("overwrite");
    let (key, public) = keygen(&dir, "k");
    let before = fs::read(&key).unwrap();
    assert_fails(&run(&["keygen", "--out", s(&key)]), "already exists");
    assert_eq!(fs::read(&key).unwrap(), before);
    assert_eq!(stdout(&run(&["pubkey", "--key", s(&key)])).trim(), public);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["check"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["sign", "x.json"]).status.code(), Some(2));
}

/// The ```json blocks of a Markdown file (same rule as sdk-core's artifact_examples).
fn json_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```json") => cur = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => out.extend(cur.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Schema and loader agree on every example the project ships: `check` runs
/// both, so passing it means neither rejects the file.
#[test]
fn every_shipped_example_passes_schema_and_loader() {
    let mut checked = Vec::new();
    for entry in fs::read_dir(root().join("tests/artifacts")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            assert_ok(&run(&["check", s(&p)]));
            checked.push(p);
        }
    }
    assert!(checked.len() >= 2, "{checked:?}");

    let dir = TempDir::new("docs");
    let md = fs::read_to_string(root().join("docs/artifact.md")).unwrap();
    let complete: Vec<String> = json_blocks(&md)
        .into_iter()
        .filter(|b| serde_json::from_str::<Value>(b).unwrap().get("version").is_some())
        .collect();
    assert!(!complete.is_empty());
    for (i, block) in complete.iter().enumerate() {
        let p = dir.path(&format!("doc-{i}.json"));
        fs::write(&p, block).unwrap();
        assert_ok(&run(&["check", s(&p)]));
    }
}

/// What the SDK reads but the schema once refused: day names in any case.
#[test]
fn schema_accepts_what_the_loader_accepts_in_schedules() {
    let dir = TempDir::new("days");
    let mut doc = minimal();
    doc["offers"] = json!([{"id": "w", "placement": "home", "content": 1,
        "schedule": {"start": "2026-11-01 00:00:00", "end": "2026-12-01T00:00:00.5+01:00",
                     "daysOfWeek": ["Sat", "SUN", "mon"], "timeOfDay": {"from": "22:00", "to": "24:00"}}}]);
    assert_ok(&run(&["check", s(&write_json(&dir, "a.json", &doc))]));

    // And both refuse a lowercase `t` separator, which the loader's RFC 3339 reader does not take.
    doc["offers"][0]["schedule"]["start"] = json!("2026-11-01t00:00:00");
    let o = run(&["check", s(&write_json(&dir, "b.json", &doc))]);
    assert_fails(&o, "schema: /offers/0/schedule/start");
    assert_fails(&o, "bad schedule");
}
