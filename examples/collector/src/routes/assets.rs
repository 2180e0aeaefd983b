//! Static files: the demo page at `/` and the built npm package at `/npm/`.

use std::path::Path;

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

/// A service serving the files under `dir`.
pub(super) fn directory(dir: &Path) -> Router {
    Router::new().fallback_service(ServeDir::new(dir)).layer(middleware::from_fn(static_headers))
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
    use super::forced_content_type;

    #[test]
    fn wasm_and_js_types() {
        assert_eq!(forced_content_type("/npm/core_bg.wasm"), Some("application/wasm"));
        assert_eq!(forced_content_type("/npm/index.MJS"), Some("text/javascript; charset=utf-8"));
        assert_eq!(forced_content_type("/index.html"), None);
        assert_eq!(forced_content_type("/"), None);
    }
}
