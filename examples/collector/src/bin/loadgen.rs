//! `threadline-loadgen`: measures the collector with identity stitching on.
//!
//! Starts a collector in-process (a fresh SQLite file in the temp directory, real TCP on
//! loopback), then:
//! 1. ingest: `--events` track/identify messages in batches of `--batch`, spread over
//!    many devices of many users (each user has an app and a web device and identifies
//!    on both, so the graph merges), sent by `--concurrency` keep-alive connections;
//! 2. profile: one person with `--profile-events` events over two devices, fetched
//!    `--lookups` times through `GET /v1/profile` with a user token.
//!
//! Prints a Markdown table; `--json <path>` also writes the figures as JSON.
//!
//! ```sh
//! cargo run --release -p threadline-collector --bin threadline-loadgen -- --events 200000 --json /tmp/load.json
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use threadline_collector::{start, token, Config};

const SECRET: &str = "loadgen-secret";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(
    name = "threadline-loadgen",
    about = "Ingest throughput with stitching, and profile lookup latency."
)]
struct Args {
    /// Messages to ingest.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Messages per batch.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Users (each with an app and a web device).
    #[arg(long, default_value_t = 2_000)]
    users: u64,
    /// Devices that never identify.
    #[arg(long, default_value_t = 2_000)]
    anonymous_devices: u64,
    /// Concurrent connections sending batches.
    #[arg(long, default_value_t = 4)]
    concurrency: u64,
    /// Events of the person whose profile is looked up.
    #[arg(long, default_value_t = 300)]
    profile_events: u64,
    /// Profile lookups measured.
    #[arg(long, default_value_t = 200)]
    lookups: u64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A splitmix64 stream: deterministic runs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn iso(millis: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

/// One message of the generated traffic: `n` is its global index.
fn message(n: u64, args: &Args, rng: &mut Rng, base_ms: u64) -> Value {
    let identified_devices = args.users * 2;
    let device_index = rng.below(identified_devices + args.anonymous_devices);
    let (device, user, platform) = if device_index < identified_devices {
        let user = device_index / 2;
        let platform = if device_index & 1 == 0 { "threadline-android" } else { "threadline-web" };
        (format!("dev-{device_index}"), Some(format!("user-{user}")), platform)
    } else {
        (format!("anon-{device_index}"), None, "threadline-web")
    };
    let mut value = json!({
        "messageId": format!("lg-{n}"),
        "anonymousId": device,
        "timestamp": iso(base_ms + n),
        "context": {"library": {"name": platform, "version": "0.1.0"},
                    "consent": {"analytics": "granted", "personalization": "granted"}},
    });
    let identify = user.is_some() && rng.below(20) == 0;
    if let Some(object) = value.as_object_mut() {
        if identify {
            object.insert("type".into(), json!("identify"));
            object.insert("traits".into(), json!({"plan": "gold"}));
        } else {
            object.insert("type".into(), json!("track"));
            object.insert("event".into(), json!("Product Viewed"));
            object.insert("properties".into(), json!({"product_id": format!("sku-{}", rng.below(500))}));
        }
        // Half of an identified device's later traffic carries the user id, as after sign-in.
        if let Some(user) = user.filter(|_| identify || rng.below(2) == 0) {
            object.insert("userId".into(), json!(user));
        }
    }
    value
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    async fn send(&self, method: Method, path: &str, auth: &str, body: Vec<u8>) -> Result<Bytes, Error> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(body)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Arc::new(Args::parse());
    let db_path = std::env::temp_dir().join(format!("threadline-loadgen-{}.sqlite", std::process::id()));
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-demo/rules/shop.json");
    let config = Config {
        port: 0,
        db_path: db_path.clone(),
        fresh: true,
        seed: Some(1),
        profile_secret: Some(SECRET.to_owned()),
        profile_rules: rules.is_file().then_some(rules),
        max_body_bytes: 16 * 1024 * 1024,
        ..Config::default()
    };
    let server = start(config).await?;
    let http =
        Arc::new(Http { client: Client::builder(TokioExecutor::new()).build_http(), base: server.url() });
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("demo-write-key:"));

    // 1. Ingest.
    let batches = args.events.div_ceil(args.batch.max(1));
    let next = Arc::new(AtomicU64::new(0));
    let base_ms = now_millis() - args.events - 86_400_000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency.max(1) {
        let (args, http, next, basic) =
            (Arc::clone(&args), Arc::clone(&http), Arc::clone(&next), basic.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(worker.wrapping_mul(0x1234_5678_9ABC) + 7);
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= batches {
                    break;
                }
                let first = index * args.batch;
                let last = (first + args.batch).min(args.events);
                let messages: Vec<Value> =
                    (first..last).map(|n| message(n, &args, &mut rng, base_ms)).collect();
                let body = serde_json::to_vec(&json!({"batch": messages}))?;
                let sent = Instant::now();
                http.send(Method::POST, "/v1/batch", &basic, body).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, Error>(latencies)
        }));
    }
    let mut batch_latencies = Vec::new();
    for task in tasks {
        batch_latencies.extend(task.await??);
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    batch_latencies.sort();
    let stats: Value = serde_json::from_slice(&http.send(Method::GET, "/stats", "", Vec::new()).await?)?;
    let stored = stats.get("distinct").and_then(Value::as_u64).unwrap_or(0);

    // 2. Profile lookups: one person, app and web device, `profile_events` events.
    // A shopper's mix: views of 20 products, cart adds, pages, a few orders.
    let person_messages: Vec<Value> = (0..args.profile_events)
        .map(|n| {
            let (device, library) =
                if n % 2 == 0 { ("pp-app", "threadline-android") } else { ("pp-web", "threadline-web") };
            let mut message = json!({
                "messageId": format!("pp-{n}"),
                "anonymousId": device,
                "userId": "profile-person",
                "timestamp": iso(now_millis() - (args.profile_events - n) * 60_000),
                "properties": {"product_id": format!("sku-{}", n % 20), "category": format!("cat-{}", n % 4)},
                "context": {"library": {"name": library, "version": "0.1.0"},
                            "consent": {"analytics": "granted", "personalization": "granted"}},
            });
            let (kind, event) = match n % 10 {
                0 if n < 2 => ("identify", None),
                0..=4 => ("track", Some("Product Viewed")),
                5 | 6 => ("track", Some("Product Added")),
                7 | 8 => ("page", None),
                _ => ("track", Some("Order Completed")),
            };
            if let Some(object) = message.as_object_mut() {
                object.insert("type".into(), json!(kind));
                match (kind, event) {
                    (_, Some(event)) => {
                        object.insert("event".into(), json!(event));
                    }
                    ("page", None) => {
                        object.insert("name".into(), json!(format!("Page {}", n % 7)));
                    }
                    _ => {
                        object.insert("traits".into(), json!({"plan": "gold"}));
                    }
                }
            }
            message
        })
        .collect();
    for chunk in person_messages.chunks(100) {
        http.send(Method::POST, "/v1/batch", &basic, serde_json::to_vec(&json!({"batch": chunk}))?).await?;
    }
    let exp = now_millis() / 1000 + 3_600;
    let bearer = format!("Bearer {}", token::issue(SECRET.as_bytes(), "profile-person", exp)?);
    let mut lookups = Vec::new();
    let mut profile_bytes = 0;
    for _ in 0..args.lookups {
        let sent = Instant::now();
        let body = http.send(Method::GET, "/v1/profile?userId=profile-person", &bearer, Vec::new()).await?;
        lookups.push(sent.elapsed());
        profile_bytes = body.len();
    }
    lookups.sort();
    server.shutdown().await?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = db_path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }

    let events_per_sec = stored as f64 / ingest_secs;
    let results = json!({
        "ingest": {
            "events": args.events, "stored": stored, "batchSize": args.batch,
            "users": args.users, "anonymousDevices": args.anonymous_devices, "concurrency": args.concurrency,
            "seconds": ingest_secs, "eventsPerSecond": events_per_sec,
            "batchLatencyMs": {"p50": percentile(&batch_latencies, 0.5), "p99": percentile(&batch_latencies, 0.99)},
        },
        "profile": {
            "personEvents": args.profile_events, "lookups": args.lookups, "bytes": profile_bytes,
            "latencyMs": {"p50": percentile(&lookups, 0.5), "p99": percentile(&lookups, 0.99)},
        },
    });
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| ingest ({stored} events, batches of {}, {} users x 2 devices + {} anonymous, {} connections) | {:.0} events/s |",
        args.batch, args.users, args.anonymous_devices, args.concurrency, events_per_sec
    );
    println!(
        "| batch latency p50 / p99 | {:.2} / {:.2} ms |",
        percentile(&batch_latencies, 0.5),
        percentile(&batch_latencies, 0.99)
    );
    println!(
        "| GET /v1/profile, person with {} events ({profile_bytes} B) p50 / p99 | {:.2} / {:.2} ms |",
        args.profile_events,
        percentile(&lookups, 0.5),
        percentile(&lookups, 0.99)
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)?;
    }
    Ok(())
}
