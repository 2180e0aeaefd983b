//! Run-time configuration of the collector and the command line that fills it.
//!
//! [`Config`] is what the library needs; [`Cli`] is only the clap front end of the
//! binary. Keeping them apart lets tests build a `Config` directly (port 0, a temporary
//! database) without going through argument parsing.

use std::path::PathBuf;

use clap::Parser;

use crate::faults::{DropPhase, FaultSettings};

/// Write key accepted when none is configured: the demo page and the examples use it.
pub const DEFAULT_WRITE_KEY: &str = "demo-write-key";

/// Default limit on a request body as received on the wire (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1_048_576;

/// Default TCP port; 0 asks the OS for a free one.
pub const DEFAULT_PORT: u16 = 8787;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No write key would ever authenticate a batch.
    #[error("at least one write key is required")]
    NoWriteKeys,
    /// An empty write key would match clients that send `Basic Og==` (no key at all).
    #[error("write keys must not be empty")]
    EmptyWriteKey,
    /// A zero limit would reject every batch.
    #[error("--max-body-bytes must be greater than 0")]
    ZeroBodyLimit,
    /// A directory to serve does not exist or is not a directory.
    #[error("{flag} {path} is not a directory")]
    NotADirectory {
        /// The flag that named it.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// An empty admin token would make `Authorization: Bearer ` pass.
    #[error("--admin-token must not be empty")]
    EmptyAdminToken,
    /// An empty hub token would make `Authorization: Bearer ` pass.
    #[error("--hub-token must not be empty")]
    EmptyHubToken,
    /// An empty secret would let anyone mint user tokens.
    #[error("--profile-secret must not be empty")]
    EmptyProfileSecret,
}

/// Everything [`crate::start`] needs to run a collector.
#[derive(Debug, Clone)]
pub struct Config {
    /// Interface to bind: an IP address or a host name (`127.0.0.1` by default).
    pub host: String,
    /// Port to bind; 0 picks a free port (see [`crate::RunningServer::addr`]).
    pub port: u16,
    /// SQLite database file; created with its parent directory if missing.
    pub db_path: PathBuf,
    /// Delete all stored events at start.
    pub fresh: bool,
    /// Write keys accepted for `POST /v1/batch`.
    pub write_keys: Vec<String>,
    /// Largest request body accepted on the wire; the decompressed size of a gzip body
    /// may be [`crate::ingest::DECOMPRESSION_FACTOR`] times larger.
    pub max_body_bytes: usize,
    /// Directory served at `/` (e.g. the demo page).
    pub static_dir: Option<PathBuf>,
    /// Directory served at `/npm/` (the built npm package).
    pub npm_dir: Option<PathBuf>,
    /// Fault injection applied to `POST /v1/batch` at start; changeable at run time.
    pub faults: FaultSettings,
    /// Seed of the fault RNG; `None` draws one (it is reported by `GET /admin/faults`).
    pub seed: Option<u64>,
    /// When set, `/admin/*` requires `Authorization: Bearer <token>`; the person API
    /// (`/admin/api/*`) is only served when it is set.
    pub admin_token: Option<String>,
    /// Secret shared with the sites' back ends that issue user tokens; without it
    /// `GET /v1/profile` answers 404.
    pub profile_secret: Option<String>,
    /// Rules artifact the audiences of served profiles are evaluated with
    /// (`<path>.sig` beside it is its signature).
    pub profile_rules: Option<PathBuf>,
    /// Base64 Ed25519 public key that the rules artifact must be signed with.
    pub rules_public_key: Option<String>,
    /// Serve `GET /demo/token?userId=`: a user token for anyone who asks. Only for the
    /// demo shop, which has no back end of its own to issue them; never in production.
    pub demo_tokens: bool,
    /// Token of the activity hub and the person API (`/hub`, `/admin/api/*`) when it should
    /// differ from `admin_token` (the demo keeps the fault controls open but people's data
    /// closed). Without either, the person API is refused.
    pub hub_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            db_path: default_db_path(),
            fresh: false,
            write_keys: vec![DEFAULT_WRITE_KEY.to_owned()],
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            static_dir: None,
            npm_dir: None,
            faults: FaultSettings::default(),
            seed: None,
            admin_token: None,
            profile_secret: None,
            profile_rules: None,
            rules_public_key: None,
            demo_tokens: false,
            hub_token: None,
        }
    }
}

