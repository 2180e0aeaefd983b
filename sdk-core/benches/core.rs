//! Native benchmarks of the sans-I/O core: how many events `track` takes per
//! second, how fast a batch is built and acknowledged, and how long a queue
//! snapshot takes to write and read back.
//!
//! `cargo bench -p sdk-core --bench core` (about 25 s on a 2-core machine).
//! Criterion prints each benchmark's time and throughput (`thrpt:`, in
//! elements/s or bytes/s); a summary at the end gives every figure as
//! events/s (and MB/s for batches and snapshots). Reports go to
//! `target/criterion/`. `--bench core -- logic` runs only the condition
//! evaluator's figures, `-- decide` the decision engine's (10, 100 and
//! 1,000 offers; about 20 s).
//!
//! The workload is an e-commerce `Product Viewed` event with eight
//! properties, on a client whose page context (URL with UTM parameters,
//! referrer, title) and environment (locale, timezone, user agent) are set,
//! as the web binding sets them: an event is about 1 KB of JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use sdk_core::{Client, Config, Environment, Library, Millis, NextUpload, Outcome, Page};

/// 2026-03-02T10:00:00Z; each event advances the clock by a millisecond.
const T0: Millis = 1_772_445_600_000;

const EVENT: &str = "Product Viewed";

/// What `JSON.stringify` hands the core for a product page view.
const PROPERTIES: &str = r#"{"product_id":"507f1f77bcf86cd799439011","sku":"G-32-SLK-NVY","category":"Apparel/Trousers","name":"Tailored Silk Slacks","brand":"Northwind","variant":"Navy / 32","price":129.95,"currency":"EUR"}"#;

const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36";

/// Cheap, deterministic "random" bytes (SplitMix64): the core takes its
/// randomness from the caller, and the benchmark must not measure a CSPRNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

fn config() -> Config {
    let mut cfg = Config::new("https://collect.example.com", "wk_3f9a1c2e7b");
    cfg.library = Library { name: "threadline-web".into(), version: "0.1.0".into() };
    cfg
}

/// A client as the web binding sets it up: library, environment, page.
fn client_with(cfg: Config, rng: &mut Rng) -> Client {
    let mut c = Client::new(cfg, 0, rng.bytes16()).expect("valid config");
    c.set_environment(Environment {
        locale: Some("de-DE".into()),
        timezone: Some("Europe/Berlin".into()),
        user_agent: Some(USER_AGENT.into()),
    });
    c.set_page(Page {
        url: Some("https://shop.example.com/p/tailored-silk-slacks?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale".into()),
        path: Some("/p/tailored-silk-slacks".into()),
        referrer: Some("https://mail.example.net/".into()),
        title: Some("Tailored Silk Slacks – Northwind".into()),
        search: Some("?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale".into()),
    });
    c
}

fn client(rng: &mut Rng) -> Client {
    client_with(config(), rng)
}

/// Queues `n` events, one millisecond apart, starting at `*now`.
fn track_n(c: &mut Client, n: usize, now: &mut Millis, rng: &mut Rng) {
    for _ in 0..n {
        *now += 1;
        c.track(EVENT, Some(PROPERTIES), *now, rng.bytes16()).expect("valid event");
    }
}

/// Delivers everything queued (every upload answered 200).
fn drain(c: &mut Client, now: Millis) {
    c.flush();
    while let NextUpload::Upload(u) = c.next_upload(now) {
        c.upload_finished(u.id, ok(), now, 0).expect("upload in flight");
    }
    assert_eq!(c.stats().queued, 0, "drain left events queued");
}

fn ok() -> Outcome {
    Outcome::Status { code: 200, retry_after: None }
}

