//! Fault injection and the admin endpoints.

mod common;

use std::time::{Duration, Instant};

use common::{
    basic_auth, batch, field, raw_batch_request, raw_exchange, test_config, track, RawOutcome, TestResult,
    TestServer, WRITE_KEY,
};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

fn faults(stats: &Value) -> Value {
    field(stats, "faults").clone()
}

#[tokio::test]
async fn fail_rate_one_answers_every_batch_with_a_5xx_until_turned_off() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let settings = client.set_faults(&json!({"failRate": 1.0})).await?;
    assert_eq!(field(&settings, "failRate"), 1.0);

    let mut statuses = Vec::new();
    for i in 0..20 {
        let reply = client.post_batch(&batch(vec![track(&format!("f{i}"), "Failing", "dev-1")])).await?;
        assert!(reply.status.is_server_error(), "{}", reply.status);
        statuses.push(reply.status.as_u16());
    }
    assert!(statuses.iter().all(|s| [500, 502, 503, 504].contains(s)));
    assert!(statuses.contains(&500), "mostly 500/502/503: {statuses:?}");
    // Nothing was stored, and faults only apply to the batch endpoint.
    assert!(client.events("").await?.is_empty());
    assert_eq!(client.get("/healthz").await?.status, StatusCode::OK);

    let stats = client.stats().await?;
    assert_eq!(faults(&stats), json!({"failed": 20, "rateLimited": 0, "dropped": 0}));
    assert_eq!(field(&stats, "requests"), 20);
    assert_eq!(field(&stats, "received"), 0);

    client.set_faults(&json!({"failRate": 0})).await?;
    let reply = client.post_batch(&batch(vec![track("f0", "Failing", "dev-1")])).await?;
    assert_eq!(reply.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    client.set_faults(&json!({"rateLimitRate": 1.0, "retryAfterSecs": 7})).await?;
    let reply = client
        .post_json(
            "/v1/batch",
            &[("authorization", &basic_auth(WRITE_KEY)), ("origin", "http://127.0.0.1:3000")],
            &batch(vec![track("r1", "Limited", "dev-1")]),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after"), Some("7"));
    // Readable by a cross-origin fetch.
    assert!(reply.header("access-control-expose-headers").unwrap_or_default().contains("retry-after"));
    let stats = client.stats().await?;
    assert_eq!(faults(&stats), json!({"failed": 0, "rateLimited": 1, "dropped": 0}));
    assert_eq!(field(&stats, "statusCounts"), &json!({"429": 1}));
    Ok(())
}

#[tokio::test]
async fn drop_before_closes_the_connection_without_a_response_and_stores_nothing() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    client.set_faults(&json!({"dropRate": 1.0, "dropPhase": "before"})).await?;

    let body = batch(vec![track("d1", "Dropped", "dev-1")]);
    let outcome = raw_exchange(server.addr()?, raw_batch_request(&body)?).await?;
    assert_eq!(outcome, RawOutcome::ClosedWithoutResponse);

    // An ordinary HTTP client sees a connection error, not a status.
    let error = client.post_batch(&body).await;
    assert!(error.is_err(), "expected a connection error, got {error:?}");

    client.set_faults(&json!({"dropRate": 0})).await?;
    assert!(client.events("").await?.is_empty());
    let stats = client.stats().await?;
    assert_eq!(faults(&stats), json!({"failed": 0, "rateLimited": 0, "dropped": 2}));
    assert_eq!(field(&stats, "statusCounts"), &json!({}));

    // The same client recovers on a new connection.
    let reply = client.post_batch(&body).await?;
    assert_eq!(field(&reply.json()?, "accepted"), 1);
    Ok(())
}

#[tokio::test]
async fn drop_after_stores_the_batch_but_never_acknowledges_it() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    client.set_faults(&json!({"dropRate": 1.0, "dropPhase": "after"})).await?;

    let body = batch(vec![track("a1", "Stored", "dev-1"), track("a2", "Stored", "dev-1")]);
    let outcome = raw_exchange(server.addr()?, raw_batch_request(&body)?).await?;
    assert_eq!(outcome, RawOutcome::ClosedWithoutResponse);

    client.set_faults(&json!({"dropRate": 0.0})).await?;
    let events = client.events("").await?;
    assert_eq!(events.len(), 2, "the batch was stored before the drop");

    // The SDK retries the unacknowledged batch; the collector de-duplicates it.
    let retry = client.post_batch(&body).await?;
    assert_eq!(retry.json()?, json!({"success": true, "accepted": 0, "duplicates": 2, "rejected": 0}));
    let stats = client.stats().await?;
    assert_eq!(field(&stats, "distinct"), 2);
    assert_eq!(field(&stats, "received"), 4);
    assert_eq!(field(&faults(&stats), "dropped"), 1);
    Ok(())
}