impl Config {
    /// Checks the parts that do not depend on other modules; fault settings are checked
    /// by [`crate::faults::FaultInjector::new`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.write_keys.is_empty() {
            return Err(ConfigError::NoWriteKeys);
        }
        if self.write_keys.iter().any(String::is_empty) {
            return Err(ConfigError::EmptyWriteKey);
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::ZeroBodyLimit);
        }
        if self.hub_token.as_deref() == Some("") {
            return Err(ConfigError::EmptyHubToken);
        }
        if self.admin_token.as_deref() == Some("") {
            return Err(ConfigError::EmptyAdminToken);
        }
        if self.profile_secret.as_deref() == Some("") {
            return Err(ConfigError::EmptyProfileSecret);
        }
        for (flag, dir) in [("--static-dir", &self.static_dir), ("--npm-dir", &self.npm_dir)] {
            if let Some(path) = dir {
                if !path.is_dir() {
                    return Err(ConfigError::NotADirectory { flag, path: path.clone() });
                }
            }
        }
        Ok(())
    }
}

/// `<system temp dir>/threadline-collector.sqlite`: outside the repository, so a demo
/// run never leaves data in the working tree.
pub fn default_db_path() -> PathBuf {
    std::env::temp_dir().join("threadline-collector.sqlite")
}

/// Command line of the `threadline-collector` binary.
#[derive(Debug, Parser)]
#[command(
    name = "threadline-collector",
    version,
    about = "Reference collector for Threadline: receives Segment-spec batches, stores them in SQLite, injects faults for tests.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Without a subcommand the collector runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Interface to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind; 0 picks a free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// SQLite database file [default: <system temp dir>/threadline-collector.sqlite].
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Delete existing data at start.
    #[arg(long)]
    pub fresh: bool,
    /// Accepted write key; repeat for several.
    #[arg(long = "write-key", default_value = DEFAULT_WRITE_KEY)]
    pub write_keys: Vec<String>,
    /// Largest request body on the wire; larger bodies get 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Directory served at `/`.
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    /// Directory served at `/npm/`.
    #[arg(long)]
    pub npm_dir: Option<PathBuf>,
    /// Fraction of batch requests answered with a 5xx (500/502/503/504).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of batch requests answered with 429 and `Retry-After`.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit_rate: f64,
    /// Seconds sent in `Retry-After` with an injected 429.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Delay added before answering a batch request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra delay, uniform in 0..=N ms, added to --latency-ms.
    #[arg(long, default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Fraction of batch requests whose connection is closed without any response.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// When a dropped request is dropped: before storing its events, after, or either.
    #[arg(long, value_enum, default_value_t = DropPhase::Mixed)]
    pub drop_phase: DropPhase,
    /// Seed of the fault RNG [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Require `Authorization: Bearer <token>` on /admin/* endpoints (and enable the
    /// person API under /admin/api/).
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Secret of the user tokens accepted by GET /v1/profile (shared with the back ends
    /// that issue them).
    #[arg(long, env = "THREADLINE_PROFILE_SECRET", hide_env_values = true)]
    pub profile_secret: Option<String>,
    /// Rules artifact (JSON) whose audiences served profiles are evaluated against;
    /// re-read when it changes.
    #[arg(long)]
    pub profile_rules: Option<PathBuf>,
    /// Base64 Ed25519 public key the rules artifact must be signed with (`<file>.sig`).
    #[arg(long)]
    pub rules_public_key: Option<String>,
    /// Demo only: serve GET /demo/token?userId= (a user token for anyone who asks),
    /// standing in for the demo shop's missing back end. Needs --profile-secret.
    #[arg(long)]
    pub demo_tokens: bool,
    /// Bearer token of the activity hub and the person API (/admin/api/*), when it should
    /// differ from --admin-token [default: the admin token].
    #[arg(long)]
    pub hub_token: Option<String>,
}

/// Subcommands of the binary.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a user token for GET /v1/profile, as a site's back end would issue it.
    IssueToken {
        /// The shared secret (as given to --profile-secret).
        #[arg(long, env = "THREADLINE_PROFILE_SECRET", hide_env_values = true)]
        secret: String,
        /// The user id the token is for.
        #[arg(long)]
        user: String,
        /// Lifetime of the token.
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: u64,
    },
}

impl Cli {
    /// Turns parsed arguments into a [`Config`].
    pub fn into_config(self) -> Config {
        Config {
            host: self.host,
            port: self.port,
            db_path: self.db.unwrap_or_else(default_db_path),
            fresh: self.fresh,
            write_keys: self.write_keys,
            max_body_bytes: self.max_body_bytes,
            static_dir: self.static_dir,
            npm_dir: self.npm_dir,
            faults: FaultSettings {
                fail_rate: self.fail_rate,
                rate_limit_rate: self.rate_limit_rate,
                retry_after_secs: self.retry_after_secs,
                latency_ms: self.latency_ms,
                latency_jitter_ms: self.latency_jitter_ms,
                drop_rate: self.drop_rate,
                drop_phase: self.drop_phase,
            },
            seed: self.seed,
            admin_token: self.admin_token,
            profile_secret: self.profile_secret,
            profile_rules: self.profile_rules,
            rules_public_key: self.rules_public_key,
            demo_tokens: self.demo_tokens,
            hub_token: self.hub_token,
        }
    }
}