/// One `track` call: validate the properties, build and serialise the event,
/// queue it. The queue is drained (untimed) every 1,000 events, as delivery
/// would keep it short in a real page.
fn bench_track(c: &mut Criterion) {
    let mut g = c.benchmark_group("track");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function("product_viewed", |b| {
        b.iter_custom(|iters| {
            let mut rng = Rng(1);
            let mut cl = client(&mut rng);
            let mut now = T0;
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(1_000);
                // Random bytes are drawn before the clock starts: a real
                // binding takes them from a pre-filled pool.
                let randoms: Vec<[u8; 16]> = (0..n).map(|_| rng.bytes16()).collect();
                let start = Instant::now();
                for r in randoms {
                    now += 1;
                    black_box(cl.track(black_box(EVENT), black_box(Some(PROPERTIES)), now, r).ok());
                }
                total += start.elapsed();
                drain(&mut cl, now);
                left -= n;
            }
            total
        });
    });

    // The same call when the queue is at its bound (10,000 events, nothing
    // delivered: an offline page): each call must also evict the oldest.
    g.bench_function("product_viewed_queue_full", |b| {
        let mut rng = Rng(2);
        let mut cl = client(&mut rng);
        let mut now = T0;
        let max = cl.config().queue.max_events;
        track_n(&mut cl, max, &mut now, &mut rng);
        b.iter(|| {
            now += 1;
            black_box(cl.track(black_box(EVENT), black_box(Some(PROPERTIES)), now, rng.bytes16()).ok())
        });
        assert!(cl.stats().dropped_queue_full > 0, "queue never overflowed");
    });
    g.finish();
}

/// A batch of 100 queued events: `flush()`, `next_upload` (builds the body)
/// and `upload_finished(200)` (removes the events). Queueing the 100 events
/// is setup and is not timed. `batch.maxBytes` is raised from its 60,000
/// default so the 100 events (~100 KB) fit one upload.
fn bench_batch(c: &mut Criterion) {
    const EVENTS: usize = 100;
    let mut cfg = config();
    cfg.batch.max_bytes = 256 * 1024;

    // The body size, measured once, sets the bytes/s throughput.
    let (body_bytes, body_events) = {
        let mut rng = Rng(3);
        let mut cl = client_with(cfg.clone(), &mut rng);
        let mut now = T0;
        track_n(&mut cl, EVENTS, &mut now, &mut rng);
        cl.flush();
        match cl.next_upload(now) {
            NextUpload::Upload(u) => (u.body.len(), u.events),
            other => panic!("no upload: {other:?}"),
        }
    };
    assert_eq!(body_events, EVENTS, "the batch must hold all {EVENTS} events");
    eprintln!("batch: {EVENTS} events, body {body_bytes} bytes ({} bytes/event)", body_bytes / EVENTS);

    let mut g = c.benchmark_group("batch");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(20);

    let run = |b: &mut criterion::Bencher<'_>, cfg: &Config| {
        let mut rng = Rng(4);
        let now = T0 + EVENTS as u64 + 1;
        b.iter_batched_ref(
            || {
                let mut cl = client_with(cfg.clone(), &mut rng);
                let mut t = T0;
                track_n(&mut cl, EVENTS, &mut t, &mut rng);
                cl
            },
            |cl| {
                cl.flush();
                let NextUpload::Upload(u) = cl.next_upload(now) else { panic!("no upload") };
                let id = u.id;
                black_box(&u.body);
                cl.upload_finished(id, ok(), now, 0).expect("in flight");
                black_box(u)
            },
            BatchSize::SmallInput,
        );
    };
    // Criterion reports one throughput per benchmark: bytes/s of body here;
    // the summary at the end adds events/s.
    g.throughput(Throughput::Bytes(body_bytes as u64));
    g.bench_function("encode_ack_100", |b| run(b, &cfg));
    g.finish();
    SIZES.with(|s| s.borrow_mut().push(("batch/encode_ack_100", EVENTS, body_bytes)));
}

