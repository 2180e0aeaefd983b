//! The HTTP API of the collector: ingestion, authentication, encodings, limits, read
//! endpoints, CORS, static files and persistence.

mod common;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use common::{
    at, basic_auth, batch, field, set, test_config, track, Client, TestResult, TestServer, WRITE_KEY,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

fn gzip(data: &[u8]) -> TestResult<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

fn message_ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| field(e, "messageId").as_str().unwrap_or("?").to_owned()).collect()
}

#[tokio::test]
async fn duplicates_are_stored_once_across_requests_and_within_a_batch() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;

    let first = client.post_batch(&batch(vec![track("m1", "A", "dev-1"), track("m2", "B", "dev-1")])).await?;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()?, json!({"success": true, "accepted": 2, "duplicates": 0, "rejected": 0}));

    // A retry of m2 (the client never saw the ack), a new m3, and m3 repeated.
    let second = client
        .post_batch(&batch(vec![
            track("m2", "B", "dev-1"),
            track("m3", "C", "dev-1"),
            track("m3", "C", "dev-1"),
        ]))
        .await?;
    assert_eq!(second.json()?, json!({"success": true, "accepted": 1, "duplicates": 2, "rejected": 0}));

    let events = client.events("").await?;
    assert_eq!(message_ids(&events), ["m1", "m2", "m3"]);

    let stats = client.stats().await?;
    assert_eq!(field(&stats, "received"), 5);
    assert_eq!(field(&stats, "distinct"), 3);
    assert_eq!(field(&stats, "duplicates"), 2);
    assert_eq!(field(&stats, "requests"), 2);
    Ok(())
}

#[tokio::test]
async fn all_three_auth_methods_work_and_wrong_keys_get_401() -> TestResult {
    let mut config = test_config();
    config.write_keys = vec![WRITE_KEY.to_owned(), "second-key".to_owned()];
    let server = TestServer::with_config(config).await?;
    let client = &server.client;
    let body = |id: &str| batch(vec![track(id, "Auth", "dev-1")]);

    // 1. Basic auth, with either configured key.
    let reply =
        client.post_json("/v1/batch", &[("authorization", &basic_auth("second-key"))], &body("h1")).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // 2. ?writeKey= in the query.
    let reply = client.post_json(&format!("/v1/batch?writeKey={WRITE_KEY}"), &[], &body("q1")).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // 3. writeKey in the body, sent as text/plain like navigator.sendBeacon does.
    let mut beacon = body("b1");
    set(&mut beacon, "writeKey", json!(WRITE_KEY));
    let reply = client
        .send(
            Method::POST,
            "/v1/batch",
            &[("content-type", "text/plain;charset=UTF-8")],
            serde_json::to_vec(&beacon)?,
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // Wrong or missing keys.
    let wrong_header =
        client.post_json("/v1/batch", &[("authorization", &basic_auth("nope"))], &body("x1")).await?;
    let wrong_query = client.post_json("/v1/batch?writeKey=nope", &[], &body("x2")).await?;
    let missing = client.post_json("/v1/batch", &[], &body("x3")).await?;
    let mut wrong_body = body("x4");
    set(&mut wrong_body, "writeKey", json!("nope"));
    let wrong_body = client.post_json("/v1/batch", &[], &wrong_body).await?;
    // Explicit credentials that are wrong are not rescued by a body key.
    let mut both = body("x5");
    set(&mut both, "writeKey", json!(WRITE_KEY));
    let wrong_header_right_body =
        client.post_json("/v1/batch", &[("authorization", &basic_auth("nope"))], &both).await?;
    let bearer =
        client.post_json("/v1/batch", &[("authorization", "Bearer demo-write-key")], &body("x6")).await?;
    for reply in [&wrong_header, &wrong_query, &missing, &wrong_body, &wrong_header_right_body, &bearer] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(field(&reply.json()?, "success"), false);
    }

    assert_eq!(message_ids(&client.events("").await?), ["h1", "q1", "b1"]);
    let stats = client.stats().await?;
    assert_eq!(field(&stats, "beaconRequests"), 1);
    assert_eq!(field(&stats, "requests"), 9);
    assert_eq!(field(&stats, "statusCounts"), &json!({"200": 3, "401": 6}));
    Ok(())
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_counted_by_wire_size() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let messages = (0..50).map(|i| track(&format!("g{i}"), "Gzipped", "dev-1")).collect();
    let plain = serde_json::to_vec(&batch(messages))?;
    let compressed = gzip(&plain)?;
    assert!(compressed.len() < plain.len());

    let auth = basic_auth(WRITE_KEY);
    let reply = client
        .send(
            Method::POST,
            "/v1/batch",
            &[("authorization", &auth), ("content-type", "application/json"), ("content-encoding", "gzip")],
            compressed.clone(),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(field(&reply.json()?, "accepted"), 50);

    let stats = client.stats().await?;
    assert_eq!(field(&stats, "gzipRequests"), 1);
    assert_eq!(field(&stats, "bytes"), compressed.len());

    // A body labelled gzip that is not gzip, and an encoding we do not speak.
    let reply = client
        .send(
            Method::POST,
            "/v1/batch",
            &[("authorization", &auth), ("content-encoding", "gzip")],
            plain.clone(),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = client
        .send(Method::POST, "/v1/batch", &[("authorization", &auth), ("content-encoding", "br")], plain)
        .await?;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    Ok(())
}

#[tokio::test]
async fn oversized_bodies_get_413_on_the_wire_and_after_decompression() -> TestResult {
    let mut config = test_config();
    config.max_body_bytes = 4096;
    let server = TestServer::with_config(config).await?;
    let client = &server.client;
    let auth = basic_auth(WRITE_KEY);

    // Just under the limit is fine.
    let mut small = batch(vec![track("s1", "Small", "dev-1")]);
    set(&mut small, "pad", json!(""));
    let base = serde_json::to_vec(&small)?.len();
    set(&mut small, "pad", json!("x".repeat(4096 - base)));
    assert_eq!(serde_json::to_vec(&small)?.len(), 4096);
    assert_eq!(client.post_batch(&small).await?.status, StatusCode::OK);

    // One byte over.
    set(&mut small, "pad", json!("x".repeat(4097 - base)));
    let reply = client.post_batch(&small).await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text());

    // Far over (the server drains the rest so the client still sees the 413).
    set(&mut small, "pad", json!("x".repeat(2_000_000)));
    let reply = client.post_batch(&small).await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    // A gzip bomb: small on the wire, more than 8 x 4096 bytes decompressed.
    set(&mut small, "pad", json!(" ".repeat(40_000)));
    let bomb = gzip(&serde_json::to_vec(&small)?)?;
    assert!(bomb.len() < 4096);
    let reply = client
        .send(Method::POST, "/v1/batch", &[("authorization", &auth), ("content-encoding", "gzip")], bomb)
        .await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text());

    // Decompressed within 8x is fine.
    set(&mut small, "pad", json!(" ".repeat(20_000)));
    set(&mut small, "batch", json!([track("s2", "Small", "dev-1")]));
    let ok = gzip(&serde_json::to_vec(&small)?)?;
    let reply = client
        .send(Method::POST, "/v1/batch", &[("authorization", &auth), ("content-encoding", "gzip")], ok)
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    assert_eq!(message_ids(&client.events("").await?), ["s1", "s2"]);
    Ok(())
}

