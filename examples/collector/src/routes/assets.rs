//! Static files: the demo page at `/`, the built npm package at `/npm/`, and rules
//! artifacts at `/rules/<name>` the way an SDK needs them (strong `ETag`, `304`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest as _, Sha256};
use tower_http::services::ServeDir;

use super::ApiError;

/// A service serving the files under `dir`.
pub(super) fn directory(dir: &Path) -> Router {
    Router::new().fallback_service(ServeDir::new(dir)).layer(middleware::from_fn(static_headers))
}

/// `GET /rules/<name>`: the files of `dir` (the `rules/` folder of the static directory),
/// one path segment deep.
///
/// `ServeDir` only offers `Last-Modified`, with one-second resolution: an artifact
/// re-signed within the same second as the previous copy would be answered `304` and the
/// device would keep stale rules. The SDK revalidates with `If-None-Match`, so these
/// answers carry a strong `ETag` computed from the bytes themselves, and `no-cache` so
/// that a browser or proxy cache never answers in the collector's place.
pub(super) fn rules(dir: PathBuf) -> Router {
    Router::new().route("/rules/{name}", get(rules_file)).with_state(Arc::new(dir))
}

async fn rules_file(
    State(dir): State<Arc<PathBuf>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_plain_file_name(&name) {
        return Err(ApiError::NotFound);
    }
    let path = dir.join(&name);
    let bytes = match tokio::task::spawn_blocking(move || std::fs::read(path)).await? {
        Ok(bytes) => bytes,
        // Missing, a directory, unreadable: to a client all the same.
        Err(_) => return Err(ApiError::NotFound),
    };
    let etag = strong_etag(&bytes);
    let mut response = if if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut ok = bytes.into_response();
        ok.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(rules_content_type(&name)));
        ok
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// One segment of letters, digits, `.`, `-` and `_`, not starting with a dot: no path
/// traversal and no hidden files, whatever the URL decoding did.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A quoted hash of the exact bytes: it changes whenever the bytes (and so the
/// signature) change, however close in time two versions are.
fn strong_etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored, and
/// `*` matches any current file.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        },
    )
}

fn rules_content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".sig") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// Content types the browser insists on, whatever the MIME database of the machine
/// says: `WebAssembly.instantiateStreaming` refuses anything but `application/wasm`,
/// and module scripts need a JavaScript type.
fn forced_content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1;
    match extension.to_ascii_lowercase().as_str() {
        "wasm" => Some("application/wasm"),
        "js" | "mjs" | "cjs" => Some("text/javascript; charset=utf-8"),
        "map" => Some("application/json"),
        _ => None,
    }
}

/// Sets the content type of served files and `Cache-Control: no-cache`, so a rebuilt
/// wasm or page is picked up on reload (the browser revalidates with
/// `If-Modified-Since` and usually gets a 304).
async fn static_headers(request: Request, next: Next) -> Response {
    let forced = forced_content_type(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let headers = response.headers_mut();
        if let Some(content_type) = forced {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{forced_content_type, if_none_match, is_plain_file_name, strong_etag};
    use axum::http::header::IF_NONE_MATCH;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn rules_names_are_one_plain_segment() {
        assert!(is_plain_file_name("shop.json"));
        assert!(is_plain_file_name("shop.json.sig"));
        assert!(is_plain_file_name("v1_rules-2.json"));
        assert!(!is_plain_file_name(""));
        assert!(!is_plain_file_name(".hidden"));
        assert!(!is_plain_file_name(".."));
        assert!(!is_plain_file_name("a/b.json"));
        assert!(!is_plain_file_name("a\\b.json"));
    }

    #[test]
    fn etag_matching_is_weak_and_takes_lists() {
        let etag = strong_etag(b"{}");
        assert_ne!(etag, strong_etag(b"{} "));
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers
                .insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")));
            headers
        };
        assert!(if_none_match(&with(&etag), &etag));
        assert!(if_none_match(&with(&format!("W/{etag}")), &etag));
        assert!(if_none_match(&with(&format!("\"other\", {etag}")), &etag));
        assert!(if_none_match(&with("*"), &etag));
        assert!(!if_none_match(&with("\"other\""), &etag));
        assert!(!if_none_match(&HeaderMap::new(), &etag));
    }

    #[test]
    fn wasm_and_js_types() {
        assert_eq!(forced_content_type("/npm/core_bg.wasm"), Some("application/wasm"));
        assert_eq!(forced_content_type("/npm/index.MJS"), Some("text/javascript; charset=utf-8"));
        assert_eq!(forced_content_type("/index.html"), None);
        assert_eq!(forced_content_type("/"), None);
    }
}
