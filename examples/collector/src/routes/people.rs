//! The person API of the activity hub: search, one person, erasure.
//!
//! Personal data is never open: without `--admin-token` these routes answer 403, and
//! with one they need `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::admin::constant_time_eq;
use super::profile::now_millis;
use super::{error_json, AppState};
use crate::people::{self, DEFAULT_TIMELINE_LIMIT};

/// Most timeline entries one request returns.
const MAX_TIMELINE_LIMIT: u32 = 10_000;

/// `?q=` of the search.
#[derive(Debug, Deserialize)]
pub(super) struct SearchParams {
    #[serde(default)]
    q: String,
}

/// `?limit=` of a person.
#[derive(Debug, Deserialize)]
pub(super) struct PersonParams {
    limit: Option<u32>,
}

/// A refused request: its status and error text.
type Refusal = (StatusCode, &'static str);

/// Refuses the request unless a hub token (or the admin token) is configured and presented.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(expected) = &state.hub_token else {
        return Err((StatusCode::FORBIDDEN, "set --hub-token or --admin-token to use the activity hub"));
    };
    match super::bearer(headers) {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, "missing or invalid admin token")),
    }
}

/// `GET /admin/api/search?q=`.
pub(super) async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    if let Err((status, text)) = authorize(&state, &headers) {
        return error_json(status, text);
    }
    let q = params.map(|Query(p)| p.q).unwrap_or_default();
    match state.store.read(move |conn| people::search(conn, &q)).await {
        Ok(people) => Json(json!({ "people": people })).into_response(),
        Err(error) => super::ApiError::from(error).into_response(),
    }
}

/// `GET /admin/api/people/<id>`.
pub(super) async fn get_person(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<PersonParams>, QueryRejection>,
) -> Response {
    if let Err((status, text)) = authorize(&state, &headers) {
        return error_json(status, text);
    }
    let limit =
        params.ok().and_then(|Query(p)| p.limit).unwrap_or(DEFAULT_TIMELINE_LIMIT).min(MAX_TIMELINE_LIMIT);
    let found = state
        .store
        .read(move |conn| {
            let Some(view) = people::person_view(conn, &id, limit)? else { return Ok(None) };
            let profile = people::build_profile(conn, Some(&id), &[])?;
            Ok(Some((view, profile)))
        })
        .await;
    let (mut view, profile) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return error_json(StatusCode::NOT_FOUND, "no such person"),
        Err(error) => return super::ApiError::from(error).into_response(),
    };
    let evaluated = tokio::task::spawn_blocking(move || state.rules.evaluate(&profile, now_millis())).await;
    match evaluated {
        Ok((audiences, revision)) => {
            view.audiences = audiences;
            view.revision = revision;
            Json(view).into_response()
        }
        Err(error) => super::ApiError::from(error).into_response(),
    }
}

/// `DELETE /admin/api/people/<id>`: the right to erasure.
pub(super) async fn delete_person(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, text)) = authorize(&state, &headers) {
        return error_json(status, text);
    }
    match state.store.write(move |conn| Ok(crate::graph::erase(conn, &id)?)).await {
        Ok(Some(removed)) => Json(json!({ "removed": removed })).into_response(),
        Ok(None) => error_json(StatusCode::NOT_FOUND, "no such person"),
        Err(error) => super::ApiError::from(error).into_response(),
    }
}
