//! Admin endpoints: change fault injection at run time, reset data and counters.
//!
//! Tests flip faults on and off between steps without restarting the collector, so
//! the SDK under test keeps its connections, queue and timers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::faults::{FaultPatch, FaultSettings};

/// The JSON of `GET`/`POST /admin/faults`.
#[derive(Debug, Serialize)]
pub(super) struct FaultsView {
    #[serde(flatten)]
    settings: FaultSettings,
    /// Seed of the fault RNG, as a string because it may exceed JavaScript's safe
    /// integer range.
    seed: String,
}

/// The current fault settings.
pub(super) async fn get_faults(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<FaultsView>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(view(&state, state.faults.settings())))
}

/// Applies a partial update; an empty body changes nothing.
pub(super) async fn post_faults(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FaultsView>, ApiError> {
    authorize(&state, &headers)?;
    // Parsed regardless of Content-Type so `curl -d '{...}'` works.
    let patch: FaultPatch = if body.iter().all(u8::is_ascii_whitespace) {
        FaultPatch::default()
    } else {
        serde_json::from_slice(&body).map_err(ApiError::BadFaultsJson)?
    };
    let settings = state.faults.update(&patch)?;
    Ok(Json(view(&state, settings)))
}

/// Deletes all stored events and zeroes the counters; fault settings stay.
pub(super) async fn reset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    state.store.clear().await?;
    state.stats.reset();
    Ok(Json(json!({ "success": true })))
}

fn view(state: &AppState, settings: FaultSettings) -> FaultsView {
    FaultsView { settings, seed: state.faults.seed().to_string() }
}

/// Checks `Authorization: Bearer <token>` when an admin token is configured.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Ok(());
    };
    match super::bearer(headers) {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::AdminUnauthorized),
    }
}

/// Compares without an early exit on the first differing byte, so response timing
/// does not reveal how much of a guessed token is right.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