#[tokio::test]
async fn unusable_bodies_get_400_with_a_json_error() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let auth = basic_auth(WRITE_KEY);
    for body in [&b"garbage"[..], b"{\"batch\": [", b"{}", b"{\"batch\": 3}", b"[{\"type\":\"track\"}]", b""]
    {
        let reply = client
            .send(Method::POST, "/v1/batch", &[("authorization", &auth)], Bytes::copy_from_slice(body))
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", String::from_utf8_lossy(body));
        let error = reply.json()?;
        assert_eq!(field(&error, "success"), false);
        assert!(field(&error, "error").is_string());
    }
    assert_eq!(field(&client.stats().await?, "received"), 0);
    Ok(())
}

#[tokio::test]
async fn a_bad_message_is_rejected_alone_and_the_rest_is_stored() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let reply = client
        .post_batch(&batch(vec![
            track("ok-1", "Good", "dev-1"),
            json!({"type": "track", "event": "No id"}),
            json!({"type": "track", "event": "Numeric id", "messageId": 7}),
            json!({"type": "launch", "messageId": "bad-type"}),
            json!({"event": "No type", "messageId": "no-type"}),
            json!("not an object"),
            json!({"type": "identify", "messageId": "ok-2", "userId": "u-1", "traits": {"plan": "gold"}}),
        ]))
        .await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()?, json!({"success": true, "accepted": 2, "duplicates": 0, "rejected": 5}));
    let events = client.events("").await?;
    assert_eq!(message_ids(&events), ["ok-1", "ok-2"]);
    let identify = events.get(1).ok_or("missing identify")?;
    assert_eq!(at(identify, "/traits/plan"), "gold", "the full JSON is stored");

    let stats = client.stats().await?;
    assert_eq!(field(&stats, "received"), 7);
    assert_eq!(field(&stats, "rejected"), 5);
    Ok(())
}

