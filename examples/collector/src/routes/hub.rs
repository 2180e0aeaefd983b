//! The activity hub: one static page, its script and its style, compiled into the binary.
//!
//! Embedding the files means the hub works wherever the binary runs, with no `--static-dir`.
//! The page holds no data: it asks for the admin token and reads people through the admin
//! API, so serving it without authentication reveals nothing. The policy allows only this
//! origin's files and requests (no inline script or style, no framing), which keeps a
//! stored event with markup in it from ever running in an agent's browser.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("../../hub/index.html");
const SCRIPT: &str = include_str!("../../hub/hub.js");
const STYLE: &str = include_str!("../../hub/hub.css");

/// Sent with every hub file. `form-action 'none'`: the page's forms are handled by its
/// script and must never navigate (with the token) anywhere.
const POLICY: &str =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /hub` (and `/hub/`), `/hub/hub.js`, `/hub/hub.css`.
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/hub", get(page))
        .route("/hub/", get(page))
        .route("/hub/hub.js", get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/hub/hub.css", get(|| async { file(STYLE, "text/css; charset=utf-8") }))
}

async fn page() -> Response {
    file(PAGE, "text/html; charset=utf-8")
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    let headers: [(HeaderName, &'static str); 5] = [
        (CONTENT_TYPE, content_type),
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // The hash route names a person; it never leaves the browser, but no referrer at all
        // is the simplest guarantee.
        (REFERRER_POLICY, "no-referrer"),
        // A new binary serves a new page; the browser must not keep an old script.
        (CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::{router, PAGE, POLICY, SCRIPT, STYLE};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::Router;
    use http_body_util::BodyExt as _;
    use tower_service::Service as _;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    /// Status, content type, policy and body of `GET path`.
    async fn get(path: &str) -> TestResult<(StatusCode, String, String, String)> {
        let mut app: Router = router();
        let response = app.call(Request::get(path).body(Body::empty())?).await?;
        let header = |name| -> TestResult<String> {
            Ok(response.headers().get(name).map(|v| v.to_str()).transpose()?.unwrap_or_default().to_owned())
        };
        let (content_type, policy) = (header("content-type")?, header("content-security-policy")?);
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, content_type, policy, String::from_utf8(body.to_vec())?))
    }

    #[tokio::test]
    async fn serves_the_three_files_with_their_types_and_the_policy() -> TestResult {
        for (path, body, content_type) in [
            ("/hub", PAGE, "text/html; charset=utf-8"),
            ("/hub/", PAGE, "text/html; charset=utf-8"),
            ("/hub/hub.js", SCRIPT, "text/javascript; charset=utf-8"),
            ("/hub/hub.css", STYLE, "text/css; charset=utf-8"),
        ] {
            let (status, served_type, policy, served) = get(path).await?;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(served_type, content_type, "{path}");
            assert_eq!(policy, POLICY, "{path}");
            assert_eq!(served, body, "{path}");
        }
        assert!(POLICY.starts_with("default-src 'self';"));
        assert!(!POLICY.contains("unsafe"));
        assert_eq!(get("/hub/index.html").await?.0, StatusCode::NOT_FOUND);
        Ok(())
    }

    /// The hub is meant to stay a small page: a budget catches a framework creeping in.
    #[test]
    fn hub_stays_small() {
        let total = PAGE.len() + SCRIPT.len() + STYLE.len();
        assert!(total < 15_000, "hub files take {total} bytes");
    }

    /// The policy forbids inline script and style, so the page must reference files only.
    #[test]
    fn page_has_no_inline_script_or_style() {
        assert!(!PAGE.contains("<style"));
        assert!(!PAGE.contains(" style="));
        let handler = PAGE.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest.get(name.len()..).is_some_and(|after| after.starts_with('='))
        });
        assert_eq!(handler, None, "no inline event handlers");
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert!(PAGE.contains(r#"<script type="module" src="/hub/hub.js"></script>"#));
    }

    /// Data reaches the page as text only.
    #[test]
    fn script_never_writes_markup() {
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!SCRIPT.contains(sink), "hub.js uses {sink}");
        }
    }
}
