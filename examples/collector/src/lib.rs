//! Threadline reference collector.
//!
//! An HTTP server that receives Segment-spec batches (`POST /v1/batch`) from the
//! Threadline SDKs, de-duplicates them by `messageId` into SQLite, and serves them back
//! (`GET /events`, `GET /stats`) to the web demo, to end-to-end tests and to
//! benchmarks. It can misbehave on demand (5xx, 429, latency, connections dropped
//! before or after storing) so tests can prove that no event is lost.
//!
//! ```no_run
//! # async fn demo() -> Result<(), threadline_collector::Error> {
//! let config = threadline_collector::Config { port: 0, ..Default::default() };
//! let server = threadline_collector::start(config).await?;
//! println!("collector at {}", server.url());
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod faults;
mod graph;
pub mod ingest;
pub mod people;
mod routes;
pub mod server;
pub mod stats;
pub mod store;
pub mod token;

use std::sync::Arc;

pub use config::{Cli, Config, ConfigError};
pub use faults::{DropPhase, FaultError, FaultSettings};
pub use graph::Removed;
pub use people::RulesError;
pub use server::{RunningServer, ServerError};
pub use store::StoreError;

/// Why the collector could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The initial fault settings are out of range.
    #[error("invalid fault settings: {0}")]
    Faults(#[from] FaultError),
    /// The rules artifact for served profiles is unusable.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {host}:{port}: {source}")]
    Bind {
        /// Host as configured.
        host: String,
        /// Port as configured.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server task failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Opens the database, binds the listener and starts serving in the background.
///
/// Returns once the socket is bound, so a client may connect immediately to
/// [`RunningServer::addr`]. Must be called within a tokio runtime.
pub async fn start(config: Config) -> Result<RunningServer, Error> {
    config.validate()?;
    let faults = faults::FaultInjector::new(config.faults.clone(), config.seed)?;
    let fault_seed = faults.seed();
    let rules = people::Rules::new(config.profile_rules.clone(), config.rules_public_key.as_deref())?;
    let store = store::Store::open(config.db_path.clone(), config.fresh).await?;
    let state = Arc::new(routes::AppState {
        store,
        stats: stats::Stats::default(),
        faults,
        write_keys: config.write_keys.clone(),
        max_body_bytes: config.max_body_bytes,
        admin_token: config.admin_token.clone(),
        profile_secret: config.profile_secret.clone(),
        demo_tokens: config.demo_tokens,
        hub_token: config.hub_token.clone().or_else(|| config.admin_token.clone()),
        rules,
    });
    let router = routes::router(state, &config);

    let bind_error = |source| Error::Bind { host: config.host.clone(), port: config.port, source };
    let listener =
        tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(server::spawn(listener, addr, fault_seed, router))
}
