//! The HTTP surface: routes, shared state, CORS, and how errors become responses.

mod admin;
mod assets;
mod batch;
mod hub;
mod people;
mod profile;
mod read;

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::faults::{FaultError, FaultInjector};
use crate::ingest::IngestError;
use crate::stats::Stats;
use crate::store::{Store, StoreError};

/// How long browsers may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(86_400);

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) stats: Stats,
    pub(crate) faults: FaultInjector,
    pub(crate) write_keys: Vec<String>,
    pub(crate) max_body_bytes: usize,
    pub(crate) admin_token: Option<String>,
    pub(crate) profile_secret: Option<String>,
    /// `--demo-tokens`: `GET /demo/token` issues user tokens to anyone.
    pub(crate) demo_tokens: bool,
    /// `--hub-token`, else the admin token: who may read and erase people.
    pub(crate) hub_token: Option<String>,
    pub(crate) rules: crate::people::Rules,
}

impl AppState {
    /// Whether `key` is one of the configured write keys.
    fn accepts(&self, key: &str) -> bool {
        self.write_keys.iter().any(|known| known == key)
    }
}

/// Why a request failed; each variant maps to one status code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The body could not be read, decoded or parsed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Missing or unknown write key.
    #[error("missing or invalid write key")]
    Unauthorized,
    /// Missing or wrong admin token.
    #[error("missing or invalid admin token")]
    AdminUnauthorized,
    /// Invalid query parameters.
    #[error("invalid query: {0}")]
    BadQuery(String),
    /// Invalid `/admin/faults` body.
    #[error("invalid fault settings: {0}")]
    BadFaultsJson(#[source] serde_json::Error),
    /// Fault settings out of range.
    #[error(transparent)]
    Faults(#[from] FaultError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Fault injection: a 5xx.
    #[error("injected failure")]
    InjectedFailure(StatusCode),
    /// Fault injection: a 429.
    #[error("rate limited (injected)")]
    RateLimited {
        /// Value of `Retry-After`.
        retry_after_secs: u64,
    },
    /// Drop requested, but the request did not come through the accept loop.
    #[error("cannot drop this connection")]
    DropUnavailable,
    /// No such route.
    #[error("not found")]
    NotFound,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Ingest(IngestError::TooLarge { .. } | IngestError::DecompressedTooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Ingest(IngestError::UnsupportedEncoding(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Ingest(_) | Self::BadQuery(_) | Self::BadFaultsJson(_) | Self::Faults(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized | Self::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            Self::Store(_) | Self::Task(_) | Self::DropUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InjectedFailure(status) => *status,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, Self::InjectedFailure(_)) {
            eprintln!("threadline-collector: {self}");
        }
        let mut response =
            (status, Json(json!({ "success": false, "error": self.to_string() }))).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// A JSON error `{"error": text}` (the shape of the profile and person APIs).
pub(crate) fn error_json(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}

/// Builds the application: API routes, optional static directories, CORS.
pub(crate) fn router(state: Arc<AppState>, config: &Config) -> Router {
    let mut router = Router::new()
        .route("/v1/batch", post(batch::post_batch))
        .route("/events", get(read::events))
        .route("/stats", get(read::stats))
        .route("/healthz", get(read::healthz))
        .route("/admin/faults", get(admin::get_faults).post(admin::post_faults))
        .route("/admin/reset", post(admin::reset))
        .route("/v1/profile", get(profile::get_profile))
        .route("/demo/token", get(profile::demo_token))
        .route("/admin/api/search", get(people::search))
        .route("/admin/api/people/{id}", get(people::get_person).delete(people::delete_person))
        .with_state(state)
        .merge(hub::router());
    if let Some(dir) = &config.npm_dir {
        router = router.nest_service("/npm", assets::directory(dir));
    }
    router = match &config.static_dir {
        Some(dir) => router.merge(assets::rules(dir.join("rules"))).fallback_service(assets::directory(dir)),
        None => router.fallback(|| async { ApiError::NotFound }),
    };
    router.layer(cors())
}

/// Pages under test run on other ports of 127.0.0.1, so every route answers CORS:
/// the origin is echoed (credentials allowed), preflights are answered here, and
/// `Retry-After` is exposed so the SDK can read it from a cross-origin 429, `ETag` so it
/// can revalidate a cross-origin rules artifact with `If-None-Match` (allowed in requests).
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE, CONTENT_ENCODING, IF_NONE_MATCH])
        .expose_headers([RETRY_AFTER, ETAG])
        .allow_credentials(true)
        .allow_private_network(true)
        .max_age(PREFLIGHT_MAX_AGE)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive),
/// shared by the admin, person and profile routes.
pub(super) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}
