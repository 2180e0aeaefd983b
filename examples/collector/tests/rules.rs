//! `/rules/<name>`: rules artifacts served with a strong `ETag`, `304` on revalidation,
//! `no-cache`, and the detached signature next to the artifact.

mod common;

use common::{test_config, TestResult, TestServer};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};

/// A static directory with `rules/shop.json` and its `.sig`, removed when dropped.
struct Site {
    root: std::path::PathBuf,
}

impl Site {
    fn new() -> TestResult<Self> {
        let root = common::temp_db_path().with_extension("rules-site");
        std::fs::create_dir_all(root.join("rules"))?;
        std::fs::write(root.join("index.html"), "<!doctype html><title>shop</title>")?;
        std::fs::write(root.join("rules").join("shop.json"), ARTIFACT)?;
        std::fs::write(root.join("rules").join("shop.json.sig"), SIGNATURE)?;
        Ok(Self { root })
    }

    async fn serve(&self) -> TestResult<TestServer> {
        let mut config = test_config();
        config.static_dir = Some(self.root.clone());
        TestServer::with_config(config).await
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const ARTIFACT: &str = r#"{"version": 1, "bucketing": "murmur3_x86_32/v1", "placements": []}"#;
const SIGNATURE: &str = "c2lnbmF0dXJl\n";

#[tokio::test]
async fn artifact_has_a_strong_etag_and_no_cache() -> TestResult {
    let site = Site::new()?;
    let server = site.serve().await?;
    let reply = server.client.get("/rules/shop.json").await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.as_ref(), ARTIFACT.as_bytes());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    let etag = reply.header("etag").ok_or("no ETag")?;
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10, "strong ETag: {etag}");
    // The same bytes give the same tag on every request.
    assert_eq!(server.client.get("/rules/shop.json").await?.header("etag"), Some(etag));
    Ok(())
}

#[tokio::test]
async fn matching_if_none_match_gets_304_and_a_changed_file_a_new_etag() -> TestResult {
    let site = Site::new()?;
    let server = site.serve().await?;
    let client = &server.client;
    let first = client.get("/rules/shop.json").await?;
    let etag = first.header("etag").ok_or("no ETag")?.to_owned();

    let revalidated =
        client.send(Method::GET, "/rules/shop.json", &[("if-none-match", &etag)], Bytes::new()).await?;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    assert_eq!(revalidated.header("cache-control"), Some("no-cache"));

    let stale = client
        .send(Method::GET, "/rules/shop.json", &[("if-none-match", "\"something-else\"")], Bytes::new())
        .await?;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body.as_ref(), ARTIFACT.as_bytes());

    // Re-published within the same second: the bytes changed, so must the tag.
    let changed = ARTIFACT.replace("\"placements\"", "\"revision\": \"2\", \"placements\"");
    std::fs::write(site.root.join("rules").join("shop.json"), &changed)?;
    let after =
        client.send(Method::GET, "/rules/shop.json", &[("if-none-match", &etag)], Bytes::new()).await?;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body.as_ref(), changed.as_bytes());
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    Ok(())
}

#[tokio::test]
async fn signature_is_served_next_to_the_artifact() -> TestResult {
    let site = Site::new()?;
    let server = site.serve().await?;
    let reply = server.client.get("/rules/shop.json.sig").await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), SIGNATURE);
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(reply.header("etag").is_some());
    Ok(())
}

#[tokio::test]
async fn missing_files_and_odd_names_are_404_and_cors_exposes_the_etag() -> TestResult {
    let site = Site::new()?;
    std::fs::write(site.root.join("secret.json"), "{}")?;
    let server = site.serve().await?;
    let client = &server.client;
    assert_eq!(client.get("/rules/missing.json").await?.status, StatusCode::NOT_FOUND);
    assert_eq!(client.get("/rules/..%2Fsecret.json").await?.status, StatusCode::NOT_FOUND);
    assert_eq!(client.get("/rules/.hidden").await?.status, StatusCode::NOT_FOUND);

    let origin = [("origin", "http://127.0.0.1:9999")];
    let cross = client.send(Method::GET, "/rules/shop.json", &origin, Bytes::new()).await?;
    assert_eq!(cross.status, StatusCode::OK);
    let exposed = cross.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(exposed.contains("etag"), "exposed: {exposed}");

    let preflight = client
        .send(
            Method::OPTIONS,
            "/rules/shop.json",
            &[
                ("origin", "http://127.0.0.1:9999"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "if-none-match"),
            ],
            Bytes::new(),
        )
        .await?;
    let allowed = preflight.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(allowed.contains("if-none-match"), "allowed: {allowed}");

    // The rest of the static directory is still served.
    assert_eq!(client.get("/").await?.status, StatusCode::OK);
    Ok(())
}
