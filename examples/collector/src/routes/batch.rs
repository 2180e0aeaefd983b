//! `POST /v1/batch`: the Segment-spec ingestion endpoint, with fault injection.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::faults::{DropPoint, FaultAction};
use crate::ingest::{self, Encoding};
use crate::server::ConnectionKiller;
use crate::stats::FaultKind;

/// The acknowledgement of a stored batch.
#[derive(Debug, Serialize)]
pub(crate) struct Ack {
    success: bool,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

/// Handles one batch request: draws its fault, waits the injected latency, and either
/// drops the connection, answers with the injected error, or ingests the batch.
pub(super) async fn post_batch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    state.stats.record_request();
    let decision = state.faults.decide();
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let (parts, body) = request.into_parts();
    let killer = parts.extensions.get::<ConnectionKiller>().cloned();

    if decision.action == FaultAction::Drop(DropPoint::BeforeStore) {
        return drop_connection(&state, killer).await;
    }
    let result = ingest_batch(&state, &parts, body, decision.action).await;
    if decision.action == FaultAction::Drop(DropPoint::AfterStore) {
        return drop_connection(&state, killer).await;
    }

    let response = match result {
        Ok(ack) => Json(ack).into_response(),
        Err(error) => error.into_response(),
    };
    state.stats.record_status(response.status().as_u16());
    response
}

/// Closes the connection without a response; never returns in that case.
async fn drop_connection(state: &AppState, killer: Option<ConnectionKiller>) -> Response {
    let Some(killer) = killer else {
        let response = ApiError::DropUnavailable.into_response();
        state.stats.record_status(response.status().as_u16());
        return response;
    };
    state.stats.record_fault(FaultKind::Dropped);
    killer.kill();
    // The connection task drops this future together with the connection.
    std::future::pending().await
}

/// Reads, authenticates, parses and stores a batch.
///
/// The body is read before an injected 5xx/429 is answered, so that the client has
/// finished sending and reliably sees the status (see [`ingest::read_body`]), and so
/// that `bytes` counts every request that reached the server.
async fn ingest_batch(
    state: &AppState,
    parts: &Parts,
    body: axum::body::Body,
    action: FaultAction,
) -> Result<Ack, ApiError> {
    let (wire_bytes, body) = ingest::read_body(body, state.max_body_bytes).await;
    state.stats.record_bytes(wire_bytes);

    match action {
        FaultAction::Fail(status) => {
            state.stats.record_fault(FaultKind::Failed);
            return Err(ApiError::InjectedFailure(
                axum::http::StatusCode::from_u16(status)
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
            ));
        }
        FaultAction::RateLimit { retry_after_secs } => {
            state.stats.record_fault(FaultKind::RateLimited);
            return Err(ApiError::RateLimited { retry_after_secs });
        }
        FaultAction::Proceed | FaultAction::Drop(_) => {}
    }

    let body = body?;
    let encoding = ingest::content_encoding(&parts.headers)?;
    if encoding == Encoding::Gzip {
        state.stats.record_gzip();
    }

    // Credentials in the header or the query are checked before parsing; only when
    // there are none is the body's `writeKey` (sendBeacon) consulted.
    let presented = ingest::header_key(&parts.headers).or_else(|| ingest::query_key(&parts.uri));
    if let Some(key) = &presented {
        if !state.accepts(key) {
            return Err(ApiError::Unauthorized);
        }
    }

    // Decompression and JSON parsing are CPU work on up to several MB.
    let limit = state.max_body_bytes;
    let parsed = tokio::task::spawn_blocking(move || {
        let decoded = ingest::decode(body, encoding, limit)?;
        ingest::parse_batch(&decoded)
    })
    .await??;

    if presented.is_none() {
        match &parsed.write_key {
            Some(key) if state.accepts(key) => state.stats.record_beacon(),
            _ => return Err(ApiError::Unauthorized),
        }
    }

    let received = parsed.received;
    let rejected = parsed.rejected;
    let outcome = state.store.insert_batch(parsed.messages).await?;
    state.stats.record_messages(received, outcome.accepted, outcome.duplicates, rejected);
    Ok(Ack { success: true, accepted: outcome.accepted, duplicates: outcome.duplicates, rejected })
}
