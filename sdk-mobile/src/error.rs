//! The one error type the bindings see (`ThreadlineException` in Kotlin,
//! `ThreadlineError` in Swift), carrying the core's messages.

use sdk_core::{ConfigError, ConsentError, DecideError, DeliveryError, EventError, RulesError, SyncError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ThreadlineError {
    /// The configuration JSON was refused.
    #[error("invalid configuration: {detail}")]
    InvalidConfig { detail: String },
    /// An event (name, properties, traits or ids) was refused; nothing was
    /// recorded.
    /// `kind` is the cross-platform name (`event.tooLarge`,
    /// `identity.badEmail`, ...), stable while messages may change.
    #[error("invalid event ({kind}): {detail}")]
    InvalidEvent { kind: String, detail: String },
    /// Consent JSON or a TC string was refused; consent did not change.
    /// `kind`: `consent.invalid` or `consent.tcf`.
    #[error("invalid consent ({kind}): {detail}")]
    InvalidConsent { kind: String, detail: String },
    /// The storage directory argument is unusable. Storage failures at run
    /// time are not errors: they are counted in `stats()`.
    #[error("storage: {detail}")]
    Storage { detail: String },
    /// `upload_finished` for an id that is not in flight (reported twice, or
    /// from before a restart).
    #[error("upload {id} is not in flight (already reported, or from before a restart)")]
    UnknownUpload { id: u64 },
    /// `decide` could not answer: `kind` is `decide.unknownPlacement` (not
    /// in the artifact in use) or `decide.invalidContext` (the context is not
    /// a JSON object). Before any artifact is loaded `decide` returns an
    /// empty list instead, as on the web.
    #[error("decide failed ({kind}): {detail}")]
    Decide { kind: String, detail: String },
    /// A rules artifact or its signature was refused (the previous artifact
    /// stays in use), or a rules fetch was reported that is not in flight.
    /// `kind`: `rules.artifact`, `rules.signature`, `rules.cache`,
    /// `rules.unknownFetch`, `rules.publicKey`, `rules.url`.
    #[error("rules refused ({kind}): {detail}")]
    Rules { kind: String, detail: String },
    /// A profile answer was refused (decisions keep what they had) or a
    /// profile fetch was reported that is not in flight. `kind`:
    /// `sync.unauthorized` (401/403: the token is dropped until `identify`
    /// brings a new one), `profile.wrongUser`, `profile.corrupt`, ...,
    /// `sync.unknownFetch`.
    #[error("profile sync failed ({kind}): {detail}")]
    Sync { kind: String, detail: String },
}

impl From<ConfigError> for ThreadlineError {
    fn from(e: ConfigError) -> Self {
        ThreadlineError::InvalidConfig { detail: e.to_string() }
    }
}

impl From<EventError> for ThreadlineError {
    fn from(e: EventError) -> Self {
        ThreadlineError::InvalidEvent { kind: e.kind().to_owned(), detail: e.to_string() }
    }
}

impl From<ConsentError> for ThreadlineError {
    fn from(e: ConsentError) -> Self {
        ThreadlineError::InvalidConsent { kind: e.kind().to_owned(), detail: e.to_string() }
    }
}

impl From<DeliveryError> for ThreadlineError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::UnknownUpload(id) => ThreadlineError::UnknownUpload { id },
        }
    }
}

impl From<DecideError> for ThreadlineError {
    fn from(e: DecideError) -> Self {
        ThreadlineError::Decide { kind: e.kind().to_owned(), detail: e.to_string() }
    }
}

impl From<RulesError> for ThreadlineError {
    fn from(e: RulesError) -> Self {
        ThreadlineError::Rules { kind: e.kind().to_owned(), detail: e.to_string() }
    }
}

impl From<SyncError> for ThreadlineError {
    fn from(e: SyncError) -> Self {
        ThreadlineError::Sync { kind: e.kind().to_owned(), detail: e.to_string() }
    }
}
