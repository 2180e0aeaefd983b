//! The identity graph, the served profile and the person API: stitching devices into
//! one person, the merges that are refused, tokens, and erasure.

mod common;

use std::path::PathBuf;

use common::{at, batch, field, test_config, Client, TestResult, TestServer};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use threadline_collector::token;

const SECRET: &str = "profile-secret-for-tests";
const ADMIN: &str = "admin-token-for-tests";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

/// RFC 3339 time `minutes_ago` minutes before now (the artifact's windows are relative
/// to the collector's clock).
fn ago(minutes_ago: u64) -> String {
    let millis = now_ms() - minutes_ago * 60_000;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_millis(time).to_string()
}

fn rules_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-demo/rules/shop.json")
}

async fn start() -> TestResult<TestServer> {
    let mut config = test_config();
    config.profile_secret = Some(SECRET.to_owned());
    config.admin_token = Some(ADMIN.to_owned());
    config.profile_rules = Some(rules_path());
    TestServer::with_config(config).await
}

fn library(platform: &str) -> Value {
    match platform {
        "web" => json!({"name": "threadline-web", "version": "0.1.0"}),
        "android" => json!({"name": "threadline-android", "version": "0.1.0"}),
        _ => json!({"name": "threadline-test", "version": "0"}),
    }
}

/// A message from `device` (a platform of "web" or "android"), with personalization
/// consent as given (`None`: no consent in the context).
struct Msg {
    value: Value,
}

impl Msg {
    fn new(id: &str, kind: &str, device: &str, platform: &str, minutes_ago: u64) -> Self {
        Self {
            value: json!({
                "type": kind,
                "messageId": id,
                "anonymousId": device,
                "timestamp": ago(minutes_ago),
                "context": {"library": library(platform),
                            "consent": {"analytics": "granted", "personalization": "granted"}},
            }),
        }
    }

    fn track(id: &str, event: &str, device: &str, platform: &str, minutes_ago: u64) -> Self {
        Self::new(id, "track", device, platform, minutes_ago).with("event", json!(event))
    }

    fn identify(id: &str, user: Option<&str>, device: &str, platform: &str, minutes_ago: u64) -> Self {
        let msg = Self::new(id, "identify", device, platform, minutes_ago);
        match user {
            Some(user) => msg.with("userId", json!(user)),
            None => msg,
        }
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        common::set(&mut self.value, key, value);
        self
    }

    fn props(self, properties: Value) -> Self {
        self.with("properties", properties)
    }

    fn personalization(mut self, state: Option<&str>) -> Self {
        if let Some(context) = self.value.get_mut("context").and_then(Value::as_object_mut) {
            match state {
                Some(state) => {
                    context
                        .insert("consent".into(), json!({"analytics": "granted", "personalization": state}));
                }
                None => {
                    context.remove("consent");
                }
            }
        }
        self
    }

    fn external_email(mut self, hash: &str) -> Self {
        if let Some(context) = self.value.get_mut("context").and_then(Value::as_object_mut) {
            context.insert(
                "externalIds".into(),
                json!([{"id": hash, "type": "email", "collection": "users", "encoding": "sha256"}]),
            );
        }
        self
    }
}