/// The queue snapshot written to storage (`snapshot()`, what `take_persist`
/// writes) and read back by the next page load (`restore` into a fresh
/// client), with 1,000 queued events (~1 MB).
fn bench_snapshot(c: &mut Criterion) {
    const EVENTS: usize = 1_000;
    // 1,000 of these events are ~1 MB of snapshot, just over the 1 MiB
    // `queue.maxPersistBytes` default (which would keep ~960 of them).
    let mut cfg = config();
    cfg.queue.max_persist_bytes = 4 * 1024 * 1024;
    let mut rng = Rng(5);
    let mut full = client_with(cfg.clone(), &mut rng);
    let mut now = T0;
    track_n(&mut full, EVENTS, &mut now, &mut rng);
    let snap = full.snapshot();
    eprintln!("snapshot: {EVENTS} events, {} bytes", snap.len());

    let mut g = c.benchmark_group("snapshot_1000");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(20);
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("export", |b| b.iter(|| black_box(full.snapshot())));
    g.bench_function("restore", |b| {
        b.iter_batched_ref(
            || client_with(cfg.clone(), &mut rng),
            |cl| {
                let n = cl.restore(black_box(&snap), now).expect("valid snapshot");
                assert_eq!(n, EVENTS);
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
    SIZES.with(|s| {
        let mut s = s.borrow_mut();
        s.push(("snapshot_1000/export", EVENTS, snap.len()));
        s.push(("snapshot_1000/restore", EVENTS, snap.len()));
    });
}

/// One decision's condition, compiled once as an artifact load does: a
/// window count with a property filter, a trait comparison and an audience
/// check (`and`), over data shaped like the decision engine's context.
fn bench_logic(c: &mut Criterion) {
    use sdk_core::logic::{Condition, Context, Limits, PropertyFilter, Window};
    use serde_json::json;

    /// Answers as the profile module's counters would: a lookup per
    /// question, without allocating.
    struct Counters(Vec<(&'static str, Window, Option<&'static str>, u64)>);
    impl Context for Counters {
        fn now(&self) -> Millis {
            T0
        }
        fn count(&self, event: &str, window: Window, filter: Option<PropertyFilter<'_>>) -> u64 {
            let value = filter.and_then(|f| f.value.as_str());
            self.0.iter().find(|(e, w, v, _)| *e == event && *w == window && *v == value).map_or(0, |c| c.3)
        }
        fn first_seen(&self, _: &str, _: Option<PropertyFilter<'_>>) -> Option<Millis> {
            Some(T0 - 86_400_000)
        }
        fn last_seen(&self, _: &str, _: Option<PropertyFilter<'_>>) -> Option<Millis> {
            Some(T0 - 60_000)
        }
        fn in_audience(&self, audience: &str) -> bool {
            audience == "newsletter"
        }
    }
    let ctx = Counters(vec![
        ("product_viewed", Window::Day, None, 5),
        ("product_viewed", Window::Week, Some("507f1f77bcf86cd799439011"), 3),
    ]);
    let rule = json!({"and": [
        {">=": [{"count": ["product_viewed", "7d", {"productId": {"var": "page.productId"}}]}, 2]},
        {"in": [{"var": "profile.plan"}, ["pro", "team"]]},
        {"inAudience": "newsletter"}
    ]});
    let data = json!({
        "profile": {"plan": "pro", "email": "ada@example.com", "country": "DE", "ltv": 1290.5},
        "page": {"path": "/p/tailored-silk-slacks", "productId": "507f1f77bcf86cd799439011"},
        "consent": {"analytics": "granted", "marketing": "granted"},
        "audiences": ["newsletter", "returning"]
    });
    let cond = Condition::compile(&rule, &Limits::default()).expect("valid rule");
    assert!(cond.matches(&data, &ctx).expect("evaluates"), "the benchmark condition must hold");

    let mut g = c.benchmark_group("logic");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    g.bench_function("eval_decision", |b| b.iter(|| black_box(cond.matches(black_box(&data), &ctx).ok())));
    g.bench_function("compile_decision", |b| {
        b.iter(|| black_box(Condition::compile(black_box(&rule), &Limits::default()).ok()))
    });
    g.finish();
}

/// An artifact with `n` offers on one placement, written as a marketer
/// would: each offer targets a product the person viewed in the last week
/// (a property-filtered history window), most also an audience, some have a
/// schedule or a frequency cap, and all are suppressed once that product was
/// bought. 20 audiences over traits and history are evaluated per decision.
fn decide_artifact(n: usize) -> Vec<u8> {
    use serde_json::json;
    let audiences: Vec<serde_json::Value> = (0..20)
        .map(|i| match i % 4 {
            0 => json!({"id": format!("a{i}"), "condition": {">=": [{"count": ["Product Viewed", "24h"]}, i % 5]}}),
            1 => json!({"id": format!("a{i}"), "condition": {"in": [{"var": "profile.plan"}, ["pro", "team"]]}}),
            2 => json!({"id": format!("a{i}"), "condition": {"<": [{"daysSince": {"lastSeen": ["Order Completed"]}}, 30 + i]}}),
            _ => json!({"id": format!("a{i}"), "condition": {">": [{"count": ["Added to Cart", "7d", {"category": "trousers"}]}, 0]}}),
        })
        .collect();
    let offers: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let product = format!("p{}", i % 200);
            let mut o = json!({
                "id": format!("offer-{i:04}"), "placement": "home", "priority": (i * 7919) % 100,
                "content": {"title": format!("Offer {i}"), "image": format!("/img/{i}.jpg"), "productId": product},
                "condition": {"and": [
                    {">=": [{"count": ["Product Viewed", "7d", {"productId": product}]}, 2]},
                    {"inAudience": format!("a{}", i % 20)}
                ]},
                "suppress": {">": [{"count": ["Order Completed", "lifetime", {"productId": product}]}, 0]}
            });
            if i % 3 == 0 {
                o["cap"] = json!({"max": 3, "per": "day"});
            }
            if i % 5 == 0 {
                o["schedule"] = json!({"daysOfWeek": ["mon", "tue", "wed", "thu", "fri"], "timeOfDay": {"from": "08:00", "to": "22:00"}});
            }
            o
        })
        .collect();
    let doc = json!({
        "version": 1, "bucketing": "murmur3_x86_32/v1",
        "placements": [{"id": "home", "default": {"id": "welcome", "content": {"title": "Welcome"}}}],
        "audiences": audiences, "offers": offers,
        "experiments": [{"id": "home-test", "placement": "home", "holdout": 0.05,
            "variants": [{"id": "control", "weight": 1}, {"id": "b", "weight": 1, "content": {"title": "B"}}]}]
    });
    doc.to_string().into_bytes()
}

/// Decisions per second for 10, 100 and 1,000 offers, three slots wanted:
/// `offers_N` for a returning shopper with a realistic history (60 product
/// views over 20 products, purchases, cart adds, impressions), for whom the
/// walk down the ranking stops once three offers qualify; `new_visitor_N`
/// for an empty history, where no offer qualifies and every condition of
/// the placement is evaluated: the worst case.
fn bench_decide(c: &mut Criterion) {
    use sdk_core::artifact::{Artifact, Limits};
    use sdk_core::decide::{DecideOptions, Engine};
    use sdk_core::profile::Profile;
    use serde_json::json;

    let mut profile = Profile::default();
    profile.set_traits(json!({"plan": "pro", "country": "DE"}).as_object().expect("object")).expect("fits");
    for k in 0..60u64 {
        let props = json!({"productId": format!("p{}", (k * 7) % 20), "category": "trousers", "price": 89.5});
        profile.record("Product Viewed", &props, T0 - k * 2_400_000);
    }
    profile.record(
        "Order Completed",
        &json!({"products": [{"productId": "p3"}, {"productId": "p9"}]}),
        T0 - 86_400_000,
    );
    profile.record("Added to Cart", &json!({"productId": "p1", "category": "trousers"}), T0 - 3_600_000);
    for k in 0..50u64 {
        profile.record_impression(&format!("offer-{:04}", k * 3), T0 - k * 600_000);
    }
    let page = json!({"page": {"path": "/", "url": "https://shop.example.com/"}});
    let opts = DecideOptions {
        max: 3,
        context: page.as_object(),
        now: T0,
        utc_offset_minutes: 60,
        device_id: Some("3f1c9a6e-5d1b-4c7e-9a42-1b2c3d4e5f60"),
        personalization: true,
        random: [7; 16],
    };
    let mut g = c.benchmark_group("decide");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    for n in [10usize, 100, 1000] {
        let bytes = decide_artifact(n);
        let mut engine = Engine::default();
        engine.load(&bytes, None).expect("valid artifact");
        let d = engine.decide("home", &opts, &profile).expect("decides");
        assert!(!d.is_empty());
        g.bench_function(format!("offers_{n}"), |b| {
            b.iter(|| black_box(engine.decide("home", black_box(&opts), &profile).ok()))
        });
        let empty = Profile::default();
        assert!(engine.decide("home", &opts, &empty).expect("decides")[0].is_default);
        g.bench_function(format!("new_visitor_{n}"), |b| {
            b.iter(|| black_box(engine.decide("home", black_box(&opts), &empty).ok()))
        });
        if n == 1000 {
            g.bench_function("load_1000", |b| {
                b.iter(|| black_box(Artifact::parse(&bytes, &Limits::default()).ok()))
            });
        }
    }
    g.bench_function("profile_record", |b| {
        let props = json!({"productId": "p4", "category": "trousers", "price": 89.5});
        let mut p = profile.clone();
        let mut now = T0;
        b.iter(|| {
            now += 1000;
            p.record("Product Viewed", black_box(&props), now)
        })
    });
    g.bench_function("profile_to_bytes", |b| b.iter(|| black_box(profile.to_bytes())));
    g.finish();
}

static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

thread_local! {
    /// (benchmark id, events per iteration, bytes per iteration) for the summary.
    static SIZES: std::cell::RefCell<Vec<(&'static str, usize, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Criterion's point estimate (ns per iteration) of a finished benchmark,
/// read from `<target>/criterion/<id>/new/estimates.json`.
fn mean_ns(id: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let base =
        std::env::var_os("CRITERION_HOME").map_or_else(|| target.join("criterion"), std::path::PathBuf::from);
    let path = base.join(id).join("new/estimates.json");
    // Only figures of this run: a filtered run leaves older files behind.
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < *STARTED.get()? {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    // The figure criterion prints: the slope of time over iterations where
    // it fitted one (linear sampling), else the mean.
    let est = |k: &str| v.get(k)?.get("point_estimate")?.as_f64();
    est("slope").or_else(|| est("mean"))
}

/// One line per figure, in the units the README quotes.
fn summary() {
    println!("\nsummary (criterion point estimates)");
    if let Some(ns) = mean_ns("track/product_viewed") {
        println!("  track                      {:>9.0} ns/event  {:>12.0} events/s", ns, 1e9 / ns);
    }
    if let Some(ns) = mean_ns("track/product_viewed_queue_full") {
        println!("  track, queue full          {:>9.0} ns/event  {:>12.0} events/s", ns, 1e9 / ns);
    }
    if let Some(ns) = mean_ns("logic/eval_decision") {
        println!("  condition eval             {:>9.0} ns/decision", ns);
    }
    if let Some(ns) = mean_ns("logic/compile_decision") {
        println!("  condition compile          {:>9.0} ns/condition", ns);
    }
    for n in [10, 100, 1000] {
        if let Some(ns) = mean_ns(&format!("decide/offers_{n}")) {
            println!(
                "  decide, {n:>4} offers        {:>9.2} µs/decision {:>10.0} decisions/s",
                ns / 1e3,
                1e9 / ns
            );
        }
        if let Some(ns) = mean_ns(&format!("decide/new_visitor_{n}")) {
            println!(
                "  decide, {n:>4}, none qualify  {:>9.2} µs/decision {:>10.0} decisions/s",
                ns / 1e3,
                1e9 / ns
            );
        }
    }
    if let Some(ns) = mean_ns("decide/load_1000") {
        println!("  load artifact, 1000 offers {:>9.2} ms", ns / 1e6);
    }
    for (id, events, bytes) in SIZES.with(|s| s.borrow().clone()) {
        if let Some(ns) = mean_ns(id) {
            let secs = ns / 1e9;
            println!(
                "  {id:<26} {:>9.1} µs/iter   {:>12.0} events/s  {:>7.1} MB/s ({bytes} bytes, {events} events)",
                ns / 1e3,
                events as f64 / secs,
                bytes as f64 / secs / 1e6,
            );
        }
    }
}

criterion_group!(benches, bench_track, bench_batch, bench_snapshot, bench_logic, bench_decide);

fn main() {
    let _ = STARTED.set(std::time::SystemTime::now());
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
