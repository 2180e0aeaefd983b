//! Read endpoints: `GET /events`, `GET /stats`, `GET /healthz`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::stats::StatsSnapshot;
use crate::store::EventQuery;

/// Rows returned when `?limit=` is absent.
const DEFAULT_LIMIT: u32 = 1_000;

/// Most rows one `GET /events` returns; page with `?after=` for more.
const MAX_LIMIT: u32 = 100_000;

/// Query parameters of `GET /events`.
#[derive(Debug, Deserialize)]
pub(super) struct EventsParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    event: Option<String>,
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<String>,
    limit: Option<u32>,
    after: Option<i64>,
}

/// Stored messages in receive order, filtered; see [`crate::store::Store::events`].
pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    params: Result<Query<EventsParams>, QueryRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadQuery(rejection.body_text()))?;
    let query = EventQuery {
        kind: params.kind,
        event: params.event,
        anonymous_id: params.anonymous_id,
        after: params.after.unwrap_or(0),
        limit: params.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
    };
    Ok(Json(state.store.events(query).await?))
}

/// The counters, with `distinct` read from the database.
pub(super) async fn stats(State(state): State<Arc<AppState>>) -> Result<Json<StatsSnapshot>, ApiError> {
    let distinct = state.store.count().await?;
    Ok(Json(state.stats.snapshot(distinct)))
}

/// Liveness probe for scripts waiting on the server.
pub(super) async fn healthz() -> &'static str {
    "ok"
}
