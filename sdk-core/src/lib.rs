//! Threadline's core: the rules for collecting, holding and delivering
//! customer events, shared by the web (WebAssembly) and mobile (UniFFI)
//! bindings so every platform behaves the same.
//!
//! The core is sans-I/O: it never reads a clock, a random source, the
//! network or the disk. Each call takes the current time in milliseconds and,
//! where needed, caller-supplied random bytes, and returns what the binding
//! must perform: an HTTP upload to send, bytes to store, when to call back.
//! See [`Client`] for the loop a binding runs.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

#[cfg(feature = "decide")]
pub mod artifact;
#[cfg(feature = "decide")]
pub mod bucket;
pub mod client;
pub mod config;
pub mod consent;
pub mod context;
#[cfg(feature = "decide")]
pub mod decide;
pub mod delivery;
pub mod event;
pub mod identity;
#[cfg(feature = "decide")]
pub mod logic;
#[cfg(feature = "decide")]
pub mod profile;
mod queue;
pub mod rules;
pub mod snapshot;
pub mod stats;
pub mod sync;
pub mod tcf;
pub mod time;

#[cfg(feature = "decide")]
pub use client::DecideRequest;
pub use client::{Client, ConsentView, IdentityView, Notice, Persist, Store, CONSENT_EVENT};
pub use config::{BatchConfig, Config, ConfigError, Library, Limits, QueueConfig, RetryConfig};
pub use consent::{Choice, Consent, ConsentConfig, ConsentError, ConsentUpdate, TcfConfig, TcfPurposes};
pub use context::{Campaign, Environment, Page};
#[cfg(feature = "decide")]
pub use decide::{DecideError, Decision, Feedback};
pub use delivery::{DeliveryError, NextUpload, Outcome, Transport, Upload};
pub use event::EventError;
pub use identity::{Device, Identity, IdentityConfig, IdentityError, Session};
#[cfg(feature = "decide")]
pub use profile::{ProfileConfig, ProfileError, Remote};
pub use rules::RulesResponse;
#[cfg(feature = "decide")]
pub use rules::{RulesConfig, RulesError, RulesFetch};
pub use snapshot::SnapshotError;
pub use stats::Stats;
pub use sync::ProfileResponse;
#[cfg(feature = "decide")]
pub use sync::{ProfileFetch, SyncConfig, SyncError};
pub use tcf::TcfError;
pub use time::Millis;