#[tokio::test]
async fn mixed_drops_hit_both_phases() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    client.set_faults(&json!({"dropRate": 1.0})).await?;
    let addr = server.addr()?;
    for i in 0..40 {
        let body = batch(vec![track(&format!("x{i}"), "Mixed", "dev-1")]);
        let outcome = raw_exchange(addr, raw_batch_request(&body)?).await?;
        assert_eq!(outcome, RawOutcome::ClosedWithoutResponse);
    }
    client.set_faults(&json!({"dropRate": 0.0})).await?;
    let stored = client.events("").await?.len();
    assert!((5..=35).contains(&stored), "about half stored after the drop: {stored}");
    Ok(())
}

#[tokio::test]
async fn latency_delays_batch_answers() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    client.set_faults(&json!({"latencyMs": 300, "latencyJitterMs": 50})).await?;
    let started = Instant::now();
    let reply = client.post_batch(&batch(vec![track("l1", "Slow", "dev-1")])).await?;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");

    // Other endpoints are not delayed.
    let started = Instant::now();
    client.get("/healthz").await?;
    assert!(started.elapsed() < Duration::from_millis(300));
    Ok(())
}

#[tokio::test]
async fn admin_settings_are_validated_and_partial_updates_keep_the_rest() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    let initial = client.get_json("/admin/faults").await?;
    assert_eq!(
        initial,
        json!({
            "failRate": 0.0, "rateLimitRate": 0.0, "retryAfterSecs": 1, "latencyMs": 0,
            "latencyJitterMs": 0, "dropRate": 0.0, "dropPhase": "mixed", "seed": "1"
        })
    );
    client.set_faults(&json!({"rateLimitRate": 0.05, "dropPhase": "after"})).await?;
    let updated = client.get_json("/admin/faults").await?;
    assert_eq!(field(&updated, "rateLimitRate"), 0.05);
    assert_eq!(field(&updated, "dropPhase"), "after");
    assert_eq!(field(&updated, "retryAfterSecs"), 1);

    for bad in [
        json!({"failRate": 1.5}),
        json!({"dropRate": -0.1}),
        json!({"failrate": 1}),
        json!({"dropPhase": "sometimes"}),
        json!({"latencyMs": "slow"}),
    ] {
        let reply = client.post_json("/admin/faults", &[], &bad).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(client.get_json("/admin/faults").await?, updated, "refused patches change nothing");
    Ok(())
}

#[tokio::test]
async fn admin_token_is_required_when_configured() -> TestResult {
    let mut config = test_config();
    config.admin_token = Some("s3cret".to_owned());
    let server = TestServer::with_config(config).await?;
    let client = &server.client;

    assert_eq!(client.get("/admin/faults").await?.status, StatusCode::UNAUTHORIZED);
    let wrong =
        client.send(Method::GET, "/admin/faults", &[("authorization", "Bearer nope")], Bytes::new()).await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let denied = client.post_json("/admin/faults", &[], &json!({"failRate": 1.0})).await?;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let denied = client.send(Method::POST, "/admin/reset", &[], Bytes::new()).await?;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);

    let allowed = client
        .post_json("/admin/faults", &[("authorization", "Bearer s3cret")], &json!({"failRate": 1.0}))
        .await?;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(field(&allowed.json()?, "failRate"), 1.0);
    Ok(())
}

#[tokio::test]
async fn reset_deletes_events_and_zeroes_stats() -> TestResult {
    let server = TestServer::start().await?;
    let client = &server.client;
    client.post_batch(&batch(vec![track("z1", "A", "d"), track("z2", "B", "d")])).await?;
    let before = client.events("").await?;
    let last_rowid = before.last().and_then(|e| e.get("rowid")).and_then(Value::as_i64);

    let reply = client.send(Method::POST, "/admin/reset", &[], Bytes::new()).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.events("").await?.is_empty());
    let stats = client.stats().await?;
    for key in ["received", "distinct", "duplicates", "requests", "bytes"] {
        assert_eq!(field(&stats, key), 0, "{key}");
    }
    assert_eq!(field(&stats, "statusCounts"), &json!({}));

    // Stored again after a reset (not a duplicate), with a row id that keeps growing.
    let reply = client.post_batch(&batch(vec![track("z1", "A", "d")])).await?;
    assert_eq!(field(&reply.json()?, "accepted"), 1);
    let after = client.events("").await?;
    let new_rowid = after.first().and_then(|e| e.get("rowid")).and_then(Value::as_i64);
    assert!(new_rowid > last_rowid, "{new_rowid:?} > {last_rowid:?}");
    Ok(())
}

#[tokio::test]
async fn faults_from_the_start_configuration_are_reproducible_by_seed() -> TestResult {
    let run = |seed: u64| async move {
        let mut config = test_config();
        config.seed = Some(seed);
        config.faults.fail_rate = 0.4;
        config.faults.rate_limit_rate = 0.2;
        let server = TestServer::with_config(config).await?;
        let mut statuses = Vec::new();
        for i in 0..30 {
            let reply =
                server.client.post_batch(&batch(vec![track(&format!("s{i}"), "Seeded", "dev-1")])).await?;
            statuses.push(reply.status.as_u16());
        }
        TestResult::Ok(statuses)
    };
    let first = run(99).await?;
    assert_eq!(first, run(99).await?);
    assert!(first.contains(&200));
    assert!(first.contains(&429));
    assert!(first.iter().any(|s| *s >= 500));
    Ok(())
}