async fn send(client: &Client, messages: Vec<Msg>) -> TestResult<Value> {
    let reply = client.post_batch(&batch(messages.into_iter().map(|m| m.value).collect())).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

async fn admin_get(client: &Client, path: &str) -> TestResult<common::Reply> {
    let auth = format!("Bearer {ADMIN}");
    client.send(Method::GET, path, &[("authorization", &auth)], Bytes::new()).await
}

async fn search(client: &Client, q: &str) -> TestResult<Vec<Value>> {
    let reply = admin_get(client, &format!("/admin/api/search?q={}", encode(q))).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    Ok(field(&reply.json()?, "people").as_array().cloned().unwrap_or_default())
}

/// The one person a query finds.
async fn person_of(client: &Client, q: &str) -> TestResult<Value> {
    let people = search(client, q).await?;
    assert_eq!(people.len(), 1, "search {q}: {people:?}");
    let id = people.first().and_then(|p| p.get("id")).and_then(Value::as_str).ok_or("no id")?.to_owned();
    let reply = admin_get(client, &format!("/admin/api/people/{id}")).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

fn device_ids(person: &Value) -> Vec<String> {
    let mut ids: Vec<String> = field(person, "devices")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("anonymousId").and_then(Value::as_str).map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The shopper of the story: two Product Viewed and an order in the app, then the
/// website, signed in as the same user.
async fn shopper(client: &Client) -> TestResult {
    let slacks = json!({"product_id": "slacks-charcoal"});
    send(
        client,
        vec![
            Msg::track("app-1", "Product Viewed", "app-dev", "android", 120).props(slacks.clone()),
            Msg::track("app-2", "Product Viewed", "app-dev", "android", 110).props(slacks.clone()),
            Msg::identify("app-3", Some("u-shopper"), "app-dev", "android", 100)
                .with("traits", json!({"plan": "gold"})),
            Msg::track("app-4", "Order Completed", "app-dev", "android", 90)
                .with("userId", json!("u-shopper"))
                .props(json!({"total": 89.5})),
        ],
    )
    .await?;
    send(
        client,
        vec![
            Msg::track("web-1", "Product Viewed", "web-dev", "web", 30).props(slacks),
            Msg::identify("web-2", Some("u-shopper"), "web-dev", "web", 20),
            Msg::new("web-3", "page", "web-dev", "web", 10)
                .with("userId", json!("u-shopper"))
                .with("name", json!("Home")),
        ],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn app_and_web_devices_are_stitched_through_one_user_id() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    shopper(client).await?;

    let person = person_of(client, "u-shopper").await?;
    assert_eq!(strings(field(&person, "userIds")), ["u-shopper"]);
    assert_eq!(device_ids(&person), ["app-dev", "web-dev"]);
    // Searching by either device finds the same person.
    for device in ["app-dev", "web-dev"] {
        assert_eq!(field(&person_of(client, device).await?, "id"), field(&person, "id"));
    }
    let devices = field(&person, "devices").as_array().cloned().unwrap_or_default();
    let app = devices.iter().find(|d| field(d, "anonymousId") == "app-dev").ok_or("no app device")?;
    assert_eq!(field(app, "platform"), "android");
    assert_eq!(field(app, "events"), 4);
    assert_eq!(at(app, "/consent/personalization"), "granted");
    let web = devices.iter().find(|d| field(d, "anonymousId") == "web-dev").ok_or("no web device")?;
    assert_eq!(field(web, "platform"), "web");
    assert_eq!(field(web, "events"), 3);

    // One timeline over both devices, in time order.
    let timeline = field(&person, "timeline").as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = timeline.iter().filter_map(|e| e.get("messageId").and_then(Value::as_str)).collect();
    assert_eq!(ids, ["app-1", "app-2", "app-3", "app-4", "web-1", "web-2", "web-3"]);
    assert_eq!(at(&person, "/timeline/4/platform"), "web");
    assert_eq!(at(&person, "/traits/plan"), "gold");
    // The anonymous web person was merged into the user's when the site identified.
    let merges = field(&person, "merges").as_array().cloned().unwrap_or_default();
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(at(&person, "/merges/0/reason"), "identify");
    assert_eq!(at(&person, "/merges/0/messageId"), "web-2");
    assert_eq!(at(&person, "/merges/0/kept"), field(&person, "id"));
    // Audiences evaluated from the demo artifact on everything the person did.
    let audiences = strings(field(&person, "audiences"));
    assert!(audiences.contains(&"slacks-browsers".to_owned()), "{audiences:?}");
    assert!(audiences.contains(&"recent-buyers".to_owned()), "{audiences:?}");
    assert_eq!(field(&person, "revision"), "web-demo-2026-11-24.1");

    // A re-sent batch (duplicates) changes nothing.
    let ack = send(client, vec![Msg::identify("web-2", Some("u-shopper"), "web-dev", "web", 20)]).await?;
    assert_eq!(field(&ack, "duplicates"), 1);
    let again = person_of(client, "u-shopper").await?;
    assert_eq!(field(&again, "devices"), field(&person, "devices"));
    assert_eq!(field(&again, "merges"), field(&person, "merges"));
    Ok(())
}

#[tokio::test]
async fn alias_links_a_device_to_a_user() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    send(
        client,
        vec![
            Msg::identify("i-1", Some("u-alias"), "phone", "android", 50),
            Msg::track("t-1", "Product Viewed", "tablet", "android", 40),
        ],
    )
    .await?;
    assert_eq!(search(client, "tablet").await?.len(), 1);
    assert_ne!(
        field(&person_of(client, "tablet").await?, "id"),
        field(&person_of(client, "u-alias").await?, "id")
    );

    let alias = Msg::new("a-1", "alias", "phone", "android", 30)
        .with("userId", json!("u-alias"))
        .with("previousId", json!("tablet"));
    send(client, vec![alias]).await?;
    let person = person_of(client, "tablet").await?;
    assert_eq!(strings(field(&person, "userIds")), ["u-alias"]);
    assert_eq!(device_ids(&person), ["phone", "tablet"]);
    assert_eq!(at(&person, "/merges/0/reason"), "alias");
    assert_eq!(at(&person, "/merges/0/messageId"), "a-1");
    Ok(())
}

#[tokio::test]
async fn a_hashed_email_joins_devices_but_a_trait_email_does_not() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    let hash = sha256_hex("shopper@example.com");
    send(
        client,
        vec![
            Msg::identify("e-1", None, "dev-a", "web", 50).external_email(&hash),
            Msg::identify("e-2", None, "dev-b", "android", 40).external_email(&hash),
            // The same address as a trait only, on two other devices.
            Msg::identify("t-1", None, "dev-c", "web", 30)
                .with("traits", json!({"email": "other@example.com"})),
            Msg::identify("t-2", None, "dev-d", "web", 20)
                .with("traits", json!({"email": "other@example.com"})),
        ],
    )
    .await?;

    // Found by the address (normalised and hashed as the SDK does) and by the hash.
    let person = person_of(client, " Shopper@Example.com ").await?;
    assert_eq!(device_ids(&person), ["dev-a", "dev-b"]);
    assert_eq!(field(&person_of(client, &hash).await?, "id"), field(&person, "id"));
    assert_eq!(at(&person, "/merges/0/reason"), "externalId:email");
    assert_eq!(at(&person, "/identities/0/kind"), "email");
    assert_eq!(at(&person, "/identities/0/value"), hash.as_str());

    assert_eq!(device_ids(&person_of(client, "dev-c").await?), ["dev-c"]);
    assert_eq!(device_ids(&person_of(client, "dev-d").await?), ["dev-d"]);
    assert!(search(client, "other@example.com").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn two_user_ids_on_one_device_stay_two_people_with_a_conflict() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    send(
        client,
        vec![
            Msg::identify("s-1", Some("u-first"), "shared", "web", 50),
            Msg::identify("s-2", Some("u-second"), "shared", "web", 40),
            Msg::track("s-3", "Product Viewed", "shared", "web", 30).with("userId", json!("u-second")),
        ],
    )
    .await?;
    let first = person_of(client, "u-first").await?;
    let second = person_of(client, "u-second").await?;
    assert_ne!(field(&first, "id"), field(&second, "id"));
    assert_eq!(strings(field(&first, "userIds")), ["u-first"]);
    assert_eq!(strings(field(&second, "userIds")), ["u-second"]);
    assert!(field(&first, "merges").as_array().is_some_and(Vec::is_empty));
    // The second user's messages are theirs, even from the first user's device.
    let ids = |p: &Value| -> Vec<String> {
        field(p, "timeline")
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| field(e, "messageId").to_string())
            .collect()
    };
    assert_eq!(ids(&first), ["\"s-1\""]);
    assert_eq!(ids(&second), ["\"s-2\"", "\"s-3\""]);
    // The refused link is recorded once, counted twice.
    assert_eq!(at(&second, "/conflicts/0/otherPerson"), field(&first, "id"));
    assert_eq!(at(&second, "/conflicts/0/node"), "device:shared");
    assert_eq!(at(&second, "/conflicts/0/occurrences"), 2);
    assert_eq!(at(&first, "/conflicts/0/otherPerson"), field(&second, "id"));
    Ok(())
}

async fn get_profile(client: &Client, query: &str, token: Option<&str>) -> TestResult<common::Reply> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    client.send(Method::GET, &format!("/v1/profile?{query}"), &headers, Bytes::new()).await
}

fn token_for(user: &str, secret: &str, ttl: i64) -> TestResult<String> {
    let exp = i64::try_from(now_ms() / 1000)? + ttl;
    Ok(token::issue(secret.as_bytes(), user, u64::try_from(exp)?)?)
}

#[tokio::test]
async fn profile_counts_both_devices_minus_excluded_and_denied() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    shopper(client).await?;
    // Not counted: personalization denied, and no consent at all.
    let slacks = json!({"product_id": "slacks-charcoal"});
    send(
        client,
        vec![
            Msg::track("web-4", "Product Viewed", "web-dev", "web", 5)
                .with("userId", json!("u-shopper"))
                .props(slacks.clone())
                .personalization(Some("denied")),
            Msg::track("web-5", "Product Viewed", "web-dev", "web", 4)
                .with("userId", json!("u-shopper"))
                .props(slacks)
                .personalization(None),
        ],
    )
    .await?;
    let token = token_for("u-shopper", SECRET, 600)?;

    let reply = get_profile(client, "userId=u-shopper", Some(&token)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.header("content-type").is_some_and(|t| t.starts_with("application/json")));
    // The SDK takes the body as it is (its parser refuses anything inconsistent).
    sdk_core::Remote::from_json(&reply.body, "u-shopper")?;
    assert!(sdk_core::Remote::from_json(&reply.body, "u-other").is_err());
    let profile = reply.json()?;
    assert_eq!(field(&profile, "userId"), "u-shopper");
    assert_eq!(at(&profile, "/events/Product Viewed/c/0"), 3);
    assert_eq!(at(&profile, "/events/Product Viewed/p/product_id/slacks-charcoal/0"), 3);
    assert_eq!(at(&profile, "/events/Order Completed/c/0"), 1);
    assert_eq!(at(&profile, "/events/Page Viewed/c/0"), 1);
    assert_eq!(at(&profile, "/traits/plan"), "gold");
    assert_eq!(strings(field(&profile, "audiences")), ["slacks-browsers", "recent-buyers"]);
    assert_eq!(field(&profile, "revision"), "web-demo-2026-11-24.1");
    let at_ms = field(&profile, "at").as_u64().ok_or("no at")?;
    assert!(at_ms.abs_diff(now_ms()) < 60_000);

    // The app counted its own events: only the web's remain, and the traits.
    let reply = get_profile(client, "userId=u-shopper&exclude=app-dev&exclude=unknown", Some(&token)).await?;
    let profile = reply.json()?;
    assert_eq!(at(&profile, "/events/Product Viewed/c/0"), 1);
    assert_eq!(at(&profile, "/events/Order Completed"), &Value::Null);
    assert_eq!(at(&profile, "/traits/plan"), "gold");
    assert!(strings(field(&profile, "audiences")).is_empty());

    // A known token for an unknown user: an empty profile.
    let stranger = token_for("u-nobody", SECRET, 600)?;
    let profile = get_profile(client, "userId=u-nobody", Some(&stranger)).await?.json()?;
    assert_eq!(field(&profile, "events"), &json!({}));
    assert!(strings(field(&profile, "audiences")).is_empty());

    // CORS: a page on another origin may call it with its token.
    let preflight = client
        .send(
            Method::OPTIONS,
            "/v1/profile?userId=u-shopper",
            &[
                ("origin", "http://shop.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
            Bytes::new(),
        )
        .await?;
    assert!(preflight.status.is_success());
    assert_eq!(preflight.header("access-control-allow-origin"), Some("http://shop.example"));
    assert!(preflight.header("access-control-allow-headers").is_some_and(|h| h.contains("authorization")));
    Ok(())
}

#[tokio::test]
async fn profile_refuses_missing_bad_expired_and_other_users_tokens() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    shopper(client).await?;
    let alice = token_for("u-alice", SECRET, 600)?;
    let forged = token_for("u-shopper", "not-the-secret", 600)?;
    let expired = token_for("u-shopper", SECRET, -1)?;
    let cases: [(Option<&str>, &str); 5] = [
        (None, "missing bearer token"),
        (Some("garbage"), "malformed token"),
        (Some(&alice), "token is not valid for this user"),
        (Some(&forged), "token is not valid for this user"),
        (Some(&expired), "token expired"),
    ];
    for (token, error) in cases {
        let reply = get_profile(client, "userId=u-shopper", token).await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(reply.json()?, json!({"error": error}));
        assert!(!reply.text().contains("Product Viewed"));
    }
    // The right token works, so the refusals above were about the tokens.
    let good = token_for("u-shopper", SECRET, 600)?;
    assert_eq!(get_profile(client, "userId=u-shopper", Some(&good)).await?.status, StatusCode::OK);

    // Without a secret the endpoint does not exist.
    let bare = TestServer::start().await?;
    let reply = get_profile(&bare.client, "userId=u-shopper", Some(&good)).await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()?, json!({"error": "profile sync is not configured"}));
    Ok(())
}

