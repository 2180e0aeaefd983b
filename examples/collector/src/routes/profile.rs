//! `GET /v1/profile`: a signed-in person's counters from all their devices, for a device
//! to add to its own (the cross-device profile).
//!
//! The caller proves who it is with a user token from its site's back end (see
//! [`crate::token`]); the collector never trusts a user id on its own.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{error_json, ApiError, AppState};
use crate::people;
use crate::token::{self, TokenError};

/// Serves the profile of `?userId=`, leaving out the `?exclude=` devices.
pub(super) async fn get_profile(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(secret) = state.profile_secret.clone() else {
        return error_json(StatusCode::NOT_FOUND, "profile sync is not configured");
    };
    let mut user_id = None;
    let mut exclude = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "userId" => user_id = Some(value.into_owned()),
            "exclude" => exclude.push(value.into_owned()),
            _ => {}
        }
    }
    let Some(user_id) = user_id.filter(|id| !id.is_empty()) else {
        return error_json(StatusCode::BAD_REQUEST, "userId is required");
    };
    let now = now_millis();
    if let Err(error) = check_token(&headers, secret.as_bytes(), &user_id, now / 1000) {
        let mut response = error_json(StatusCode::UNAUTHORIZED, &error.to_string());
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match serve(state, user_id, exclude, now).await {
        Ok(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

fn check_token(headers: &HeaderMap, secret: &[u8], user_id: &str, now: u64) -> Result<(), TokenError> {
    let presented = super::bearer(headers).ok_or(TokenError::Missing)?;
    token::verify(secret, presented, user_id, now)
}

async fn serve(
    state: Arc<AppState>,
    user_id: String,
    exclude: Vec<String>,
    now: u64,
) -> Result<Vec<u8>, ApiError> {
    let reader = state.store.clone();
    let (profile, user_id) = reader
        .read(move |conn| {
            let person = people::person_of_user(conn, &user_id)?;
            Ok((people::build_profile(conn, person.as_deref(), &exclude)?, user_id))
        })
        .await?;
    // Evaluating audiences may re-read the artifact from disk.
    let body = tokio::task::spawn_blocking(move || {
        let (audiences, revision) = state.rules.evaluate(&profile, now);
        people::remote_json(&profile, &user_id, now, revision.as_deref(), &audiences)
    })
    .await?;
    Ok(body)
}

/// `GET /demo/token?userId=`: what a site's back end does after sign-in, for the demo
/// shop, which has none. Issues a token for any user id to anyone, so it is off unless
/// the collector runs with `--demo-tokens`.
pub(super) async fn demo_token(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let (true, Some(secret)) = (state.demo_tokens, state.profile_secret.as_deref()) else {
        return error_json(StatusCode::NOT_FOUND, "demo tokens are off (--demo-tokens)");
    };
    let user_id = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "userId")
        .map(|(_, v)| v.into_owned())
        .filter(|u| !u.is_empty());
    let Some(user_id) = user_id else {
        return error_json(StatusCode::BAD_REQUEST, "userId is required");
    };
    match token::issue(secret.as_bytes(), &user_id, now_millis() / 1000 + 3600) {
        Ok(t) => {
            let mut response = axum::Json(serde_json::json!({ "userToken": t })).into_response();
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => error_json(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The collector's clock in Unix milliseconds.
pub(super) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