#[tokio::test]
async fn events_can_be_filtered_and_paged() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let page = json!({"type": "page", "name": "Home", "messageId": "p1", "anonymousId": "dev-2"});
    let reply = client
        .post_batch(&batch(vec![
            track("t1", "Product Viewed", "dev-1"),
            track("t2", "Order Completed", "dev-1"),
            page,
            track("t3", "Product Viewed", "dev-2"),
            json!({"type": "identify", "messageId": "i1", "anonymousId": "dev-1", "userId": 42}),
        ]))
        .await?;
    assert_eq!(field(&reply.json()?, "accepted"), 5);

    let all = client.events("").await?;
    assert_eq!(message_ids(&all), ["t1", "t2", "p1", "t3", "i1"]);
    for event in &all {
        assert!(field(event, "receivedAt").as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(field(event, "rowid").is_i64());
    }
    let first = all.first().ok_or("no events")?;
    assert_eq!(at(first, "/properties/sku"), "slacks-42");
    assert_eq!(at(first, "/context/library/name"), "threadline-test");

    assert_eq!(message_ids(&client.events("?type=track").await?), ["t1", "t2", "t3"]);
    assert_eq!(message_ids(&client.events("?event=Product%20Viewed").await?), ["t1", "t3"]);
    assert_eq!(message_ids(&client.events("?anonymousId=dev-2").await?), ["p1", "t3"]);
    assert_eq!(message_ids(&client.events("?type=track&anonymousId=dev-1").await?), ["t1", "t2"]);
    assert_eq!(message_ids(&client.events("?limit=2").await?), ["t1", "t2"]);

    // Page with ?after=<rowid of the last event seen>.
    let second = all.get(1).ok_or("no second event")?;
    let after = field(second, "rowid").as_i64().ok_or("no rowid")?;
    assert_eq!(message_ids(&client.events(&format!("?after={after}&limit=2")).await?), ["p1", "t3"]);
    assert!(client.events("?type=alias").await?.is_empty());

    for bad in ["?limit=-1", "?limit=many", "?after=x"] {
        let reply = client.get(&format!("/events{bad}")).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(field(&reply.json()?, "error").is_string());
    }
    Ok(())
}

#[tokio::test]
async fn stats_count_requests_bytes_and_statuses() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let body = batch(vec![track("s1", "A", "d"), track("s2", "B", "d")]);
    let wire = serde_json::to_vec(&body)?.len();
    client.post_batch(&body).await?;
    client.post_batch(&body).await?;
    let bad =
        client.send(Method::POST, "/v1/batch", &[("authorization", &basic_auth(WRITE_KEY))], "nope").await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let stats = client.stats().await?;
    assert_eq!(
        stats,
        json!({
            "received": 4,
            "distinct": 2,
            "accepted": 2,
            "duplicates": 2,
            "rejected": 0,
            "requests": 3,
            "bytes": 2 * wire + 4,
            "gzipRequests": 0,
            "beaconRequests": 0,
            "faults": {"failed": 0, "rateLimited": 0, "dropped": 0},
            "statusCounts": {"200": 2, "400": 1}
        })
    );
    Ok(())
}

#[tokio::test]
async fn cors_preflight_and_actual_requests_echo_the_origin() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let origin = "http://127.0.0.1:5173";
    let preflight = client
        .send(
            Method::OPTIONS,
            "/v1/batch",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type,authorization,content-encoding"),
            ],
            Bytes::new(),
        )
        .await?;
    assert!(preflight.status.is_success(), "{}", preflight.status);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(origin));
    let methods = preflight.header("access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    let headers = preflight.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for wanted in ["authorization", "content-type", "content-encoding"] {
        assert!(headers.contains(wanted), "{headers}");
    }
    assert_eq!(preflight.header("access-control-max-age"), Some("86400"));
    assert_eq!(field(&client.stats().await?, "requests"), 0, "a preflight is not a batch");

    let actual = client
        .post_json(
            "/v1/batch",
            &[("origin", origin), ("authorization", &basic_auth(WRITE_KEY))],
            &batch(vec![track("c1", "Cors", "dev-1")]),
        )
        .await?;
    assert_eq!(actual.status, StatusCode::OK);
    assert_eq!(actual.header("access-control-allow-origin"), Some(origin));
    assert!(actual.header("access-control-expose-headers").unwrap_or_default().contains("retry-after"));

    let read =
        client.send(Method::GET, "/events", &[("origin", "http://localhost:9999")], Bytes::new()).await?;
    assert_eq!(read.header("access-control-allow-origin"), Some("http://localhost:9999"));
    Ok(())
}

