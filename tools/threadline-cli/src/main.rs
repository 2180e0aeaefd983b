//! `threadline`: makes signing keys, checks rules artifacts and signs them.
//!
//! A check runs the same gates as the SDK (the JSON Schema for structure, the
//! core's own loader for everything a schema cannot see, the signature over
//! the exact bytes), so an artifact that passes here is one every SDK loads,
//! and `sign` never produces a signature for one that would be rejected.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use ed25519_dalek::{Signer as _, SigningKey};
use sdk_core::artifact::{self, Artifact, ArtifactError, Limits};
use serde_json::Value;

/// Embedded so the binary checks against the schema it was built with,
/// wherever it runs.
const SCHEMA: &str = include_str!("../../../docs/artifact.schema.json");

const SEED_LEN: usize = 32;
const PUBLIC_KEY_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;

#[derive(Parser)]
#[command(name = "threadline", version, about = "Sign and check Threadline rules artifacts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make an Ed25519 key pair; writes the private seed, prints the public key (`rules.publicKey`).
    Keygen {
        /// Where to write the private key (base64 seed); never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key (base64) of a private key file.
    Pubkey {
        #[arg(long)]
        key: PathBuf,
    },
    /// Check an artifact, then write its detached signature (default `<artifact>.sig`).
    Sign {
        #[arg(long)]
        key: PathBuf,
        artifact: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check an artifact against the schema, the SDK's loader and (with a key) its signature.
    Check {
        artifact: PathBuf,
        /// Signature file (default `<artifact>.sig`); only read with `--public-key`.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Base64 Ed25519 public key, as configured in the SDK (`rules.publicKey`).
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{} already exists; refusing to overwrite a key", path.display())]
    Exists { path: PathBuf },
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
    #[error("{what} is not valid base64: {source}")]
    Base64 { what: String, source: base64::DecodeError },
    #[error("{what} is {len} bytes; {expected}")]
    Length { what: String, len: usize, expected: &'static str },
    #[error("public key is not a valid Ed25519 point")]
    BadPublicKey,
    #[error("schema: {pointer}: {message}")]
    Schema { pointer: String, message: String },
    /// Only if the embedded schema itself is broken, which a test rules out.
    #[error("embedded schema is unusable: {0}")]
    BadSchema(String),
    #[error("artifact rejected by the SDK loader: {0}")]
    Artifact(ArtifactError),
    #[error("signature: {0}")]
    Signature(ArtifactError),
    #[error("signature {}: file not found (the SDK rejects an unsigned artifact when a key is configured)", path.display())]
    MissingSignature { path: PathBuf },
    #[error("{} failed the check; not signing it", path.display())]
    RefuseToSign { path: PathBuf },
}

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with 2.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::Pubkey { key } => pubkey(&key),
        Command::Sign { key, artifact, out } => sign(&key, &artifact, out),
        Command::Check { artifact, signature, public_key } => {
            check_cmd(&artifact, signature, public_key.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            let mut err = io::stderr().lock();
            for e in errors {
                let _ = writeln!(err, "error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

type Outcome = Result<(), Vec<CliError>>;

fn one(e: CliError) -> Vec<CliError> {
    vec![e]
}

fn out(line: &str) {
    // A closed stdout (`| head`) is not worth a panic.
    let _ = writeln!(io::stdout().lock(), "{line}");
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|source| CliError::Read { path: path.to_owned(), source })
}

/// Keys and signatures travel as text files and shell arguments, where a
/// trailing newline or stray spaces are normal.
fn decode<const N: usize>(text: &[u8], what: &str, expected: &'static str) -> Result<[u8; N], CliError> {
    let trimmed = text.trim_ascii();
    let bytes = B64.decode(trimmed).map_err(|source| CliError::Base64 { what: what.to_owned(), source })?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| CliError::Length { what: what.to_owned(), len, expected })
}

fn load_key(path: &Path) -> Result<SigningKey, CliError> {
    let what = format!("private key {}", path.display());
    let seed: [u8; SEED_LEN] = decode(&read(path)?, &what, "an Ed25519 private key seed is 32 bytes")?;
    Ok(SigningKey::from_bytes(&seed))
}

fn public_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().as_bytes())
}

fn keygen(path: &Path) -> Outcome {
    let mut rng = rand_core::OsRng;
    // `SigningKey::generate` would panic if the OS source failed; draw the seed ourselves.
    let mut seed = [0u8; SEED_LEN];
    rand_core::RngCore::try_fill_bytes(&mut rng, &mut seed)
        .map_err(|e| one(CliError::Random(e.to_string())))?;
    let key = SigningKey::from_bytes(&seed);
    write_new_secret(path, format!("{}\n", B64.encode(seed)).as_bytes()).map_err(one)?;
    out(&public_b64(&key));
    Ok(())
}

/// `create_new` makes the existence check and the creation one step, so a
/// key that appears in between is not overwritten either; 0600 because the
/// file is the signing authority for every device.
fn write_new_secret(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => CliError::Exists { path: path.to_owned() },
        _ => CliError::Write { path: path.to_owned(), source },
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| CliError::Write { path: path.to_owned(), source })
}

fn pubkey(path: &Path) -> Outcome {
    let key = load_key(path).map_err(one)?;
    out(&public_b64(&key));
    Ok(())
}

fn default_sig_path(artifact: &Path) -> PathBuf {
    let mut s = artifact.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

fn sign(key_path: &Path, artifact_path: &Path, out_path: Option<PathBuf>) -> Outcome {
    let key = load_key(key_path).map_err(one)?;
    let bytes = read(artifact_path).map_err(one)?;
    if let Err(mut errors) = check_bytes(&bytes) {
        errors.push(CliError::RefuseToSign { path: artifact_path.to_owned() });
        return Err(errors);
    }
    let signature = key.sign(&bytes).to_bytes();
    // The SDK verifies strictly; prove this signature passes the same check.
    artifact::verify(&bytes, &signature, key.verifying_key().as_bytes())
        .map_err(|e| one(CliError::Signature(e)))?;
    let sig_path = out_path.unwrap_or_else(|| default_sig_path(artifact_path));
    fs::write(&sig_path, format!("{}\n", B64.encode(signature)))
        .map_err(|source| one(CliError::Write { path: sig_path.clone(), source }))?;
    out(&format!("signed {} -> {}", artifact_path.display(), sig_path.display()));
    out(&format!("public key: {}", public_b64(&key)));
    Ok(())
}

fn check_cmd(artifact_path: &Path, signature: Option<PathBuf>, public_key: Option<&str>) -> Outcome {
    let bytes = read(artifact_path).map_err(one)?;
    let mut errors = Vec::new();
    let summary = match check_bytes(&bytes) {
        Ok(summary) => Some(summary),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let sig_line = match public_key {
        None => Some("signature: not checked (no --public-key)".to_owned()),
        Some(key) => {
            let sig_path = signature.unwrap_or_else(|| default_sig_path(artifact_path));
            match check_signature(&bytes, &sig_path, key) {
                Ok(()) => Some(format!("signature: valid ({})", sig_path.display())),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    out(&format!("ok: {}", artifact_path.display()));
    for line in summary.into_iter().flatten().chain(sig_line) {
        out(&line);
    }
    Ok(())
}

fn check_signature(bytes: &[u8], sig_path: &Path, key_b64: &str) -> Result<(), CliError> {
    let key: [u8; PUBLIC_KEY_LEN] =
        decode(key_b64.as_bytes(), "public key", "an Ed25519 public key is 32 bytes")?;
    if ed25519_dalek::VerifyingKey::from_bytes(&key).is_err() {
        return Err(CliError::BadPublicKey);
    }
    let text = match fs::read(sig_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::MissingSignature { path: sig_path.to_owned() })
        }
        Err(source) => return Err(CliError::Read { path: sig_path.to_owned(), source }),
    };
    let what = format!("signature {}", sig_path.display());
    let sig: [u8; SIGNATURE_LEN] = decode(&text, &what, "an Ed25519 signature is 64 bytes")?;
    artifact::verify(bytes, &sig, &key).map_err(CliError::Signature)
}

/// Schema first, then the SDK's loader; both run so that one pass names
/// every problem the schema sees plus the first one the loader sees.
/// Returns the summary lines.
fn check_bytes(bytes: &[u8]) -> Result<Vec<String>, Vec<CliError>> {
    let mut errors = schema_errors(bytes);
    let parsed = Artifact::parse(bytes, &Limits::default());
    if let Err(e) = &parsed {
        errors.push(CliError::Artifact(e.clone()));
    }
    match parsed {
        Ok(artifact) if errors.is_empty() => {
            // The loader accepted it, so the document is JSON of the expected shape.
            let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            Ok(summary(&artifact, &doc))
        }
        _ => Err(errors),
    }
}

fn schema_errors(bytes: &[u8]) -> Vec<CliError> {
    // Not JSON at all: the loader's `Malformed` says so with a position.
    let Ok(instance) = serde_json::from_slice::<Value>(bytes) else { return Vec::new() };
    let validator = match serde_json::from_str::<Value>(SCHEMA)
        .map_err(|e| e.to_string())
        .and_then(|schema| jsonschema::validator_for(&schema).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return vec![CliError::BadSchema(e)],
    };
    validator
        .iter_errors(&instance)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let pointer = if pointer.is_empty() { "/".to_owned() } else { pointer };
            CliError::Schema { pointer, message: e.to_string() }
        })
        .collect()
}

fn summary(artifact: &Artifact, doc: &Value) -> Vec<String> {
    let list = |key: &str| doc.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let id = |v: &Value| v.get("id").and_then(Value::as_str).unwrap_or("?").to_owned();
    let num = |v: &Value, key: &str, default: f64| v.get(key).and_then(Value::as_f64).unwrap_or(default);
    let section = |name: &str, items: Vec<String>| {
        if items.is_empty() {
            format!("{name} (0)")
        } else {
            format!("{name} ({}): {}", items.len(), items.join(", "))
        }
    };

    let placements = list("placements").iter().map(id).collect();
    let offers = list("offers")
        .iter()
        .map(|o| {
            let placement = o.get("placement").and_then(Value::as_str).unwrap_or("?");
            let priority = o.get("priority").and_then(Value::as_i64).unwrap_or(0);
            format!("{} @{placement} p{priority}", id(o))
        })
        .collect();
    let audiences = list("audiences").iter().map(id).collect();
    let experiments = list("experiments")
        .iter()
        .map(|e| {
            let placement = e.get("placement").and_then(Value::as_str).unwrap_or("?");
            let variants = e.get("variants").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let total: f64 = variants.iter().map(|v| num(v, "weight", 0.0)).sum();
            let mut s = format!(
                "{} @{placement} traffic {} holdout {} [",
                id(e),
                num(e, "traffic", 1.0),
                num(e, "holdout", 0.0)
            );
            for (i, v) in variants.iter().enumerate() {
                let weight = num(v, "weight", 0.0);
                let share = if total > 0.0 { weight / total * 100.0 } else { 0.0 };
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(s, "{sep}{} {weight} ({share:.1}%)", id(v));
                if let Some(offer) = v.get("offer").and_then(Value::as_str) {
                    let _ = write!(s, " -> {offer}");
                }
                if v.get("content").is_some() {
                    s.push_str(" +content");
                }
            }
            s.push(']');
            s
        })
        .collect();
    vec![
        format!("revision: {}", artifact.revision.as_deref().unwrap_or("(none)")),
        section("placements", placements),
        section("offers", offers),
        section("audiences", audiences),
        section("experiments", experiments),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    #[test]
    fn embedded_schema_compiles() {
        let schema: serde_json::Value = serde_json::from_str(super::SCHEMA).unwrap();
        jsonschema::validator_for(&schema).unwrap();
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