#[tokio::test]
async fn person_api_needs_a_configured_admin_token() -> TestResult {
    let bare = TestServer::start().await?;
    let reply = bare.client.get("/admin/api/search?q=x").await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()?, json!({"error": "set --hub-token or --admin-token to use the activity hub"}));

    let server = start().await?;
    for path in ["/admin/api/search?q=x", "/admin/api/people/p-1"] {
        assert_eq!(server.client.get(path).await?.status, StatusCode::UNAUTHORIZED, "{path}");
        let wrong =
            server.client.send(Method::GET, path, &[("authorization", "Bearer nope")], Bytes::new()).await?;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(admin_get(&server.client, "/admin/api/people/p-unknown").await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

/// Rows of `table` in which any column mentions any of `needles`.
fn rows_mentioning(db: &rusqlite::Connection, table: &str, needles: &[String]) -> TestResult<u64> {
    let columns: Vec<String> = {
        let mut info = db.prepare(&format!("PRAGMA table_info({table})"))?;
        let rows = info.query_map([], |row| row.get::<_, String>(1))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut found = 0;
    for needle in needles {
        let condition: Vec<String> =
            columns.iter().map(|c| format!("instr(CAST({c} AS TEXT), ?1) > 0")).collect();
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {}", condition.join(" OR "));
        let count: i64 = db.query_row(&sql, [needle], |row| row.get(0))?;
        found += u64::try_from(count)?;
    }
    Ok(found)
}

#[tokio::test]
async fn erasure_removes_everything_of_the_person() -> TestResult {
    let server = start().await?;
    let client = &server.client;
    shopper(client).await?;
    let hash = sha256_hex("shopper@example.com");
    send(client, vec![Msg::identify("web-6", Some("u-shopper"), "web-dev", "web", 2).external_email(&hash)])
        .await?;
    // Someone else, who must stay.
    send(client, vec![Msg::identify("o-1", Some("u-other"), "other-dev", "web", 2)]).await?;

    let person = person_of(client, "u-shopper").await?;
    let id = field(&person, "id").as_str().ok_or("no id")?.to_owned();
    let merged: Vec<String> = field(&person, "merges")
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| field(m, "merged").to_string())
        .collect();
    assert_eq!(merged.len(), 1);

    let auth = format!("Bearer {ADMIN}");
    let reply = client
        .send(Method::DELETE, &format!("/admin/api/people/{id}"), &[("authorization", &auth)], Bytes::new())
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()?, json!({"removed": {"events": 8, "identities": 2, "devices": 2, "merges": 1}}));

    let db = rusqlite::Connection::open(&server.db_path)?;
    let mut needles =
        vec![id.clone(), "u-shopper".to_owned(), "app-dev".to_owned(), "web-dev".to_owned(), hash.clone()];
    needles.extend(merged.iter().map(|m| m.trim_matches('"').to_owned()));
    let tables: Vec<String> = {
        let mut statement =
            db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    assert!(tables.len() >= 6, "{tables:?}");
    for table in &tables {
        assert_eq!(rows_mentioning(&db, table, &needles)?, 0, "{table} still mentions the person");
    }
    // The other person is intact.
    assert_eq!(rows_mentioning(&db, "events", &["u-other".to_owned()])?, 1);
    assert_eq!(search(client, "u-other").await?.len(), 1);

    for q in ["u-shopper", "app-dev", "web-dev", "shopper@example.com", id.as_str()] {
        assert!(search(client, q).await?.is_empty(), "{q}");
    }
    assert_eq!(admin_get(client, &format!("/admin/api/people/{id}")).await?.status, StatusCode::NOT_FOUND);
    let token = token_for("u-shopper", SECRET, 600)?;
    let profile = get_profile(client, "userId=u-shopper", Some(&token)).await?.json()?;
    assert_eq!(field(&profile, "events"), &json!({}));
    assert_eq!(field(&profile, "traits"), &json!({}));
    Ok(())
}

#[tokio::test]
async fn events_stored_before_the_graph_existed_are_linked_on_open() -> TestResult {
    // A database as the previous collector version left it: events only.
    let path = common::temp_db_path();
    {
        let db = rusqlite::Connection::open(&path)?;
        db.execute_batch(
            "CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL, event TEXT, anonymous_id TEXT, user_id TEXT,
                timestamp TEXT, received_at TEXT NOT NULL, json TEXT NOT NULL);",
        )?;
        for (id, device) in [("old-1", "old-app"), ("old-2", "old-web")] {
            let message = Msg::identify(id, Some("u-old"), device, "web", 10).value;
            db.execute(
                "INSERT INTO events (message_id, type, anonymous_id, user_id, timestamp, received_at, json)
                 VALUES (?1, 'identify', ?2, 'u-old', ?3, '2024-01-01T00:00:00.000Z', ?4)",
                rusqlite::params![id, device, field(&message, "timestamp").as_str(), message.to_string()],
            )?;
        }
    }
    let mut config = test_config();
    config.db_path = path;
    config.fresh = false;
    config.admin_token = Some(ADMIN.to_owned());
    let server = TestServer::with_config(config).await?;
    let person = person_of(&server.client, "u-old").await?;
    assert_eq!(device_ids(&person), ["old-app", "old-web"]);
    assert_eq!(field(&person, "timeline").as_array().map(Vec::len), Some(2));
    Ok(())
}

#[tokio::test]
async fn demo_tokens_only_with_the_flag_and_they_open_only_their_user() -> TestResult {
    let server = start().await?;
    let off = server.client.get("/demo/token?userId=u-shopper").await?;
    assert_eq!(off.status, StatusCode::NOT_FOUND, "off by default");

    let mut config = test_config();
    config.profile_secret = Some(SECRET.to_owned());
    config.demo_tokens = true;
    let demo = TestServer::with_config(config).await?;
    let client = &demo.client;
    shopper(client).await?;
    assert_eq!(client.get("/demo/token").await?.status, StatusCode::BAD_REQUEST);
    let reply = client.get("/demo/token?userId=u-shopper").await?;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json()?;
    let t = body.get("userToken").and_then(Value::as_str).ok_or("no userToken")?;
    assert_eq!(get_profile(client, "userId=u-shopper", Some(t)).await?.status, StatusCode::OK);
    assert_eq!(get_profile(client, "userId=u-alice", Some(t)).await?.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn a_hub_token_opens_people_without_closing_the_fault_controls() -> TestResult {
    let mut config = test_config();
    config.hub_token = Some("hub-only".to_owned());
    let server = TestServer::with_config(config).await?;
    let client = &server.client;
    shopper(client).await?;
    let hub = [("authorization", "Bearer hub-only")];
    let reply = client.send(Method::GET, "/admin/api/search?q=u-shopper", &hub, Bytes::new()).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()?.get("people").and_then(Value::as_array).map(Vec::len), Some(1));
    let none = client.send(Method::GET, "/admin/api/search?q=u-shopper", &[], Bytes::new()).await?;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    // The fault controls stay as they were without --admin-token: open (the demo's outage button).
    assert_eq!(client.get("/admin/faults").await?.status, StatusCode::OK);
    Ok(())
}