#[tokio::test]
async fn static_and_npm_directories_are_served_with_browser_mime_types() -> TestResult {
    let root = common::temp_db_path().with_extension("static");
    let site = root.join("site");
    let npm = root.join("npm");
    std::fs::create_dir_all(&site)?;
    std::fs::create_dir_all(npm.join("dist"))?;
    std::fs::write(site.join("index.html"), "<!doctype html><title>shop</title>")?;
    std::fs::write(site.join("app.js"), "console.log('hi')")?;
    let wasm = b"\0asm\x01\0\0\0";
    std::fs::write(npm.join("dist").join("threadline_bg.wasm"), wasm)?;
    std::fs::write(npm.join("dist").join("index.mjs"), "export {}")?;

    let mut config = test_config();
    config.static_dir = Some(site);
    config.npm_dir = Some(npm);
    let server = TestServer::with_config(config).await?;
    let client = &server.client;

    let index = client.get("/").await?;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.text().contains("<title>shop</title>"));
    assert!(index.header("content-type").unwrap_or_default().starts_with("text/html"));

    let script = client.get("/app.js").await?;
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));

    let module = client.get("/npm/dist/index.mjs").await?;
    assert_eq!(module.status, StatusCode::OK);
    assert_eq!(module.header("content-type"), Some("text/javascript; charset=utf-8"));

    let binary = client.get("/npm/dist/threadline_bg.wasm").await?;
    assert_eq!(binary.status, StatusCode::OK);
    assert_eq!(binary.header("content-type"), Some("application/wasm"));
    assert_eq!(binary.body.as_ref(), wasm);

    assert_eq!(client.get("/missing.js").await?.status, StatusCode::NOT_FOUND);
    assert_eq!(client.get("/npm/missing.wasm").await?.status, StatusCode::NOT_FOUND);
    // API routes win over the static fallback.
    assert_eq!(client.get("/healthz").await?.text(), "ok");

    drop(server);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}

#[tokio::test]
async fn without_static_dir_unknown_paths_are_404() -> TestResult {
    let server = TestServer::start().await?;
    let reply = server.client.get("/index.html").await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn keep_alive_connections_serve_several_requests() -> TestResult {
    let server = TestServer::start().await?;
    let addr = server.addr()?;
    let responses = tokio::task::spawn_blocking(move || -> TestResult<usize> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut served = 0;
        for _ in 0..3 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut received = Vec::new();
            let mut chunk = [0u8; 1024];
            while !received.ends_with(b"\r\n\r\nok") {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                received.extend_from_slice(chunk.get(..n).ok_or("bad read")?);
            }
            assert!(received.starts_with(b"HTTP/1.1 200 OK"));
            served += 1;
        }
        Ok(served)
    })
    .await??;
    assert_eq!(responses, 3);
    Ok(())
}

#[tokio::test]
async fn data_persists_across_restarts_unless_fresh() -> TestResult {
    let mut config = test_config();
    let mut server = TestServer::with_config(config.clone()).await?;
    server.client.post_batch(&batch(vec![track("keep-1", "Persisted", "dev-1")])).await?;
    server.stop().await?;

    config.fresh = false;
    let restarted = threadline_collector::start(config.clone()).await?;
    let client = Client::new(&restarted.url());
    assert_eq!(message_ids(&client.events("").await?), ["keep-1"]);
    // The restarted process de-duplicates against what the old one stored.
    let reply = client.post_batch(&batch(vec![track("keep-1", "Persisted", "dev-1")])).await?;
    assert_eq!(field(&reply.json()?, "duplicates"), 1);
    restarted.shutdown().await?;

    config.fresh = true;
    let fresh = threadline_collector::start(config).await?;
    let client = Client::new(&fresh.url());
    assert!(client.events("").await?.is_empty());
    assert_eq!(field(&client.stats().await?, "distinct"), 0);
    fresh.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn invalid_configuration_is_refused() {
    let mut config = test_config();
    config.write_keys.clear();
    assert!(threadline_collector::start(config).await.is_err());

    let mut config = test_config();
    config.faults.fail_rate = 1.5;
    assert!(threadline_collector::start(config).await.is_err());

    let mut config = test_config();
    config.static_dir = Some(common::temp_db_path().with_extension("does-not-exist"));
    assert!(threadline_collector::start(config).await.is_err());
}
